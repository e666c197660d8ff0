using TorchSharp;
using Ddvi.Flows;
using static TorchSharp.torch;

namespace Ddvi.Tests.Flows;

public class IafTests
{
    private static double LogAbsDet(Tensor jacobian)
    {
        var (sign, logAbs) = linalg.slogdet(jacobian);
        Assert.NotEqual(0.0, sign.item<double>());
        return logAbs.item<double>();
    }

    [Theory]
    [InlineData(new[] { 0, 1 })]
    [InlineData(new[] { 1, 0 })]
    [InlineData(new[] { 2, 0, 3, 1 })]
    public void LayerLogDetEqualsTheLogAbsDeterminantOfItsJacobian(int[] order)
    {
        using var scope = NewDisposeScope();
        TorchSharp.torch.manual_seed(11);
        int d = order.Length;
        using var layer = new IafLayer(d, contextDim: 3, order, hidden: 12);
        layer.to(float64);
        using var generator = new Generator(12);
        var context = randn([1, 3], dtype: float64, generator: generator);
        for (int sample = 0; sample < 3; sample++)
        {
            var z = 2 * randn([d], dtype: float64, generator: generator);
            var jacobian = MadeTests.Jacobian(row => layer.call(row, context).Z, z);
            var (_, logDet) = layer.call(z.unsqueeze(0), context);
            Assert.Equal(LogAbsDet(jacobian), logDet.item<double>(), 10);
        }
    }

    [Fact]
    public void LayerIsTheGatedUpdateOfItsMade()
    {
        using var scope = NewDisposeScope();
        using var layer = new IafLayer(3, 2, [1, 2, 0], hidden: 8);
        var z = randn(6, 3);
        var h = randn(6, 2);
        var (s, m) = layer.Made.call(z, h);
        var sigma = s.sigmoid();
        var (next, logDet) = layer.call(z, h);
        Assert.True(next.allclose(sigma * z + (1 - sigma) * m, rtol: 1e-5, atol: 1e-6));
        Assert.True(logDet.allclose(sigma.log().sum(-1), rtol: 1e-5, atol: 1e-5));
    }

    [Fact]
    public void LogDetStaysFiniteWhereTheGateUnderflows()
    {
        using var scope = NewDisposeScope();
        using var layer = new IafLayer(2, 2, [0, 1], hidden: 4);
        var outputBias = layer.named_parameters().Single(p => p.name == "made.layers.3.bias").parameter;
        using (no_grad()) outputBias.narrow(0, 0, 2).fill_(-200); // s ≈ −200: sigmoid(s) is 0 in float32
        var (z, logDet) = layer.call(randn(3, 2), randn(3, 2));
        Assert.True(logDet.isfinite().all().item<bool>() && z.isfinite().all().item<bool>());
        Assert.True((logDet < -350).all().item<bool>());
    }

    [Fact]
    public void StackAlternatesTheOrderAndItsLogDetIsTheSumAndTheCompositionsDeterminant()
    {
        using var scope = NewDisposeScope();
        TorchSharp.torch.manual_seed(13);
        const int d = 3;
        using var stack = new IafStack(d, contextDim: 2, layerCount: 4, hidden: 8);
        stack.to(float64);
        Assert.Equal(4, stack.Layers.Count);
        for (int k = 0; k < 4; k++)
            Assert.Equal(k % 2 == 0 ? [0, 1, 2] : new[] { 2, 1, 0 }, stack.Layers[k].Made.Order);

        using var generator = new Generator(14);
        var context = randn([1, d - 1], dtype: float64, generator: generator);
        var z0 = randn([d], dtype: float64, generator: generator);

        // Each layer's Jacobian is lower triangular in natural coordinates for even layers, upper for odd ones.
        var z = z0.unsqueeze(0);
        var layerSum = zeros(1, dtype: float64);
        for (int k = 0; k < 4; k++)
        {
            var jacobian = MadeTests.Jacobian(row => stack.Layers[k].call(row, context).Z, z.squeeze(0));
            var offTriangle = k % 2 == 0 ? jacobian.triu(1) : jacobian.tril(-1);
            Assert.True(offTriangle.eq(0).all().item<bool>(), $"layer {k}");
            Assert.False((k % 2 == 0 ? jacobian.tril(-1) : jacobian.triu(1)).eq(0).all().item<bool>(), $"layer {k} is diagonal");
            var (next, logDet) = stack.Layers[k].call(z, context);
            layerSum.add_(logDet);
            z = next;
        }

        var (zK, total) = stack.call(z0.unsqueeze(0), context);
        Assert.True(zK.eq(z).all().item<bool>());
        Assert.Equal(layerSum.item<double>(), total.item<double>(), 12);
        var composition = MadeTests.Jacobian(row => stack.call(row, context).Z, z0);
        Assert.Equal(LogAbsDet(composition), total.item<double>(), 10);
    }

