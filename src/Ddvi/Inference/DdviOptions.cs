using Ddvi.Diffusion;
using Ddvi.Models;
using Ddvi.Objectives;
using Ddvi.Runtime;

namespace Ddvi.Inference;

/// <summary>
/// Settings of <see cref="DdviFit.Fit"/>: how long and how DDVI trains a user's model p(x, z) = p(z) p(x|z), and the
/// default networks it builds when none are given. Every default is stated here, once; <see cref="Validate"/> names the
/// option and the value it rejects.
/// </summary>
/// <remarks>
/// Training alternates, per mini-batch of data, one wake step (the regularised ELBO of arXiv:2401.02739, eq. for
/// L_wake: reconstruction, KL(q(y_T|x) ‖ N(0, I)), −log p(z) and the chain's mean matching) and
/// <see cref="SleepSteps"/> sleep steps on fantasy pairs z ~ p(z), x ~ p(x|z) that teach the posterior chain to
/// denoise towards z. <see cref="Weights"/> sets the terms' scale: <see cref="DdviWeights.Elbo"/> (the default) keeps
/// the ELBO's own scale, <see cref="DdviWeights.Release"/> reproduces the authors' tempered weighting.
/// </remarks>
public sealed record DdviOptions
{
    /// <summary>Passes over the data (100).</summary>
    public int Epochs { get; init; } = 100;

    /// <summary>Examples per wake step, and prior draws per sleep step (128).</summary>
    public int BatchSize { get; init; } = PaperSettings.BatchSize;

    /// <summary>K, sleep steps per wake step (3, the paper's).</summary>
    public int SleepSteps { get; init; } = PaperSettings.SleepSteps;

    /// <summary>T, the posterior chain's length (40, the paper's).</summary>
    public int PosteriorSteps { get; init; } = PaperSettings.PosteriorSteps;

    /// <summary>The chain's β schedule (linear 1e-4 → 0.02, the paper's).</summary>
    public NoiseScheduleKind Schedule { get; init; } = NoiseScheduleKind.Linear;

    /// <summary>Weights of the objective's terms (<see cref="DdviWeights.Elbo"/>: the ELBO's own scale).</summary>
    public DdviWeights Weights { get; init; } = DdviWeights.Elbo;

    /// <summary>Adam's learning rate for the wake step: encoder, auxiliary encoder, denoiser, likelihood and a learnable prior (1e-3).</summary>
    public double LearningRate { get; init; } = 1e-3;

    /// <summary>Adam's learning rate for the sleep steps: auxiliary encoder and denoiser (1e-3).</summary>
    public double SleepLearningRate { get; init; } = 1e-3;

    /// <summary>Whether the likelihood's parameters (decoder and its own) are trained (true); false keeps a known decoder fixed.</summary>
    public bool TrainLikelihood { get; init; } = true;

    /// <summary>Epochs at the start with the likelihood frozen (0; the paper's image runs use 30).</summary>
    public int FrozenLikelihoodEpochs { get; init; }

    /// <summary>Hidden layer widths of the default encoder and auxiliary encoder ([256, 256]).</summary>
    public IReadOnlyList<int> HiddenWidths { get; init; } = [256, 256];

    /// <summary>Dropout after each hidden layer of the default encoder and auxiliary encoder (0).</summary>
    public double Dropout { get; init; }

    /// <summary>c, the width of the auxiliary encoder's context a_φ(x) for the denoiser (8).</summary>
    public int ContextDim { get; init; } = 8;

    /// <summary>Width of the default denoiser's 4 hidden layers (128, the paper's).</summary>
    public int DenoiserHidden { get; init; } = PaperSettings.DenoiserHidden;

    /// <summary>Seed of the default networks' initial weights, the batch order and every draw (0).</summary>
    public long Seed { get; init; }

    /// <summary>Where to train: CPU, CUDA, or CUDA when available (CPU).</summary>
    public DeviceChoice Device { get; init; } = DeviceChoice.Cpu;

    /// <summary>The arithmetic of every network in the model that takes one (each <see cref="Mlp"/> — the default encoders,
    /// an injected or the likelihood's — and conv trunks and decoders; <see cref="IPrecisionSettable"/>):
    /// <see cref="NetworkPrecisions.Default"/> unless set; <see cref="NetworkPrecision.Bfloat16"/> is mixed precision.</summary>
    public NetworkPrecision Precision { get; init; } = NetworkPrecisions.Default;

    /// <summary>A folder for checkpoints and the loss table, or null for none (null). A folder that holds a checkpoint of
    /// the same fit is resumed from it.</summary>
    public string? CheckpointFolder { get; init; }

    /// <summary>Save a checkpoint every N epochs; the last epoch is always saved (10).</summary>
    public int CheckpointEvery { get; init; } = 10;

    /// <summary>Rows per batch when the fitted model encodes, scores or samples (1024): memory stays bounded for any N.</summary>
    public int EvaluationBatchSize { get; init; } = 1024;

    /// <summary>Throws <see cref="ArgumentException"/> naming the first invalid option and its value.</summary>
    public void Validate()
    {
        Positive(Epochs, nameof(Epochs), allowZero: true);
        Positive(BatchSize, nameof(BatchSize));
        Positive(SleepSteps, nameof(SleepSteps), allowZero: true);
        Positive(PosteriorSteps, nameof(PosteriorSteps));
        Positive(ContextDim, nameof(ContextDim));
        Positive(DenoiserHidden, nameof(DenoiserHidden));
        Positive(CheckpointEvery, nameof(CheckpointEvery));
        Positive(EvaluationBatchSize, nameof(EvaluationBatchSize));
        Positive(FrozenLikelihoodEpochs, nameof(FrozenLikelihoodEpochs), allowZero: true);
        if (!Enum.IsDefined(Precision))
            throw new ArgumentException($"DdviOptions.{nameof(Precision)} must be one of {string.Join(", ", NetworkPrecisions.Names)}, got {Precision}.");
        if (!(LearningRate > 0) || !double.IsFinite(LearningRate))
            throw new ArgumentException($"DdviOptions.{nameof(LearningRate)} must be a finite number > 0, got {LearningRate}.");
        if (!(SleepLearningRate > 0) || !double.IsFinite(SleepLearningRate))
            throw new ArgumentException($"DdviOptions.{nameof(SleepLearningRate)} must be a finite number > 0, got {SleepLearningRate}.");
        if (!(Dropout >= 0 && Dropout < 1))
            throw new ArgumentException($"DdviOptions.{nameof(Dropout)} must lie in [0, 1), got {Dropout}.");
        if (HiddenWidths is null || HiddenWidths.Any(w => w < 1))
            throw new ArgumentException($"DdviOptions.{nameof(HiddenWidths)} must be positive widths, got [{string.Join(", ", HiddenWidths ?? [])}].");
        if (Weights is null)
            throw new ArgumentException($"DdviOptions.{nameof(Weights)} must be set (DdviWeights.Elbo or DdviWeights.Release).");
        foreach (var (value, name) in new[] { (Weights.KlWeight, "KlWeight"), (Weights.PriorWeight, "PriorWeight"), (Weights.MatchingWeight, "MatchingWeight") })
        {
            if (!double.IsFinite(value) || value < 0)
                throw new ArgumentException($"DdviOptions.Weights.{name} must be a finite number ≥ 0, got {value}.");
        }
    }

    private static void Positive(int value, string name, bool allowZero = false)
    {
        if (value < 0 || (!allowZero && value == 0))
            throw new ArgumentException($"DdviOptions.{name} must be {(allowZero ? "≥ 0" : "≥ 1")}, got {value}.");
    }
}
