using Ddvi.FastPaths;
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
    internal static SemiDdviModel Small(int classes = 10, int steps = 6, int inputDim = 12, ScalarType dtype = ScalarType.Float64)
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
            Assert.Equal(new long[] { 7, 10, 5, 2 }, batched.shape);
            for (int c = 0; c < 10; c++)
            {
                var single = model.RunClassChain(c, yT, context, conditioned);                    // [T + 1, B, d]
                Assert.True((batched.select(1, c) - single).abs().max().item<double>() < 1e-12, $"class {c}, conditioned {conditioned}");
            }
            var z = model.RunChains(yT, context, conditioned, keepStates: false);
            Assert.True((z[0] - batched[-1]).abs().max().item<double>() < 1e-12);
        }
    }

    [Fact]
    public void TheRecomputingChainHasTheRecordedChainsValuesAndGradients()
    {
        // 23 steps: segments of 10, 10 and 3 in the backward pass.
        using var model = Small(steps: 23);
        model.train();
        using var scope = NewDisposeScope();
        foreach (bool conditioned in new[] { false, true })
        {
            (Tensor States, Tensor[] Grads) Run(bool checkpointed)
            {
                model.CheckpointedChains = checkpointed;
                model.zero_grad();
                using var generator = new Generator(5);
                var yT = RandomDraws(6, 2, generator).requires_grad_(true);
                var context = RandomDraws(6, 2, generator).requires_grad_(true);
                var states = model.RunChains(yT, context, conditioned, keepStates: true);
                var weights = RandomDraws(states.numel(), 1, generator).view(states.shape);
                (states * weights).sum().backward();
                var denoisers = conditioned ? model.PosteriorDenoisers : model.PriorDenoisers;
                var grads = denoisers.parameters().Select(p => p.grad!.clone()).Append(yT.grad!.clone());
                if (conditioned) grads = grads.Append(context.grad!.clone());
                return (states.detach(), grads.ToArray());
            }
            var (recorded, recordedGrads) = Run(false);
            var (recomputed, recomputedGrads) = Run(true);
            Assert.True((recorded - recomputed).abs().max().item<double>() < 1e-12);
            Assert.Equal(recordedGrads.Length, recomputedGrads.Length);
            for (int i = 0; i < recordedGrads.Length; i++)
                Assert.True((recordedGrads[i] - recomputedGrads[i]).abs().max().item<double>() < 1e-10, $"gradient {i}, conditioned {conditioned}");
        }
    }

    [Fact]
    public void FrozenNetworksGetNoGradientAndTheStartTheSameOne()
    {
        // The warm-up holds the prior chains fixed (requires_grad off): the recomputing chain skips their weight gradients.
        using var model = Small(steps: 12);
        using var scope = NewDisposeScope();
        Tensor StartGrad(bool checkpointed)
        {
            model.CheckpointedChains = checkpointed;
            using var generator = new Generator(8);
            var yT = RandomDraws(4, 2, generator).requires_grad_(true);
            model.RunChains(yT, null, conditioned: false, keepStates: false).square().sum().backward();
            return yT.grad!.clone();
        }
        foreach (var p in model.PriorDenoisers.parameters()) p.requires_grad_(false);
        var recorded = StartGrad(false);
        var recomputed = StartGrad(true);
        Assert.True((recorded - recomputed).abs().max().item<double>() < 1e-10);
        Assert.All(model.PriorDenoisers.parameters(), p => Assert.True(p.grad is null || p.grad.IsInvalid));
    }

    [Fact]
    public void BatchedPredictionsEqualEachClassNetworkAtPerExampleTimesteps()
    {
        using var model = Small();
        using var scope = NewDisposeScope();
        using var generator = new Generator(4);
        var y = RandomDraws(10 * 5, 2, generator).view(10, 5, 2);
        var context = RandomDraws(5, 2, generator);
        var t = tensor(new long[] { 1, 6, 3, 2, 5 });
        foreach (var (denoisers, ctx) in new[] { (model.PriorDenoisers, (Tensor?)null), (model.PosteriorDenoisers, context) })
        {
            var batched = denoisers.Predict(y, ctx, t);
            for (int c = 0; c < 10; c++)
                Assert.True((batched[c] - denoisers.PredictClass(c, y[c], ctx, t)).abs().max().item<double>() < 1e-12);
        }
    }

    private static Tensor RandomDraws(long rows, long cols, Generator generator) => randn([rows, cols], dtype: float64, generator: generator);

    /// <summary>Images in [0, 1] of width 12 for the small model.</summary>
    private static Tensor Images(long rows, long seed)
    {
        using var generator = new Generator((ulong)seed);
        return rand([rows, 12], dtype: float64, generator: generator);
    }

    private static ClassConditionalDensity Density(ILabelledPrior prior) => new(prior, seed: 5, CPU, samplesPerClass: 200);

    [Fact]
    public void TheUnlabelledObjectiveIsTheQWeightedSumOfTheLabelledOnesClassByClass()
    {
        using var model = Small();
        var prior = new PinwheelPrior(CPU);
        using var density = Density(prior);
        // β = 1 and no entropy or cross-entropy: the loss is the class terms plus the class-free KL.
        var weights = new SemiDdviWeights(KlWeight: 1, PriorWeight: 1, MatchingWeight: 1, EntropyWeight: 0, ClassifierWeight: 0);
        for (int example = 0; example < 2; example++)
        {
            using var scope = NewDisposeScope();
            var x = Images(1, 10 + example);
            double Loss(long label, out double kl)
            {
                using var generator = new Generator(21);
                var terms = SemiDdviObjectives.WakeLoss(model, x, tensor(new[] { label }), density, weights, generator);
                kl = terms.Terms.Single(t => t.Name == "kl").Value.item<double>();
                return terms.Total.item<double>();
            }
            double unlabelled = Loss(-1, out double kl);
            var q = nn.functional.softmax(model.ClassLogits(x), 1)[0].data<double>().ToArray();
            double weighted = Enumerable.Range(0, 10).Sum(c => q[c] * (Loss(c, out _) - kl));
            Assert.Equal(weighted, unlabelled - kl, 9);
        }
    }

    [Fact]
    public void EntropyTermIsPositiveAndWeighsTheUnlabelledExamplesOnly()
    {
        using var scope = NewDisposeScope();
        var logits = tensor(new[,] { { 0.0, 0.0, 0.0 }, { 0.0, Math.Log(2), Math.Log(7) }, { 5.0, -1.0, 2.0 } });
        var labels = tensor(new long[] { -1, -1, 2 });
        double H(double[] p) => -p.Sum(v => v * Math.Log(v));
        double expected = (Math.Log(3) + H([0.1, 0.2, 0.7])) / 2;
        Assert.Equal(expected, SemiSupervision.Entropy(logits, labels).item<double>(), 12);
        Assert.Equal(0.0, SemiSupervision.Entropy(logits, tensor(new long[] { 0, 1, 2 })).item<double>(), 12);
        // Cross-entropy reads the labelled row only: −log softmax(5, −1, 2)[2].
        double ce = -(2.0 - Math.Log(Math.Exp(5) + Math.Exp(-1) + Math.Exp(2)));
        Assert.Equal(ce, SemiSupervision.CrossEntropy(logits, labels).item<double>(), 12);

        // In the wake loss the term is + β · 0.001 · H: it raises the loss, so minimising it sharpens q(c|x).
        using var model = Small();
        var prior = new PinwheelPrior(CPU);
        using var density = Density(prior);
        var x = Images(3, 1);
        var batchLabels = tensor(new long[] { -1, 2, -1 });
        double Loss(double entropyWeight)
        {
            using var generator = new Generator(2);
            return SemiDdviObjectives.WakeLoss(model, x, batchLabels, density, new SemiDdviWeights(KlWeight: 0.1, EntropyWeight: entropyWeight), generator).Total.item<double>();
        }
        double h = SemiSupervision.Entropy(model.ClassLogits(x), batchLabels).item<double>();
        Assert.True(h > 0);
        Assert.Equal(0.1 * 0.001 * h, Loss(0.001) - Loss(0), 9);
    }

    [Fact]
    public void LatentsRouteEachExampleThroughThePredictedClassChain()
    {
        using var model = Small();
        using var scope = NewDisposeScope();
        var x = Images(8, 3);
        foreach (var stage in new[] { DdviStage.Warmup, DdviStage.Ddvi })
        {
            model.Stage = stage;
            using var generator = new Generator(9);
            var (yT, z) = model.EncodeWithStart(x, generator);
            var predicted = model.ClassLogits(x).argmax(1).data<long>().ToArray();
            Assert.True(predicted.Distinct().Count() > 1, "the test needs examples of several predicted classes");
            var context = model.AuxiliaryEncoder.call(x);
            for (int i = 0; i < 8; i++)
            {
                var own = model.RunClassChain((int)predicted[i], yT.narrow(0, i, 1), context.narrow(0, i, 1), stage == DdviStage.Ddvi)[-1];
                Assert.True((own - z.narrow(0, i, 1)).abs().max().item<double>() < 1e-12, $"row {i}, {stage}");
                int other = (int)(predicted[i] + 1) % 10;
                var wrong = model.RunClassChain(other, yT.narrow(0, i, 1), context.narrow(0, i, 1), stage == DdviStage.Ddvi)[-1];
                Assert.True((wrong - z.narrow(0, i, 1)).abs().max().item<double>() > 1e-6);
            }
        }
    }

    [Fact]
    public void TrainingStepsKeepMemoryBounded()
    {
        using var model = Small(dtype: ScalarType.Float32);
        model.train();
        var prior = new PinwheelPrior(CPU);
        using var density = Density(prior);
        var weights = new SemiDdviWeights();
        using var wake = new FusedAdam(model.WakeParameters(), 1e-3);
        using var sleep = new FusedAdam(model.SleepParameters(), 1e-3);
        using var generator = new Generator(1);
        using var data = rand(64, 12);
        using var labels = tensor(Enumerable.Range(0, 64).Select(i => i % 8 == 0 ? (long)(i % 10) : -1L).ToArray());
        long liveAfterWarmup = 0, rssAfterWarmup = 0;
        for (int step = 0; step < 50; step++)
        {
            using (NewDisposeScope())
            {
                wake.zero_grad();
                SemiDdviObjectives.WakeLoss(model, data, labels, density, weights, generator).Total.backward();
                wake.step();
                sleep.zero_grad();
                SemiDdviObjectives.SleepLoss(model, prior, 64, weights, generator).Total.backward();
                sleep.step();
            }
            if (step == 9)
            {
                liveAfterWarmup = DisposeScopeManager.Statistics.ThreadTotalLiveCount;
                rssAfterWarmup = Environment.WorkingSet;
            }
        }
        Assert.Equal(liveAfterWarmup, DisposeScopeManager.Statistics.ThreadTotalLiveCount);
        Assert.True(Environment.WorkingSet - rssAfterWarmup < 64L << 20, $"resident memory grew by {(Environment.WorkingSet - rssAfterWarmup) >> 20} MiB over 40 steps");
    }
}
