using Ddvi.FastPaths;
using Ddvi.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace Ddvi.Tests.Runtime;

public class StridedConvFunctionTests
{
    /// <summary>A map <c>[B, C, H, W]</c> in NHWC strides, as the conv networks' fast path keeps them.</summary>
    static Tensor PixelMajor(Tensor map) => map.permute(0, 2, 3, 1).contiguous().permute(0, 3, 1, 2);

    static void Close(Tensor actual, Tensor expected, double tolerance, string what, double? scaleOf = null)
    {
        Assert.Equal(expected.shape, actual.shape);
        double scale = scaleOf ?? expected.abs().max().to(float64).item<double>() + 1e-3;
        double difference = (actual.to(float64) - expected.to(float64)).abs().max().item<double>();
        Assert.True(difference <= tolerance * scale, $"{what}: differs by {difference} (scale {scale})");
    }

    /// <summary>
    /// Outputs and the input, weight and bias gradients against libtorch's convolution in float64: the CIFAR-10 trunk's two
    /// strided convolutions (also on grey 28×28 maps), batches that are and are not whole blocks of eight images,
    /// non-square maps, stride 1 and 3.
    /// </summary>
    [Theory]
    [InlineData(9, 16, 32, 32, 32, 4, 2)]    // the trunk's second convolution
    [InlineData(8, 32, 64, 15, 15, 5, 2)]    // its third
    [InlineData(5, 16, 32, 28, 28, 4, 2)]    // the second on grey 28×28 images
    [InlineData(3, 32, 64, 13, 13, 5, 2)]    // the third on them
    [InlineData(11, 16, 8, 7, 9, 3, 2)]
    [InlineData(4, 32, 16, 6, 5, 2, 1)]
    [InlineData(2, 16, 24, 10, 7, 4, 3)]
    public void TheOperationComputesAsLibtorchsConvolution(int batch, int inChannels, int outChannels, int height, int width, int kernel, int stride)
    {
        using var scope = NewDisposeScope();
        using var generator = new Generator(15);
        var x = PixelMajor(randn([batch, inChannels, height, width], generator: generator));
        var weight = randn([outChannels, inChannels, kernel, kernel], generator: generator) * 0.1;
        var bias = randn([outChannels], generator: generator);
        Assert.True(StridedConvFunction.Supports(x, weight, bias, stride));

        var xFast = x.detach().requires_grad_(true);
        var weightFast = weight.detach().requires_grad_(true);
        var biasFast = bias.detach().requires_grad_(true);
        var xReference = x.detach().to(float64).requires_grad_(true);
        var weightReference = weight.detach().to(float64).requires_grad_(true);
        var biasReference = bias.detach().to(float64).requires_grad_(true);
        var actual = StridedConvFunction.Run(xFast, weightFast, biasFast, stride);
        var expected = nn.functional.conv2d(xReference, weightReference, biasReference, strides: [stride, stride]);
        Close(actual, expected, 1e-5, "output");

        var upstream = randn(expected.shape, generator: generator);
        (actual * upstream).sum().backward();
        (expected * upstream.to(float64)).sum().backward();
        Close(xFast.grad!, xReference.grad!, 1e-5, "input gradient");
        Close(weightFast.grad!, weightReference.grad!, 1e-5, "weight gradient");
        Close(biasFast.grad!, biasReference.grad!, 1e-5, "bias gradient");
    }

