using Ddvi.Runtime;
using Ddvi.Models;
using Ddvi.Priors;
using static TorchSharp.torch;

namespace Ddvi.Evaluation;

/// <summary>An importance-weighted bound with k draws per estimate: its mean over examples and the mean's standard error.</summary>
/// <param name="K">Draws per estimate (k = 1 is the ELBO).</param>
/// <param name="Mean">Mean over examples of IWAE_k(x), nats per example.</param>
/// <param name="StandardError">Standard deviation over examples / √N.</param>
public sealed record ImportanceWeightedBound(int K, double Mean, double StandardError);

/// <summary>
/// What the posterior's change of variables did along the draws (DDVI's chain): a continuous injective map keeps one
/// sign of its Jacobian determinant, so an example whose draws show both signs (or a singular Jacobian) is one where
/// the map folds and log q(z|x) by change of variables is not the posterior's density.
/// </summary>
/// <param name="Draws">Draws checked.</param>
/// <param name="NegativeDraws">Draws with det ∂z/∂u &lt; 0.</param>
/// <param name="SingularDraws">Draws with det ∂z/∂u = 0 (in float64).</param>
/// <param name="ExamplesWithSignChange">Examples whose draws do not all share one nonzero sign: injectivity violations.</param>
public sealed record InjectivityCheck(long Draws, long NegativeDraws, long SingularDraws, long ExamplesWithSignChange);

/// <summary>
/// The true ELBO and the importance-weighted bounds of a model over a data set, from K draws per example
/// (see <see cref="ImportanceWeighting"/>).
/// </summary>
/// <param name="Examples">N, the examples averaged over.</param>
/// <param name="Samples">K, the posterior draws per example.</param>
/// <param name="TrueElbo">Mean over examples of (1/K) Σ_k log w_k, the ELBO's K-draw estimate per example.</param>
/// <param name="Bounds">IWAE_k for k = 1, 10, 100, … (those dividing K) and K.</param>
/// <param name="Injectivity">The determinant-sign check of change-of-variables posteriors; null for the others.</param>
/// <param name="PriorClampedDraws">Draws where the release's KDE clamp would have changed log p(z) (the bounds use the
/// unclamped density); null for a prior with an exact density.</param>
public sealed record LikelihoodBoundsSummary(long Examples, int Samples, ImportanceWeightedBound TrueElbo,
    IReadOnlyList<ImportanceWeightedBound> Bounds, InjectivityCheck? Injectivity, long? PriorClampedDraws)
{
    /// <summary>IWAE_K, the bound with every draw: the tightest estimate of log p(x) here.</summary>
    public ImportanceWeightedBound LogLikelihood => Bounds[^1];
}

/// <summary>Per-example bounds with their summary over the data set.</summary>
/// <param name="TrueElbo">(1/K) Σ_k log w_k per example <c>[N]</c>, float64 on the CPU.</param>
/// <param name="LogLikelihood">IWAE_K per example <c>[N]</c>, float64 on the CPU: the K-draw lower bound on log p(x).</param>
/// <param name="Summary">Means, standard errors and checks over the N examples.</param>
public sealed record LikelihoodBoundsEstimate(Tensor TrueElbo, Tensor LogLikelihood, LikelihoodBoundsSummary Summary) : IDisposable
{
    public void Dispose()
    {
        TrueElbo.Dispose();
        LogLikelihood.Dispose();
    }
}

