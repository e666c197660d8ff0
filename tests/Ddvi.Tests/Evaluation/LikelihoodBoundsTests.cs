using Ddvi.Evaluation;
using Ddvi.Likelihoods;
using Ddvi.Models;
using Ddvi.Priors;
using static TorchSharp.torch;

namespace Ddvi.Tests.Evaluation;

/// <summary>
/// The true ELBO and the importance-weighted bound against a model whose log p(x) is known in closed form:
/// p(z) = N(0, I), p(x|z) = N(Wz + b, σ²I), log p(x) = log N(x; b, WWᵀ + σ²I).
/// </summary>
public class LikelihoodBoundsTests
{
    private static StandardNormalPrior Prior => new(LinearGaussianModel.LatentDim, CPU);

    [Fact]
    public void WithTheExactPosteriorEveryWeightIsPxSoEveryBoundEqualsLogPx()
    {
        using var model = new LinearGaussianModel(seed: 1);
        using var scope = NewDisposeScope();
        var x = model.Sample(8, new Generator(2));
        var logPx = model.LogMarginal(x);                                                         // [8]

        var weights = ImportanceWeighting.LogWeights(GaussianTestPosterior.Exact(model), Prior, x, samples: 100, new Generator(3));
        Assert.Equal(new long[] { 100, 8 }, weights.LogWeights.shape);
        // p(x|z) p(z) / q*(z|x) = p(x) for every z: the weight has no variance (up to the prior's float32 log density).
        Assert.True((weights.LogWeights - logPx).abs().max().item<double>() < 1e-4);
        foreach (int k in new[] { 1, 10, 100 })
        {
            double error = (ImportanceWeighting.Bound(weights.LogWeights, k) - logPx).abs().max().item<double>();
            Assert.True(error < 1e-4, $"IWAE_{k} differs from log p(x) by {error}");
        }
        Assert.Null(weights.JacobianSign);
        Assert.Null(weights.PriorClamped);
    }

    [Fact]
    public void WithAnImperfectPosteriorTheBoundRisesTowardsLogPxFromBelowAsKGrows()
    {
        using var model = new LinearGaussianModel(seed: 4);
        using var scope = NewDisposeScope();
        var x = model.Sample(64, new Generator(5));
        double logPx = model.LogMarginal(x).mean().item<double>();
        // Mean-field, too wide and shifted by 0.3 in every coordinate: far enough from q* that k matters.
        var posterior = GaussianTestPosterior.MeanField(model, varianceScale: 2.0, shift: 0.3);

        using var estimate = LikelihoodBounds.Estimate(posterior, Prior, x, samples: 1000, rowBudget: 4096, new Generator(6));
        var summary = estimate.Summary;
        Assert.Equal([1, 10, 100, 1000], summary.Bounds.Select(b => b.K));
        var means = summary.Bounds.Select(b => b.Mean).ToArray();
        string shown = $"log p(x) = {logPx:F4}, IWAE_k = {string.Join(", ", means.Select(m => m.ToString("F4")))}";

        // The ELBO is the k = 1 bound, and it leaves a clear gap (KL(q ‖ p(z|x)) averaged over x).
        Assert.Equal(summary.TrueElbo.Mean, means[0], 10);
        Assert.True(logPx - means[0] > 0.2, shown);
        // E[IWAE_k] rises with k; the steps are far larger than the Monte Carlo error of these averages.
        for (int i = 1; i < means.Length; i++)
            Assert.True(means[i] > means[i - 1], shown);
        // From below: never above log p(x) by more than Monte Carlo error, and the gap closes.
        var gap = (model.LogMarginal(x) - estimate.LogLikelihood);                                 // [64], per example
        double gapError = gap.std().item<double>() / Math.Sqrt(64);
        Assert.True(gap.mean().item<double>() > -3 * gapError, shown);
        Assert.True(logPx - means[^1] < 0.1 * (logPx - means[0]), shown);
    }

