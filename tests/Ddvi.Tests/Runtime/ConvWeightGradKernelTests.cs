using Ddvi.FastPaths;
using TorchSharp;
using static TorchSharp.torch;
using static Ddvi.Tests.Runtime.ConvOperationAssert;

namespace Ddvi.Tests.Runtime;

public class ConvWeightGradKernelTests
{
    /// <summary>
    /// The weight gradient of a convolution (small map = the output's gradient, big map = the input) and of a transposed
    /// convolution (small map = the input, big map = the output's gradient) against libtorch's in float64: the CIFAR-10
    /// trunk's and decoder's layers, grey 28×28 maps, 32 and 64 small-map channels with 4 to 32 big-map ones, batches
    /// of one group, of whole groups of eight and with a remainder, other kernels and strides.
    /// </summary>
    [Theory]
    [InlineData(false, 9, 16, 32, 32, 32, 4, 2)]    // the trunk's 16→32 (x 32×32 → 15×15)
    [InlineData(false, 8, 32, 64, 15, 15, 5, 2)]    // its 32→64
    [InlineData(false, 3, 16, 32, 28, 28, 4, 2)]    // on grey 28×28 images
    [InlineData(true, 17, 64, 32, 5, 5, 5, 2)]      // the decoder's 64→32 (x 5×5 → 13×13)
    [InlineData(true, 10, 32, 16, 13, 13, 5, 2)]    // its 32→16
    [InlineData(false, 1, 4, 64, 7, 6, 3, 1)]       // one image; four big-map channels
    [InlineData(true, 12, 32, 8, 3, 4, 2, 3)]       // eight big-map channels, a stride larger than the kernel
    [InlineData(true, 5, 64, 12, 1, 1, 3, 2)]       // a one-pixel input
    public void TheGradientMatchesLibtorchs(bool transposed, int batch, int inChannels, int outChannels, int height, int width, int kernel, int stride)
    {
        using var scope = NewDisposeScope();
        using var generator = new Generator(31);
        var x = randn([batch, inChannels, height, width], dtype: ScalarType.Float64, generator: generator);
        var weight = (transposed ? randn([inChannels, outChannels, kernel, kernel], dtype: ScalarType.Float64, generator: generator)
            : randn([outChannels, inChannels, kernel, kernel], dtype: ScalarType.Float64, generator: generator)).requires_grad_(true);
        Tensor Apply(Tensor input, Tensor w) => transposed
            ? nn.functional.conv_transpose2d(input, w, null, strides: [stride, stride])
            : nn.functional.conv2d(input, w, null, strides: [stride, stride]);
        var shapeOfOutput = Apply(x, weight.detach()).shape;
        var upstream = randn(shapeOfOutput, dtype: ScalarType.Float64, generator: generator);
        var expected = autograd.grad([Apply(x, weight)], [weight], [upstream])[0];

        var x32 = x.to(ScalarType.Float32).permute(0, 2, 3, 1).contiguous();
        var upstream32 = upstream.to(ScalarType.Float32).permute(0, 2, 3, 1).contiguous();
        var (small, big) = transposed ? (x32, upstream32) : (upstream32, x32);
        Assert.True(ConvWeightGradKernel.SupportsChannels(small.shape[3], big.shape[3]));
        var actual = ConvWeightGradKernel.Gradient(small, big, kernel, stride, get_num_threads());
        Assert.Equal(expected.shape, actual.shape);
        Assert.True(actual.is_contiguous());
        Close(actual.to(ScalarType.Float64), expected, 1e-5, "weight gradient");
    }

    [Fact]
    public void TheGradientDoesNotDependOnTheNumberOfThreads()
    {
        using var scope = NewDisposeScope();
        using var generator = new Generator(32);
        var small = randn([21, 6, 6, 64], generator: generator);         // three groups of eight images, the last of five
        var big = randn([21, 15, 15, 32], generator: generator);
        int threads = get_num_threads();
        var results = new List<Tensor>();
        try
        {
            foreach (int count in new[] { 1, 2, 3 })
            {
                set_num_threads(count);
                results.Add(ConvWeightGradKernel.Gradient(small, big, 5, 2, count));
            }
        }
        finally
        {
            set_num_threads(threads);
        }
        Assert.True(results[0].equal(results[1]).all().item<bool>(), "one and two threads differ");
        Assert.True(results[0].equal(results[2]).all().item<bool>(), "one and three threads differ");
    }

    [Theory]
    [InlineData(32, 16, true)]
    [InlineData(32, 8, true)]
    [InlineData(64, 32, true)]
    [InlineData(64, 4, true)]
    [InlineData(32, 12, false)]     // not a multiple of 8
    [InlineData(64, 6, false)]      // not a multiple of 4
    [InlineData(16, 32, false)]     // small maps of 32 or 64 channels only
    [InlineData(3, 16, false)]
    [InlineData(32, 0, false)]
    public void ItTakesTheChannelCountsItsTilesCover(long small, long big, bool supported) =>
        Assert.Equal(supported, ConvWeightGradKernel.SupportsChannels(small, big));
}
