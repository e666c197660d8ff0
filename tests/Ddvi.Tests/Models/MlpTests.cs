using Ddvi.Models;
using static TorchSharp.torch;

namespace Ddvi.Tests.Models;

public class MlpTests
{
    [Theory]
    [InlineData(Mlp.PaperLeakySlope)]
    [InlineData(0.0)]
    [InlineData(0.05)]
    public void HiddenLayersApplyTheLeakyReluWithItsSlope(double slope)
    {
        manual_seed(11);
        using var mlp = new Mlp(6, [9], [4], dropout: 0.3, leakySlope: slope);
        mlp.eval();
        using var scope = NewDisposeScope();
        var x = randn(32, 6);
        var expected = ByHand(mlp, x, slope);
        Assert.True(mlp.call(x).allclose(expected, rtol: 1e-5, atol: 1e-6));
    }

    [Fact]
    public void TheSlopeOutlivesGarbageCollections()
    {
        // The slope is one libtorch Scalar held by the module; collections and finalizers between calls leave it valid.
        manual_seed(12);
        using var mlp = new Mlp(5, [8, 8], [3]);
        mlp.eval();
        using var scope = NewDisposeScope();
        var x = randn(16, 5);
        var before = mlp.call(x);
        for (int i = 0; i < 3; i++)
        {
            GC.Collect();
            GC.WaitForPendingFinalizers();
        }
        Assert.True(mlp.call(x).equal(before).all().item<bool>());
        Assert.True(before.allclose(ByHand(mlp, x, Mlp.PaperLeakySlope), rtol: 1e-5, atol: 1e-6));
    }

    // The network by hand: each hidden layer Linear, then max(h, 0) + slope·min(h, 0); then the head.
    private static Tensor ByHand(Mlp mlp, Tensor x, double slope)
    {
        var parameters = mlp.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        var h = x;
        for (int layer = 0; layer < mlp.HiddenWidths.Count; layer++)
        {
            h = nn.functional.linear(h, parameters[$"hidden.{layer}.weight"], parameters[$"hidden.{layer}.bias"]);
            h = h.clamp_min(0) + slope * h.clamp_max(0);
        }
        return nn.functional.linear(h, parameters["heads.0.weight"], parameters["heads.0.bias"]);
    }

    [Theory]
    [InlineData(-0.1)]
    [InlineData(double.NaN)]
    [InlineData(double.PositiveInfinity)]
    public void ASlopeBelowZeroOrNotFiniteIsRefused(double slope)
    {
        var error = Assert.Throws<ArgumentOutOfRangeException>(() => new Mlp(4, [5], [2], leakySlope: slope));
        Assert.Contains("LeakyReLU slope", error.Message);
    }
}
