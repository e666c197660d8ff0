using static TorchSharp.torch;

namespace Ddvi.Priors;

/// <summary>
/// A prior p(z) on R^d: draws and a log-density differentiable in z. Every draw takes the caller's generator, so a seed
/// fixes the samples. A prior with parameters of its own (a learnable mixture) is also a <c>torch.nn.Module</c>: its
/// parameters are registered, saved and optimised with the model it belongs to (<see cref="PriorParameters"/>).
/// </summary>
public interface IPrior
{
    /// <summary>A short name (e.g. <c>pinwheel</c>, <c>standard-normal</c>).</summary>
    string Name { get; }

    /// <summary>d, the latent dimension.</summary>
    int Dimension { get; }

    /// <summary>True when <see cref="LogDensity"/> is the exact density; false when it is an estimate (a KDE).</summary>
    bool HasExactDensity { get; }

    /// <summary>How log p(z) is computed (exact, or an estimate with its settings), for logs and metrics files.</summary>
    string DensityDescription { get; }

    /// <summary>n points <c>[n, d]</c>, drawn with <paramref name="generator"/>.</summary>
    Tensor Sample(long n, Generator generator);

    /// <summary>log p(z) for z <c>[B, d]</c> → <c>[B]</c>, differentiable in z (and in the prior's parameters, if any).</summary>
    Tensor LogDensity(Tensor z);

    /// <summary>
    /// log of a density that integrates to one, for z <c>[B, d]</c> → <c>[B]</c>: what a bound on log p(x) needs. The same as
    /// <see cref="LogDensity"/> unless that is clamped, as the release's kernel density estimate is (to [−1000, 1000]);
    /// then this is the unclamped mixture of Gaussian kernels, which is a proper density.
    /// </summary>
    Tensor NormalisedLogDensity(Tensor z) => LogDensity(z);

    /// <summary>The prior's own trainable parameters (none for a fixed prior).</summary>
    IReadOnlyList<TorchSharp.Modules.Parameter> PriorParameters => [];
}
