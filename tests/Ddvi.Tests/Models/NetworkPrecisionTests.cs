using TorchSharp;
using Ddvi.Models;
using static TorchSharp.torch;

namespace Ddvi.Tests.Models;

public class NetworkPrecisionTests
{
    [Fact]
    public void ABFloat16MlpComputesLikeTheFloat32OneToBFloat16sPrecisionAndTrainsFloat32Weights()
    {
        manual_seed(11);
        using var mlp = new Mlp(40, [64, 64], [3, 5]);
        mlp.eval();
        using var scope = NewDisposeScope();
        var x = randn(32, 40);

        var (exact, exactGradients) = OutputAndGradients(mlp, x);
        Assert.Equal(1, mlp.SetNetworkPrecision(NetworkPrecision.Bfloat16));
        Assert.Equal(NetworkPrecision.Bfloat16, mlp.Precision);
        var (mixed, mixedGradients) = OutputAndGradients(mlp, x);

        Assert.Equal(ScalarType.Float32, mixed.dtype);
        Assert.Equal(exact.shape, mixed.shape);
        // bfloat16 keeps 8 bits of mantissa: each product's inputs are rounded to about 0.4 %, the accumulation is float32.
        double outputError = (mixed - exact).norm().item<float>() / exact.norm().item<float>();
        Assert.InRange(outputError, 1e-5, 0.02); // different (it is not silently float32) and close
        // The weights stay float32, and so do their gradients, which point where the float32 ones do.
        Assert.All(mlp.parameters(), p => Assert.Equal(ScalarType.Float32, p.dtype));
        for (int i = 0; i < exactGradients.Length; i++)
        {
            Assert.Equal(ScalarType.Float32, mixedGradients[i].dtype);
            double cosine = (exactGradients[i] * mixedGradients[i]).sum().item<float>()
                            / (exactGradients[i].norm().item<float>() * mixedGradients[i].norm().item<float>());
            Assert.True(cosine > 0.999, $"gradient {i}: cosine {cosine}");
        }

        // The heads apart agree with the heads side by side.
        var heads = mlp.Heads(x);
        Assert.True(cat(heads, 1).equal(mlp.call(x)).all().item<bool>());
        Assert.All(heads, h => Assert.Equal(ScalarType.Float32, h.dtype));
    }

    [Fact]
    public void Float64InputsRunInFloat64WhateverThePrecision()
    {
        manual_seed(12);
        using var mlp = new Mlp(6, [8], [2]);
        mlp.to(ScalarType.Float64);
        mlp.eval();
        using var scope = NewDisposeScope();
        var x = randn(4, 6, dtype: ScalarType.Float64);
        var exact = mlp.call(x);
        mlp.SetNetworkPrecision(NetworkPrecision.Bfloat16);
        var again = mlp.call(x);
        Assert.Equal(ScalarType.Float64, again.dtype);
        Assert.True(again.equal(exact).all().item<bool>());
    }

    [Fact]
    public void DropoutOnBFloat16ActivationsKeepsTheExactProbability()
    {
        manual_seed(13);
        using var dropout = new UniformMaskDropout(0.2);
        dropout.train();
        using var scope = NewDisposeScope();
        var y = dropout.call(ones(200, 1000, dtype: ScalarType.BFloat16));
        Assert.Equal(ScalarType.BFloat16, y.dtype);
        double zeroFraction = y.eq(0).to(ScalarType.Float64).mean().item<double>();
        Assert.InRange(zeroFraction, 0.2 - 0.005, 0.2 + 0.005); // 200,000 Bernoulli(0.2) draws: standard error 0.0009
        var kept = y.masked_select(y.ne(0)).to(ScalarType.Float32);
        Assert.Equal(1.25f, kept.min().item<float>());
        Assert.Equal(1.25f, kept.max().item<float>());
    }

