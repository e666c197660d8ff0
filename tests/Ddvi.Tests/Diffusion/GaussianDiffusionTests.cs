using Ddvi.Diffusion;
using TorchSharp;
using static TorchSharp.torch;

namespace Ddvi.Tests.Diffusion;

public class GaussianDiffusionTests
{
    const int Steps = 20;

    static NoiseSchedule Schedule(NoiseScheduleKind kind = NoiseScheduleKind.Linear) => new(kind, Steps, ScalarType.Float64);

    static Generator Seeded(long seed) => new Generator((ulong)seed, CPU);

    static void AssertAllClose(Tensor expected, Tensor actual, double tolerance)
    {
        Assert.Equal(expected.shape, actual.shape);
        double worst = (expected - actual).abs().max().item<double>();
        Assert.True(worst <= tolerance, $"max |difference| {worst:G3} exceeds {tolerance:G3}");
    }

    // One row per timestep, so every identity is checked at every t (and rows sit at different t).
    static (Tensor Z0, Tensor T, Tensor Eps) Batch(Generator generator)
    {
        var t = arange(1, Steps + 1, dtype: ScalarType.Int64);
        var z0 = randn(Steps, 2, dtype: ScalarType.Float64, generator: generator) * 2;
        var eps = randn(Steps, 2, dtype: ScalarType.Float64, generator: generator);
        return (z0, t, eps);
    }

    [Theory]
    [InlineData(NoiseScheduleKind.Linear)]
    [InlineData(NoiseScheduleKind.Cosine)]
    public void NoiseThenPredictZ0RecoversTheCleanPoint(NoiseScheduleKind kind)
    {
        using var schedule = Schedule(kind);
        using var scope = NewDisposeScope();
        var (z0, t, eps) = Batch(Seeded(1));
        var yt = GaussianDiffusion.Noise(schedule, z0, t, eps);
        var sqrtAlphaBar = schedule.SqrtAlphaBar.index_select(0, t).unsqueeze(1);
        AssertAllClose(sqrtAlphaBar * z0 + (1 - sqrtAlphaBar.square()).sqrt() * eps, yt, 1e-12);
        AssertAllClose(z0, GaussianDiffusion.PredictZ0(schedule, yt, t, eps), 1e-10);
    }

    [Fact]
    public void NoisedSamplesHaveTheForwardMarginalMoments()
    {
        using var schedule = Schedule();
        using var scope = NewDisposeScope();
        const int draws = 100_000;
        const long step = 12;
        var z = tensor(new[] { 1.5, -2.0 }, dtype: ScalarType.Float64);
        var z0 = z.expand(draws, 2);
        var t = full(draws, step, dtype: ScalarType.Int64);
        var eps = randn(draws, 2, dtype: ScalarType.Float64, generator: Seeded(2));
        var yt = GaussianDiffusion.Noise(schedule, z0, t, eps);

        double alphaBar = schedule.AlphaBar[step].item<double>();
        var mean = yt.mean([0]);
        var variance = yt.var(0);
        // Standard errors: √((1 − ᾱ)/N) ≈ 1.4e-3 for the mean, (1 − ᾱ)√(2/N) ≈ 4.6e-4 for the variance.
        AssertAllClose(Math.Sqrt(alphaBar) * z, mean, 7e-3);
        AssertAllClose(full(2, 1 - alphaBar, dtype: ScalarType.Float64), variance, 3e-3);
    }

    [Fact]
    public void ReverseStepIsTheDdimUpdateAndEndsAtThePredictedCleanPoint()
    {
        using var schedule = Schedule();
        using var scope = NewDisposeScope();
        var (z0, t, eps) = Batch(Seeded(3));
        var yt = GaussianDiffusion.Noise(schedule, z0, t, eps);
        var previous = GaussianDiffusion.ReverseStep(schedule, yt, t, eps);
        // With the true noise the DDIM step lands on the forward path one step earlier: √ᾱ_{t−1} z0 + √(1 − ᾱ_{t−1}) ε.
        var alphaBarPrev = schedule.AlphaBarPrev.index_select(0, t).unsqueeze(1);
        AssertAllClose(alphaBarPrev.sqrt() * z0 + (1 - alphaBarPrev).sqrt() * eps, previous, 1e-10);
        // ᾱ_0 := 1: the step from t = 1 returns ŷ_0 exactly, whatever ε̂ is.
        var one = ones(Steps, dtype: ScalarType.Int64);
        var epsHat = randn(Steps, 2, dtype: ScalarType.Float64, generator: Seeded(4));
        AssertAllClose(GaussianDiffusion.PredictZ0(schedule, yt, one, epsHat), GaussianDiffusion.ReverseStep(schedule, yt, one, epsHat), 0);
    }

