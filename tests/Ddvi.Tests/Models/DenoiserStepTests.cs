using System.Runtime.Intrinsics;
using Ddvi.FastPaths;
using Ddvi.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace Ddvi.Tests.Models;

/// <summary>
/// A denoiser's forward pass at per-row timesteps as one operation (<see cref="DenoiserStepFunction"/>) against the
/// modules' own operations: the same ε̂ and the same gradients for every parameter and input, on both denoisers, the
/// rows split between two threads into 8-row blocks and the rows after them; the same errors; the module path wherever
/// the kernel does not apply.
/// </summary>
public class DenoiserStepTests
{
    const int Steps = 11;

    static Dictionary<string, double[]> Gradients(nn.Module model) => model.named_parameters()
        .Where(p => p.parameter.grad is not null)
        .ToDictionary(p => p.name, p => p.parameter.grad!.to(ScalarType.Float64).data<double>().ToArray());

    static void Close(IReadOnlyList<double> expected, IReadOnlyList<double> actual, string what)
    {
        Assert.Equal(expected.Count, actual.Count);
        double scale = expected.Select(Math.Abs).DefaultIfEmpty(0).Max() + 1e-6;
        for (int i = 0; i < expected.Count; i++)
            Assert.True(Math.Abs(expected[i] - actual[i]) <= 1e-4 * scale, $"{what}[{i}]: kernel {actual[i]} against the modules {expected[i]}");
    }

    static Tensor Timesteps(long batch, Generator generator)
    {
        var t = randint(1, Steps + 1, [batch], dtype: ScalarType.Int64, generator: generator);
        t[0] = Steps;                                                                               // both ends of the tables
        if (batch > 1) t[batch - 1] = 1;
        return t;
    }

    /// <summary>
    /// Both denoisers, several widths and depths, batches of 1 to 130 rows: on one thread (the weight gradients as the
    /// blocks' products) and split between two (<paramref name="split"/>: at least 16 rows a thread, 37 rows as 19 + 18,
    /// the weight gradients as MKL's).
    /// </summary>
    [Theory]
    [InlineData(false, 128, 4, 37, false)]
    [InlineData(true, 128, 4, 37, false)]
    [InlineData(false, 128, 4, 37, true)]
    [InlineData(true, 128, 4, 37, true)]
    [InlineData(false, 64, 1, 5, false)]
    [InlineData(true, 64, 3, 1, false)]
    [InlineData(false, 32, 2, 128, true)]
    [InlineData(true, 32, 5, 24, false)]
    [InlineData(true, 64, 4, 130, false)]
    public void StepKernelMatchesTheModulesInFloat32(bool conditioned, int hidden, int layers, int batch, bool split)
    {
        manual_seed(21);
        using var posterior = new ConditionalDenoiser(Steps, dataDim: 2, contextDim: 3, hidden: hidden, hiddenLayers: Math.Max(layers, 3));
        using var prior = new TimeConditionedMlp(Steps, dataDim: 2, hidden: hidden, hiddenLayers: layers);
        nn.Module denoiser = conditioned ? posterior : prior;
        var generator = new Generator(23);
        using var yValue = randn([batch, 2], generator: generator);
        using var contextValue = randn([batch, 3], generator: generator);
        using var t = Timesteps(batch, generator);
        using var outputWeights = randn([batch, 2], generator: generator);

        var results = new List<(float[] Output, float[] YGrad, float[] ContextGrad, Dictionary<string, double[]> Gradients)>();
        bool previous = DenoiserStepFunction.UseKernel;
        int threadsBefore = get_num_threads(), minimumRowsBefore = DenoiserStepKernel.MinimumRowsPerThread;
        set_num_threads(2);
        DenoiserStepKernel.MinimumRowsPerThread = split ? 16 : minimumRowsBefore;
        try
        {
            if (OpenMpTeam.IsAvailable && split) Assert.Equal(2, DenoiserChainKernel.SplitRows(batch, DenoiserStepKernel.MinimumRowsPerThread).Chunks);
            foreach (bool useKernel in new[] { true, false })
            {
                DenoiserStepFunction.UseKernel = useKernel;
                denoiser.zero_grad();
                using var scope = NewDisposeScope();
                var y = yValue.clone().requires_grad_();
                var context = contextValue.clone().requires_grad_();
                if (useKernel)
                {
                    // The kernel runs wherever AVX-512 is present (otherwise the modules do, and both results are theirs).
                    var input = conditioned ? cat([y, context], 1) : y;
                    var (layerList, embeddings, output) = conditioned
                        ? (((ITimeConditionedNetwork)posterior).Layers, ((ITimeConditionedNetwork)posterior).TimeEmbeddings, ((ITimeConditionedNetwork)posterior).Output)
                        : (((ITimeConditionedNetwork)prior).Layers, ((ITimeConditionedNetwork)prior).TimeEmbeddings, ((ITimeConditionedNetwork)prior).Output);
                    using var probe = TimeConditionedLayers.AsOneOperation(layerList, embeddings, output, input.detach(), t, -1, -1, Steps, "probe");
                    Assert.Equal(Vector512.IsHardwareAccelerated, probe is not null);
                }
                var epsHat = conditioned ? posterior.call(y, context, t) : prior.call(y, t);
                Assert.Equal(new long[] { batch, 2 }, epsHat.shape);
                ((epsHat * outputWeights).sum() + epsHat.square().sum()).backward();
                results.Add((epsHat.data<float>().ToArray(), y.grad!.data<float>().ToArray(),
                    conditioned ? context.grad!.data<float>().ToArray() : [], Gradients(denoiser)));
            }
        }
        finally
        {
            DenoiserStepFunction.UseKernel = previous;
            DenoiserStepKernel.MinimumRowsPerThread = minimumRowsBefore;
            set_num_threads(threadsBefore);
        }

        var (kernel, modules) = (results[0], results[1]);
        static double[] Wide(float[] values) => values.Select(v => (double)v).ToArray();
        Close(Wide(modules.Output), Wide(kernel.Output), "ε̂");
        Close(Wide(modules.YGrad), Wide(kernel.YGrad), "∂y");
        Close(Wide(modules.ContextGrad), Wide(kernel.ContextGrad), "∂context");
        Assert.Equal(modules.Gradients.Keys.Order(), kernel.Gradients.Keys.Order());
        int hiddenLayers = conditioned ? Math.Max(layers, 3) : layers;
        Assert.Equal(3 * hiddenLayers + 2, kernel.Gradients.Count);                                  // weight, bias, table per layer + output
        foreach (var (name, gradient) in kernel.Gradients) Close(modules.Gradients[name], gradient, name);
    }

