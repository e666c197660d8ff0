using Ddvi.Runtime;
using Ddvi.Models;
using Ddvi.Priors;
using static TorchSharp.torch;

namespace Ddvi.Evaluation;

/// <summary>
/// Log importance weights of K posterior draws per example.
/// </summary>
/// <param name="LogWeights">log w_k = log p(x|z_k) + log p(z_k) − log q(z_k|x) <c>[K, B]</c>, float64.</param>
/// <param name="JacobianSign">sign of det ∂z/∂u per draw <c>[K, B]</c> for change-of-variables posteriors, else null.</param>
/// <param name="PriorClamped">
/// <c>[K, B]</c> bool: where the prior's reported <see cref="IPrior.LogDensity"/> differs from the proper density used here
/// (<see cref="IPrior.NormalisedLogDensity"/>), i.e. where the release's KDE clamp would have changed log p(z); null for a
/// prior with an exact density.
/// </param>
public sealed record ImportanceWeights(Tensor LogWeights, Tensor? JacobianSign, Tensor? PriorClamped);

/// <summary>
/// The true ELBO and the importance-weighted bound of Burda, Grosse and Salakhutdinov (IWAE, arXiv:1509.00519) for any
/// model with an <see cref="IPosteriorDensity"/>:
/// ELBO(x) = E_q[log w], IWAE_k(x) = E[log (1/k) Σ_{i≤k} w_i], w = p(x|z) p(z) / q(z|x), z ~ q(z|x),
/// with ELBO = IWAE_1 ≤ IWAE_k ≤ IWAE_{k'} ≤ log p(x) for k ≤ k' (in expectation), and IWAE_k → log p(x) as k → ∞ when the
/// weights have finite variance. log p(z) is the prior's <see cref="IPrior.NormalisedLogDensity"/>, a density that
/// integrates to one (the release's KDE without its clamp), so the bounds are bounds of the model with that prior.
/// </summary>
public static class ImportanceWeighting
{
    /// <summary>
    /// K = <paramref name="samples"/> log importance weights per row of x <c>[B, D]</c>, all draws from
    /// <paramref name="generator"/>. Call with the model in eval mode; it runs under <c>no_grad()</c> itself (the posterior
    /// may build a graph inside for a Jacobian). <paramref name="mask"/> <c>[B, D]</c> drops missing entries from
    /// log p(x|z) as <see cref="Likelihoods.Likelihood.LogProbFromOutput"/> does.
    /// </summary>
    public static ImportanceWeights LogWeights(IPosteriorDensity posterior, IPrior prior, Tensor x, int samples, Generator generator,
        Tensor? mask = null)
    {
        ArgumentNullException.ThrowIfNull(posterior);
        ArgumentNullException.ThrowIfNull(prior);
        ArgumentNullException.ThrowIfNull(generator);
        if (samples < 1)
            throw new ArgumentOutOfRangeException(nameof(samples), samples, "ImportanceWeighting: the number of posterior samples per example must be at least 1.");
        if (prior.Dimension != posterior.LatentDim)
            throw new ArgumentException($"ImportanceWeighting: the prior is {prior.Dimension}-dimensional but the posterior draws d = {posterior.LatentDim} latents.", nameof(prior));

        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        long batch = x.shape[0];
        var draws = posterior.DrawWithLogDensity(x, samples, generator);
        var z = draws.Z.reshape(samples * batch, posterior.LatentDim);                                // [K·B, d]
        var repeatedX = x.unsqueeze(0).expand(samples, -1, -1).reshape(samples * batch, -1);          // [K·B, D]
        var repeatedMask = mask?.unsqueeze(0).expand(samples, -1, -1).reshape(samples * batch, -1);
        var logLikelihood = posterior.Likelihood.LogProbFromOutput(posterior.Likelihood.Decode(z), repeatedX, repeatedMask); // [K·B]
        var logPrior = prior.NormalisedLogDensity(z);                                                 // [K·B]
        var logWeights = logLikelihood.to(float64).add(logPrior.to(float64), Scalars.One).reshape(samples, batch) - draws.LogQ.to(float64); // [K, B]
        Tensor? clamped = null;
        if (!prior.HasExactDensity)
            clamped = prior.LogDensity(z).to(float64).ne(logPrior.to(float64)).reshape(samples, batch).MoveToOuterDisposeScope();
        return new ImportanceWeights(logWeights.MoveToOuterDisposeScope(), draws.JacobianSign?.MoveToOuterDisposeScope(), clamped);
    }

    /// <summary>
    /// IWAE_k per example from log weights <c>[K, B]</c>: the K draws split into K/k disjoint groups of k (in order), each
    /// group's log (1/k) Σ w_i, averaged over the groups: <c>[B]</c>. k = 1 gives the ELBO's estimate, the mean of log w;
    /// k = K the single K-sample estimate. k must divide K.
    /// </summary>
    public static Tensor Bound(Tensor logWeights, int k)
    {
        ArgumentNullException.ThrowIfNull(logWeights);
        if (logWeights.dim() != 2)
            throw new ArgumentException($"ImportanceWeighting.Bound: log weights must be [K, B], got [{string.Join(", ", logWeights.shape)}].", nameof(logWeights));
        long samples = logWeights.shape[0];
        if (k < 1 || k > samples || samples % k != 0)
            throw new ArgumentOutOfRangeException(nameof(k), k, $"ImportanceWeighting.Bound: k must divide the {samples} draws per example (1 ≤ k ≤ {samples}).");
        using var scope = NewDisposeScope();
        var groups = logWeights.reshape(samples / k, k, logWeights.shape[1]);                          // [K/k, k, B]
        return (groups.logsumexp(1) - Scalars.Of(Math.Log(k))).mean([0]).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// The group sizes reported for K draws: 1, 10, 100, … up to K where they divide K, and K itself.
    /// </summary>
    public static IReadOnlyList<int> ReportedGroupSizes(int samples)
    {
        if (samples < 1)
            throw new ArgumentOutOfRangeException(nameof(samples), samples, "ImportanceWeighting: the number of posterior samples per example must be at least 1.");
        var sizes = new List<int>();
        for (long k = 1; k <= samples; k *= 10)
            if (samples % k == 0) sizes.Add((int)k);
        if (sizes[^1] != samples) sizes.Add(samples);
        return sizes;
    }
}
