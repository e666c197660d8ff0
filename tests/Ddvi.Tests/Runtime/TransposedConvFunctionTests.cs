using Ddvi.FastPaths;
using Ddvi.Models;
using TorchSharp;
using static TorchSharp.torch;
using static Ddvi.Tests.Runtime.ConvOperationAssert;

namespace Ddvi.Tests.Runtime;

public class TransposedConvFunctionTests
{
    /// <summary>
    /// Outputs and the input, weight and bias gradients against libtorch's transposed convolution in float64: the
    /// decoder's three layers (32→16 and 64→32 of stride 2, the 16→3 image layer), batches that are and are not whole
    /// blocks of eight images, grey and two-channel image layers, wider inputs, other kernels and strides, image layers
    /// on maps narrower than the kernel.
    /// </summary>
    [Theory]
    [InlineData(9, 32, 16, 13, 13, 5, 2)]    // the decoder's third layer; one block of eight and one image left
    [InlineData(8, 64, 32, 5, 5, 5, 2)]      // its second layer
    [InlineData(7, 16, 3, 29, 29, 4, 1)]     // its image layer; a block of four and three
    [InlineData(5, 16, 1, 6, 4, 4, 1)]       // a grey image layer, a non-square map
    [InlineData(6, 16, 3, 2, 3, 4, 1)]       // a map narrower than the kernel: no output column sees all four kernel columns
    [InlineData(11, 32, 2, 5, 3, 3, 1)]      // two outputs of 32 inputs (two vectors per run)
    [InlineData(4, 16, 3, 9, 1, 4, 1)]       // a one-pixel-wide map: one block of one pixel per row
    [InlineData(3, 32, 3, 6, 9, 2, 1)]       // a 2×2 kernel: two blocks of four pixels and one of one per row
    [InlineData(5, 16, 3, 7, 6, 5, 1)]       // a 5×5 image layer: the output-pixel loop (the scatter loop takes up to 4×4)
    [InlineData(16, 16, 16, 4, 7, 3, 3)]     // a stride larger than half the kernel
    [InlineData(3, 8, 32, 2, 2, 1, 1)]       // a 1×1 kernel
    [InlineData(1, 48, 16, 1, 1, 5, 2)]      // a one-pixel input
    [InlineData(13, 64, 16, 3, 4, 3, 2)]     // 64 inputs to 16 outputs: the weight-gradient loop's four-vector tiles
    public void TheOperationComputesAsLibtorchsTransposedConvolution(int batch, int inChannels, int outChannels, int height, int width, int kernel, int stride)
    {
        using var scope = NewDisposeScope();
        using var generator = new Generator(5);
        var x = PixelMajor(randn([batch, inChannels, height, width], generator: generator));
        var weight = randn([inChannels, outChannels, kernel, kernel], generator: generator) * 0.1;
        var bias = randn([outChannels], generator: generator);
        Assert.True(TransposedConvFunction.Supports(x, weight, bias, stride));

        MatchesInFloat64((input, w, b) => TransposedConvFunction.Run(input, w, b, stride),
            (input, w, b) => nn.functional.conv_transpose2d(input, w, b, strides: [stride, stride]), x, weight, bias, generator);
        using (no_grad())
            Assert.True(TransposedConvFunction.Run(x, weight, bias, stride).permute(0, 2, 3, 1).is_contiguous(), "the output keeps NHWC strides");
    }

    [Fact]
    public void AFrozenWeightGetsNoGradientAndTheInputsStillFlows()
    {
        using var scope = NewDisposeScope();
        using var generator = new Generator(6);
        var x = PixelMajor(randn([10, 32, 5, 5], generator: generator));
        var weight = randn([32, 16, 5, 5], generator: generator) * 0.1;
        var bias = randn([16], generator: generator);
        var y = PassesOnlyTheInputGradient((input, w, b) => TransposedConvFunction.Run(input, w, b, 2),
            (input, w, b) => nn.functional.conv_transpose2d(input, w, b, strides: [2, 2]), x, weight, bias, generator);

        using (no_grad())
        {
            var evaluated = TransposedConvFunction.Run(x, weight, bias, 2);
            Assert.False(evaluated.requires_grad);
            Close(evaluated, y, 0, "the same values without gradients");
        }
    }

    [Fact]
    public void TheResultDoesNotDependOnTheNumberOfThreadsOrTheImagesPlaceInTheBatch()
    {
        using var scope = NewDisposeScope();
        using var generator = new Generator(7);
        var x = PixelMajor(randn([19, 32, 13, 13], generator: generator));
        var weight = randn([32, 16, 5, 5], generator: generator) * 0.1;
        var bias = randn([16], generator: generator);
        int threads = get_num_threads();
        var outputs = new List<Tensor>();
        try
        {
            foreach (int count in new[] { 1, 2 })
            {
                set_num_threads(count);
                using (no_grad()) outputs.Add(TransposedConvFunction.Run(x, weight, bias, 2));
            }
        }
        finally
        {
            set_num_threads(threads);
        }
        Assert.True(outputs[0].equal(outputs[1]).all().item<bool>(), "one and two threads differ");
        // Image 3 in a block of eight and image 18 alone (the remainder's loop) give the values they give alone.
        using (no_grad())
            foreach (int image in new[] { 3, 18 })
            {
                var alone = TransposedConvFunction.Run(PixelMajor(x.narrow(0, image, 1)), weight, bias, 2);
                Assert.True(alone.equal(outputs[0].narrow(0, image, 1)).all().item<bool>(), $"image {image} differs alone");
            }
    }