    [Fact]
    public void ForwardPosteriorMeanOfANoisedPointHasItsClosedForm()
    {
        using var schedule = Schedule();
        using var scope = NewDisposeScope();
        var (z0, t, eps) = Batch(Seeded(5));
        var yt = GaussianDiffusion.Noise(schedule, z0, t, eps);
        var mean = GaussianDiffusion.ForwardPosteriorMean(schedule, z0, yt, t);
        // μ̃_t = √ᾱ_{t−1} z0 + √α_t (1 − ᾱ_{t−1})/√(1 − ᾱ_t) ε.
        Tensor Column(Tensor table) => table.index_select(0, t).unsqueeze(1);
        var expected = Column(schedule.AlphaBarPrev).sqrt() * z0
            + Column(schedule.Alpha).sqrt() * (1 - Column(schedule.AlphaBarPrev)) / (1 - Column(schedule.AlphaBar)).sqrt() * eps;
        AssertAllClose(expected, mean, 1e-10);
        // At t = 1 the posterior collapses on y_0: mean z0, variance 0.
        AssertAllClose(z0[0], mean[0], 1e-12);
        var variance = GaussianDiffusion.ForwardPosteriorVariance(schedule, t);
        Assert.Equal(new long[] { Steps, 1 }, variance.shape);
        Assert.Equal(0.0, variance[0, 0].item<double>());
        AssertAllClose(Column(schedule.PosteriorVariance), variance, 0);
    }

    [Fact]
    public void ReverseMeanWithTheOracleNoiseIsTheForwardPosteriorMean()
    {
        using var schedule = Schedule();
        using var scope = NewDisposeScope();
        var (z0, t, eps) = Batch(Seeded(6));
        var yt = GaussianDiffusion.Noise(schedule, z0, t, eps) + 0.3; // an arbitrary y_t, not on z0's path
        var sqrtAlphaBar = schedule.SqrtAlphaBar.index_select(0, t).unsqueeze(1);
        var oracle = (yt - sqrtAlphaBar * z0) / schedule.SqrtOneMinusAlphaBar.index_select(0, t).unsqueeze(1);
        AssertAllClose(GaussianDiffusion.ForwardPosteriorMean(schedule, z0, yt, t), GaussianDiffusion.ReverseMean(schedule, yt, t, oracle), 1e-10);
    }

    [Fact]
    public void NoisingKeepsTheGraph()
    {
        using var schedule = Schedule();
        using var scope = NewDisposeScope();
        var (z0, t, eps) = Batch(Seeded(7));
        z0.requires_grad_();
        GaussianDiffusion.Noise(schedule, z0, t, eps).sum().backward();
        AssertAllClose(schedule.SqrtAlphaBar.index_select(0, t).unsqueeze(1).expand(Steps, 2), z0.grad!, 1e-15);
    }

    [Fact]
    public void HuberIsHalfSquaredErrorForSmallErrorsAndShiftedAbsoluteForLarge()
    {
        using var scope = NewDisposeScope();
        var eps = randn(64, 2, dtype: ScalarType.Float64, generator: Seeded(8));
        var small = (rand(64, 2, dtype: ScalarType.Float64, generator: Seeded(9)) - 0.5) * 1.8; // |e| < 0.9
        Assert.Equal(GaussianDiffusion.NoisePredictionLoss(eps, eps + small, NoiseLossKind.L2).item<double>() / 2,
            GaussianDiffusion.NoisePredictionLoss(eps, eps + small, NoiseLossKind.Huber).item<double>(), 14);
        Assert.Equal(small.square().mean().item<double>(), GaussianDiffusion.NoisePredictionLoss(eps, eps + small, NoiseLossKind.L2).item<double>(), 14);

        var large = (rand(64, 2, dtype: ScalarType.Float64, generator: Seeded(10)) + 1.1) * small.sign(); // |e| > 1.1
        Assert.Equal((large.abs() - 0.5).mean().item<double>(),
            GaussianDiffusion.NoisePredictionLoss(eps, eps + large, NoiseLossKind.Huber).item<double>(), 14);

        var mixed = tensor(new[] { 0.5, -3.0 }, dtype: ScalarType.Float64).reshape(1, 2);
        Assert.Equal((0.125 + 2.5) / 2, GaussianDiffusion.NoisePredictionLoss(zeros_like(mixed), mixed).item<double>(), 15);
    }