/// <summary>Data-set-level true ELBO and importance-weighted log-likelihood bounds, in batches.</summary>
public static class LikelihoodBounds
{
    /// <summary>
    /// The true ELBO and IWAE_k of every row of x <c>[N, D]</c>: K = <paramref name="samples"/> draws per row, evaluated
    /// <paramref name="rowBudget"/> draws at a time (rows × draws per forward pass; a row whose K exceeds it is done in
    /// chunks of draws), each chunk in its own dispose scope. Call with the model in eval mode on the model's device; every
    /// draw comes from <paramref name="generator"/>, so a seed fixes the numbers.
    /// </summary>
    /// <param name="mask">Observed entries of x <c>[N, D]</c> (see <see cref="ImportanceWeighting.LogWeights"/>), or null.</param>
    public static LikelihoodBoundsEstimate Estimate(IPosteriorDensity posterior, IPrior prior, Tensor x, int samples, int rowBudget,
        Generator generator, Tensor? mask = null)
    {
        ArgumentNullException.ThrowIfNull(x);
        if (x.dim() != 2 || x.shape[0] < 1)
            throw new ArgumentException($"LikelihoodBounds: data must be [N, D] with N ≥ 1, got [{string.Join(", ", x.shape)}].", nameof(x));
        if (samples < 1)
            throw new ArgumentOutOfRangeException(nameof(samples), samples, "LikelihoodBounds: the number of posterior samples per example must be at least 1.");
        if (rowBudget < 1)
            throw new ArgumentOutOfRangeException(nameof(rowBudget), rowBudget, "LikelihoodBounds: the rows per forward pass must be at least 1.");

        long n = x.shape[0];
        var logWeights = new List<Tensor>();   // [K, b] per batch, float64 on the CPU
        var signs = new List<Tensor>();
        long? clamped = null;
        try
        {
            long rows = Math.Max(1, rowBudget / samples);
            for (long start = 0; start < n; start += rows)
            {
                long count = Math.Min(rows, n - start);
                var chunks = new List<ImportanceWeights>();
                using var scope = NewDisposeScope();
                var batch = x.narrow(0, start, count);
                var batchMask = mask?.narrow(0, start, count);
                for (int done = 0; done < samples;)
                {
                    int chunk = (int)Math.Min(samples - done, Math.Max(1, rowBudget / count));
                    chunks.Add(ImportanceWeighting.LogWeights(posterior, prior, batch, chunk, generator, batchMask));
                    done += chunk;
                }
                logWeights.Add(cat(chunks.Select(c => c.LogWeights).ToArray(), 0).cpu().DetachFromDisposeScope());
                if (chunks[0].JacobianSign is not null)
                    signs.Add(cat(chunks.Select(c => c.JacobianSign!).ToArray(), 0).cpu().DetachFromDisposeScope());
                if (chunks[0].PriorClamped is not null)
                    clamped = (clamped ?? 0) + chunks.Sum(c => c.PriorClamped!.sum().item<long>());
            }

            using var summaryScope = NewDisposeScope();
            var all = cat(logWeights.ToArray(), 1);                                                        // [K, N]
            var bounds = ImportanceWeighting.ReportedGroupSizes(samples)
                .Select(k => Summarise(k, ImportanceWeighting.Bound(all, k))).ToList();
            var elboPerExample = all.mean([0]);                                                            // [N]
            var logLikelihood = ImportanceWeighting.Bound(all, samples);                                   // [N]
            var trueElbo = Summarise(1, elboPerExample);
            InjectivityCheck? injectivity = null;
            if (signs.Count > 0)
            {
                var sign = cat(signs.ToArray(), 1);                                                        // [K, N]
                var mixed = sign.ne(sign[0].unsqueeze(0)).any(0).logical_or(sign.eq(Scalars.Of(0)).any(0));          // [N]
                injectivity = new InjectivityCheck(sign.numel(), sign.lt(Scalars.Of(0)).sum().item<long>(), sign.eq(Scalars.Of(0)).sum().item<long>(),
                    mixed.sum().item<long>());
            }
            return new LikelihoodBoundsEstimate(elboPerExample.DetachFromDisposeScope(), logLikelihood.DetachFromDisposeScope(),
                new LikelihoodBoundsSummary(n, samples, trueElbo, bounds, injectivity, clamped));
        }
        finally
        {
            foreach (var t in logWeights.Concat(signs)) t.Dispose();
        }
    }

    private static ImportanceWeightedBound Summarise(int k, Tensor perExample) // [N]
    {
        double mean = perExample.mean().item<double>();
        double error = perExample.shape[0] > 1 ? perExample.std().item<double>() / Math.Sqrt(perExample.shape[0]) : double.NaN;
        return new ImportanceWeightedBound(k, mean, error);
    }
}
