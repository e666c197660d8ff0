using Ddvi.Models;
using static TorchSharp.torch;

namespace Ddvi.Tests.Models;

public class UniformMaskDropoutTests
{
    [Fact]
    public void TrainingZeroesAFractionPAndScalesTheRestByOneOverOneMinusP()
    {
        manual_seed(3);
        using var dropout = new UniformMaskDropout(0.4);
        dropout.train();
        using var scope = NewDisposeScope();
        var x = ones(200, 1000);
        var y = dropout.call(x);
        double zeroFraction = y.eq(0).to(ScalarType.Float64).mean().item<double>();
        // 200,000 Bernoulli(0.4) draws: standard error 0.0011.
        Assert.InRange(zeroFraction, 0.4 - 0.005, 0.4 + 0.005);
        var kept = y.masked_select(y.ne(0));
        Assert.Equal(1 / 0.6, kept.min().item<float>(), 5);
        Assert.Equal(1 / 0.6, kept.max().item<float>(), 5);
        Assert.InRange(y.mean().item<float>(), 0.99f, 1.01f); // inverted dropout keeps the mean
    }

    [Fact]
    public void EvaluationAndZeroProbabilityLeaveTheInputAlone()
    {
        using var scope = NewDisposeScope();
        var x = randn(5, 7);
        using var dropout = new UniformMaskDropout(0.5);
        dropout.eval();
        Assert.True(dropout.call(x).equal(x).all().item<bool>());
        using var none = new UniformMaskDropout(0);
        none.train();
        Assert.True(none.call(x).equal(x).all().item<bool>());
    }

    [Fact]
    public void GradientFlowsThroughTheKeptElementsOnly()
    {
        manual_seed(5);
        using var dropout = new UniformMaskDropout(0.3);
        dropout.train();
        using var scope = NewDisposeScope();
        var x = ones(50, 40).requires_grad_();
        var y = dropout.call(x);
        y.sum().backward();
        Assert.True(x.grad!.equal(y.detach()).all().item<bool>()); // ∂Σy/∂x = mask / (1 − p) = y for x = 1
    }

    [Theory]
    [InlineData(-0.1)]
    [InlineData(1.0)]
    [InlineData(double.NaN)]
    public void ProbabilitiesOutsideZeroToOneAreRejected(double p)
        => Assert.Contains("[0, 1)", Assert.Throws<ArgumentOutOfRangeException>(() => new UniformMaskDropout(p)).Message);
}
