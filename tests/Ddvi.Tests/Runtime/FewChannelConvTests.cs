using Ddvi.FastPaths;
using TorchSharp;
using static TorchSharp.torch;
using static Ddvi.Tests.Runtime.ConvOperationAssert;

namespace Ddvi.Tests.Runtime;

/// <summary>
/// <see cref="FewChannelConvKernel"/> and <see cref="FewChannelConvFunction"/>: the trunk's first convolution and the
/// image layer's gradients against libtorch in float64.
/// </summary>
public class FewChannelConvTests
{
    // conv2d(x, weight, bias) with stride 1 and no padding by the loop: x [B, C, H, W] in NHWC strides, weight [16, C, k, k].
    private static unsafe Tensor Correlate(Tensor x, Tensor weight, Tensor? bias, int threads)
    {
        var shape = new FewChannelShape((int)x.shape[0], (int)x.shape[2], (int)x.shape[3], (int)x.shape[1], (int)weight.shape[2]);
        var packed = FewChannelConvKernel.Pack(weight);
        var y = empty([shape.Batch, shape.OutHeight, shape.OutWidth, FewChannelConvKernel.Wide]);
        FewChannelConvKernel.Correlate(TensorMemory.Pointer<float>(x.permute(0, 2, 3, 1)), TensorMemory.Pointer<float>(packed),
            bias is null ? null : TensorMemory.Pointer<float>(bias), TensorMemory.Pointer<float>(y), shape, threads);
        return y.permute(0, 3, 1, 2);
    }

    /// <summary>
    /// The forward loop: the trunk's first convolution on padded CIFAR-10 and MNIST images, the image layer's input
    /// gradient (a 4×4 convolution of the 3-channel output gradient to 16 channels, 29 columns: one block of 16 pixels and
    /// one that overlaps it), one and four channels, a width of exactly 16, no bias.
    /// </summary>
    [Theory]
    [InlineData(5, 3, 34, 34, 3, true)]     // the CIFAR-10 trunk's first convolution on padded images
    [InlineData(3, 1, 30, 30, 3, true)]     // MNIST's
    [InlineData(4, 3, 32, 32, 4, false)]    // the image layer's input gradient
    [InlineData(2, 4, 9, 20, 5, true)]      // four channels; 16 columns, the last block overlapping the first
    [InlineData(1, 2, 16, 16, 1, false)]    // a 1×1 kernel, exactly one block per row
    public void TheForwardLoopComputesAsLibtorchsConvolution(int batch, int channels, int height, int width, int kernel, bool withBias)
    {
        using var scope = NewDisposeScope();
        using var generator = new Generator(61);
        var x = PixelMajor(randn([batch, channels, height, width], generator: generator));
        var weight = randn([16, channels, kernel, kernel], generator: generator) * 0.2;
        var bias = withBias ? randn([16], generator: generator) : null;
        var expected = nn.functional.conv2d(x.to(float64), weight.to(float64), bias?.to(float64));
        Close(Correlate(x, weight, bias, get_num_threads()), expected, 1e-5, "output");
    }

    /// <summary>The weight gradient: against libtorch's for convolutions and for the 16→C image layer, batches with and without a remainder group.</summary>
    [Theory]
    [InlineData(9, 3, 34, 34, 3)]      // the trunk's first convolution (padded images): two groups of images, the second of one
    [InlineData(8, 3, 32, 32, 4)]      // the image layer (big map = the output's gradient): one group
    [InlineData(17, 1, 20, 18, 3)]     // grey, 16 columns of output, three groups
    [InlineData(3, 4, 7, 21, 5)]       // four channels: a row of 20 taps in a tile of 16 and one of 4
    public void TheWeightGradientIsLibtorchs(int batch, int channels, int height, int width, int kernel)
    {
        using var scope = NewDisposeScope();
        using var generator = new Generator(62);
        // y = conv2d(big, w): small = dL/dy [B, 16, h, w], big [B, C, H, W]; dL/dw = the correlation.
        var big = PixelMajor(randn([batch, channels, height, width], generator: generator));
        var small = PixelMajor(randn([batch, 16, height - kernel + 1, width - kernel + 1], generator: generator));
        var weight = zeros([16, channels, kernel, kernel], float64).requires_grad_(true);
        var y = nn.functional.conv2d(big.to(float64), weight);
        var expected = autograd.grad([y], [weight], [small.to(float64)])[0];
        var actual = FewChannelConvKernel.WeightGradient(small.permute(0, 2, 3, 1), big.permute(0, 2, 3, 1), kernel, get_num_threads());
        Close(actual, expected, 1e-5, "weight gradient");
    }

