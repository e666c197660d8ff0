using static TorchSharp.torch;

namespace Ddvi.Tests.Runtime;

/// <summary>Checks shared by the tests of Ddvi's own convolution operations against libtorch's.</summary>
internal static class ConvOperationAssert
{
    /// <summary>A map <c>[B, C, H, W]</c> in NHWC strides, as the conv networks' fast path keeps them.</summary>
    public static Tensor PixelMajor(Tensor map) => map.permute(0, 2, 3, 1).contiguous().permute(0, 3, 1, 2);

    /// <summary>Same shape, and every value within <paramref name="tolerance"/> of the scale (the largest expected value unless given).</summary>
    public static void Close(Tensor actual, Tensor expected, double tolerance, string what, double? scaleOf = null)
    {
        Assert.Equal(expected.shape, actual.shape);
        double scale = scaleOf ?? expected.abs().max().to(float64).item<double>() + 1e-3;
        double difference = (actual.to(float64) - expected.to(float64)).abs().max().item<double>();
        Assert.True(difference <= tolerance * scale, $"{what}: differs by {difference} (scale {scale})");
    }

    /// <summary>
    /// <paramref name="operation"/>(x, weight, bias) in float32 against <paramref name="reference"/> on float64 copies:
    /// the output and the input, weight and bias gradients of a random upstream gradient, to 1e-5 of their scale.
    /// </summary>
    public static void MatchesInFloat64(Func<Tensor, Tensor, Tensor, Tensor> operation, Func<Tensor, Tensor, Tensor, Tensor> reference,
        Tensor x, Tensor weight, Tensor bias, Generator generator)
    {
        var xFast = x.detach().requires_grad_(true);
        var weightFast = weight.detach().requires_grad_(true);
        var biasFast = bias.detach().requires_grad_(true);
        var xReference = x.detach().to(float64).requires_grad_(true);
        var weightReference = weight.detach().to(float64).requires_grad_(true);
        var biasReference = bias.detach().to(float64).requires_grad_(true);
        var actual = operation(xFast, weightFast, biasFast);
        var expected = reference(xReference, weightReference, biasReference);
        Close(actual, expected, 1e-5, "output");

        var upstream = randn(expected.shape, generator: generator);
        (actual * upstream).sum().backward();
        (expected * upstream.to(float64)).sum().backward();
        Close(xFast.grad!, xReference.grad!, 1e-5, "input gradient");
        Close(weightFast.grad!, weightReference.grad!, 1e-5, "weight gradient");
        Close(biasFast.grad!, biasReference.grad!, 1e-5, "bias gradient");
    }

    /// <summary>
    /// With the weight and bias frozen (no gradient wanted) and the input trained: <paramref name="operation"/>'s output
    /// and input gradient as <paramref name="reference"/>'s (float32 both), and no gradient reaching the parameters.
    /// Returns the operation's output.
    /// </summary>
    public static Tensor PassesOnlyTheInputGradient(Func<Tensor, Tensor, Tensor, Tensor> operation, Func<Tensor, Tensor, Tensor, Tensor> reference,
        Tensor x, Tensor weight, Tensor bias, Generator generator)
    {
        var input = x.detach().requires_grad_(true);
        var y = operation(input, weight, bias);
        var upstream = randn(y.shape, generator: generator);
        (y * upstream).sum().backward();
        Assert.Null(weight.grad);
        Assert.Null(bias.grad);
        var referenceInput = x.detach().requires_grad_(true);
        var expected = reference(referenceInput, weight, bias);
        (expected * upstream).sum().backward();
        Close(y.detach(), expected.detach(), 1e-5, "output");
        Close(input.grad!, referenceInput.grad!, 1e-5, "input gradient");
        return y.detach();
    }

    /// <summary>
    /// <paramref name="supports"/> takes (x, weight, bias, stride) as given and refuses each of the layouts and types the
    /// loops do not read: NCHW strides, float64, a bfloat16 map, no bias, stride 0, a non-contiguous weight, a non-square
    /// kernel.
    /// </summary>
    public static void RefusesWhatTheLoopsDoNotRead(Func<Tensor, Tensor?, Tensor?, long, bool> supports, Tensor x, Tensor weight, Tensor bias, long stride)
    {
        Assert.True(supports(x, weight, bias, stride));
        Assert.False(supports(x.contiguous(), weight, bias, stride), "NCHW strides");
        Assert.False(supports(x.to(float64), weight.to(float64), bias.to(float64), stride), "float64");
        Assert.False(supports(x.to(bfloat16), weight, bias, stride), "a bfloat16 map");
        Assert.False(supports(x, weight, null, stride), "no bias");
        Assert.False(supports(x, weight, bias, 0), "stride 0");
        Assert.False(supports(x, weight.transpose(2, 3), bias, stride), "a non-contiguous weight");
        Assert.False(supports(x, weight.narrow(3, 0, weight.shape[3] - 1).contiguous(), bias, stride), "a non-square kernel");
    }
}
