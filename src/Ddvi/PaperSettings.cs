namespace Ddvi;

/// <summary>
/// The settings of the paper (Piriyakulkij, Wang and Kuleshov, "Denoising Diffusion Variational Inference", AAAI 2025,
/// arXiv:2401.02739) and of the authors' release for its image experiments, stated once: the presets, the experiment
/// configuration, the benchmarks and the library's <c>DdviOptions</c> all refer to these.
/// </summary>
public static class PaperSettings
{
    /// <summary>T_post, the DDVI posterior chain's length.</summary>
    public const int PosteriorSteps = 40;

    /// <summary>T_prior, the prior diffusion's (and warm-up chain's) length.</summary>
    public const int PriorSteps = 20;

    /// <summary>K, sleep steps per wake step.</summary>
    public const int SleepSteps = 3;

    /// <summary>Hidden width of the MNIST-format encoder, decoder and auxiliary encoder.</summary>
    public const int Hidden = 1000;

    /// <summary>Hidden width of the denoisers' 4 hidden layers.</summary>
    public const int DenoiserHidden = 128;

    /// <summary>c, the width of the auxiliary encoder's context.</summary>
    public const int ContextDim = 2;

    /// <summary>Dropout of the encoder and decoder.</summary>
    public const double Dropout = 0.2;

    /// <summary>Dropout of the auxiliary encoder (the release's MNIST value).</summary>
    public const double AuxiliaryDropout = 0.4;

    /// <summary>d, the latent width of every experiment of the paper.</summary>
    public const int LatentDim = 2;

    /// <summary>Hidden widths of the CIFAR-10 auxiliary encoder's MLP after its conv trunk (128 → 24 → 24 → c).</summary>
    public static readonly IReadOnlyList<int> ConvAuxiliaryHidden = [24, 24];

    /// <summary>Dropout of the CIFAR-10 auxiliary encoder's MLP.</summary>
    public const double ConvAuxiliaryDropout = 0.2;

    /// <summary>
    /// σ of the Gaussian likelihood that makes its per-pixel negative log-density the release's mean squared error up to
    /// a constant: (x − μ)²/(2σ²) = (x − μ)² when σ² = ½, so σ = 1/√2 and log p(x|z) = −Σ_j (x_j − μ_j)² − (D/2)·log π.
    /// </summary>
    public static readonly double MseGaussianSigma = Math.Sqrt(0.5);

    /// <summary>Examples per training step.</summary>
    public const int BatchSize = 128;
}
