using Ddvi.Priors;
using static TorchSharp.torch;

namespace Ddvi.Tests.Priors;

public class GaussianMixturePriorTests
{
    readonly GaussianMixturePrior _prior = new(CPU);

    [Fact]
    public void EachClassHasItsComponentMeanAndRotatedCovariance()
    {
        using var scope = NewDisposeScope();
        using var generator = new Generator(1);
        PriorAssert.SamplesAreBalanced(_prior, 20_000, generator);
        for (int c = 0; c < 10; c++)
        {
            var z = _prior.SampleClass(c, 20_000, generator).to(float64);
            double phi = 2 * Math.PI * c / 10;
            var (cos, sin) = (Math.Cos(phi), Math.Sin(phi));
            var mean = z.mean([0L]).data<double>().ToArray();
            Assert.Equal(1.4 * cos, mean[0], 0.015);
            Assert.Equal(1.4 * sin, mean[1], 0.015);
            var rotation = tensor(new[] { cos, -sin, sin, cos }, dtype: float64).reshape(2, 2);
            var expected = rotation.matmul(diag(tensor(new[] { 0.25, 0.01 }, dtype: float64))).matmul(rotation.t());
            var centred = z - z.mean([0L]);
            var covariance = centred.t().matmul(centred) / (z.shape[0] - 1);
            Assert.True((covariance - expected).abs().max().item<double>() < 0.01,
                $"class {c}: covariance {string.Join(", ", covariance.data<double>().ToArray())}");
        }
    }

    [Fact]
    public void SameSeedGivesSameSamples() => PriorAssert.SameSeedSameSamples(_prior);

    [Fact]
    public void LogDensityMatchesAnExplicitMixtureAndIntegratesToOne()
    {
        using var scope = NewDisposeScope();
        double[][] points = [[1.4, 0.0], [0.3, -0.7], [-1.0, 1.2], [3.0, 3.0]];
        var z = tensor(points.SelectMany(p => p).ToArray(), dtype: float64).reshape(points.Length, 2);
        var actual = _prior.LogDensity(z).to(float64).data<double>().ToArray();
        for (int i = 0; i < points.Length; i++)
        {
            double density = 0;
            for (int c = 0; c < 10; c++)
            {
                // Σ_c = R diag(0.25, 0.01) Rᵀ, so Σ_c⁻¹ = R diag(4, 100) Rᵀ and det Σ_c = 0.0025.
                double phi = 2 * Math.PI * c / 10;
                double dx = points[i][0] - 1.4 * Math.Cos(phi), dy = points[i][1] - 1.4 * Math.Sin(phi);
                double a = Math.Cos(phi) * dx + Math.Sin(phi) * dy, b = -Math.Sin(phi) * dx + Math.Cos(phi) * dy;
                density += Math.Exp(-0.5 * (4 * a * a + 100 * b * b)) / (2 * Math.PI * Math.Sqrt(0.0025)) / 10;
            }
            Assert.Equal(Math.Log(density), actual[i], 4);
        }
        Assert.Equal(1.0, PriorAssert.GridIntegral(_prior, 5, 0.02), 4);
    }

    [Fact]
    public void RejectsBadInput()
    {
        using var scope = NewDisposeScope();
        using var generator = new Generator(2);
        Assert.Throws<ArgumentOutOfRangeException>(() => _prior.SampleClass(-1, 3, generator));
        Assert.Throws<ArgumentOutOfRangeException>(() => _prior.SampleLabelled(-5, generator));
        Assert.Throws<ArgumentException>(() => _prior.LogDensity(zeros(2, 2, 2)));
    }
}
