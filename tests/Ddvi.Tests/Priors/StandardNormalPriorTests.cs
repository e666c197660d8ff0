using static TorchSharp.torch;
// The tests' own 2-D Ddvi.Tests.StandardNormalPrior (quadrant classes) would hide the library's prior here.
using NormalPrior = Ddvi.Priors.StandardNormalPrior;

namespace Ddvi.Tests.Priors;

public class StandardNormalPriorTests
{
    [Theory]
    [InlineData(1)]
    [InlineData(3)]
    [InlineData(8)]
    public void LogDensityIsTheClosedForm(int d)
    {
        using var scope = NewDisposeScope();
        var prior = new NormalPrior(d, CPU);
        using var generator = new Generator(11);
        var z = randn([6, d], float64, generator: generator) * 2;
        var logP = prior.LogDensity(z);
        Assert.Equal(ScalarType.Float32, logP.dtype);
        Assert.Equal(new[] { 6L }, logP.shape);
        var rows = z.data<double>().ToArray();
        var values = logP.to(float64).data<double>().ToArray();
        for (int i = 0; i < 6; i++)
        {
            double squared = 0;
            for (int j = 0; j < d; j++) squared += rows[i * d + j] * rows[i * d + j];
            double expected = -0.5 * d * Math.Log(2 * Math.PI) - 0.5 * squared;
            Assert.Equal(expected, values[i], 1e-5 * Math.Max(1, Math.Abs(expected)));
        }
        Assert.Equal(-0.5 * d * Math.Log(2 * Math.PI), prior.LogDensity(zeros(1, d)).item<float>(), 5);
        Assert.True(prior.HasExactDensity);
        Assert.Equal("standard-normal", prior.Name);
        Assert.Equal(d, prior.Dimension);
    }

    [Fact]
    public void LogDensityIsDifferentiableWithGradientMinusZ()
    {
        using var scope = NewDisposeScope();
        var prior = new NormalPrior(5, CPU);
        var z = randn(4, 5).requires_grad_();
        prior.LogDensity(z).sum().backward();
        Assert.True(z.grad is not null && z.grad.allclose(-z.detach(), 1e-5, 1e-6));
    }

    [Theory]
    [InlineData(1)]
    [InlineData(3)]
    [InlineData(8)]
    public void SamplesHaveZeroMeanAndIdentityCovariance(int d)
    {
        using var scope = NewDisposeScope();
        var prior = new NormalPrior(d, CPU);
        using var generator = new Generator(3);
        var z = prior.Sample(40_000, generator);
        Assert.Equal(new[] { 40_000L, d }, z.shape);
        Assert.Equal(ScalarType.Float32, z.dtype);
        var z64 = z.to(float64);
        var mean = z64.mean([0L]);
        var centred = z64 - mean;
        var covariance = centred.t().matmul(centred) / (z.shape[0] - 1);
        // Standard errors: mean 1/200 = 0.005, variance √(2/40000) ≈ 0.007, covariance 0.005.
        Assert.True(mean.abs().max().item<double>() < 0.025);
        Assert.True((covariance - eye(d, dtype: float64)).abs().max().item<double>() < 0.04);
    }

    [Fact]
    public void SameSeedGivesSameSamples()
    {
        using var scope = NewDisposeScope();
        var prior = new NormalPrior(4, CPU);
        using var g1 = new Generator(5);
        using var g2 = new Generator(5);
        Assert.True(prior.Sample(100, g1).eq(prior.Sample(100, g2)).all().item<bool>());
        Assert.Equal(new[] { 0L, 4 }, prior.Sample(0, g1).shape);
    }

    [Fact]
    public void RejectsBadArgumentsNamingTheValue()
    {
        using var scope = NewDisposeScope();
        using var generator = new Generator(1);
        var error = Assert.Throws<ArgumentOutOfRangeException>(() => new NormalPrior(0, CPU));
        Assert.Contains("got 0", error.Message);
        var prior = new NormalPrior(3, CPU);
        var width = Assert.Throws<ArgumentException>(() => prior.LogDensity(zeros(2, 4)));
        Assert.Contains("[B, 3]", width.Message);
        Assert.Contains("[2, 4]", width.Message);
        Assert.Throws<ArgumentException>(() => prior.LogDensity(zeros(3)));
        Assert.Throws<ArgumentException>(() => prior.LogDensity(zeros([2, 3], int64)));
        Assert.Throws<ArgumentOutOfRangeException>(() => prior.Sample(-1, generator));
    }
}
