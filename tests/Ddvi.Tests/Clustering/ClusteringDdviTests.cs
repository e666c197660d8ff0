using Ddvi.Inference;
using Ddvi.Likelihoods;
using Ddvi.Models;
using Ddvi.Objectives;
using Ddvi.Priors;
using Ddvi.Training;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Ddvi.Tests.Clustering;

/// <summary>The learned-mixture clustering model of the genomics experiment: its loss terms, the trainer's after-epoch
/// steps and gradient clip it relies on, and short trainings.</summary>
public class ClusteringDdviTests
{
    [Fact]
    public void TheBoxPenaltyIsTheWeightedMeanOfTheOvershoots()
    {
        using var means = tensor(new float[,] { { 3f, 0f }, { -2f, -4f } });
        // Overshoots above 2.5: 0.5 (mean over 4 coordinates 0.125); below −2.5: 1.5 (mean 0.375); × 100 → 50.
        using var penalty = ClusteringObjectives.BoundPenalty(means, 2.5, 100);
        Assert.Equal(50.0, penalty.item<float>(), 4);
        using var inside = tensor(new float[,] { { 2.4f, -2.4f } });
        using var none = ClusteringObjectives.BoundPenalty(inside, 2.5, 100);
        Assert.Equal(0.0, none.item<float>());
    }

    [Fact]
    public void TheSeparationHingeMatchesItsExpectationOverUniformPairs()
    {
        using var generator = new Generator(3);
        // Two centres 3 apart (beyond the margin): only pairs drawing one centre twice count, each η − √1e-6, half of them.
        using var far = tensor(new float[,] { { 0f, 0f }, { 3f, 0f } });
        using var farValue = ClusteringObjectives.Separation(far, 40_000, 1.5, generator);
        Assert.Equal(0.5 * (1.5 - 1e-3), farValue.item<float>(), 2);
        // One apart: distinct pairs add 1.5 − 1 = 0.5, so the mean is ½·1.499 + ½·0.5.
        using var near = tensor(new float[,] { { 0f, 0f }, { 1f, 0f } });
        using var nearValue = ClusteringObjectives.Separation(near, 40_000, 1.5, generator);
        Assert.Equal(0.5 * (1.5 - 1e-3) + 0.5 * 0.5, nearValue.item<float>(), 2);
    }

    [Fact]
    public void TheSeparationGradientPushesCloseCentresApart()
    {
        using var generator = new Generator(5);
        using var means = tensor(new float[,] { { 0f, 0f }, { 1f, 0f } }).requires_grad_(true);
        using var loss = ClusteringObjectives.Separation(means, 1000, 1.5, generator);
        loss.backward();
        var grad = means.grad!.data<float>().ToArray();
        Assert.True(grad[0] > 0, "descending the loss moves centre 0 towards −x, away from centre 1");
        Assert.True(grad[2] < 0, "and centre 1 towards +x");
        Assert.Equal(0f, grad[1], 6);
    }

    [Theory]
    [InlineData(0, 1.0)]
    [InlineData(100, 1.0)]
    [InlineData(109, 1.0)]
    [InlineData(110, 2.0)]
    [InlineData(199, 10.0)]
    public void TheSeparationWeightRampsAsTheRelease(int epoch, double expected) =>
        Assert.Equal(expected, new ClusteringWeights().SeparationWeight(epoch));

    [Fact]
    public void BadClusteringWeightsAreNamed()
    {
        var error = Assert.Throws<ArgumentOutOfRangeException>(() => new ClusteringWeights(Bound: 0).Validate());
        Assert.Contains("Bound", error.Message);
        error = Assert.Throws<ArgumentOutOfRangeException>(() => new ClusteringWeights(KlWeight: double.NaN).Validate());
        Assert.Contains("KlWeight", error.Message);
        error = Assert.Throws<ArgumentOutOfRangeException>(() => new ClusteringWeights(SeparationRampEvery: 0).Validate());
        Assert.Contains("SeparationRampEvery", error.Message);
    }