    [Fact]
    public void FrozenParametersGetNoGradientAndTheInputsStillFlows()
    {
        using var scope = NewDisposeScope();
        using var generator = new Generator(16);
        var x = PixelMajor(randn([10, 16, 32, 32], generator: generator));
        var weight = randn([32, 16, 4, 4], generator: generator) * 0.1;
        var bias = randn([32], generator: generator);
        var input = x.detach().requires_grad_(true);
        var y = StridedConvFunction.Run(input, weight, bias, 2);
        var upstream = randn(y.shape, generator: generator);
        (y * upstream).sum().backward();
        Assert.Null(weight.grad);
        Assert.Null(bias.grad);
        var referenceInput = x.detach().requires_grad_(true);
        var expected = nn.functional.conv2d(referenceInput, weight, bias, strides: [2, 2]);
        (expected * upstream).sum().backward();
        Close(y.detach(), expected.detach(), 1e-6, "output");
        Close(input.grad!, referenceInput.grad!, 1e-5, "input gradient");

        // A trained weight and an input that needs no gradient (the operation is not chosen then, but it must work).
        var trained = weight.detach().requires_grad_(true);
        var z = StridedConvFunction.Run(x, trained, bias, 2);
        (z * upstream).sum().backward();
        var referenceWeight = weight.detach().requires_grad_(true);
        (nn.functional.conv2d(x, referenceWeight, bias, strides: [2, 2]) * upstream).sum().backward();
        Close(trained.grad!, referenceWeight.grad!, 1e-5, "weight gradient");
    }

    [Fact]
    public void TensorsTheOperationDoesNotHandleAreRefused()
    {
        using var scope = NewDisposeScope();
        using var generator = new Generator(17);
        var channelsFirst = randn([4, 16, 32, 32], generator: generator);
        var x = PixelMajor(channelsFirst);
        var weight = randn([32, 16, 4, 4], generator: generator);
        var bias = randn([32], generator: generator);
        Assert.True(StridedConvFunction.Supports(x, weight, bias, 2));
        Assert.False(StridedConvFunction.Supports(channelsFirst, weight, bias, 2));                           // NCHW strides
        Assert.False(StridedConvFunction.Supports(x.to(float64), weight.to(float64), bias.to(float64), 2));     // float64
        Assert.False(StridedConvFunction.Supports(x, weight, null, 2));                                        // no bias
        Assert.False(StridedConvFunction.Supports(x, weight, bias, 0));                                        // no stride
        Assert.False(StridedConvFunction.Supports(PixelMajor(randn([4, 16, 33, 32], generator: generator)), weight, bias, 2)); // a row left over
        Assert.False(StridedConvFunction.Supports(PixelMajor(randn([4, 3, 32, 32], generator: generator)),
            randn([16, 3, 4, 4], generator: generator), randn([16], generator: generator), 2));                  // 3 input channels
        Assert.False(StridedConvFunction.Supports(x, randn([32, 8, 4, 4], generator: generator), bias, 2));    // channels that do not match
        Assert.False(StridedConvFunction.Supports(x, weight.transpose(2, 3), bias, 2));                        // a non-contiguous weight
    }

    /// <summary>
    /// The CIFAR-10 encoder on its fast path with the operation and without it (libtorch's convolutions, the same NHWC
    /// maps): the same outputs and parameter gradients, and no graph kept after the backward pass frees it.
    /// </summary>
    [Fact]
    public void TheEncoderGivesTheSameResultsWithAndWithoutTheOperation()
    {
        using var scope = NewDisposeScope();
        using var generator = new Generator(18);
        var images = rand([12, 3 * 32 * 32], generator: generator) * 2 - 1;
        var results = new List<Tensor[]>();
        try
        {
            foreach (bool enabled in new[] { true, false })
            {
                StridedConvFunction.Enabled = enabled;
                manual_seed(4);
                using var encoder = new ConvEncoder(3, 32, 32, [64], [2, 2], path: ConvPath.Fast);
                encoder.train();
                var input = images.detach().requires_grad_(true);
                var heads = encoder.call(input);
                heads.square().sum().backward();
                results.Add([heads.detach().clone(), input.grad!.clone(), .. encoder.parameters().Select(p => p.grad!.clone())]);
            }
        }
        finally
        {
            StridedConvFunction.Enabled = true;
        }
        Assert.Equal(results[1].Length, results[0].Length);
        Close(results[0][0], results[1][0], 1e-5, "encoder outputs");
        Close(results[0][1], results[1][1], 1e-4, "image gradient");
        double largest = results[1].Skip(2).Max(g => g.abs().max().item<float>());
        for (int i = 2; i < results[0].Length; i++)
            Close(results[0][i], results[1][i], 1e-4, $"parameter gradient {i - 2}", largest);
    }
}
