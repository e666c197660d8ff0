using Ddvi.Priors;
using TorchSharp;
using static TorchSharp.torch;

namespace Ddvi.Tests.Priors;

/// <summary>Checks shared by the prior tests: sample contracts, grid integrals, rank correlation.</summary>
internal static class PriorAssert
{
    /// <summary>Sample(n) gives float32 [n, 2] points and int64 [n] classes on the CPU, every class within 4σ of n/C.</summary>
    public static (Tensor Z, Tensor Classes) SamplesAreBalanced(ILabelledPrior prior, long n, Generator generator)
    {
        var (z, classes) = prior.SampleLabelled(n, generator);
        Assert.Equal(new[] { n, 2L }, z.shape);
        Assert.Equal(ScalarType.Float32, z.dtype);
        Assert.Equal(new[] { n }, classes.shape);
        Assert.Equal(ScalarType.Int64, classes.dtype);
        Assert.Equal(DeviceType.CPU, z.device_type);
        Assert.True(z.isfinite().all().item<bool>(), "samples must be finite");

        var counts = classes.bincount(null, prior.ClassCount).data<long>().ToArray();
        Assert.Equal(prior.ClassCount, counts.Length);
        double expected = (double)n / prior.ClassCount;
        double sigma = Math.Sqrt(expected * (1 - 1.0 / prior.ClassCount));
        Assert.All(counts, count => Assert.InRange(count, expected - 4 * sigma, expected + 4 * sigma));
        return (z, classes);
    }

    public static void SameSeedSameSamples(ILabelledPrior prior)
    {
        using var scope = NewDisposeScope();
        using var g1 = new Generator(7);
        using var g2 = new Generator(7);
        using var g3 = new Generator(8);
        var (a, ca) = prior.SampleLabelled(500, g1);
        var (b, cb) = prior.SampleLabelled(500, g2);
        var (c, _) = prior.SampleLabelled(500, g3);
        Assert.True(Identical(a, b) && Identical(ca, cb), "same seed must give the same samples");
        Assert.False(Identical(a, c), "different seeds should give different samples");

        var d = prior.SampleClass(3, 200, g1);
        var e = prior.SampleClass(3, 200, g2);
        Assert.True(Identical(d, e), "same seed must give the same class samples");
    }

    static bool Identical(Tensor a, Tensor b) => a.shape.SequenceEqual(b.shape) && a.eq(b).all().item<bool>();

    /// <summary>Σ exp(log p) h² over the midpoints of a grid of step h on [−half, half]², in float64.</summary>
    public static double GridIntegral(ILabelledPrior prior, double half, double step)
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        long count = (long)Math.Round(2 * half / step);
        var axis = (arange(count, dtype: float64) + 0.5) * step - half; // [m]
        double total = 0;
        const long rowsPerBlock = 64;
        for (long row = 0; row < count; row += rowsPerBlock)
        {
            using var block = NewDisposeScope();
            var ys = axis.narrow(0, row, Math.Min(rowsPerBlock, count - row));
            var grid = stack([axis.repeat(ys.shape[0]), ys.repeat_interleave(count)], 1).to(float32); // [rows·m, 2]
            total += prior.LogDensity(grid).to(float64).exp().sum().item<double>();
        }
        return total * step * step;
    }

    /// <summary>
    /// ∫ p over [−half, half]² for a density concentrated near a curve: the midpoint rule on a coarse grid of step
    /// <paramref name="coarseStep"/>, then, in every coarse cell whose centre has log p above <paramref name="keepAbove"/>,
    /// the midpoint rule on a <paramref name="refine"/>² sub-grid instead. Cells left coarse add their coarse value.
    /// </summary>
    public static double RefinedGridIntegral(ILabelledPrior prior, double half, double coarseStep, int refine, double keepAbove)
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        long count = (long)Math.Round(2 * half / coarseStep);
        var axis = (arange(count, dtype: float64) + 0.5) * coarseStep - half;
        var centres = stack([axis.repeat(count), axis.repeat_interleave(count)], 1); // [m², 2]
        var coarseLog = prior.LogDensity(centres).to(float64);
        var keep = coarseLog.gt(keepAbove);
        double coarsePart = coarseLog.masked_select(keep.logical_not()).exp().sum().item<double>() * coarseStep * coarseStep;

        double fineStep = coarseStep / refine;
        var sub = (arange(refine, dtype: float64) + 0.5) * fineStep - coarseStep / 2;
        var offsets = stack([sub.repeat(refine), sub.repeat_interleave(refine)], 1); // [R², 2]
        var kept = centres.index_select(0, keep.nonzero().squeeze(1)); // [K, 2]
        double finePart = 0;
        const long cellsPerBlock = 4096;
        for (long start = 0; start < kept.shape[0]; start += cellsPerBlock)
        {
            using var block = NewDisposeScope();
            var cells = kept.narrow(0, start, Math.Min(cellsPerBlock, kept.shape[0] - start));
            var points = (cells.unsqueeze(1) + offsets.unsqueeze(0)).reshape(-1, 2);
            finePart += prior.LogDensity(points).to(float64).exp().sum().item<double>();
        }
        return coarsePart + finePart * fineStep * fineStep;
    }

    /// <summary>Spearman rank correlation of two equal-length vectors.</summary>
    public static double RankCorrelation(Tensor a, Tensor b)
    {
        var ra = a.argsort().argsort().to(float64);
        var rb = b.argsort().argsort().to(float64);
        ra = ra - ra.mean();
        rb = rb - rb.mean();
        return ((ra * rb).sum() / (ra.square().sum() * rb.square().sum()).sqrt()).item<double>();
    }

    /// <summary>Wraps angles to (−π, π].</summary>
    public static Tensor WrapAngle(Tensor angle) => angle - 2 * Math.PI * (angle / (2 * Math.PI)).round();
}