    [Fact]
    public void LossRejectsMismatchedShapesAndUnknownKinds()
    {
        using var scope = NewDisposeScope();
        var error = Assert.Throws<ArgumentException>(() => GaussianDiffusion.NoisePredictionLoss(zeros(4, 2), zeros(4, 3)));
        Assert.Contains("[4, 3]", error.Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => GaussianDiffusion.NoisePredictionLoss(zeros(4, 2), zeros(4, 2), (NoiseLossKind)9));
    }

    [Fact]
    public void SampledTimestepsCoverOneToTUniformlyAndRepeatWithTheSeed()
    {
        using var scope = NewDisposeScope();
        var t = GaussianDiffusion.SampleTimesteps(40_000, 4, Seeded(11));
        Assert.Equal(ScalarType.Int64, t.dtype);
        Assert.Equal(new long[] { 40_000 }, t.shape);
        var counts = bincount(t).data<long>().ToArray();
        Assert.Equal(5, counts.Length);
        Assert.Equal(0, counts[0]);
        foreach (long count in counts.Skip(1))
            Assert.InRange(count, 9_600, 10_400); // 10,000 ± 4.6 standard deviations
        Assert.True(t.equal(GaussianDiffusion.SampleTimesteps(40_000, 4, Seeded(11))).all().item<bool>());
        Assert.False(t.equal(GaussianDiffusion.SampleTimesteps(40_000, 4, Seeded(12))).all().item<bool>());
    }

    [Fact]
    public void SampleTimestepsRejectsBadArguments()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => GaussianDiffusion.SampleTimesteps(0, 4, Seeded(1)));
        Assert.Throws<ArgumentOutOfRangeException>(() => GaussianDiffusion.SampleTimesteps(8, 0, Seeded(1)));
        Assert.Throws<ArgumentNullException>(() => GaussianDiffusion.SampleTimesteps(8, 4, null!));
    }

    [Fact]
    public void FunctionsRejectBadShapesAndTimesteps()
    {
        using var schedule = Schedule();
        using var scope = NewDisposeScope();
        var z0 = zeros(3, 2, dtype: ScalarType.Float64);
        var t = tensor(new long[] { 1, 2, 3 });

        var outOfRange = Assert.Throws<ArgumentOutOfRangeException>(() => GaussianDiffusion.Noise(schedule, z0, tensor(new long[] { 1, 2, 21 }), z0));
        Assert.Contains("GaussianDiffusion.Noise", outOfRange.Message);
        Assert.Contains("1..20", outOfRange.Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => GaussianDiffusion.ReverseStep(schedule, z0, tensor(new long[] { 0, 1, 1 }), z0));
        Assert.Throws<ArgumentOutOfRangeException>(() => GaussianDiffusion.ForwardPosteriorVariance(schedule, tensor(new long[] { 21 })));

        var shortT = Assert.Throws<ArgumentException>(() => GaussianDiffusion.ReverseMean(schedule, z0, tensor(new long[] { 1, 2 }), z0));
        Assert.Contains("one timestep per row", shortT.Message);
        var mismatch = Assert.Throws<ArgumentException>(() => GaussianDiffusion.ForwardPosteriorMean(schedule, z0, zeros(3, 3, dtype: ScalarType.Float64), t));
        Assert.Equal("yt", mismatch.ParamName);
        var vector = Assert.Throws<ArgumentException>(() => GaussianDiffusion.PredictZ0(schedule, zeros(3, dtype: ScalarType.Float64), t, zeros(3, dtype: ScalarType.Float64)));
        Assert.Contains("[B, d]", vector.Message);
        Assert.Throws<ArgumentException>(() => GaussianDiffusion.Noise(schedule, z0, t.to(ScalarType.Int32), z0));
    }
}
