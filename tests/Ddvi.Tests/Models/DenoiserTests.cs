using Ddvi.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace Ddvi.Tests.Models;

public class DenoiserTests
{
    static Generator Seeded(long seed) => new Generator((ulong)seed, CPU);

    static bool Same(Tensor a, Tensor b) => a.shape.SequenceEqual(b.shape) && a.equal(b).all().item<bool>();

    static T RoundTrip<T>(T saved, T fresh) where T : nn.Module
    {
        using var stream = new MemoryStream();
        saved.save(stream);
        using var reader = new MemoryStream(stream.ToArray());
        fresh.load(reader);
        return fresh;
    }

    [Fact]
    public void TimeConditionedMlpHasTheReleaseLayoutAndOutputShape()
    {
        using var model = new TimeConditionedMlp(steps: 20);
        using var scope = NewDisposeScope();
        var names = model.named_parameters().ToDictionary(p => p.name, p => p.parameter.shape);
        Assert.Equal(new long[] { 128, 2 }, names["layers.0.weight"]);
        Assert.Equal(new long[] { 128, 128 }, names["layers.3.weight"]);
        Assert.Equal(new long[] { 20, 128 }, names["timeEmbeddings.3.weight"]);
        Assert.Equal(new long[] { 2, 128 }, names["output.weight"]);
        Assert.Equal(4 * 2 + 4 + 2, names.Count);

        var epsHat = model.forward(randn(7, 2, generator: Seeded(1)), RandomTimesteps(7, 20));
        Assert.Equal(new long[] { 7, 2 }, epsHat.shape);
    }

    static Tensor RandomTimesteps(long batch, int steps) => randint(1, steps + 1, [batch], generator: Seeded(2));

    [Fact]
    public void TimeEmbeddingsStartUniformOnTheUnitInterval()
    {
        using var model = new ConditionalDenoiser(steps: 40);
        using var scope = NewDisposeScope();
        var tables = model.named_parameters().Where(p => p.name.StartsWith("timeEmbeddings.")).Select(p => p.parameter).ToList();
        Assert.Equal(4, tables.Count);
        foreach (var table in tables)
        {
            Assert.Equal(new long[] { 40, 128 }, table.shape);
            Assert.True(table.min().item<float>() >= 0 && table.max().item<float>() < 1);
            Assert.InRange(table.mean().item<float>(), 0.45f, 0.55f);
        }
    }

    [Fact]
    public void OutputDependsOnTheTimestepThroughItsEmbeddingRow()
    {
        using var model = new TimeConditionedMlp(steps: 5, hidden: 32);
        using var scope = NewDisposeScope();
        var y = randn(1, 2, generator: Seeded(3)).expand(5, 2);
        var t = arange(1, 6, dtype: ScalarType.Int64);
        var epsHat = model.forward(y, t);
        for (int i = 0; i < 5; i++)
            for (int j = i + 1; j < 5; j++)
                Assert.False(Same(epsHat[i], epsHat[j]), $"t = {i + 1} and t = {j + 1} gave the same output");

        // t reads row t − 1: only row 2 of each table gets a gradient from t = 3.
        model.forward(y[..1], tensor(new long[] { 3 })).sum().backward();
        var grad = model.named_parameters().First(p => p.name == "timeEmbeddings.0.weight").parameter.grad!;
        var rowHasGradient = grad.abs().sum(1).gt(0).data<bool>().ToArray();
        Assert.Equal(new[] { false, false, true, false, false }, rowHasGradient);
    }

    [Fact]
    public void ConditionalDenoiserUsesItsContext()
    {
        using var model = new ConditionalDenoiser(steps: 10, hidden: 32);
        using var scope = NewDisposeScope();
        var y = randn(6, 2, generator: Seeded(4));
        var t = RandomTimesteps(6, 10);
        var a = model.forward(y, randn(6, 2, generator: Seeded(5)), t);
        var b = model.forward(y, randn(6, 2, generator: Seeded(6)), t);
        Assert.Equal(new long[] { 6, 2 }, a.shape);
        Assert.False(Same(a, b));
        Assert.Equal(new long[] { 32, 4 }, model.named_parameters().First(p => p.name == "layers.0.weight").parameter.shape);
    }

    [Fact]
    public void ResidualCarriesTheFirstHiddenLayerPastABlockedSecondLayer()
    {
        // With the second hidden layer's weights zeroed, y reaches the output only through the residual h_1 → h_3.
        using var conditional = new ConditionalDenoiser(steps: 4, hidden: 32);
        using var plain = new TimeConditionedMlp(steps: 4, hidden: 32);
        using var scope = NewDisposeScope();
        foreach (nn.Module model in new nn.Module[] { conditional, plain })
        {
            using (no_grad())
                model.named_parameters().First(p => p.name == "layers.1.weight").parameter.zero_();
        }
        var y = randn(8, 2, generator: Seeded(7)).requires_grad_();
        var t = RandomTimesteps(8, 4);
        conditional.forward(y, zeros(8, 2), t).sum().backward();
        Assert.True(y.grad!.abs().sum().item<float>() > 0, "the residual path should carry the input past layer 2");

        var y2 = y.detach().clone().requires_grad_();
        plain.forward(y2, t).sum().backward();
        Assert.Equal(0f, y2.grad!.abs().sum().item<float>());
    }

    [Fact]
    public void AuxiliaryEncoderDropoutActsOnlyInTraining()
    {
        using var encoder = new Mlp(20, [64, 64], [2], dropout: 0.4);
        using var scope = NewDisposeScope();
        var x = rand(16, 20, generator: Seeded(8));

        encoder.eval();
        var first = encoder.forward(x);
        Assert.Equal(new long[] { 16, 2 }, first.shape);
        Assert.True(Same(first, encoder.forward(x)));

        encoder.train();
        var a = encoder.forward(x);
        var b = encoder.forward(x);
        Assert.False(Same(a, b));
        Assert.False(Same(first, a));

        encoder.eval();
        Assert.True(Same(first, encoder.forward(x)));
    }

