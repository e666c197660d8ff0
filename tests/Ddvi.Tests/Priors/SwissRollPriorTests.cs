using Ddvi.Priors;
using static TorchSharp.torch;

namespace Ddvi.Tests.Priors;

public class SwissRollPriorTests : IDisposable
{
    readonly SwissRollPrior _curve = new(0.0, seed: 11, CPU);
    readonly SwissRollPrior _noisy = new(0.1, seed: 11, CPU);

    public void Dispose()
    {
        _curve.Dispose();
        _noisy.Dispose();
    }

    [Fact]
    public void NoiselessSamplesLieOnTheRollWithinRadiusThree()
    {
        using var scope = NewDisposeScope();
        using var generator = new Generator(1);
        var (z, classes) = PriorAssert.SamplesAreBalanced(_curve, 20_000, generator);
        var z64 = z.to(float64);
        var r = z64.norm(1);
        Assert.True(r.le(3 + 1e-5).all().item<bool>());
        // angle = 4.5π√u = 1.5π·r: the point is r·(cos 1.5πr, sin 1.5πr).
        var onCurve = stack([r * (1.5 * Math.PI * r).cos(), r * (1.5 * Math.PI * r).sin()], 1);
        Assert.True((z64 - onCurve).abs().max().item<double>() < 1e-4);
        // u = (r/3)² is uniform on [c/10, (c+1)/10) for class c.
        var u = (r / 3).square();
        var c = classes.to(float64);
        Assert.True(u.ge(c / 10 - 1e-5).all().item<bool>() && u.le((c + 1) / 10 + 1e-5).all().item<bool>());
        Assert.Equal(0.5, u.mean().item<double>(), 0.01);
    }

    [Fact]
    public void SampleClassStaysInItsSegment()
    {
        using var scope = NewDisposeScope();
        using var generator = new Generator(2);
        for (int c = 0; c < 10; c++)
        {
            var u = (_curve.SampleClass(c, 1000, generator).to(float64).norm(1) / 3).square();
            Assert.True(u.ge(c / 10.0 - 1e-5).all().item<bool>() && u.le((c + 1) / 10.0 + 1e-5).all().item<bool>(), $"class {c}");
            Assert.Equal(c / 10.0 + 0.05, u.mean().item<double>(), 0.005);
        }
    }

    [Fact]
    public void NoiseIsIsotropicWithTheGivenStd()
    {
        using var scope = NewDisposeScope();
        // SampleClass draws the position first and the noise after it, so the same seed gives the same curve points.
        using var g1 = new Generator(3);
        using var g2 = new Generator(3);
        var noise = (_noisy.SampleClass(4, 20_000, g1) - _curve.SampleClass(4, 20_000, g2)).to(float64);
        var centred = noise - noise.mean([0L]);
        var covariance = centred.t().matmul(centred) / 19_999;
        Assert.True(noise.mean([0L]).abs().max().item<double>() < 0.003);
        Assert.True((covariance - 0.01 * eye(2, dtype: float64)).abs().max().item<double>() < 0.0005);
    }

    [Fact]
    public void SameSeedGivesSameSamples() => PriorAssert.SameSeedSameSamples(_noisy);

    [Fact]
    public void KernelDensityIsHigherOnTheRollThanBetweenItsTurns()
    {
        using var scope = NewDisposeScope();
        using var generator = new Generator(4);
        foreach (var prior in new[] { _curve, _noisy })
        {
            var (z, _) = prior.SampleLabelled(300, generator);
            // Turns are 4/3 apart radially (angle = 1.5π r); moving 0.6 outwards lands between two turns.
            var radius = z.norm(1, keepdim: true);
            var between = z * (1 + 0.6 / radius);
            var onRoll = prior.LogDensity(z);
            var offRoll = prior.LogDensity(between);
            double fraction = onRoll.gt(offRoll + 2).to(float64).mean().item<double>();
            Assert.True(fraction > 0.95, $"noise {prior.Noise}: only {fraction} of samples beat their off-roll shift");
        }
    }

    [Fact]
    public void DensityIsAKdeThatRecordsItsBandwidthsAndSeed()
    {
        using var scope = NewDisposeScope();
        Assert.False(_curve.HasExactDensity);
        Assert.Equal(GaussianKernelDensity.DefaultBandwidths, _curve.Bandwidths);
        Assert.Contains("0.005, 0.008, 0.01, 0.03, 0.05", _curve.DensityDescription);
        Assert.Contains("10000 points", _curve.DensityDescription);
        Assert.Contains("seed 11", _curve.DensityDescription);

        var z = tensor(new float[] { 0.5f, 0.5f, -1f, 2f, 0f, 0f }).reshape(3, 2);
        using var same = new SwissRollPrior(0.0, seed: 11, CPU);
        using var other = new SwissRollPrior(0.0, seed: 12, CPU);
        Assert.True(_curve.LogDensity(z).eq(same.LogDensity(z)).all().item<bool>(), "same seed must give the same KDE");
        Assert.False(_curve.LogDensity(z).eq(other.LogDensity(z)).all().item<bool>());

        var query = z.clone().requires_grad_();
        _curve.LogDensity(query).sum().backward();
        Assert.True(query.grad!.isfinite().all().item<bool>());
    }

    [Fact]
    public void RejectsBadInput()
    {
        using var scope = NewDisposeScope();
        using var generator = new Generator(5);
        Assert.Throws<ArgumentOutOfRangeException>(() => new SwissRollPrior(-0.1, 0, CPU));
        Assert.Throws<ArgumentOutOfRangeException>(() => new SwissRollPrior(double.PositiveInfinity, 0, CPU));
        Assert.Throws<ArgumentOutOfRangeException>(() => _curve.SampleClass(10, 3, generator));
        Assert.Throws<ArgumentException>(() => _curve.LogDensity(zeros(5, 3)));
    }
}
