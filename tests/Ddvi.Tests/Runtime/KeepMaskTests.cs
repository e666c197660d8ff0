using Ddvi.FastPaths;
using Ddvi.Runtime;
using static TorchSharp.torch;

namespace Ddvi.Tests.Runtime;

public class KeepMaskTests
{
    [Theory]
    [InlineData(0.8)]
    [InlineData(0.6)]
    [InlineData(0.5)]
    public void KeepsAFractionOneMinusPScaledByItsInverse(double keep)
    {
        using var scope = NewDisposeScope();
        var mask = empty(400, 1000);
        KeepMask.Fill(mask, keep, seed: 12345);
        double keptFraction = mask.ne(0).to(ScalarType.Float64).mean().item<double>();
        // 400,000 Bernoulli draws: standard error ≤ 0.0008.
        Assert.InRange(keptFraction, keep - 0.004, keep + 0.004);
        var kept = mask.masked_select(mask.ne(0));
        Assert.Equal((float)(1 / keep), kept.min().item<float>());
        Assert.Equal((float)(1 / keep), kept.max().item<float>());
    }

    [Fact]
    public void NeighbouringElementsAndRowsAreUncorrelated()
    {
        using var scope = NewDisposeScope();
        var mask = empty(1000, 1000);
        KeepMask.Fill(mask, 0.5, seed: 7);
        var bits = mask.ne(0).to(ScalarType.Float64).flatten();
        var centred = bits - bits.mean();
        double variance = centred.square().mean().item<double>();
        // Lags 1 (the two halves of one draw), 4 and 8 (neighbouring vector lanes) and 1000 (the next row).
        foreach (long lag in new long[] { 1, 4, 8, 1000 })
        {
            long n = bits.shape[0] - lag;
            double correlation = (centred[..(int)n] * centred[(int)lag..]).mean().item<double>() / variance;
            Assert.True(Math.Abs(correlation) < 0.005, $"lag {lag}: correlation {correlation:F4} (standard error 0.001)");
        }
    }

    [Fact]
    public void EachElementDependsOnlyOnTheSeedAndItsIndexNotOnSizeOrThreads()
    {
        using var scope = NewDisposeScope();
        int threads = get_num_threads();
        try
        {
            set_num_threads(1);
            var oneThread = empty(3, 100_003);
            KeepMask.Fill(oneThread, 0.7, seed: 99);
            set_num_threads(2);
            var twoThreads = empty(3, 100_003);
            KeepMask.Fill(twoThreads, 0.7, seed: 99);
            Assert.True(oneThread.equal(twoThreads).all().item<bool>());

            // An odd size ends on the scalar path: its elements must equal those of a longer, vector-filled mask.
            var shorter = empty(1_001);
            KeepMask.Fill(shorter, 0.7, seed: 99);
            Assert.True(shorter.equal(oneThread.flatten()[..1_001]).all().item<bool>());

            var otherSeed = empty(3, 100_003);
            KeepMask.Fill(otherSeed, 0.7, seed: 100);
            Assert.False(otherSeed.equal(oneThread).all().item<bool>());
        }
        finally
        {
            set_num_threads(threads);
        }
    }

    [Fact]
    public void CreateDrawsItsSeedFromTheGlobalGeneratorSoManualSeedFixesIt()
    {
        using var scope = NewDisposeScope();
        var like = zeros(64, 33);
        manual_seed(21);
        var first = KeepMask.Create(like, 0.6);
        var second = KeepMask.Create(like, 0.6);
        manual_seed(21);
        var again = KeepMask.Create(like, 0.6);
        Assert.Equal(like.shape, first.shape);
        Assert.True(first.equal(again).all().item<bool>());
        Assert.False(first.equal(second).all().item<bool>());
    }

    [Fact]
    public void KeepingEverythingGivesOnes()
    {
        using var scope = NewDisposeScope();
        var mask = KeepMask.Create(zeros(10, 10), 1.0);
        Assert.True(mask.eq(1).all().item<bool>());
    }

    [Theory]
    [InlineData(0.0)]
    [InlineData(-0.5)]
    [InlineData(1.5)]
    [InlineData(double.NaN)]
    public void KeepProbabilitiesOutsideZeroToOneAreRejected(double keep)
    {
        using var like = zeros(2, 2);
        Assert.Contains("(0, 1]", Assert.Throws<ArgumentOutOfRangeException>(() => KeepMask.Create(like, keep)).Message);
    }

    [Fact]
    public void OtherTypesAndNonContiguousTensorsAreRejected()
    {
        using var scope = NewDisposeScope();
        Assert.False(KeepMask.Supports(zeros(2, 2, dtype: ScalarType.Float64)));
        Assert.Contains("float32 CPU", Assert.Throws<ArgumentException>(() => KeepMask.Create(zeros(2, 2, dtype: ScalarType.Float64), 0.5)).Message);
        Assert.Contains("contiguous", Assert.Throws<ArgumentException>(() => KeepMask.Fill(zeros(4, 6).t(), 0.5, 1)).Message);
    }
}