    [Fact]
    public void ReparameterisedMixtureDrawsCarryGradientToTheirCentres()
    {
        using var start = tensor(new double[,] { { -1, 0 }, { 1, 0 }, { 0, 2 } });
        using var prior = new LearnableGaussianMixture(start, initialStd: 0.125);
        using var generator = new Generator(9);
        var (z, classes) = prior.SampleReparameterised(3000, generator);
        using (z)
        using (classes)
        {
            z.sum().backward();
            // d(Σ z)/dμ_k = the number of draws of component k, in every coordinate.
            var counts = classes.bincount(null, 3).to(float32);
            var grad = prior.Means.grad!;
            Assert.True(grad.select(1, 0).allclose(counts));
            Assert.True(grad.select(1, 1).allclose(counts));
            // Equal weights: about a third each; the draws sit around their own centre with σ = 0.125.
            foreach (long count in counts.to(int64).data<long>()) Assert.InRange(count, 850, 1150);
            using var offsets = z.detach() - prior.Means.detach().index_select(0, classes);
            Assert.InRange(offsets.std().item<float>(), 0.115f, 0.135f);
        }
    }

    [Fact]
    public void AfterEpochStepsRunEpochPlusOneTimesAndTheBatchPhaseOnEveryBatch()
    {
        using var w = new Parameter(zeros(1));
        int batchSteps = 0, afterSteps = 0;
        var onBatches = new TrainingPhase
        {
            Name = "batch",
            Parameters = [w],
            LearningRate = 0.01,
            Loss = _ => { batchSteps++; var l = (w - 1).square().sum(); return new LossTerms(l, [("l", l)]); },
        };
        var after = new TrainingPhase
        {
            Name = "after",
            Parameters = [w],
            LearningRate = 0.01,
            OnBatches = false,
            StepsAfterEpoch = epoch => epoch + 1,
            Loss = step => { Assert.Null(step.Batch.X); afterSteps++; var l = (w + 1).square().sum(); return new LossTerms(l, [("l", l)]); },
        };
        using var model = new ParameterHolder(w);
        var history = new Trainer(new RecordingObserver()).Fit(model, [onBatches, after], new DataFreeSteps(4),
            new TrainerOptions("count", 3, 0, null), "{}", resume: false);
        Assert.Equal(3 * 4, batchSteps);
        Assert.Equal(1 + 2 + 3, afterSteps);
        Assert.True(history.History[0].Losses.ContainsKey("after/l"));
    }

    [Fact]
    public void TheWakeLossStaysFiniteWhenTheEncoderDrivesItsLogVarianceFarDown()
    {
        // The full-length HGDP run with unscaled PCs: the encoder's log σ² reached −109, σ² underflowed to 0 in float32 and
        // the KL computed through log σ² = log 0 made the wake loss infinite, its gradients NaN.
        torch.manual_seed(2);
        var likelihood = new GaussianLikelihood(new Mlp(2, [16], [6]), 2, 6, Math.Sqrt(0.5));
        var prior = new LearnableGaussianMixture(zeros(3, 2, dtype: ScalarType.Float64), initialStd: 0.125);
        using var model = new ClusteringDdvi(new Mlp(6, [16], [2, 2]), likelihood, new TimeConditionedMlp(5, 2, hidden: 16), prior);
        var encoder = (Mlp)model.Encoder;
        var heads = encoder.modules().OfType<Linear>().TakeLast(2).ToArray();                // μ head, log σ² head
        using (no_grad())
        {
            foreach (var head in heads) head.weight!.zero_();
            heads[0].bias!.copy_(tensor(new float[] { 0.3f, -0.2f }));
            heads[1].bias!.copy_(tensor(new float[] { -120f, -110f }));
        }
        using var generator = new Generator(1);
        using var x = randn(8, 6, generator: generator);
        var terms = ClusteringObjectives.WakeLoss(model, x, new ClusteringWeights(), generator);
        double kl = terms.Terms.Single(t => t.Name == "kl").Value.item<float>();
        Assert.Equal(0.5 * (0.09 + 0.04 - 2 + 230), kl, 3);
        Assert.True(double.IsFinite(terms.Total.item<float>()));
        terms.Total.backward();
        Assert.All(model.parameters().Where(p => p.grad is not null), p => Assert.True(p.grad!.isfinite().all().item<bool>()));
    }