    [Fact]
    public void TheResultsDoNotDependOnTheNumberOfThreads()
    {
        using var scope = NewDisposeScope();
        using var generator = new Generator(63);
        var big = PixelMajor(randn([19, 3, 34, 34], generator: generator));
        var weight = randn([16, 3, 3, 3], generator: generator);
        var bias = randn([16], generator: generator);
        var small = PixelMajor(randn([19, 16, 32, 32], generator: generator));
        var forward = new List<Tensor>();
        var gradients = new List<Tensor>();
        foreach (int threads in new[] { 1, 2, 3 })
        {
            forward.Add(Correlate(big, weight, bias, threads));
            gradients.Add(FewChannelConvKernel.WeightGradient(small.permute(0, 2, 3, 1), big.permute(0, 2, 3, 1), 3, threads));
        }
        for (int i = 1; i < forward.Count; i++)
        {
            Assert.True(forward[0].equal(forward[i]).all().item<bool>(), "forward: thread counts differ");
            Assert.True(gradients[0].equal(gradients[i]).all().item<bool>(), "weight gradient: thread counts differ");
        }
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public unsafe void PaddingSurroundsTheImagesWithZerosFromEitherLayout(bool planar)
    {
        using var scope = NewDisposeScope();
        using var generator = new Generator(64);
        var images = randn([3, 3, 5, 7], generator: generator);                        // NCHW
        var x = planar ? images : images.permute(0, 2, 3, 1).contiguous();
        var padded = full([3, 9, 11, 3], float.NaN);                                    // every value must be written
        FewChannelConvKernel.Pad(TensorMemory.Pointer<float>(x), planar, TensorMemory.Pointer<float>(padded), 3, 5, 7, 3, 2, 2);
        var expected = nn.functional.pad(images, [2, 2, 2, 2]).permute(0, 2, 3, 1);
        Assert.True(padded.equal(expected).all().item<bool>());
    }

    /// <summary>
    /// The planar copy on the CIFAR-10 shapes and on widths around the 16-pixel vectors of the RGB path, for every channel
    /// count the kernel takes, with the vector path and with the element loop alone.
    /// </summary>
    [Theory]
    [InlineData(3, 32, 32, 1)]
    [InlineData(3, 5, 16, 0)]
    [InlineData(3, 4, 35, 2)]
    [InlineData(3, 3, 15, 1)]
    [InlineData(1, 3, 35, 1)]
    [InlineData(2, 3, 33, 1)]
    [InlineData(4, 3, 48, 1)]
    public unsafe void PlanarImagesArePaddedAsTheTensorOperationsDo(int channels, int height, int width, int padding)
    {
        using var scope = NewDisposeScope();
        using var generator = new Generator(65);
        var images = randn([2, channels, height, width], generator: generator);         // NCHW
        var expected = nn.functional.pad(images, [padding, padding, padding, padding]).permute(0, 2, 3, 1);
        bool before = FewChannelConvKernel.VectorInterleave;
        try
        {
            foreach (bool vectors in new[] { true, false })
            {
                FewChannelConvKernel.VectorInterleave = vectors;
                var padded = full([2, height + 2 * padding, width + 2 * padding, channels], float.NaN);
                FewChannelConvKernel.Pad(TensorMemory.Pointer<float>(images), true, TensorMemory.Pointer<float>(padded), 2, height, width, channels, padding, 2);
                Assert.True(padded.equal(expected).all().item<bool>(), $"vectors {vectors}: the padded copy differs");
            }
        }
        finally
        {
            FewChannelConvKernel.VectorInterleave = before;
        }
    }

    /// <summary>The operation (forward, input, weight and bias gradients) against libtorch's padded convolution.</summary>
    [Theory]
    [InlineData(9, 3, 32, 32, 3, 1)]     // the CIFAR-10 trunk's first layer
    [InlineData(4, 1, 28, 28, 3, 1)]     // MNIST's
    [InlineData(3, 2, 10, 18, 3, 0)]     // no padding
    [InlineData(2, 4, 6, 14, 5, 3)]      // padding 3 around a map narrower than 16
    public void TheOperationComputesAsLibtorchsConvolution(int batch, int channels, int height, int width, int kernel, int padding)
    {
        foreach (bool planar in new[] { false, true })
            Compare(batch, channels, height, width, kernel, padding, planar);
    }

    // x in NHWC strides, or (planar) the contiguous NCHW images the trunk reads.
    private static void Compare(int batch, int channels, int height, int width, int kernel, int padding, bool planar)
    {
        using var scope = NewDisposeScope();
        using var generator = new Generator(65);
        var images = randn([batch, channels, height, width], generator: generator);
        var x = planar ? images : PixelMajor(images);
        var weight = randn([16, channels, kernel, kernel], generator: generator) * 0.2;
        var bias = randn([16], generator: generator);
        Assert.True(FewChannelConvFunction.Supports(x, weight, bias, 1, padding));
        MatchesInFloat64((input, w, b) => FewChannelConvFunction.Run(input, w, b, padding),
            (input, w, b) => nn.functional.conv2d(input, w, b, padding: [padding, padding]), x, weight, bias, generator);
        using (no_grad())
            Assert.True(FewChannelConvFunction.Run(x, weight, bias, padding).permute(0, 2, 3, 1).is_contiguous(), "the output keeps NHWC strides");
    }

    [Fact]
    public void WithoutGradientsItGivesTheSameValues()
    {
        using var scope = NewDisposeScope();
        using var generator = new Generator(66);
        var x = PixelMajor(randn([3, 3, 32, 32], generator: generator));
        var weight = randn([16, 3, 3, 3], generator: generator);
        var bias = randn([16], generator: generator);
        var trained = FewChannelConvFunction.Run(x, weight.requires_grad_(true), bias, 1);
        using (no_grad())
        {
            var evaluated = FewChannelConvFunction.Run(x, weight, bias, 1);
            Assert.False(evaluated.requires_grad);
            Close(evaluated, trained.detach(), 0, "the same values without gradients");
        }
    }

    [Fact]
    public void TensorsTheOperationDoesNotHandleAreRefused()
    {
        using var scope = NewDisposeScope();
        using var generator = new Generator(67);
        var x = PixelMajor(randn([2, 3, 32, 32], generator: generator));
        var weight = randn([16, 3, 3, 3], generator: generator);
        var bias = randn([16], generator: generator);
        var refusals = new List<string>();
        foreach (var (input, w, b, stride, what) in new (Tensor, Tensor?, Tensor?, long, string)[]
        {
            (x.to(float64), weight.to(float64), bias.to(float64), 1, "float64"),
            (x.to(bfloat16), weight, bias, 1, "a bfloat16 map"),
            (x, weight, null, 1, "no bias"),
            (x, weight, bias, 0, "stride 0"),
            (x, weight.transpose(2, 3), bias, 1, "a non-contiguous weight"),
            (x, weight.narrow(3, 0, 2).contiguous(), bias, 1, "a non-square kernel"),
            (x.transpose(2, 3), weight, bias, 1, "a map in neither NHWC nor NCHW strides"),
        })
            if (FewChannelConvFunction.Supports(input, w, b, stride, 1)) refusals.Add(what);
        Assert.Empty(refusals);
        Assert.True(FewChannelConvFunction.Supports(x, weight, bias, 1, 1), "NHWC strides");
        Assert.True(FewChannelConvFunction.Supports(x.contiguous(), weight, bias, 1, 1), "NCHW, the flattened images");
        Assert.False(FewChannelConvFunction.Supports(x, weight, bias, 2, 1), "stride 2");
        Assert.False(FewChannelConvFunction.Supports(x, weight, bias, 1, 3), "padding as large as the kernel");
        Assert.False(FewChannelConvFunction.Supports(x, randn([32, 3, 3, 3], generator: generator), randn([32], generator: generator), 1, 1), "32 outputs");
        Assert.False(FewChannelConvFunction.Supports(PixelMajor(randn([2, 5, 32, 32], generator: generator)),
            randn([16, 5, 3, 3], generator: generator), bias, 1, 1), "five channels");
        Assert.False(FewChannelConvFunction.Supports(PixelMajor(randn([2, 3, 12, 12], generator: generator)), weight, bias, 1, 1),
            "an output narrower than 16");
        Assert.True(FewChannelConvKernel.Supports(3, 16, 16));
        Assert.False(FewChannelConvKernel.Supports(0, 16, 16));
    }
}
