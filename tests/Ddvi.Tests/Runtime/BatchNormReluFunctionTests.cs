using Ddvi.FastPaths;
using Ddvi.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace Ddvi.Tests.Runtime;

public class BatchNormReluFunctionTests
{
    /// <summary>A map <c>[B, C, H, W]</c> in NHWC strides, as the conv networks' fast path keeps them.</summary>
    static Tensor PixelMajor(Tensor map) => map.permute(0, 2, 3, 1).contiguous().permute(0, 3, 1, 2);

    /// <summary>Two norms with the same parameters: scales of both signs (so ReLU's mask depends on them) and shifts.</summary>
    static (ImageBatchNorm Fused, ImageBatchNorm Reference) Pair(long channels, Generator generator)
    {
        var fused = new ImageBatchNorm(channels);
        var reference = new ImageBatchNorm(channels);
        using (no_grad())
        {
            fused.weight!.copy_(randn(channels, generator: generator));
            fused.bias!.copy_(randn(channels, generator: generator) * 0.5);
            reference.weight!.copy_(fused.weight!);
            reference.bias!.copy_(fused.bias!);
        }
        return (fused, reference);
    }

    static void Close(Tensor actual, Tensor expected, double tolerance, string what)
    {
        double scale = expected.abs().max().to(float64).item<double>() + 1e-3;
        double difference = (actual.to(float64) - expected.to(float64)).abs().max().item<double>();
        Assert.True(difference <= tolerance * scale, $"{what}: differs by {difference} (scale {scale})");
    }

    /// <remarks>
    /// The reference runs libtorch's batch norm and ReLU in float64: on the largest map, far from zero mean, libtorch's own
    /// float32 batch norm is off by 6% of the input gradient's scale (its float32 sums over 131,072 values), the fused
    /// operation by 1e-7.
    /// </remarks>
    [Theory]
    [InlineData(8, 16, 5, 5)]
    [InlineData(4, 32, 3, 7)]
    [InlineData(16, 64, 1, 1)]
    [InlineData(3, 48, 9, 2)]
    [InlineData(10, 16, 15, 15)]   // 2,250 rows: three chunks, the last one short
    [InlineData(128, 16, 32, 32)]  // the CIFAR-10 trunk's first map
    public void TheFusedOperationComputesAsLibtorchsBatchNormThenRelu(int batch, int channels, int height, int width)
    {
        using var scope = NewDisposeScope();
        using var generator = new Generator(11);
        var (fused, reference) = Pair(channels, generator);
        reference.to(float64);
        fused.train();
        reference.train();
        for (int step = 0; step < 3; step++)
        {
            // Far from zero mean, so a one-pass variance without the shift would lose digits.
            var x = PixelMajor(randn([batch, channels, height, width], generator: generator) * 3 + 20);
            var upstream = PixelMajor(randn([batch, channels, height, width], generator: generator));
            Assert.True(BatchNormReluFunction.Supports(x, fused.weight, fused.bias, fused.running_mean, fused.running_var));
            var xFused = x.detach().requires_grad_(true);
            var xReference = x.detach().to(float64).requires_grad_(true);

            var actual = fused.ForwardRelu(xFused, fused: true);
            var expected = reference.ForwardRelu(xReference, fused: false);
            Assert.Equal(expected.shape, actual.shape);
            Assert.True(actual.permute(0, 2, 3, 1).is_contiguous(), "the output keeps NHWC strides");
            Close(actual, expected, 1e-5, $"output, step {step}");
            Assert.True(actual.eq(0).sum().item<long>() > 0, "some values are cut by the ReLU");

            (actual * upstream).sum().backward();
            (expected * upstream.to(float64)).sum().backward();
            Close(xFused.grad!, xReference.grad!, 1e-5, $"input gradient, step {step}");
            Close(fused.weight!.grad!, reference.weight!.grad!, 1e-5, $"scale gradient, step {step}");
            Close(fused.bias!.grad!, reference.bias!.grad!, 1e-5, $"shift gradient, step {step}");
        }
        Close(fused.running_mean!, reference.running_mean!, 1e-6, "running mean");
        Close(fused.running_var!, reference.running_var!, 1e-5, "running variance");
        Assert.Equal(3L, fused.num_batches_tracked!.item<long>());
    }

    [Fact]
    public void TheResultDoesNotDependOnTheNumberOfThreads()
    {
        using var scope = NewDisposeScope();
        using var generator = new Generator(2);
        var x = PixelMajor(randn([20, 16, 13, 13], generator: generator));
        var upstream = PixelMajor(randn([20, 16, 13, 13], generator: generator));
        int threads = get_num_threads();
        var results = new List<Tensor[]>();
        try
        {
            foreach (int count in new[] { 1, 2 })
            {
                set_num_threads(count);
                using var norm = new ImageBatchNorm(16);
                var input = x.detach().requires_grad_(true);
                var y = norm.ForwardRelu(input, fused: true);
                (y * upstream).sum().backward();
                results.Add([y.detach().clone(), input.grad!.clone(), norm.weight!.grad!.clone(), norm.running_var!.clone()]);
            }
        }
        finally
        {
            set_num_threads(threads);
        }
        for (int i = 0; i < results[0].Length; i++)
            Assert.True(results[0][i].equal(results[1][i]).all().item<bool>(), $"tensor {i} differs between one and two threads");
    }

    [Fact]
    public void MapsTheOperationDoesNotHandleTakeLibtorchsOperations()
    {
        using var scope = NewDisposeScope();
        using var generator = new Generator(4);
        using var norm = new ImageBatchNorm(16);
        var channelsFirst = randn([4, 16, 3, 3], generator: generator);
        Assert.False(BatchNormReluFunction.Supports(channelsFirst, norm.weight, norm.bias, norm.running_mean, norm.running_var));
        Assert.False(BatchNormReluFunction.Supports(PixelMajor(channelsFirst).to(float64), norm.weight, norm.bias, norm.running_mean, norm.running_var));
        Assert.False(BatchNormReluFunction.Supports(PixelMajor(randn([1, 16, 1, 1], generator: generator)), norm.weight, norm.bias, norm.running_mean, norm.running_var));
        using var twelve = new ImageBatchNorm(12);
        Assert.False(BatchNormReluFunction.Supports(PixelMajor(randn([4, 12, 3, 3], generator: generator)), twelve.weight, twelve.bias, twelve.running_mean, twelve.running_var));
        Assert.True(BatchNormReluFunction.Supports(PixelMajor(channelsFirst), norm.weight, norm.bias, norm.running_mean, norm.running_var));

        // Not handled, and in evaluation mode: libtorch's batch norm and ReLU, exactly.
        using var reference = new ImageBatchNorm(12);
        var grey = PixelMajor(randn([4, 12, 3, 3], generator: generator));
        Assert.True(twelve.ForwardRelu(grey, fused: true).equal(nn.functional.relu(reference.call(grey))).all().item<bool>());
        norm.eval();
        var map = PixelMajor(channelsFirst);
        using var evaluated = new ImageBatchNorm(16);
        evaluated.eval();
        Assert.True(norm.ForwardRelu(map, fused: true).equal(nn.functional.relu(evaluated.call(map))).all().item<bool>());
        Assert.Equal(0L, norm.num_batches_tracked!.item<long>());

        var error = Assert.Throws<ArgumentException>(() => norm.ForwardRelu(zeros(4, 16, 5), fused: true));
        Assert.Contains("[4, 16, 5]", error.Message);
    }
}