    [Fact]
    public void TrueElboIsBelowTheIwaeBoundWhichIsBelowLogPxForEveryExample()
    {
        using var model = new LinearGaussianModel(seed: 8);
        using var scope = NewDisposeScope();
        var x = model.Sample(32, new Generator(9));
        var logPx = model.LogMarginal(x);
        var posterior = GaussianTestPosterior.MeanField(model, varianceScale: 0.6, shift: -0.2);

        using var estimate = LikelihoodBounds.Estimate(posterior, Prior, x, samples: 500, rowBudget: 1000, new Generator(10));
        // log mean w ≥ mean log w holds for every draw set (Jensen), so per example, not only in expectation.
        Assert.True((estimate.LogLikelihood - estimate.TrueElbo).min().item<double>() >= 0);
        // IWAE_500 ≤ log p(x) in expectation; per example it may exceed it by Monte Carlo error (a too-narrow q has
        // heavy-tailed weights), so the check is on the mean gap against its standard error.
        var gap = logPx - estimate.LogLikelihood;
        double gapError = gap.std().item<double>() / Math.Sqrt(32);
        Assert.True(gap.mean().item<double>() > -3 * gapError, $"mean gap {gap.mean().item<double>()} ± {gapError}");
        Assert.True(estimate.Summary.TrueElbo.Mean < estimate.Summary.LogLikelihood.Mean);
        Assert.True(logPx.mean().item<double>() - estimate.Summary.TrueElbo.Mean > 0.1);
    }

    [Fact]
    public void ChunkingTheDrawsDoesNotChangeTheEstimate()
    {
        using var model = new LinearGaussianModel(seed: 11);
        using var scope = NewDisposeScope();
        var x = model.Sample(5, new Generator(12));
        var posterior = GaussianTestPosterior.MeanField(model, 1.5, 0.1);
        // Same draws in the same order whether 1 row × 8 draws or all 5 rows × 40 draws go at once.
        using var small = LikelihoodBounds.Estimate(posterior, Prior, x.narrow(0, 0, 1), samples: 40, rowBudget: 8, new Generator(13));
        using var large = LikelihoodBounds.Estimate(posterior, Prior, x.narrow(0, 0, 1), samples: 40, rowBudget: 40, new Generator(13));
        Assert.Equal(large.LogLikelihood.item<double>(), small.LogLikelihood.item<double>(), 10);
        using var all = LikelihoodBounds.Estimate(posterior, Prior, x, samples: 40, rowBudget: 39, new Generator(14));
        Assert.Equal(new long[] { 5 }, all.TrueElbo.shape);
        Assert.Equal(5, all.Summary.Examples);
        Assert.Equal(40, all.Summary.Samples);
    }

    [Fact]
    public void BoundAveragesLogMeanExpOverDisjointGroups()
    {
        // One example, weights 1, 3, 2, 6: IWAE_1 = mean log w, IWAE_2 = mean(log 2, log 4), IWAE_4 = log 3.
        using var logWeights = tensor(new[] { 0, Math.Log(3), Math.Log(2), Math.Log(6) }, [4, 1], dtype: float64);
        Assert.Equal((Math.Log(3) + Math.Log(2) + Math.Log(6)) / 4, ImportanceWeighting.Bound(logWeights, 1).item<double>(), 12);
        Assert.Equal((Math.Log(2) + Math.Log(4)) / 2, ImportanceWeighting.Bound(logWeights, 2).item<double>(), 12);
        Assert.Equal(Math.Log(3), ImportanceWeighting.Bound(logWeights, 4).item<double>(), 12);
        var error = Assert.Throws<ArgumentOutOfRangeException>(() => ImportanceWeighting.Bound(logWeights, 3));
        Assert.Contains("divide", error.Message);
        Assert.Equal([1, 10, 100, 1000], ImportanceWeighting.ReportedGroupSizes(1000));
        Assert.Equal([1, 10, 250], ImportanceWeighting.ReportedGroupSizes(250));
        Assert.Equal([1, 7], ImportanceWeighting.ReportedGroupSizes(7));
    }

    [Fact]
    public void BadArgumentsAreNamed()
    {
        using var model = new LinearGaussianModel(seed: 1);
        using var x = model.Sample(2, new Generator(1));
        var posterior = GaussianTestPosterior.Exact(model);
        Assert.Contains("at least 1", Assert.Throws<ArgumentOutOfRangeException>(() =>
            ImportanceWeighting.LogWeights(posterior, Prior, x, 0, new Generator(1))).Message);
        Assert.Contains("3-dimensional", Assert.Throws<ArgumentException>(() =>
            ImportanceWeighting.LogWeights(posterior, new StandardNormalPrior(3, CPU), x, 2, new Generator(1))).Message);
        Assert.Contains("rows per forward pass", Assert.Throws<ArgumentOutOfRangeException>(() =>
            LikelihoodBounds.Estimate(posterior, Prior, x, 2, 0, new Generator(1))).Message);
    }

