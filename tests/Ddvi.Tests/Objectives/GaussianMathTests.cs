using Ddvi.Objectives;
using static TorchSharp.torch;

namespace Ddvi.Tests.Objectives;

public class GaussianMathTests
{
    [Fact]
    public void KlOfStandardNormalToItselfIsZero()
    {
        using var scope = NewDisposeScope();
        var kl = GaussianMath.KlToStandardNormal(zeros(3, 2, dtype: float64), ones(3, 2, dtype: float64));
        Assert.All(kl.data<double>().ToArray(), v => Assert.Equal(0, v, 12));
    }

    [Fact]
    public void KlMatchesClosedFormAndMonteCarlo()
    {
        using var scope = NewDisposeScope();
        var mean = tensor(new[] { 0.5, -1.0 }, dtype: float64).view(1, 2);
        var variance = tensor(new[] { 0.25, 2.0 }, dtype: float64).view(1, 2);
        double closed = 0.5 * ((0.25 + 0.25 - 1 - Math.Log(0.25)) + (2.0 + 1.0 - 1 - Math.Log(2.0)));
        Assert.Equal(closed, GaussianMath.KlToStandardNormal(mean, variance).item<double>(), 12);

        using var generator = new Generator(3);
        var z = mean + variance.sqrt() * randn([400_000, 2], dtype: float64, generator: generator);
        var logQ = GaussianMath.LogDensity(z, mean, variance);
        var logP = GaussianMath.LogDensity(z, zeros_like(mean), ones_like(variance));
        double monteCarlo = (logQ - logP).mean().item<double>();
        Assert.Equal(closed, monteCarlo, 2);
    }

    [Fact]
    public void KlFromLogVarianceEqualsTheVarianceFormAndStaysFiniteWhereTheVarianceUnderflows()
    {
        using var scope = NewDisposeScope();
        var mean = tensor(new[] { 0.5, -1.0, 2.0 }, dtype: float64).view(1, 3);
        var logVariance = tensor(new[] { Math.Log(0.25), Math.Log(2.0), -3.0 }, dtype: float64).view(1, 3);
        Assert.Equal(GaussianMath.KlToStandardNormal(mean, logVariance.exp()).item<double>(),
            GaussianMath.KlToStandardNormalFromLogVariance(mean, logVariance).item<double>(), 12);

        // float32, log σ² = −109 (what a clustering encoder reached): exp underflows to 0 and the variance form is +∞.
        var m = tensor(new float[] { 0.5f, 0f }).view(1, 2);
        var lv = tensor(new float[] { -109f, 0f }).view(1, 2).requires_grad_(true);
        Assert.True(float.IsPositiveInfinity(GaussianMath.KlToStandardNormal(m, lv.exp()).item<float>()));
        var kl = GaussianMath.KlToStandardNormalFromLogVariance(m, lv);
        Assert.Equal(0.5 * (0.25 - 1 + 109), kl.item<float>(), 3);                       // the second coordinate adds 0
        kl.sum().backward();
        // ∂KL/∂log σ² = ½(σ² − 1): −½ pushes the log variance back up; 0 at σ² = 1.
        Assert.Equal([-0.5f, 0f], lv.grad!.data<float>().ToArray());
    }

    [Fact]
    public void LogDensityMatchesHandComputation()
    {
        using var scope = NewDisposeScope();
        var z = tensor(new[] { 1.0, 2.0 }, dtype: float64).view(1, 2);
        var mean = tensor(new[] { 0.0, 1.0 }, dtype: float64).view(1, 2);
        var variance = tensor(new[] { 4.0, 0.5 }, dtype: float64).view(1, 2);
        double expected = -0.5 * (1.0 / 4 + Math.Log(4) + Math.Log(2 * Math.PI)) - 0.5 * (1.0 / 0.5 + Math.Log(0.5) + Math.Log(2 * Math.PI));
        Assert.Equal(expected, GaussianMath.LogDensity(z, mean, variance).item<double>(), 12);
    }

    [Fact]
    public void BernoulliLogLikelihoodMatchesHandComputation()
    {
        using var scope = NewDisposeScope();
        var logits = tensor(new[] { 0.0, 2.0, -1.0 }, dtype: float64).view(1, 3);
        var x = tensor(new[] { 1.0, 0.25, 0.0 }, dtype: float64).view(1, 3);
        double p1 = 0.5, p2 = 1 / (1 + Math.Exp(-2)), p3 = 1 / (1 + Math.Exp(1));
        double expected = Math.Log(p1) + (0.25 * Math.Log(p2) + 0.75 * Math.Log(1 - p2)) + Math.Log(1 - p3);
        Assert.Equal(expected, GaussianMath.BernoulliLogLikelihood(logits, x).item<double>(), 12);
    }

    [Fact]
    public void ReparameterisedLogDensityEqualsTheDirectFormAndStaysFinite()
    {
        using var scope = NewDisposeScope();
        using var generator = new Generator(4);
        var mean = randn([6, 2], dtype: float64, generator: generator);
        var logVariance = randn([6, 2], dtype: float64, generator: generator);
        var epsilon = randn([6, 2], dtype: float64, generator: generator);
        var z = mean + (0.5 * logVariance).exp() * epsilon;
        Assert.True(GaussianMath.LogDensityOfReparameterised(epsilon, logVariance)
            .allclose(GaussianMath.LogDensity(z, mean, logVariance.exp()), rtol: 1e-10, atol: 1e-10));
        // σ² = e^-200 underflows in float32; the reparameterised form still gives a finite value.
        var tiny = full([1, 2], -200.0f);
        Assert.True(GaussianMath.LogDensityOfReparameterised(zeros(1, 2), tiny).isfinite().all().item<bool>());
    }
}
