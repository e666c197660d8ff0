using Ddvi.Runtime;
using static TorchSharp.torch;

namespace Ddvi.Objectives;

/// <summary>
/// A term on the aggregate posterior: the squared maximum mean discrepancy between a batch of latents and as many prior
/// draws, differentiable in the latents (the MMD regulariser of InfoVAE, Zhao, Song and Ermon 2019, and of the
/// Wasserstein autoencoder, Tolstikhin et al. 2018). The ELBO scores each example's latent by the prior density where it
/// lands, which does not ask the latents of all examples together to fill the prior: under the swiss roll, whose density
/// is nearly the same everywhere along the roll, DDVI's latents leave the inner turns empty (docs/elbo.md). This term
/// compares the batch's latents with the prior as a set. It is not part of DDVI's method (the release has no such term).
/// </summary>
public static class AggregateMatching
{
    /// <summary>
    /// Kernel widths σ of the latent-space kernels: from the width of the 2-D priors' arms (about 0.1) to their extent
    /// (radius 3). Stated for the paper's 2-D priors; latents of another scale want widths of their own.
    /// </summary>
    public static readonly IReadOnlyList<double> DefaultSigmas = [0.1, 0.2, 0.5, 1.0, 2.0];

    /// <summary>
    /// MMD² between the rows of <paramref name="latents"/> <c>[B, d]</c> and of <paramref name="priorSamples"/>
    /// <c>[M, d]</c>, the biased V-statistic with the kernel Σ_σ exp(−‖a − b‖² / (2σ²)), as
    /// <see cref="Evaluation.MaximumMeanDiscrepancy"/> computes it (a scalar tensor that carries the gradient). Pairwise
    /// differences are formed directly, so its memory is (B + M)² · d: meant for a batch, not a data set.
    /// </summary>
    public static Tensor SquaredMmd(Tensor latents, Tensor priorSamples, IReadOnlyList<double>? sigmas = null)
    {
        ArgumentNullException.ThrowIfNull(latents);
        ArgumentNullException.ThrowIfNull(priorSamples);
        sigmas ??= DefaultSigmas;
        if (latents.dim() != 2 || priorSamples.dim() != 2 || latents.shape[1] != priorSamples.shape[1])
            throw new ArgumentException($"AggregateMatching.SquaredMmd: latents and prior samples must be [B, d] and [M, d] with the same d, got [{string.Join(", ", latents.shape)}] and [{string.Join(", ", priorSamples.shape)}].");
        if (latents.shape[0] < 1 || priorSamples.shape[0] < 1)
            throw new ArgumentException("AggregateMatching.SquaredMmd: both sets need at least one row.");
        if (sigmas.Count == 0 || sigmas.Any(s => !(s > 0) || double.IsInfinity(s)))
            throw new ArgumentException($"AggregateMatching.SquaredMmd: kernel widths σ must be positive and finite, got [{string.Join(", ", sigmas)}].", nameof(sigmas));

        using var scope = NewDisposeScope();
        long b = latents.shape[0], m = priorSamples.shape[0];
        var all = cat([latents, priorSamples.to(latents.dtype)], 0);                          // [B + M, d]
        var squaredDistance = (all.unsqueeze(1) - all.unsqueeze(0)).pow(Scalars.Of(2)).sum(-1);         // [B + M, B + M]
        Tensor? kernel = null;
        foreach (double sigma in sigmas)
        {
            var k = squaredDistance.mul(Scalars.Of(-1.0 / (2 * sigma * sigma))).exp();
            kernel = kernel is null ? k : kernel.add(k, Scalars.One);
        }
        var withinLatents = kernel!.narrow(0, 0, b).narrow(1, 0, b).mean();
        var withinPrior = kernel.narrow(0, b, m).narrow(1, b, m).mean();
        var across = kernel.narrow(0, 0, b).narrow(1, b, m).mean();
        return (withinLatents.add(withinPrior, Scalars.One) - Scalars.Of(2) * across).MoveToOuterDisposeScope();
    }
}
