using Ddvi.FastPaths;
using Ddvi.Models;
using static TorchSharp.torch;

namespace Ddvi.Tests.Runtime;

/// <summary>
/// A whole <see cref="Mlp"/> as one autograd operation (<see cref="MlpFunction"/>) against its modules layer by layer:
/// the same outputs and dropout masks for a seed, and the same gradients for the input and every parameter to float32
/// rounding, in training and evaluation mode, with zero, one and two hidden layers and one or several heads.
/// </summary>
public class MlpFunctionTests
{
    static void Close(Tensor expected, Tensor actual, string what, double tolerance = 1e-5)
    {
        Assert.Equal(expected.shape, actual.shape);
        double scale = expected.abs().max().item<float>() + 1e-6;
        double difference = (expected - actual).abs().max().item<float>();
        Assert.True(difference <= tolerance * scale, $"{what}: largest difference {difference} against a scale of {scale}");
    }

    [Theory]
    [InlineData(new int[] { 40 }, new int[] { 2, 2 }, 0.2, true, true)]
    [InlineData(new int[] { 40 }, new int[] { 2, 2 }, 0.2, false, true)]
    [InlineData(new int[] { 33, 17 }, new int[] { 5 }, 0.0, true, false)]
    [InlineData(new int[] { 24, 24 }, new int[] { 2 }, 0.3, true, true)]
    [InlineData(new int[0], new int[] { 3, 1 }, 0.0, true, true)]
    public void OneOperationGivesTheModulesValuesMasksAndGradients(int[] hidden, int[] heads, double dropout, bool training, bool inputGrad)
    {
        manual_seed(5);
        using var mlp = new Mlp(19, hidden, heads, dropout);
        if (training) mlp.train(); else mlp.eval();
        var generator = new Generator(7);
        using var xValue = randn([37, 19], generator: generator);
        using var upstream = randn([37, heads.Sum()], generator: generator);
        xValue[3, 4] = float.NaN; // a NaN goes through both paths alike (its row's values and gradients are left out below)

        var results = new List<(Tensor Output, Tensor[] Heads, Tensor? InputGrad, Dictionary<string, Tensor> Gradients)>();
        bool previous = MlpFunction.Enabled;
        try
        {
            foreach (bool fused in new[] { true, false })
            {
                MlpFunction.Enabled = fused;
                Assert.Equal(fused, MlpFunction.Supports(xValue, mlp.parameters()));
                mlp.zero_grad();
                var x = xValue.clone().requires_grad_(inputGrad);
                manual_seed(9);                                                           // the same dropout draws
                var output = mlp.call(x);
                manual_seed(9);
                var parts = mlp.Heads(x);
                (output * upstream).sum().backward();
                results.Add((output.detach(), parts.Select(p => p.detach()).ToArray(), inputGrad ? x.grad!.clone() : null,
                    mlp.named_parameters().ToDictionary(p => p.name, p => p.parameter.grad!.clone())));
            }
        }
        finally
        {
            MlpFunction.Enabled = previous;
        }

        var (one, modules) = (results[0], results[1]);
        var finite = cat([arange(0, 3), arange(4, 37)]);                                    // rows without the NaN
        Assert.True(one.Output[3].isnan().any().item<bool>() && modules.Output[3].isnan().any().item<bool>());
        Close(modules.Output.index_select(0, finite), one.Output.index_select(0, finite), "output");
        Assert.Equal(heads.Length, one.Heads.Length);
        for (int i = 0; i < heads.Length; i++)
        {
            Assert.True(one.Heads[i].is_contiguous());
            Assert.Equal(new long[] { 37, heads[i] }, one.Heads[i].shape);
            Close(modules.Heads[i].index_select(0, finite), one.Heads[i].index_select(0, finite), $"head {i}");
        }
        if (training && dropout > 0)
        {
            // The masks are the modules' own: exact zeros in the same places.
            var zeroOne = one.Output.index_select(0, finite).eq(0);
            Assert.True(zeroOne.equal(modules.Output.index_select(0, finite).eq(0)).all().item<bool>());
        }
        if (inputGrad) Close(modules.InputGrad!.index_select(0, finite), one.InputGrad!.index_select(0, finite), "∂x");
        // The NaN row reaches every weight gradient, so compare them on an input without it.
        Assert.Equal(modules.Gradients.Keys.Order(), one.Gradients.Keys.Order());
        foreach (var (name, gradient) in one.Gradients)
            Assert.Equal(modules.Gradients[name].isnan().any().item<bool>(), gradient.isnan().any().item<bool>());
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void ParameterGradientsMatchTheModules(bool training)
    {
        manual_seed(6);
        using var mlp = new Mlp(23, [48, 20], [2, 2], dropout: 0.2);
        if (training) mlp.train(); else mlp.eval();
        var generator = new Generator(8);
        using var x = randn([41, 23], generator: generator);
        using var upstream = randn([41, 4], generator: generator);
        var gradients = new List<Dictionary<string, Tensor>>();
        bool previous = MlpFunction.Enabled;
        try
        {
            foreach (bool fused in new[] { true, false })
            {
                MlpFunction.Enabled = fused;
                mlp.zero_grad();
                manual_seed(10);
                (mlp.call(x) * upstream).sum().backward();
                gradients.Add(mlp.named_parameters().ToDictionary(p => p.name, p => p.parameter.grad!.clone()));
            }
        }
        finally
        {
            MlpFunction.Enabled = previous;
        }
        Assert.Equal(8, gradients[0].Count); // two hidden layers and two heads, weight and bias each
        foreach (var (name, gradient) in gradients[0]) Close(gradients[1][name], gradient, name);
    }

    [Fact]
    public void OtherTypesAndBfloat16KeepTheModules()
    {
        using var mlp = new Mlp(4, [8], [2]);
        using var scope = NewDisposeScope();
        Assert.False(MlpFunction.Supports(zeros([3, 4], dtype: ScalarType.Float64), mlp.parameters()));
        Assert.False(MlpFunction.Supports(zeros([0, 4]), mlp.parameters()));
        Assert.True(MlpFunction.Supports(zeros([3, 4]), mlp.parameters()));
        mlp.Precision = NetworkPrecision.Bfloat16;
        var output = mlp.call(randn([3, 4]));                                              // runs the modules in bfloat16
        Assert.Equal(ScalarType.Float32, output.dtype);
        Assert.Contains("[B, 4]", Assert.Throws<ArgumentException>(() => new Mlp(4, [8], [2]).call(zeros([3, 5]))).Message);
    }
}
