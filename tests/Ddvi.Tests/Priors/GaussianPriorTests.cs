using Ddvi.Priors;
using static TorchSharp.torch;

namespace Ddvi.Tests.Priors;

public class GaussianPriorTests
{
    readonly GaussianPrior _prior = new(CPU, std: 2.0);

    [Fact]
    public void SamplesHaveZeroMeanAndCovarianceS2IAndSectorClasses()
    {
        using var scope = NewDisposeScope();
        using var generator = new Generator(1);
        var (z, classes) = PriorAssert.SamplesAreBalanced(_prior, 40_000, generator);
        var z64 = z.to(float64);
        var mean = z64.mean([0L]);
        var centred = z64 - mean;
        var covariance = centred.t().matmul(centred) / (z.shape[0] - 1);
        // Standard errors: mean 2/200 = 0.01, variance 4·√(2/40000) ≈ 0.03.
        Assert.True(mean.abs().max().item<double>() < 0.04);
        Assert.True((covariance - 4 * eye(2, dtype: float64)).abs().max().item<double>() < 0.12);
        Assert.True(GaussianPrior.SectorOf(z64.select(1, 0), z64.select(1, 1)).eq(classes).all().item<bool>());
    }

    [Fact]
    public void SampleClassFillsOnlyItsSectorWithGaussianRadii()
    {
        using var scope = NewDisposeScope();
        using var generator = new Generator(2);
        for (int c = 0; c < 10; c++)
        {
            var z = _prior.SampleClass(c, 4000, generator).to(float64);
            var angle = atan2(z.select(1, 1), z.select(1, 0)).remainder(2 * Math.PI);
            Assert.True(angle.ge(2 * Math.PI * c / 10 - 1e-6).all().item<bool>() && angle.le(2 * Math.PI * (c + 1) / 10 + 1e-6).all().item<bool>());
            // |z|² of N(0, s²I) has mean 2s² = 8 (standard error 8/√4000 ≈ 0.13).
            Assert.Equal(8.0, z.square().sum(1).mean().item<double>(), 0.5);
        }
    }

    [Fact]
    public void SameSeedGivesSameSamples() => PriorAssert.SameSeedSameSamples(_prior);

    [Fact]
    public void LogDensityIsTheClosedFormAndIntegratesToOne()
    {
        using var scope = NewDisposeScope();
        var z = tensor(new[] { 0.0, 0.0, 1.0, -2.0 }, dtype: float64).reshape(2, 2);
        var logP = _prior.LogDensity(z).to(float64).data<double>().ToArray();
        Assert.Equal(-Math.Log(2 * Math.PI * 4), logP[0], 5);
        Assert.Equal(-Math.Log(2 * Math.PI * 4) - 5.0 / 8, logP[1], 5);
        Assert.Equal(1.0, PriorAssert.GridIntegral(_prior, 16, 0.05), 4);
        Assert.True(_prior.HasExactDensity);
    }

    [Fact]
    public void RejectsBadInput()
    {
        using var scope = NewDisposeScope();
        using var generator = new Generator(3);
        Assert.Throws<ArgumentOutOfRangeException>(() => new GaussianPrior(CPU, 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => new GaussianPrior(CPU, double.NaN));
        Assert.Throws<ArgumentOutOfRangeException>(() => _prior.SampleClass(10, 3, generator));
        Assert.Throws<ArgumentException>(() => _prior.LogDensity(zeros(3, 1)));
    }
}
