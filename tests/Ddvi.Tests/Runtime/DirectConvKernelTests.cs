using Ddvi.FastPaths;
using TorchSharp;
using static TorchSharp.torch;
using static Ddvi.Tests.Runtime.ConvOperationAssert;

namespace Ddvi.Tests.Runtime;

public class DirectConvKernelTests
{
    // conv2d by the loop: x [B, C_in, H, W] in NHWC strides, weight [C_out, C_in, k, k].
    private static unsafe Tensor Run(Tensor x, Tensor weight, Tensor bias, int stride, int threads)
    {
        var shape = new DirectConvShape((int)x.shape[0], (int)x.shape[2], (int)x.shape[3], (int)x.shape[1], (int)weight.shape[0], (int)weight.shape[2], stride);
        var packed = DirectConvKernel.Pack(weight);
        var y = empty([shape.Batch, shape.OutHeight, shape.OutWidth, shape.OutChannels]);
        DirectConvKernel.Forward(TensorMemory.Pointer<float>(x.permute(0, 2, 3, 1)), TensorMemory.Pointer<float>(packed),
            TensorMemory.Pointer<float>(bias), TensorMemory.Pointer<float>(y), shape, threads);
        return y.permute(0, 3, 1, 2);
    }

    /// <summary>
    /// Against libtorch's convolution in float64: the trunk's strided convolutions, the decoder's transposed
    /// convolutions' input gradients (as convolutions of the output's gradient), 16, 32 and 64 outputs, batches of one
    /// block of eight, with a remainder and below eight, maps whose last rows and columns no output reads.
    /// </summary>
    [Theory]
    [InlineData(9, 16, 32, 32, 32, 4, 2)]    // the trunk's 16→32
    [InlineData(8, 32, 64, 15, 15, 5, 2)]    // its 32→64 (two halves of 32 outputs)
    [InlineData(11, 16, 32, 29, 29, 5, 2)]   // the decoder's 32→16 input gradient
    [InlineData(3, 32, 64, 13, 13, 5, 2)]    // its 64→32 input gradient, fewer images than a block
    [InlineData(17, 48, 16, 7, 10, 3, 2)]    // 16 outputs; a last row and column no output reads
    [InlineData(1, 16, 64, 6, 5, 1, 1)]      // a 1×1 kernel, one image
    public void TheLoopComputesAsLibtorchsConvolution(int batch, int inChannels, int outChannels, int height, int width, int kernel, int stride)
    {
        using var scope = NewDisposeScope();
        using var generator = new Generator(41);
        var x = PixelMajor(randn([batch, inChannels, height, width], generator: generator));
        var weight = randn([outChannels, inChannels, kernel, kernel], generator: generator) * 0.1;
        var bias = randn([outChannels], generator: generator);
        Assert.True(DirectConvKernel.SupportsChannels(inChannels, outChannels));
        var expected = nn.functional.conv2d(x.to(float64), weight.to(float64), bias.to(float64), strides: [stride, stride]);
        var actual = Run(x, weight, bias, stride, get_num_threads());
        Close(actual, expected, 1e-5, "output");
    }

    [Fact]
    public void TheResultDoesNotDependOnTheNumberOfThreadsOrTheImagesPlaceInTheBatch()
    {
        using var scope = NewDisposeScope();
        using var generator = new Generator(42);
        var x = PixelMajor(randn([19, 32, 15, 15], generator: generator));
        var weight = randn([64, 32, 5, 5], generator: generator) * 0.1;
        var bias = randn([64], generator: generator);
        var one = Run(x, weight, bias, 2, 1);
        var two = Run(x, weight, bias, 2, 2);
        Assert.True(one.equal(two).all().item<bool>(), "one and two threads differ");
        foreach (int image in new[] { 3, 18 })                    // in a block of eight, and in the remainder
        {
            var alone = Run(PixelMajor(x.narrow(0, image, 1)), weight, bias, 2, 2);
            Assert.True(alone.equal(one.narrow(0, image, 1)).all().item<bool>(), $"image {image} differs alone");
        }
    }

    [Theory]
    [InlineData(16, 32, true)]
    [InlineData(32, 64, true)]
    [InlineData(48, 16, true)]
    [InlineData(3, 16, false)]      // the image layer's gradient: oneDNN is faster
    [InlineData(24, 32, false)]     // inputs not a multiple of 16
    [InlineData(16, 48, false)]     // outputs other than 16, 32, 64
    [InlineData(0, 16, false)]
    public void ItTakesTheChannelCountsItsBlocksCover(long inChannels, long outChannels, bool supported) =>
        Assert.Equal(supported, DirectConvKernel.SupportsChannels(inChannels, outChannels));
}
