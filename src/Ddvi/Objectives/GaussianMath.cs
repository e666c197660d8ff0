using Ddvi.Runtime;
using static TorchSharp.torch;

namespace Ddvi.Objectives;

/// <summary>Closed forms for diagonal Gaussians used by every objective.</summary>
public static class GaussianMath
{
    private static readonly double LogTwoPi = Math.Log(2 * Math.PI);

    /// <summary>log N(z; μ, diag σ²) summed over the last dimension: <c>[B, d]</c> → <c>[B]</c>.</summary>
    public static Tensor LogDensity(Tensor z, Tensor mean, Tensor variance)
    {
        using var scope = NewDisposeScope();
        var perDim = Scalars.Of(-0.5) * ((z - mean).pow(Scalars.Of(2)) / variance).add(variance.log(), Scalars.One).add(Scalars.Of(LogTwoPi), Scalars.One);
        return perDim.sum(-1).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// log N(z; μ, diag σ²) for a reparameterised z = μ + σ·ε, from ε and log σ² alone:
    /// −½ Σ (ε² + log σ² + log 2π). Exact, and finite even where σ² underflows.
    /// </summary>
    public static Tensor LogDensityOfReparameterised(Tensor epsilon, Tensor logVariance)
    {
        using var scope = NewDisposeScope();
        return (Scalars.Of(-0.5) * epsilon.pow(Scalars.Of(2)).add(logVariance, Scalars.One).add(Scalars.Of(LogTwoPi), Scalars.One)).sum(-1).MoveToOuterDisposeScope();
    }

    /// <summary>KL(N(μ, diag σ²) ‖ N(0, I)) = ½ Σ (σ² + μ² − 1 − log σ²): <c>[B, d]</c> → <c>[B]</c>.</summary>
    /// <remarks>Where σ² comes from a log variance, use <see cref="KlToStandardNormalFromLogVariance"/>: exp(log σ²)
    /// underflows to 0 in float32 below log σ² ≈ −103, and log 0 makes this form infinite.</remarks>
    public static Tensor KlToStandardNormal(Tensor mean, Tensor variance)
    {
        using var scope = NewDisposeScope();
        return (Scalars.Of(0.5) * (variance.add(mean.pow(Scalars.Of(2)), Scalars.One) - Scalars.Of(1) - variance.log()).sum(-1)).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// KL(N(μ, diag σ²) ‖ N(0, I)) = ½ Σ (exp(log σ²) + μ² − 1 − log σ²) from log σ²: <c>[B, d]</c> → <c>[B]</c>. The same
    /// value as <see cref="KlToStandardNormal"/>, finite (≈ −½ log σ² per coordinate) and with the right gradient where
    /// σ² underflows, which an encoder that drives its log variance far down reaches (a clustering run on unscaled
    /// genotype PCs reached log σ² = −109 and its loss became infinite through the variance form).
    /// </summary>
    public static Tensor KlToStandardNormalFromLogVariance(Tensor mean, Tensor logVariance)
    {
        using var scope = NewDisposeScope();
        return (Scalars.Of(0.5) * (logVariance.exp().add(mean.pow(Scalars.Of(2)), Scalars.One) - Scalars.Of(1) - logVariance).sum(-1)).MoveToOuterDisposeScope();
    }

    /// <summary>Σ over pixels of log Bernoulli(x | sigmoid(logits)) per example: <c>[B, D]</c> → <c>[B]</c>.</summary>
    public static Tensor BernoulliLogLikelihood(Tensor logits, Tensor x)
    {
        using var scope = NewDisposeScope();
        var negative = nn.functional.binary_cross_entropy_with_logits(logits, x, reduction: nn.Reduction.None);
        return (-negative.sum(-1)).MoveToOuterDisposeScope();
    }
}