    [Fact]
    public void AuxiliaryEncoderHasTheReleaseLayout()
    {
        using var model = DdviModel.Paper();
        var encoder = (Mlp)model.AuxiliaryEncoder;
        Assert.Equal(0.4, encoder.Dropout);
        var shapes = encoder.named_parameters().ToDictionary(p => p.name, p => p.parameter.shape);
        Assert.Equal(new long[] { 1000, 784 }, shapes["hidden.0.weight"]);
        Assert.Equal(new long[] { 1000, 1000 }, shapes["hidden.1.weight"]);
        Assert.Equal(new long[] { 2, 1000 }, shapes["heads.0.weight"]);
        Assert.Equal(6, shapes.Count);
    }

    [Fact]
    public void ModulesSurviveASaveLoadRoundTrip()
    {
        using var scope = NewDisposeScope();
        var y = randn(5, 2, generator: Seeded(9));
        var context = randn(5, 3, generator: Seeded(10));
        var t = RandomTimesteps(5, 7);
        var x = rand(5, 30, generator: Seeded(11));

        using var mlp = new TimeConditionedMlp(steps: 7, hidden: 16);
        using var mlpCopy = RoundTrip(mlp, new TimeConditionedMlp(steps: 7, hidden: 16));
        Assert.True(Same(mlp.forward(y, t), mlpCopy.forward(y, t)));

        using var conditional = new ConditionalDenoiser(steps: 7, contextDim: 3, hidden: 16);
        using var fresh = new ConditionalDenoiser(steps: 7, contextDim: 3, hidden: 16);
        Assert.False(Same(conditional.forward(y, context, t), fresh.forward(y, context, t)));
        RoundTrip(conditional, fresh);
        Assert.True(Same(conditional.forward(y, context, t), fresh.forward(y, context, t)));

        using var encoder = new Mlp(30, [24, 24], [2], dropout: 0.4);
        using var encoderCopy = RoundTrip(encoder, new Mlp(30, [24, 24], [2], dropout: 0.4));
        encoder.eval();
        encoderCopy.eval();
        Assert.True(Same(encoder.forward(x), encoderCopy.forward(x)));
    }

    [Fact]
    public void ForwardRejectsBadInputs()
    {
        using var mlp = new TimeConditionedMlp(steps: 5);
        using var conditional = new ConditionalDenoiser(steps: 5);
        using var encoder = new Mlp(10, [8, 8], [2], dropout: 0.4);
        using var scope = NewDisposeScope();
        var y = zeros(3, 2);
        var t = tensor(new long[] { 1, 2, 5 });

        var range = Assert.Throws<ArgumentOutOfRangeException>(() => mlp.forward(y, tensor(new long[] { 1, 2, 6 })));
        Assert.Contains("1..5", range.Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => conditional.forward(y, y, tensor(new long[] { 0, 1, 1 })));
        var dtype = Assert.Throws<ArgumentException>(() => mlp.forward(y, t.to(ScalarType.Float32)));
        Assert.Contains("int64", dtype.Message);
        Assert.Throws<ArgumentException>(() => mlp.forward(y, tensor(new long[] { 1, 2 })));
        var width = Assert.Throws<ArgumentException>(() => mlp.forward(zeros(3, 3), t));
        Assert.Contains("[B, 2]", width.Message);
        var contextWidth = Assert.Throws<ArgumentException>(() => conditional.forward(y, zeros(3, 5), t));
        Assert.Equal("context", contextWidth.ParamName);
        Assert.Throws<ArgumentException>(() => conditional.forward(y, zeros(2, 2), t));
        var encoderWidth = Assert.Throws<ArgumentException>(() => encoder.forward(zeros(3, 784)));
        Assert.Contains("[B, 10]", encoderWidth.Message);
    }

    [Fact]
    public void ConstructorsRejectBadOptions()
    {
        Assert.Equal("steps", Assert.Throws<ArgumentOutOfRangeException>(() => new TimeConditionedMlp(steps: 0)).ParamName);
        Assert.Equal("dataDim", Assert.Throws<ArgumentOutOfRangeException>(() => new TimeConditionedMlp(steps: 5, dataDim: 0)).ParamName);
        Assert.Equal("hidden", Assert.Throws<ArgumentOutOfRangeException>(() => new TimeConditionedMlp(steps: 5, hidden: 0)).ParamName);
        Assert.Equal("hiddenLayers", Assert.Throws<ArgumentOutOfRangeException>(() => new TimeConditionedMlp(steps: 5, hiddenLayers: 0)).ParamName);
        var residual = Assert.Throws<ArgumentOutOfRangeException>(() => new ConditionalDenoiser(steps: 5, hiddenLayers: 2));
        Assert.Contains("at least 3", residual.Message);
        Assert.Equal("contextDim", Assert.Throws<ArgumentOutOfRangeException>(() => new ConditionalDenoiser(steps: 5, contextDim: 0)).ParamName);
        Assert.Equal("dropout", Assert.Throws<ArgumentOutOfRangeException>(() => new Mlp(784, [1000], [2], dropout: 1.0)).ParamName);
        Assert.Contains("input 0", Assert.Throws<ArgumentException>(() => new Mlp(0, [1000], [2])).Message);
        Assert.Contains("heads []", Assert.Throws<ArgumentException>(() => new Mlp(4, [8], [])).Message);
    }
}
