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

    static (Tensor Output, Tensor[] Gradients) OutputAndGradients(Mlp mlp, Tensor x)
    {
        foreach (var p in mlp.parameters()) p.grad = null;
        var output = mlp.call(x);
        output.square().sum().backward();
        return (output.detach(), mlp.parameters().Select(p => p.grad!.clone()).ToArray());
    }
}
