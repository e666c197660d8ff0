using Ddvi.FastPaths;
using Ddvi.Models;
using TorchSharp;
using static TorchSharp.torch;
using static Ddvi.Tests.Runtime.ConvOperationAssert;

namespace Ddvi.Tests.Runtime;

public class StridedConvFunctionTests
{
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
    [InlineData(11, 16, 32, 7, 9, 3, 2)]     // a batch that is not whole groups of eight images
    [InlineData(4, 32, 64, 6, 5, 2, 1)]
    [InlineData(17, 16, 64, 10, 7, 4, 3)]
    public void TheOperationComputesAsLibtorchsConvolution(int batch, int inChannels, int outChannels, int height, int width, int kernel, int stride)
    {
        using var scope = NewDisposeScope();
        using var generator = new Generator(15);
        var x = PixelMajor(randn([batch, inChannels, height, width], generator: generator));
        var weight = randn([outChannels, inChannels, kernel, kernel], generator: generator) * 0.1;
        var bias = randn([outChannels], generator: generator);
        Assert.True(StridedConvFunction.Supports(x, weight, bias, stride));

        MatchesInFloat64((input, w, b) => StridedConvFunction.Run(input, w, b, stride),
            (input, w, b) => nn.functional.conv2d(input, w, b, strides: [stride, stride]), x, weight, bias, generator);
    }

    [Fact]
    public void FrozenParametersGetNoGradientAndTheInputsStillFlows()
    {
        using var scope = NewDisposeScope();
        using var generator = new Generator(16);
        var x = PixelMajor(randn([10, 16, 32, 32], generator: generator));
        var weight = randn([32, 16, 4, 4], generator: generator) * 0.1;
        var bias = randn([32], generator: generator);
        var y = PassesOnlyTheInputGradient((input, w, b) => StridedConvFunction.Run(input, w, b, 2),
            (input, w, b) => nn.functional.conv2d(input, w, b, strides: [2, 2]), x, weight, bias, generator);

        // A trained weight and an input that needs no gradient (the operation is not chosen then, but it must work).
        var trained = weight.detach().requires_grad_(true);
        var upstream = randn(y.shape, generator: generator);
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
        var x = PixelMajor(randn([4, 16, 32, 32], generator: generator));
        var weight = randn([32, 16, 4, 4], generator: generator);
        var bias = randn([32], generator: generator);
        RefusesWhatTheLoopsDoNotRead(StridedConvFunction.Supports, x, weight, bias, 2);
        Assert.False(StridedConvFunction.Supports(PixelMajor(randn([4, 16, 33, 32], generator: generator)), weight, bias, 2)); // a row left over
        Assert.False(StridedConvFunction.Supports(PixelMajor(randn([4, 3, 32, 32], generator: generator)),
            randn([16, 3, 4, 4], generator: generator), randn([16], generator: generator), 2));                  // 3 input channels
        Assert.False(StridedConvFunction.Supports(x, randn([32, 8, 4, 4], generator: generator), bias, 2));    // channels that do not match
        Assert.False(StridedConvFunction.Supports(x, randn([24, 16, 4, 4], generator: generator), randn([24], generator: generator), 2)); // outputs the weight-gradient loop does not take
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