    [Fact]
    public void ThePrecisionReachesEveryMlpOfAModelAndNothingElse()
    {
        using var generator = new Generator(2);
        using var model = ClusteringDdvi.Paper(inputDim: 12, generator, hidden: 8, hiddenLayers: 2, steps: 3, components: 4);
        // The encoder and the likelihood's decoder; the prior denoiser is not an Mlp.
        Assert.Equal(2, model.SetNetworkPrecision(NetworkPrecision.Bfloat16));
        Assert.Equal(NetworkPrecision.Bfloat16, ((Mlp)model.Encoder).Precision);
        Assert.Equal(NetworkPrecision.Bfloat16, ((Mlp)model.Likelihood.Decoder).Precision);
        model.train();
        using var scope = NewDisposeScope();
        var (_, z, mean, logVariance) = model.Posterior(randn(16, 12), generator);
        Assert.Equal(ScalarType.Float32, z.dtype);
        Assert.Equal(ScalarType.Float32, model.DecodeOutput(z).dtype);
        Assert.Equal(2, model.SetNetworkPrecision(NetworkPrecisions.Default));
        Assert.Equal(NetworkPrecision.Float32, ((Mlp)model.Encoder).Precision);
    }

    [Theory]
    [InlineData(3, 32, 32, ConvPath.Fast)]
    [InlineData(3, 32, 32, ConvPath.Plain)]
    [InlineData(1, 28, 28, ConvPath.Fast)]
    public void BFloat16ConvNetworksComputeLikeTheFloat32OnesAndKeepFloat32ParametersAndStatistics(int channels, int height, int width, ConvPath path)
    {
        manual_seed(14);
        using var encoder = new ConvEncoder(channels, height, width, [64], [2, 2], path: path);
        using var decoder = new ConvDecoder(2, channels, height, width, path);
        using var scope = NewDisposeScope();
        var x = rand(32, channels * height * width) * 2 - 1;
        var parameters = encoder.parameters().Concat(decoder.parameters()).ToArray();
        var statistics = encoder.buffers().Concat(decoder.buffers()).Where(b => b.dtype != ScalarType.Int64).ToArray();
        var startStatistics = statistics.Select(b => b.clone()).ToArray();

        (Tensor Output, Tensor[] Gradients, Tensor[] Statistics) Pass()
        {
            foreach (var p in parameters) p.grad = null;
            for (int i = 0; i < statistics.Length; i++) statistics[i].copy_(startStatistics[i]);
            encoder.train();
            decoder.train();
            var output = decoder.call(encoder.call(x).narrow(1, 0, 2));
            output.sub(x).square().sum().backward();
            return (output.detach(), parameters.Select(p => p.grad!.clone()).ToArray(), statistics.Select(b => b.clone()).ToArray());
        }

        var exact = Pass();
        // The trunk and the MLP head of the encoder, the decoder.
        Assert.Equal(2, encoder.SetNetworkPrecision(NetworkPrecision.Bfloat16));
        Assert.Equal(1, decoder.SetNetworkPrecision(NetworkPrecision.Bfloat16));
        Assert.Equal(NetworkPrecision.Bfloat16, encoder.Trunk.Precision);
        Assert.Equal(NetworkPrecision.Bfloat16, decoder.Precision);
        var mixed = Pass();

        Assert.Equal(ScalarType.Float32, mixed.Output.dtype);
        Assert.Equal(exact.Output.shape, mixed.Output.shape);
        double outputError = (mixed.Output - exact.Output).norm().item<float>() / exact.Output.norm().item<float>();
        Assert.InRange(outputError, 1e-5, 0.03); // computed in bfloat16 (not silently float32), and close
        Assert.All(parameters, p => Assert.Equal(ScalarType.Float32, p.dtype));
        Assert.All(mixed.Gradients, g => Assert.Equal(ScalarType.Float32, g.dtype));
        var exactAll = cat(exact.Gradients.Select(g => g.flatten()).ToArray());
        var mixedAll = cat(mixed.Gradients.Select(g => g.flatten()).ToArray());
        Assert.True(Cosine(exactAll, mixedAll) > 0.999, $"all gradients: cosine {Cosine(exactAll, mixedAll)}");
        double largest = exact.Gradients.Max(g => g.norm().item<float>());
        for (int i = 0; i < parameters.Length; i++)
        {
            // A convolution's bias before batch norm has no gradient but rounding (batch norm removes the mean): norms
            // 1e-4 to 1e-1 here against 1e3 to 1e5 for the weights. The rest point where the float32 gradients do; the
            // trunk's first layers least (cosines 0.95-0.98 measured for its first convolutions and batch norms), as
            // theirs pass back through every layer of the decoder and the encoder in bfloat16.
            if (exact.Gradients[i].norm().item<float>() < 1e-5 * largest) continue;
            double cosine = Cosine(exact.Gradients[i], mixed.Gradients[i]);
            Assert.True(cosine > 0.9, $"gradient {i} ({string.Join("x", parameters[i].shape)}): cosine {cosine}");
        }
        // Batch norm's running statistics stay float32 and move as the float32 network's do.
        for (int i = 0; i < statistics.Length; i++)
        {
            Assert.Equal(ScalarType.Float32, mixed.Statistics[i].dtype);
            Assert.False(mixed.Statistics[i].equal(startStatistics[i]).all().item<bool>());
            Assert.True(mixed.Statistics[i].allclose(exact.Statistics[i], rtol: 0.02, atol: 0.02), $"buffer {i}");
        }

        // Evaluation mode (running statistics): the trunk and the decoder each compute in bfloat16 (not only the MLP head).
        encoder.eval();
        decoder.eval();
        var z = randn(32, 2);
        var (features, decoded) = (encoder.Trunk.call(x), decoder.call(z));
        encoder.SetNetworkPrecision(NetworkPrecision.Float32);
        decoder.SetNetworkPrecision(NetworkPrecision.Float32);
        var (exactFeatures, exactDecoded) = (encoder.Trunk.call(x), decoder.call(z));
        Assert.Equal(ScalarType.Float32, features.dtype);
        Assert.Equal(ScalarType.Float32, decoded.dtype);
        Assert.InRange((features - exactFeatures).norm().item<float>() / exactFeatures.norm().item<float>(), 1e-5, 0.03);
        Assert.InRange((decoded - exactDecoded).norm().item<float>() / exactDecoded.norm().item<float>(), 1e-5, 0.03);

        // Float64 inputs run in float64 whatever the precision.
        encoder.SetNetworkPrecision(NetworkPrecision.Bfloat16);
        decoder.SetNetworkPrecision(NetworkPrecision.Bfloat16);
        encoder.to(ScalarType.Float64);
        decoder.to(ScalarType.Float64);
        var x64 = x.to(ScalarType.Float64);
        var mixed64 = decoder.call(encoder.call(x64).narrow(1, 0, 2));
        encoder.SetNetworkPrecision(NetworkPrecision.Float32);
        decoder.SetNetworkPrecision(NetworkPrecision.Float32);
        Assert.Equal(ScalarType.Float64, mixed64.dtype);
        Assert.True(mixed64.equal(decoder.call(encoder.call(x64).narrow(1, 0, 2))).all().item<bool>());
    }