    /// <summary>
    /// On the CPU in float32 the stack runs as one operation (<c>IafStackFunction</c>); with it switched off, as its
    /// modules. Both give the same z_K, log-determinant and gradients for z₀, the context and every parameter, including
    /// the masked-out weights' zero gradients.
    /// </summary>
    [Theory]
    [InlineData(2, 10, 4, 128, 37)]
    [InlineData(5, 3, 3, 16, 9)]
    public void StackOperationAndModulesGiveTheSameValuesAndGradients(int d, int contextDim, int layers, int hidden, int batch)
    {
        using var scope = NewDisposeScope();
        manual_seed(21);
        using var stack = new IafStack(d, contextDim, layers, hidden);
        using var generator = new Generator(22);
        var z0 = randn([batch, d], generator: generator) * 2;
        var context = randn([batch, contextDim], generator: generator);
        var zWeights = randn([batch, d], generator: generator);
        var logDetWeights = randn([batch], generator: generator);
        Assert.True(Ddvi.FastPaths.IafStackFunction.Supports(stack, z0, context));
        Assert.False(Ddvi.FastPaths.IafStackFunction.Supports(stack, z0.to(float64), context.to(float64)));

        var results = new List<Tensor[]>();
        bool previous = Ddvi.FastPaths.IafStackFunction.Enabled;
        try
        {
            foreach (bool enabled in new[] { true, false })
            {
                Ddvi.FastPaths.IafStackFunction.Enabled = enabled;
                stack.zero_grad();
                var z = z0.detach().requires_grad_(true);
                var h = context.detach().requires_grad_(true);
                var (zK, logDet) = stack.call(z, h);
                Assert.Equal(new[] { (long)batch, d }, zK.shape);
                Assert.Equal(new[] { (long)batch }, logDet.shape);
                (zK * zWeights).sum().add(logDet.mul(logDetWeights).sum()).backward();
                results.Add([zK.detach().clone(), logDet.detach().clone(), z.grad!.clone(), h.grad!.clone(), .. stack.parameters().Select(p => p.grad!.clone())]);
            }
        }
        finally
        {
            Ddvi.FastPaths.IafStackFunction.Enabled = previous;
        }

        Assert.Equal(4 + layers * 10, results[0].Length);                     // (W, b) of four masked layers and the context map
        for (int i = 0; i < results[0].Length; i++)
        {
            var (fast, reference) = (results[0][i], results[1][i]);
            Assert.Equal(reference.shape, fast.shape);
            double gap = (fast - reference).abs().max().item<float>(), scale = reference.abs().max().item<float>();
            Assert.True(gap <= 2e-5 * Math.Max(1, scale), $"tensor {i}: largest gap {gap} (scale {scale})");
        }
        // The masked-out weights get exactly zero gradient on the fast path too.
        var firstMask = stack.Layers[0].Made.MaskedLayers[0].Mask;
        var firstWeightGrad = results[0][4];
        Assert.True(firstWeightGrad.masked_select(firstMask.eq(0)).eq(0).all().item<bool>());

        // Parameters in another precision keep the modules.
        stack.to(float64);
        Assert.False(Ddvi.FastPaths.IafStackFunction.Supports(stack, z0, context));
    }

    [Fact]
    public void StackNeedsALayer()
    {
        Assert.Contains("at least one layer", Assert.Throws<ArgumentOutOfRangeException>(() => new IafStack(2, 2, layerCount: 0)).Message);
    }
}
