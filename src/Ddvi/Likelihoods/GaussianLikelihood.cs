using Ddvi.Runtime;
using System.Globalization;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace Ddvi.Likelihoods;

/// <summary>
/// p(x | z) = Π_j N(x_j; μ_j(z), σ_j²) with the mean μ from the decoder and a scale σ that is either fixed (one value for
/// every feature) or learned per feature as log σ_j:
/// log p(x_j | z) = −½ log(2π) − log σ_j − (x_j − μ_j)² / (2σ_j²). Support: every finite real.
/// </summary>
/// <remarks>
/// A learned scale is the parameter <c>log_sigma</c> <c>[D]</c> (its checkpoint key); a fixed scale is a setting of the
/// module, not a tensor, so a fixed-σ Gaussian has no parameter besides the decoder's.
/// </remarks>
public sealed class GaussianLikelihood : Likelihood
{
    private static readonly double HalfLogTwoPi = 0.5 * Math.Log(2 * Math.PI);

    // Field name = checkpoint key; null when σ is fixed.
    private readonly Parameter? log_sigma;
    private readonly double fixedSigma;

    /// <param name="decoder">z <c>[B, d]</c> → means μ <c>[B, D]</c>.</param>
    /// <param name="latentDim">d.</param>
    /// <param name="dataDim">D.</param>
    /// <param name="sigma">The fixed σ, or the initial σ of every feature when <paramref name="learnScale"/>; positive and finite.</param>
    /// <param name="learnScale">Learn a per-feature log σ_j <c>[D]</c> (float32, on the CPU until the module is moved).</param>
    public GaussianLikelihood(Module<Tensor, Tensor> decoder, int latentDim, int dataDim, double sigma = 1.0, bool learnScale = false)
        : base(nameof(GaussianLikelihood), decoder, latentDim, dataDim)
    {
        if (!(sigma > 0) || !double.IsFinite(sigma))
            throw new ArgumentOutOfRangeException(nameof(sigma), sigma, "GaussianLikelihood: σ must be positive and finite.");
        fixedSigma = sigma;
        LearnsScale = learnScale;
        if (learnScale)
            log_sigma = Parameter(full(dataDim, Scalars.Of(Math.Log(sigma)), dtype: float32));
        RegisterComponents();
    }

    public override string Kind => "gaussian";
    public override string SupportDescription => "finite real values";

    /// <summary>True when σ is the learned parameter <c>log_sigma</c> <c>[D]</c>; false when it is fixed.</summary>
    public bool LearnsScale { get; }

    /// <summary>
    /// The current σ <c>[D]</c>, detached (a new tensor the caller owns): exp(log σ_j) when learned, on the parameter's
    /// device and dtype; the fixed σ repeated D times (float32, CPU) otherwise.
    /// </summary>
    public Tensor Sigma()
    {
        using var _ = no_grad();
        return log_sigma is null ? full(DataDim, Scalars.Of(fixedSigma), dtype: float32) : log_sigma.detach().exp();
    }

    public override string Describe() => LearnsScale
        ? $"{Kind}(D = {DataDim}, σ learned per feature)"
        : $"{Kind}(D = {DataDim}, σ = {fixedSigma.ToString("R", CultureInfo.InvariantCulture)})";

    /// <summary>μ (a new handle on the decoder output).</summary>
    public override Tensor MeanFromOutput(Tensor output) => output.alias();

    /// <summary>x = μ + σ ε with ε ~ N(0, I) drawn with <paramref name="generator"/>.</summary>
    public override Tensor SampleFromOutput(Tensor output, Generator generator)
    {
        using var scope = NewDisposeScope();
        var epsilon = Runtime.RandomDraws.Normal(output.shape, output.dtype, output.device, generator);
        var noise = log_sigma is null ? epsilon * Scalars.Of(fixedSigma) : epsilon * log_sigma.exp().to(output.dtype);
        return output.add(noise, Scalars.One).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// With σ fixed, ½·mean((x − μ)²)/σ² + log σ + ½ log 2π through libtorch's <c>mse_loss</c>: one operation forward and
    /// one backward where the element-wise form is about ten passes over the <c>[B, D]</c> values (0.72 → 0.29 ms forward
    /// and backward for a CIFAR-10 batch, 128 × 3,072, on two threads; 1.8 → 0.44 ms on one). The same value to rounding;
    /// a learned σ, or x in another type than μ, takes the element-wise form.
    /// </summary>
    public override Tensor MeanNegativeLogProbPerFeature(Tensor output, Tensor x)
    {
        if (log_sigma is not null || output.dtype != x.dtype) return base.MeanNegativeLogProbPerFeature(output, x);
        CheckShape(output, x, null);
        using var scope = NewDisposeScope();
        var meanSquare = functional.mse_loss(output, x);
        return meanSquare.mul(Scalars.Of(0.5 / (fixedSigma * fixedSigma)))
            .add(Scalars.Of(HalfLogTwoPi + Math.Log(fixedSigma)), Scalars.One).MoveToOuterDisposeScope();
    }

    protected override Tensor ElementLogProb(Tensor output, Tensor x, Tensor? mask)
    {
        using var scope = NewDisposeScope();
        var residual = Filled(x, mask, 0) - output;                                       // [B, D]
        if (log_sigma is null)
        {
            double logSigma = Math.Log(fixedSigma);
            return (residual.pow(Scalars.Of(2)) * Scalars.Of(-0.5 / (fixedSigma * fixedSigma)) - Scalars.Of(HalfLogTwoPi + logSigma)).MoveToOuterDisposeScope();
        }
        var standardised = residual * (-log_sigma).exp();                                // (x − μ)/σ, σ per feature
        return (Scalars.Of(-0.5) * standardised.pow(Scalars.Of(2)) - log_sigma - Scalars.Of(HalfLogTwoPi)).MoveToOuterDisposeScope();
    }

    /// <summary>Nothing beyond non-finite values (checked by the caller).</summary>
    protected override Tensor InvalidValues(Tensor x) => zeros_like(x, dtype: ScalarType.Bool);
}