    /// <summary>Draws with given determinant signs, to check the injectivity count.</summary>
    private sealed class SignedPosterior(LinearGaussianModel model, Tensor signs) : IPosteriorDensity
    {
        public int LatentDim => LinearGaussianModel.LatentDim;
        public Likelihood Likelihood => model.Likelihood;
        public string PosteriorDensityDescription => "test";

        public PosteriorDraws DrawWithLogDensity(Tensor x, int samples, Generator generator)
        {
            var draws = GaussianTestPosterior.Exact(model).DrawWithLogDensity(x, samples, generator);
            return draws with { JacobianSign = signs.narrow(0, 0, samples).clone() };
        }
    }

    [Fact]
    public void ExamplesWhoseDrawsChangeDeterminantSignAreCountedAsInjectivityViolations()
    {
        using var model = new LinearGaussianModel(seed: 1);
        using var scope = NewDisposeScope();
        var x = model.Sample(4, new Generator(1));
        // 3 draws × 4 examples: example 0 all +1, 1 all −1 (consistent: no violation), 2 mixed, 3 one singular draw.
        var signs = tensor(new double[] { 1, -1, 1, 1, 1, -1, -1, 0, 1, -1, 1, 1 }, [3, 4], dtype: float64);
        using var estimate = LikelihoodBounds.Estimate(new SignedPosterior(model, signs), Prior, x, 3, 100, new Generator(2));
        var check = estimate.Summary.Injectivity!;
        Assert.Equal(12, check.Draws);
        Assert.Equal(4, check.NegativeDraws);
        Assert.Equal(1, check.SingularDraws);
        Assert.Equal(2, check.ExamplesWithSignChange);
    }

    [Fact]
    public void KdePriorBoundsUseTheUnclampedDensityAndCountTheDrawsTheClampWouldRaise()
    {
        using var scope = NewDisposeScope();
        using var kde = new KernelDensityPrior(new GaussianPrior(CPU), seed: 3, CPU);
        var near = tensor(new float[] { 0.1f, -0.2f, 20f, 20f }, [2, 2]);
        var clamped = kde.LogDensity(near);
        var proper = kde.NormalisedLogDensity(near);
        Assert.Equal(clamped[0].item<float>(), proper[0].item<float>());
        Assert.Equal(GaussianKernelDensity.MinLogDensity, clamped[1].item<float>());
        Assert.True(proper[1].item<float>() < -1e4, $"{proper[1].item<float>()}");   // ≈ −(distance²)/(2·0.05²)
        Assert.True(proper.isfinite().all().item<bool>());

        // Posterior draws 30 away from every centre: the clamp would raise each one's log p(z) to −1000; the bounds do not.
        using var model = new LinearGaussianModel(seed: 1);
        var x = model.Sample(3, new Generator(4));
        var far = ImportanceWeighting.LogWeights(GaussianTestPosterior.MeanField(model, 1.0, 30), kde, x, 5, new Generator(5));
        Assert.Equal(15, far.PriorClamped!.sum().item<long>());
        Assert.True(far.LogWeights.max().item<double>() < -1e4);
        var close = ImportanceWeighting.LogWeights(GaussianTestPosterior.MeanField(model, 1.0, 0), kde, x, 5, new Generator(5));
        Assert.True(close.PriorClamped!.sum().item<long>() < 15);

        // The unclamped KDE is a proper density: it integrates to 1 (a grid over the centres' span, bandwidths as given).
        using var wide = new KernelDensityPrior(new GaussianPrior(CPU), seed: 3, CPU, sampleCount: 500, bandwidths: [0.2, 0.4]);
        var axis = linspace(-7, 7, 281, dtype: float32);
        var grid = stack([axis.repeat_interleave(281), axis.repeat(281)], 1);
        double cell = (14.0 / 280) * (14.0 / 280);
        double mass = wide.NormalisedLogDensity(grid).to(float64).exp().sum().item<double>() * cell;
        Assert.Equal(1.0, mass, 3);
    }
}
