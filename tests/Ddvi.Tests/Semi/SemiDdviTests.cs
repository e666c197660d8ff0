using Ddvi.Likelihoods;
using Ddvi.Models;
using Ddvi.Objectives;
using Ddvi.Priors;
using TorchSharp;
using static TorchSharp.torch;

namespace Ddvi.Tests.Semi;

public class SemiDdviTests
{
    /// <summary>A small semi-supervised DDVI model in float64, eval mode (dropout off).</summary>
    internal static SemiDdviModel Small(int classes = 4, int steps = 6, int inputDim = 12, ScalarType dtype = ScalarType.Float64)
    {
        manual_seed(7);
        var model = SemiDdviModel.Paper(inputDim, latentDim: 2, classes, hidden: 16, steps, dropout: 0.2, auxiliaryDropout: 0.4, contextDim: 2, denoiserHidden: 8);
        model.to(dtype);
        model.eval();
        return model;
    }

    [Fact]
    public void BatchedClassChainsEqualClassByClassChains()
    {
        using var model = Small();
        using var scope = NewDisposeScope();
        using var generator = new Generator(3);
        var yT = RandomDraws(5, 2, generator);
        var context = RandomDraws(5, 2, generator);
        foreach (bool conditioned in new[] { false, true })
        {
            var batched = model.RunChains(yT, context, conditioned, keepStates: true);            // [T + 1, C, B, d]
            Assert.Equal(new long[] { 7, 4, 5, 2 }, batched.shape);
            for (int c = 0; c < 4; c++)
            {
                var single = model.RunClassChain(c, yT, context, conditioned);                    // [T + 1, B, d]
                Assert.True((batched.select(1, c) - single).abs().max().item<double>() < 1e-12, $"class {c}, conditioned {conditioned}");
            }
            var z = model.RunChains(yT, context, conditioned, keepStates: false);
            Assert.True((z[0] - batched[-1]).abs().max().item<double>() < 1e-12);
        }
    }

    [Fact]
    public void BatchedPredictionsEqualEachClassNetworkAtPerExampleTimesteps()
    {
        using var model = Small();
        using var scope = NewDisposeScope();
        using var generator = new Generator(4);
        var y = RandomDraws(4 * 5, 2, generator).view(4, 5, 2);
        var context = RandomDraws(5, 2, generator);
        var t = tensor(new long[] { 1, 6, 3, 2, 5 });
        foreach (var (denoisers, ctx) in new[] { (model.PriorDenoisers, (Tensor?)null), (model.PosteriorDenoisers, context) })
        {
            var batched = denoisers.Predict(y, ctx, t);
            for (int c = 0; c < 4; c++)
                Assert.True((batched[c] - denoisers.PredictClass(c, y[c], ctx, t)).abs().max().item<double>() < 1e-12);
        }
    }

    private static Tensor RandomDraws(long rows, long cols, Generator generator) => randn([rows, cols], dtype: float64, generator: generator);
}