    [Theory]
    [InlineData("float32", NetworkPrecision.Float32)]
    [InlineData("FP32", NetworkPrecision.Float32)]
    [InlineData("bf16", NetworkPrecision.Bfloat16)]
    [InlineData(" BFloat16 ", NetworkPrecision.Bfloat16)]
    public void PrecisionNamesParse(string text, NetworkPrecision expected)
    {
        Assert.Equal(expected, NetworkPrecisions.Parse(text));
        Assert.Equal(expected, NetworkPrecisions.Parse(expected.Name()));
    }

    [Fact]
    public void AnUnknownPrecisionNamesTheOptionAndTheChoices()
    {
        var error = Assert.Throws<ArgumentException>(() => NetworkPrecisions.Parse("fp8"));
        Assert.Equal("--precision: 'fp8' is not a precision; expected float32 (or fp32) or bfloat16 (or bf16).", error.Message);
        Assert.Equal(NetworkPrecision.Float32, NetworkPrecisions.Default);
    }

    static double Cosine(Tensor a, Tensor b) => (a * b).sum().item<float>() / (a.norm().item<float>() * b.norm().item<float>());

    static (Tensor Output, Tensor[] Gradients) OutputAndGradients(Mlp mlp, Tensor x)
    {
        foreach (var p in mlp.parameters()) p.grad = null;
        var output = mlp.call(x);
        output.square().sum().backward();
        return (output.detach(), mlp.parameters().Select(p => p.grad!.clone()).ToArray());
    }
}