    /// <summary>A timestep outside 1..T is refused with the same message on both paths, naming the range and the values.</summary>
    [Theory]
    [InlineData(0)]
    [InlineData(Steps + 1)]
    public void TimestepsOutsideTheTablesAreRefusedOnBothPaths(long bad)
    {
        manual_seed(2);
        using var prior = new TimeConditionedMlp(Steps, hidden: 64, hiddenLayers: 2);
        using var posterior = new ConditionalDenoiser(Steps, hidden: 64);
        using var y = randn([6, 2]);
        using var context = randn([6, 2]);
        using var t = full([6], 3L, dtype: ScalarType.Int64);
        t[4] = bad;
        bool previous = DenoiserStepFunction.UseKernel;
        try
        {
            foreach (bool useKernel in new[] { true, false })
            {
                DenoiserStepFunction.UseKernel = useKernel;
                var priorError = Assert.Throws<ArgumentOutOfRangeException>(() => prior.call(y, t));
                Assert.Contains($"TimeConditionedMlp: timesteps must lie in 1..{Steps}, got values in {Math.Min(3, bad)}..{Math.Max(3, bad)}", priorError.Message);
                var posteriorError = Assert.Throws<ArgumentOutOfRangeException>(() => posterior.call(y, context, t));
                Assert.Contains($"ConditionalDenoiser: timesteps must lie in 1..{Steps}", posteriorError.Message);
            }
        }
        finally
        {
            DenoiserStepFunction.UseKernel = previous;
        }
        using var wrongType = full([6], 3, dtype: ScalarType.Int32);
        Assert.Contains("timesteps t must be an int64 vector [6]", Assert.Throws<ArgumentException>(() => prior.call(y, wrongType)).Message);
    }

    /// <summary>Where the kernel does not apply the modules run: float64, hidden widths not a multiple of 32, wide inputs.</summary>
    [Fact]
    public void TheModulesRunWhereTheKernelDoesNotApply()
    {
        manual_seed(4);
        using var t = full([4], 2L, dtype: ScalarType.Int64);
        bool Applies(TimeConditionedMlp network, Tensor y)
        {
            var n = (ITimeConditionedNetwork)network;
            using var result = TimeConditionedLayers.AsOneOperation(n.Layers, n.TimeEmbeddings, n.Output, y, t, -1, -1, Steps, "probe");
            return result is not null;
        }
        using var paper = new TimeConditionedMlp(Steps, hidden: 128);
        using var narrowHidden = new TimeConditionedMlp(Steps, hidden: 48);
        using var wide = new TimeConditionedMlp(Steps, dataDim: DenoiserChainKernel.MaxNarrowWidth + 1, hidden: 64);
        using var y2 = randn([4, 2]);
        Assert.Equal(Vector512.IsHardwareAccelerated, Applies(paper, y2));
        Assert.False(Applies(narrowHidden, y2));
        using var y9 = randn([4, DenoiserChainKernel.MaxNarrowWidth + 1]);
        Assert.False(Applies(wide, y9));
        using var double64 = new TimeConditionedMlp(Steps, hidden: 128);
        double64.to(ScalarType.Float64);
        using var y64 = randn([4, 2], dtype: ScalarType.Float64);
        Assert.False(Applies(double64, y64));
        // And each still computes: the module path's shapes.
        Assert.Equal(new long[] { 4, 2 }, narrowHidden.call(y2, t).shape);
        Assert.Equal(new long[] { 4, DenoiserChainKernel.MaxNarrowWidth + 1 }, wide.call(y9, t).shape);
        Assert.Equal(new long[] { 4, 2 }, double64.call(y64, t).shape);
    }
}
