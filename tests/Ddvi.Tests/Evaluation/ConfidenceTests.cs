using Ddvi.Evaluation;

namespace Ddvi.Tests.Evaluation;

public class ConfidenceTests
{
    [Fact]
    public void QuantilesMatchClosedFormsForOneAndTwoDegreesOfFreedom()
    {
        // ν = 1 is Cauchy: t_p = tan(π(p − ½)); ν = 2: t_p = (2p − 1) / √(2p(1 − p)).
        foreach (double p in new[] { 0.6, 0.9, 0.975, 0.995 })
        {
            Assert.Equal(Math.Tan(Math.PI * (p - 0.5)), Confidence.StudentTQuantile(p, 1), 1e-9);
            Assert.Equal((2 * p - 1) / Math.Sqrt(2 * p * (1 - p)), Confidence.StudentTQuantile(p, 2), 1e-10);
        }
        Assert.Equal(12.706, Confidence.StudentTQuantile(0.975, 1), 3);
        Assert.Equal(4.303, Confidence.StudentTQuantile(0.975, 2), 3);
    }

    [Theory]
    [InlineData(4, 2.7764451)]
    [InlineData(10, 2.2281389)]
    [InlineData(30, 2.0422725)]
    [InlineData(1000, 1.9623391)]
    public void QuantilesMatchTables(double degreesOfFreedom, double expected)
    {
        Assert.Equal(expected, Confidence.StudentTQuantile(0.975, degreesOfFreedom), 1e-6);
        Assert.Equal(-expected, Confidence.StudentTQuantile(0.025, degreesOfFreedom), 1e-6);
    }

    [Theory]
    [InlineData(3, 0.9)]
    [InlineData(5, 0.975)]
    [InlineData(0.5, 0.8)]
    public void QuantileInvertsTheNumericallyIntegratedDensity(double nu, double p)
    {
        double t = Confidence.StudentTQuantile(p, nu);
        double logNormaliser = SpecialFunctions.LogGamma((nu + 1) / 2) - SpecialFunctions.LogGamma(nu / 2) - 0.5 * Math.Log(nu * Math.PI);
        double Density(double u) => Math.Exp(logNormaliser - (nu + 1) / 2 * Math.Log(1 + u * u / nu));
        // Simpson's rule on [0, t].
        const int intervals = 20_000;
        double step = t / intervals;
        double integral = Density(0) + Density(t);
        for (int i = 1; i < intervals; i++)
            integral += (i % 2 == 1 ? 4 : 2) * Density(i * step);
        Assert.Equal(p, 0.5 + integral * step / 3, 1e-9);
    }

    [Fact]
    public void LogGammaMatchesFactorials()
    {
        Assert.Equal(Math.Log(24), SpecialFunctions.LogGamma(5), 1e-12);
        Assert.Equal(0.5 * Math.Log(Math.PI), SpecialFunctions.LogGamma(0.5), 1e-12);
        Assert.Equal(0.0, SpecialFunctions.LogGamma(1), 1e-12);
    }

    [Fact]
    public void IntervalOfThreeValuesMatchesHandComputation()
    {
        // {1, 2, 6}: mean 3, s² = (4 + 1 + 9) / 2 = 7, half width = t_{0.975, 2} · √(7/3).
        var interval = Confidence.StudentT([1.0, 2.0, 6.0]);
        Assert.Equal(3.0, interval.Mean, 12);
        Assert.Equal(3, interval.Count);
        Assert.Equal(4.302652729749464 * Math.Sqrt(7.0 / 3.0), interval.HalfWidth95, 9);
        Assert.Equal(interval.Mean - interval.HalfWidth95, interval.Lower);
        Assert.Equal("3 ± 6.572", interval.ToString());
    }

    [Fact]
    public void OneValueHasNoHalfWidth()
    {
        var interval = Confidence.StudentT([0.25]);
        Assert.Equal(0.25, interval.Mean);
        Assert.True(double.IsNaN(interval.HalfWidth95));
        Assert.Equal(1, interval.Count);
    }

    [Fact]
    public void IdenticalValuesHaveZeroHalfWidth()
    {
        Assert.Equal(0.0, Confidence.StudentT([0.9, 0.9, 0.9, 0.9]).HalfWidth95);
    }

    [Fact]
    public void BadInputsGiveClearErrors()
    {
        Assert.Contains("at least one", Assert.Throws<ArgumentException>(() => Confidence.StudentT([])).Message);
        Assert.Contains("finite", Assert.Throws<ArgumentException>(() => Confidence.StudentT([1.0, double.NaN])).Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => Confidence.StudentTQuantile(1.0, 3));
        Assert.Throws<ArgumentOutOfRangeException>(() => Confidence.StudentTQuantile(0.0, 3));
        Assert.Throws<ArgumentOutOfRangeException>(() => Confidence.StudentTQuantile(0.9, 0));
        Assert.Equal(0.0, Confidence.StudentTQuantile(0.5, 7));
    }
}