    [Fact]
    public void AGradientClipBoundsTheJointNormBeforeTheStep()
    {
        using var p = new Parameter(tensor(new float[] { 0f, 0f }));
        using var q = new Parameter(tensor(new float[] { 0f }));
        var phase = new TrainingPhase
        {
            Name = "clipped",
            Parameters = [p, q],
            LearningRate = 1e-3,
            Clip = new GradientNormClip([p], 5.0),
            Loss = _ =>
            {
                var l = (p * tensor(new float[] { 30f, 40f })).sum() + 7 * q.sum();
                return new LossTerms(l, []);
            },
        };
        using var runner = new StepRunner([phase]);
        runner.BeginEpoch(0);
        using var generator = new Generator(1);
        runner.Step(TrainingBatch.Empty, 0, generator);
        // ‖(30, 40)‖ = 50 → scaled by 5 / 50; q is not clipped.
        var g = p.grad!.data<float>().ToArray();
        Assert.Equal(3f, g[0], 4);
        Assert.Equal(4f, g[1], 4);
        Assert.Equal(7f, q.grad!.item<float>(), 4);

        var bad = Assert.Throws<ArgumentOutOfRangeException>(() =>
        {
            using var runner = new StepRunner([new TrainingPhase
            {
                Name = "bad", Parameters = [p], LearningRate = 1e-3, Clip = new GradientNormClip([p], 0), Loss = _ => throw new InvalidOperationException(),
            }]);
        });
        Assert.Contains("'bad'", bad.Message);
    }

    [Fact]
    public void ClusteringDdviLearnsSeparatedCentresAndReconstructsAndResumesExactly()
    {
        using var data = ThreeGroups(seed: 2);
        using var folder = new TempFolder();
        // Straight through four epochs, and two then two more from the checkpoint: identical weights and centres.
        var (straight, straightHistory) = Train(data, epochs: 4, folder: null, resume: false);
        var (_, _) = Train(data, epochs: 2, folder: folder.Path, resume: false);
        var (resumed, _) = Train(data, epochs: 4, folder: folder.Path, resume: true);
        using (straight)
        using (resumed)
        {
            foreach (var ((name, a), (_, b)) in straight.state_dict().Zip(resumed.state_dict()))
                Assert.True(a.equal(b).all().item<bool>(), $"{name} differs after resuming");

            var wake = straightHistory.History.Select(r => r.Losses["wake/nll"]).ToList();
            Assert.True(wake[^1] < wake[0], $"the reconstruction improves: {string.Join(", ", wake)}");
            // The centres start in [0, 0.1)², at most 0.1·√2 apart; the hinge spreads them (10 Adam steps of 0.01 here).
            using var means = straight.Prior.Means.detach();
            using var distances = cdist(means.unsqueeze(0), means.unsqueeze(0)).squeeze(0);
            double spread = distances.max().item<float>();
            Assert.True(spread > 0.25, $"largest centre distance {spread}");
            Assert.True(means.abs().max().item<float>() <= 2.5f + 0.05f);
        }
    }

    private static Tensor ThreeGroups(int seed)
    {
        using var generator = new Generator((ulong)seed);
        using var centres = randn([3, 12], generator: generator) * 2;
        using var labels = arange(300L) % 3;
        return centres.index_select(0, labels) + 0.1 * randn([300, 12], generator: generator);
    }

    private static (ClusteringDdvi Model, TrainerState State) Train(Tensor data, int epochs, string? folder, bool resume)
    {
        torch.manual_seed(4);
        using var init = new Generator(8);
        var likelihood = new GaussianLikelihood(new Mlp(2, [32, 32], [12], 0.1), 2, 12, Math.Sqrt(0.5));
        var prior = new LearnableGaussianMixture(rand([4, 2], dtype: ScalarType.Float64, generator: init) * 0.1, initialStd: 0.125);
        var model = new ClusteringDdvi(new Mlp(12, [32, 32], [2, 2], 0.1), likelihood, new TimeConditionedMlp(5, 2, hidden: 16), prior);
        var phases = ClusteringPhases.ForDdvi(model, new ClusteringWeights(), learningRate: 1e-3, priorBatchSize: 64);
        var state = new Trainer(new RecordingObserver()).Fit(model, phases, new TensorBatches(data, null, 50),
            new TrainerOptions("clustering", epochs, 11, folder, CheckpointEvery: 1), "{}", resume);
        return (model, state);
    }

    private sealed class ParameterHolder : nn.Module
    {
        private readonly Parameter w;
        public ParameterHolder(Parameter w) : base(nameof(ParameterHolder))
        {
            this.w = w;
            RegisterComponents();
        }
    }
}
