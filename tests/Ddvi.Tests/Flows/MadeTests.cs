using TorchSharp;
using Ddvi.Flows;
using static TorchSharp.torch;

namespace Ddvi.Tests.Flows;

public class MadeTests
{
    /// <summary>∂f(x)/∂x <c>[k, d]</c> of a map on single rows, by autograd, at x <c>[d]</c>.</summary>
    internal static Tensor Jacobian(Func<Tensor, Tensor> f, Tensor x) =>
        autograd.functional.jacobian(row => f(row.unsqueeze(0)).squeeze(0), x);

    [Fact]
    public void MaskedLinearIsALinearMapWithTheMaskedWeights()
    {
        using var scope = NewDisposeScope();
        var mask = tensor(new float[] { 1, 0, 1, 0, 1, 1 }, [2, 3]);
        using var layer = new MaskedLinear(mask);
        var x = randn(4, 3);
        var parameters = layer.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        var expected = x.matmul((parameters["weight"] * mask).t()) + parameters["bias"];
        Assert.True(layer.call(x).allclose(expected, rtol: 1e-6, atol: 1e-6));
        Assert.Equal(3, layer.InFeatures);
        Assert.Equal(2, layer.OutFeatures);

        // A masked-out weight gets no gradient, so training never opens a connection.
        layer.call(x).sum().backward();
        var grad = parameters["weight"].grad!;
        Assert.True(grad.masked_select(mask.eq(0)).eq(0).all().item<bool>());
        Assert.True(grad.masked_select(mask.eq(1)).ne(0).all().item<bool>());
    }

    [Fact]
    public void MaskedLinearRejectsBadMasks()
    {
        using var scope = NewDisposeScope();
        Assert.Contains("0 or 1", Assert.Throws<ArgumentException>(() => new MaskedLinear(tensor(new float[] { 1, 0.5f }, [1, 2]))).Message);
        Assert.Contains("[out, in]", Assert.Throws<ArgumentException>(() => new MaskedLinear(ones(3))).Message);
    }

    [Theory]
    [InlineData(new[] { 0, 1 })]
    [InlineData(new[] { 1, 0 })]
    [InlineData(new[] { 3, 0, 4, 1, 2 })]
    public void JacobianIsStrictlyTriangularInTheChosenOrder(int[] order)
    {
        using var scope = NewDisposeScope();
        TorchSharp.torch.manual_seed(5);
        int d = order.Length;
        using var made = new Made(d, contextDim: 3, order, hidden: 16);
        made.to(float64);
        using var generator = new Generator(7);
        var context = randn([1, 3], dtype: float64, generator: generator);
        var position = new int[d];
        for (int p = 0; p < d; p++) position[order[p]] = p;

        var reached = zeros([2 * d, d], dtype: float64);
        for (int sample = 0; sample < 4; sample++)
        {
            var x = randn([d], dtype: float64, generator: generator);
            var jacobian = Jacobian(row => { var (s, m) = made.call(row, context); return cat([s, m], 1); }, x); // [2d, d]
            for (int v = 0; v < d; v++)
                for (int u = 0; u < d; u++)
                    if (position[u] >= position[v])
                    {
                        Assert.Equal(0.0, jacobian[v, u].item<double>());
                        Assert.Equal(0.0, jacobian[d + v, u].item<double>());
                    }
            reached.add_(jacobian.abs());
        }
        // Every allowed connection is used: the masks are not stricter than the order demands.
        for (int v = 0; v < d; v++)
            for (int u = 0; u < d; u++)
                if (position[u] < position[v])
                    Assert.True(reached[v, u].item<double>() > 0 && reached[d + v, u].item<double>() > 0, $"output {v} ignores input {u}");
    }

    [Fact]
    public void ContextReachesEveryVariableButTheFirst()
    {
        using var scope = NewDisposeScope();
        TorchSharp.torch.manual_seed(6);
        using var made = new Made(3, contextDim: 2, [2, 0, 1], hidden: 8);
        var z = randn(5, 3);
        var (s1, m1) = made.call(z, zeros(5, 2));
        var (s2, m2) = made.call(z, randn(5, 2));
        // The first variable in the order sees nothing but biases; the others see the context.
        Assert.True(s1[.., 2].eq(s2[.., 2]).all().item<bool>() && m1[.., 2].eq(m2[.., 2]).all().item<bool>());
        Assert.False(s1[.., 0].eq(s2[.., 0]).all().item<bool>());
        Assert.False(m1[.., 1].eq(m2[.., 1]).all().item<bool>());
    }

    [Fact]
    public void BadSizesAndOrdersAreRejected()
    {
        Assert.Contains("permutation", Assert.Throws<ArgumentException>(() => new Made(3, 2, [0, 0, 1])).Message);
        Assert.Contains("permutation", Assert.Throws<ArgumentException>(() => new Made(3, 2, [0, 1])).Message);
        Assert.Contains("max(1, d − 1) = 4", Assert.Throws<ArgumentOutOfRangeException>(() => new Made(5, 2, [0, 1, 2, 3, 4], hidden: 3)).Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => new Made(0, 2, []));
        Assert.Throws<ArgumentOutOfRangeException>(() => new Made(2, 0, [0, 1]));
        Assert.Throws<ArgumentOutOfRangeException>(() => new Made(2, 2, [0, 1], hiddenLayers: 0));
    }
}