    /// <summary>
    /// The image layer's two loops (input pixel by input pixel, <see cref="ImageLayerScatterKernel"/>, and output pixel by
    /// output pixel) give the same values to float32 rounding, and the scatter loop's values do not depend on the thread
    /// count or on an image's place in the batch.
    /// </summary>
    [Theory]
    [InlineData(3, 4)]
    [InlineData(1, 4)]
    [InlineData(2, 3)]
    public void TheImageLayersLoopsAgreeAndTheScatterLoopIsDeterministic(int outChannels, int kernel)
    {
        using var scope = NewDisposeScope();
        using var generator = new Generator(9);
        var x = PixelMajor(randn([11, 16, 29, 29], generator: generator));
        var weight = randn([16, outChannels, kernel, kernel], generator: generator) * 0.1;
        var bias = randn([outChannels], generator: generator);
        Assert.True(ImageLayerScatterKernel.Supports(outChannels, kernel, 1));
        int threads = get_num_threads();
        var outputs = new List<Tensor>();
        Tensor pixelLoop;
        try
        {
            using (no_grad())
            {
                foreach (int count in new[] { 1, 2 })
                {
                    set_num_threads(count);
                    outputs.Add(TransposedConvFunction.Run(x, weight, bias, 1));
                }
                ImageLayerScatterKernel.Enabled = false;
                pixelLoop = TransposedConvFunction.Run(x, weight, bias, 1);
            }
        }
        finally
        {
            ImageLayerScatterKernel.Enabled = true;
            set_num_threads(threads);
        }
        Assert.True(outputs[0].equal(outputs[1]).all().item<bool>(), "one and two threads differ");
        Close(outputs[0], pixelLoop, 1e-5, "the scatter loop against the output-pixel loop");
        using (no_grad())
            foreach (int image in new[] { 0, 10 })
            {
                var alone = TransposedConvFunction.Run(PixelMajor(x.narrow(0, image, 1)), weight, bias, 1);
                Assert.True(alone.equal(outputs[0].narrow(0, image, 1)).all().item<bool>(), $"image {image} differs alone");
            }
    }

    [Fact]
    public void TensorsTheOperationDoesNotHandleAreRefused()
    {
        using var scope = NewDisposeScope();
        using var generator = new Generator(8);
        var x = PixelMajor(randn([4, 32, 5, 5], generator: generator));
        var weight = randn([32, 16, 5, 5], generator: generator);
        var bias = randn([16], generator: generator);
        RefusesWhatTheLoopsDoNotRead(TransposedConvFunction.Supports, x, weight, bias, 2);
        Assert.False(TransposedConvFunction.Supports(x, randn([32, 8, 5, 5], generator: generator), randn([8], generator: generator), 2)); // 8 outputs
        Assert.False(TransposedConvFunction.Supports(x, randn([16, 16, 5, 5], generator: generator), bias, 2));  // channels that do not match
        Assert.False(TransposedConvFunction.Supports(PixelMajor(randn([4, 12, 5, 5], generator: generator)),
            randn([12, 3, 4, 4], generator: generator), randn([3], generator: generator), 1));                    // 3 outputs of 12 inputs
        Assert.False(TransposedConvFunction.Supports(PixelMajor(randn([4, 16, 5, 5], generator: generator)),
            randn([16, 3, 4, 4], generator: generator), randn([3], generator: generator), 2));                    // 3 outputs, stride 2
    }

    /// <summary>
    /// The CIFAR-10 decoder on its fast path with the operation and without it (libtorch's transposed convolutions, the
    /// same NHWC maps): the same images and parameter gradients, in training and in evaluation mode.
    /// </summary>
    [Fact]
    public void TheDecoderGivesTheSameResultsWithAndWithoutTheOperation()
    {
        using var scope = NewDisposeScope();
        using var generator = new Generator(9);
        var z = randn([12, 2], generator: generator);
        var results = new List<Tensor[]>();
        try
        {
            foreach (bool enabled in new[] { true, false })
            {
                TransposedConvFunction.Enabled = enabled;
                manual_seed(3);
                using var decoder = new ConvDecoder(2, 3, 32, 32, ConvPath.Fast);
                decoder.train();
                var images = decoder.call(z);
                images.square().sum().backward();
                var gradients = decoder.parameters().Select(p => p.grad!.clone()).ToArray();
                decoder.eval();
                using (no_grad())
                    results.Add([images.detach().clone(), decoder.call(z), .. gradients]);
            }
        }
        finally
        {
            TransposedConvFunction.Enabled = true;
        }
        Assert.Equal(results[1].Length, results[0].Length);
        Close(results[0][0], results[1][0], 1e-5, "training images");
        Close(results[0][1], results[1][1], 1e-5, "evaluation images");
        // Against the largest gradient: a convolution's bias before batch norm has no gradient but rounding.
        double largest = results[1].Skip(2).Max(g => g.abs().max().item<float>());
        for (int i = 2; i < results[0].Length; i++)
            Close(results[0][i], results[1][i], 1e-4, $"parameter gradient {i - 2}", largest);
    }
}
