using Ddvi.FastPaths;
using Ddvi.Diffusion;
using Ddvi.Models;
using Ddvi.Objectives;
using Ddvi.Priors;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Ddvi.Tests.Objectives;

/// <summary>N(mean, std² I) on R², one class: the tests' prior with an exact density.</summary>
sealed class TestGaussianPrior(double[] mean, double std, ScalarType dtype = ScalarType.Float32) : ILabelledPrior
{
    public TestGaussianPrior(ScalarType dtype = ScalarType.Float32) : this([0.0, 0.0], 1.0, dtype) { }

    public string Name => "test_gaussian";
    public int Dimension => 2;
    public int ClassCount => 1;
    public bool HasExactDensity => true;
    public string DensityDescription => "exact";

    public (Tensor Z, Tensor Classes) SampleLabelled(long n, Generator generator)
        => (SampleClass(0, n, generator), zeros(n, dtype: ScalarType.Int64));

    public Tensor SampleClass(int classIndex, long n, Generator generator)
    {
        using var scope = NewDisposeScope();
        var z = tensor(mean, dtype: dtype) + std * randn([n, 2], dtype: dtype, generator: generator);
        return z.MoveToOuterDisposeScope();
    }

    public Tensor LogDensity(Tensor z)
    {
        using var scope = NewDisposeScope();
        var m = tensor(mean, dtype: z.dtype).expand_as(z);
        return GaussianMath.LogDensity(z, m, full_like(z, std * std)).MoveToOuterDisposeScope();
    }
}

public class DdviObjectivesTests
{
    const int InputDim = 12;
    const int PriorSteps = 4;
    const int PosteriorSteps = 6;

    static Generator Seeded(long seed) => new Generator((ulong)seed, CPU);

    static DdviModel SmallModel(long seed = 0, int hidden = 16, int posteriorSteps = PosteriorSteps)
    {
        manual_seed(seed);
        return DdviModel.Paper(inputDim: InputDim, hidden: hidden, priorSteps: PriorSteps, posteriorSteps: posteriorSteps, denoiserHidden: hidden);
    }

    static Tensor Data(long batch, long seed, ScalarType dtype = ScalarType.Float32)
        => rand([batch, InputDim], dtype: dtype, generator: Seeded(seed));

    static double Value(Tensor scalar) => scalar.to(ScalarType.Float64).item<double>();

    static double Term(LossTerms terms, string name) => Value(terms.Terms.Single(t => t.Name == name).Value);

    static Parameter Named(nn.Module model, string name) => model.named_parameters().Single(p => p.name == name).parameter;

    static void ConstantOutput(nn.Module model, string module, double[] bias)
    {
        using var noGrad = no_grad();
        Named(model, $"{module}.weight").zero_();
        using var values = tensor(bias, dtype: Named(model, $"{module}.bias").dtype);
        Named(model, $"{module}.bias").copy_(values);
    }

    static bool HasGradient(nn.Module module)
        => module.parameters().Any(p => p.grad is { } g && g.abs().sum().item<float>() > 0);

    static bool HasNoGradient(nn.Module module)
        => module.parameters().All(p => p.grad is null || p.grad.abs().sum().item<float>() == 0);

    [Fact]
    public void EachLossReturnsAFiniteScalarWithItsNamedTerms()
    {
        using var model = SmallModel();
        var prior = new TestGaussianPrior();
        using var scope = NewDisposeScope();
        var x = Data(5, 1);

        var cases = new (LossTerms Terms, string[] Names)[]
        {
            (DdviObjectives.PriorDiffusionLoss(model.PriorDenoiser, model.PriorSchedule, prior, 9, NoiseLossKind.Huber, Seeded(2)), ["noise"]),
            (DdviObjectives.WarmupLoss(model, x, prior, new DdviWarmupWeights(), Seeded(3)), ["bce", "kl", "noise"]),
            (DdviObjectives.WakeLoss(model, x, prior, new DdviWeights(), Seeded(4)), ["bce", "kl", "log_p", "matching"]),
            (DdviObjectives.SleepLoss(model, prior, 9, new DdviWeights(), Seeded(5)), ["noise"]),
        };
        foreach (var (terms, names) in cases)
        {
            Assert.Equal(names, terms.Terms.Select(t => t.Name));
            Assert.Empty(terms.Total.shape);
            Assert.True(double.IsFinite(Value(terms.Total)));
            Assert.All(terms.Terms, t => Assert.True(t.Value.shape.Length == 0 && double.IsFinite(Value(t.Value)), t.Name));
        }
    }

    [Fact]
    public void WeightsHaveTheReleaseDefaults()
    {
        var warmup = new DdviWarmupWeights();
        Assert.Equal((0.01, 1.0, NoiseLossKind.Huber), (warmup.KlWeight, warmup.NoiseWeight, warmup.NoiseLoss));
        var ddvi = new DdviWeights();
        Assert.Equal((0.003, 1.0, 1.0, NoiseLossKind.Huber), (ddvi.KlWeight, ddvi.PriorWeight, ddvi.MatchingWeight, ddvi.NoiseLoss));
    }

    [Fact]
    public void TotalsAreTheWeightedSumsOfTheirTerms()
    {
        using var model = SmallModel(seed: 1);
        model.eval();
        var prior = new TestGaussianPrior();
        using var scope = NewDisposeScope();
        var x = Data(6, 2);

        var wake = DdviObjectives.WakeLoss(model, x, prior, new DdviWeights(KlWeight: 0.5, PriorWeight: 2, MatchingWeight: 3), Seeded(3));
        double expectedWake = Term(wake, "bce") + 0.5 * (Term(wake, "kl") - 2 * Term(wake, "log_p")) + 3 * Term(wake, "matching");
        Assert.Equal(expectedWake, Value(wake.Total), 5);

        var warmup = DdviObjectives.WarmupLoss(model, x, prior, new DdviWarmupWeights(KlWeight: 0.25, NoiseWeight: 4), Seeded(4));
        Assert.Equal(Term(warmup, "bce") + 0.25 * Term(warmup, "kl") + 4 * Term(warmup, "noise"), Value(warmup.Total), 5);

        var sleep = DdviObjectives.SleepLoss(model, prior, 8, new DdviWeights(MatchingWeight: 2.5), Seeded(5));
        Assert.Equal(2.5 * Term(sleep, "noise"), Value(sleep.Total), 5);

        // The wake terms are the posterior's: BCE of its decoded z, the batch-mean KL and log p(z).
        var posterior = model.DdviPosterior(x, Seeded(3));
        Assert.Equal(Value(nn.functional.binary_cross_entropy_with_logits(model.DecodeOutput(posterior.Z), x)), Term(wake, "bce"), 5);
        Assert.Equal(Value(GaussianMath.KlToStandardNormal(posterior.Mean, posterior.Variance).mean()), Term(wake, "kl"), 5);
        Assert.Equal(Value(prior.LogDensity(posterior.Z).mean()), Term(wake, "log_p"), 5);
    }

    [Fact]
    public void TheAggregateTermIsOffByDefaultAndAddsItsWeightedMmdWhenOn()
    {
        using var model = SmallModel(seed: 2);
        model.eval();
        var prior = new TestGaussianPrior();
        using var scope = NewDisposeScope();
        var x = Data(16, 3);

        // Off (the release's): the same terms, and no draw of its own, so the generator is where the release leaves it.
        var offGenerator = Seeded(7);
        var off = DdviObjectives.WakeLoss(model, x, prior, new DdviWeights(), offGenerator);
        Assert.DoesNotContain(off.Terms, t => t.Name == "aggregate");
        var releaseGenerator = Seeded(7);
        DdviObjectives.WakeLoss(model, x, prior, DdviWeights.Release, releaseGenerator);
        Assert.Equal(releaseGenerator.get_state().data<byte>().ToArray(), offGenerator.get_state().data<byte>().ToArray());

        // On: every other term as before (its prior draws come after the step's others), plus λ_agg·MMD²(z, z') with
        // z' the next 16 draws of the prior from the same generator.
        var onGenerator = Seeded(7);
        var on = DdviObjectives.WakeLoss(model, x, prior, new DdviWeights(AggregateWeight: 2.5), onGenerator);
        foreach (string name in new[] { "bce", "kl", "log_p", "matching" })
            Assert.Equal(Term(off, name), Term(on, name), 6);
        var replay = Seeded(7);
        var z = model.DdviPosterior(x, replay).Z;
        GaussianDiffusion.SampleTimesteps(16, model.PosteriorSchedule.Steps, replay, z.device);
        var expected = AggregateMatching.SquaredMmd(z, ((IPrior)prior).Sample(16, replay));
        Assert.Equal(Value(expected), Term(on, "aggregate"), 6);
        Assert.True(Term(on, "aggregate") > 0);
        Assert.Equal(Value(off.Total) + 2.5 * Term(on, "aggregate"), Value(on.Total), 5);
    }

    [Fact]
    public void SquaredMmdIsTheEvaluationMetricsValueAndItsGradientMovesTheLatentsTowardsThePrior()
    {
        using var scope = NewDisposeScope();
        var generator = Seeded(11);
        var latents = (randn([40, 2], dtype: ScalarType.Float64, generator: generator) * 0.3 + 1.5).requires_grad_(true);
        var priorSamples = randn([50, 2], dtype: ScalarType.Float64, generator: generator);
        var mmd = AggregateMatching.SquaredMmd(latents, priorSamples);
        // The same V-statistic and kernel as the MMD metric (which blocks and sums in float64 under no_grad).
        Assert.Equal(Ddvi.Evaluation.MaximumMeanDiscrepancy.Compute(latents, priorSamples, AggregateMatching.DefaultSigmas), Value(mmd), 10);
        Assert.Equal(0.0, Value(AggregateMatching.SquaredMmd(priorSamples, priorSamples)), 12);

        // A small step against its gradient lowers it: the gradient pulls the shifted, shrunken set towards N(0, I).
        mmd.backward();
        using (no_grad())
        {
            var moved = latents - 0.5 * latents.grad!;
            Assert.True(Value(AggregateMatching.SquaredMmd(moved, priorSamples)) < Value(mmd));
        }
        Assert.Throws<ArgumentException>(() => AggregateMatching.SquaredMmd(zeros(3, 2), zeros(3, 3)));
        Assert.Throws<ArgumentException>(() => AggregateMatching.SquaredMmd(zeros(0, 2), zeros(3, 2)));
        Assert.Contains("σ", Assert.Throws<ArgumentException>(() => AggregateMatching.SquaredMmd(zeros(3, 2), zeros(3, 2), [0.1, 0])).Message);
    }

    [Fact]
    public void WakeGradientsReachEncoderAuxiliaryEncoderPosteriorDenoiserAndDecoderOnly()
    {
        using var model = SmallModel(seed: 2);
        using var scope = NewDisposeScope();
        DdviObjectives.WakeLoss(model, Data(8, 3), new TestGaussianPrior(), new DdviWeights(), Seeded(4)).Total.backward();
        Assert.True(HasGradient(model.Encoder));
        Assert.True(HasGradient(model.AuxiliaryEncoder));
        Assert.True(HasGradient(model.PosteriorDenoiser));
        Assert.True(HasGradient(model.Decoder));
        Assert.All(model.PriorDenoiser.parameters(), p => Assert.Null(p.grad));
    }

    [Fact]
    public void SleepGradientsReachOnlyThePosteriorDenoiserAndTheAuxiliaryEncoder()
    {
        using var model = SmallModel(seed: 3);
        using var scope = NewDisposeScope();
        DdviObjectives.SleepLoss(model, new TestGaussianPrior(), 8, new DdviWeights(), Seeded(5)).Total.backward();
        Assert.True(HasGradient(model.PosteriorDenoiser));
        Assert.True(HasGradient(model.AuxiliaryEncoder));
        Assert.True(HasNoGradient(model.Decoder));
        Assert.True(HasNoGradient(model.Encoder));
        Assert.True(HasNoGradient(model.PriorDenoiser));
    }

    [Fact]
    public void WarmupGradientsReachEncoderDecoderAndPriorDenoiserOnly()
    {
        using var model = SmallModel(seed: 4);
        using var scope = NewDisposeScope();
        DdviObjectives.WarmupLoss(model, Data(8, 5), new TestGaussianPrior(), new DdviWarmupWeights(), Seeded(6)).Total.backward();
        Assert.True(HasGradient(model.Encoder));
        Assert.True(HasGradient(model.Decoder));
        Assert.True(HasGradient(model.PriorDenoiser));
        Assert.True(HasNoGradient(model.AuxiliaryEncoder));
        Assert.True(HasNoGradient(model.PosteriorDenoiser));
    }

    [Fact]
    public void SleepLossDecreasesOverAHundredAdamStepsOnFantasies()
    {
        using var model = SmallModel(seed: 5, hidden: 32, posteriorSteps: 10);
        var prior = new TestGaussianPrior([1.0, -1.0], 0.1);
        using var optimizer = new FusedAdam(model.SleepParameters(), lr: 3e-3);
        var losses = Train(optimizer, 100, 7, generator => DdviObjectives.SleepLoss(model, prior, 64, new DdviWeights(), generator));
        Assert.True(losses[^10..].Average() < 0.7 * losses[..10].Average(), $"first 10: {losses[..10].Average()}, last 10: {losses[^10..].Average()}");
    }

    [Fact]
    public void PriorDiffusionLossDecreasesWhenTrainingThePriorDenoiser()
    {
        using var model = SmallModel(seed: 6, hidden: 32);
        var prior = new TestGaussianPrior([1.0, -1.0], 0.1);
        using var optimizer = new FusedAdam(model.PriorDiffusionParameters(), lr: 3e-3);
        var losses = Train(optimizer, 100, 8, generator
            => DdviObjectives.PriorDiffusionLoss(model.PriorDenoiser, model.PriorSchedule, prior, 64, NoiseLossKind.Huber, generator));
        Assert.True(losses[^10..].Average() < 0.7 * losses[..10].Average(), $"first 10: {losses[..10].Average()}, last 10: {losses[^10..].Average()}");
    }

    static double[] Train(optim.Optimizer optimizer, int steps, long seed, Func<Generator, LossTerms> loss)
    {
        using var generator = Seeded(seed);
        var losses = new double[steps];
        for (int i = 0; i < steps; i++)
        {
            using var scope = NewDisposeScope();
            optimizer.zero_grad();
            var terms = loss(generator);
            terms.Total.backward();
            optimizer.step();
            losses[i] = Value(terms.Total);
        }
        return losses;
    }

    [Fact]
    public void KlOfEqualGaussiansIsZeroAndTheElboSeesItWhenTheEncoderOutputsTheStandardNormal()
    {
        using var scope = NewDisposeScope();
        Assert.Equal(0.0, Value(GaussianMath.KlToStandardNormal(zeros(3, 2), ones(3, 2)).abs().max()));

        using var model = SmallModel(seed: 7);
        model.eval();
        ConstantOutput(model, "encoder.heads.0", [0.0, 0.0]);
        ConstantOutput(model, "encoder.heads.1", [0.0, 0.0]);
        var terms = DdviObjectives.ElboTerms(model, Data(4, 8), new TestGaussianPrior(), Seeded(9));
        Assert.Equal(0.0, Value(terms.KlYT.abs().max()));
    }

    [Theory]
    [InlineData(DdviStage.Ddvi)]
    [InlineData(DdviStage.Warmup)]
    public void ElboTermsAreFiniteAndAddUpToBothScales(DdviStage stage)
    {
        using var model = SmallModel(seed: 8);
        model.eval();
        model.Stage = stage;
        var prior = new TestGaussianPrior();
        using var scope = NewDisposeScope();
        var x = Data(7, 10);

        using var noGrad = no_grad();
        var terms = DdviObjectives.ElboTerms(model, x, prior, Seeded(11));
        foreach (var term in new[] { terms.LogLikelihood, terms.KlYT, terms.LogPrior, terms.Matching })
        {
            Assert.Equal(new long[] { 7 }, term.shape);
            Assert.True(isfinite(term).all().item<bool>());
        }
        Assert.Equal(InputDim, terms.PixelCount);
        Assert.True(terms.LogLikelihood.max().item<float>() <= 0);
        Assert.True(terms.KlYT.min().item<float>() >= 0);
        Assert.True(terms.Matching.min().item<float>() >= 0);

        var z = model.Posterior(x, Seeded(11)).Z;
        Assert.True(GaussianMath.BernoulliLogLikelihood(model.DecodeOutput(z), x).allclose(terms.LogLikelihood));
        Assert.True(prior.LogDensity(z).allclose(terms.LogPrior));

        var elbo = DdviObjectives.Elbo(model, x, prior, Seeded(11));
        var latent = terms.LogPrior - terms.KlYT - terms.Matching;
        Assert.True(elbo.NatsPerImage.allclose(terms.LogLikelihood + latent));
        Assert.True(elbo.ReleasePerPixelScale.allclose(terms.LogLikelihood / InputDim + latent));
    }

    [Theory]
    [InlineData(DdviStage.Ddvi)]
    [InlineData(DdviStage.Warmup)]
    public void ElboMatchingHasItsClosedFormWhenTheDenoiserPredictsAConstant(DdviStage stage)
    {
        // With ε̂ ≡ c every state lies on one forward ray, y_t = √ᾱ_t z + √(1 − ᾱ_t) c, so
        // y_{t−1} − μ̃_t = (√(1 − ᾱ_{t−1}) − wt_t √(1 − ᾱ_t)) c and the matching term is Σ_{t≥2} k_t² ‖c‖² / (2σ̃²_t).
        using var model = SmallModel(seed: 9);
        model.to(ScalarType.Float64).eval();
        model.Stage = stage;
        double[] c = [0.3, -0.2];
        ConstantOutput(model, stage == DdviStage.Ddvi ? "posteriorDenoiser.output" : "priorDenoiser.output", c);
        var schedule = model.CurrentSchedule;
        using var scope = NewDisposeScope();

        // The schedule's tables were rounded to float32 before the cast: k_t is a small difference, so read the tables the chain reads.
        double[] Table(Tensor table) => table.data<double>().ToArray();
        var sqrtOneMinusAlphaBar = Table(schedule.SqrtOneMinusAlphaBar);
        var sqrtOneMinusAlphaBarPrev = Table(schedule.SqrtOneMinusAlphaBarPrev);
        var wt = Table(schedule.PosteriorWt);
        var variance = Table(schedule.PosteriorVariance);
        double normSquared = c.Sum(v => v * v);
        double expected = 0;
        for (int t = 2; t <= schedule.Steps; t++)
        {
            double k = sqrtOneMinusAlphaBarPrev[t] - wt[t] * sqrtOneMinusAlphaBar[t];
            expected += k * k * normSquared / (2 * variance[t]);
        }
        Assert.True(expected > 0);

        using var noGrad = no_grad();
        var terms = DdviObjectives.ElboTerms(model, Data(5, 12, ScalarType.Float64), new TestGaussianPrior(ScalarType.Float64), Seeded(13));
        // Relative 1e-5: the float32-rounded tables break w0_t + wt_t √ᾱ_t = √ᾱ_{t−1} by ~1e-8, leaving a small z-dependent part.
        Assert.All(terms.Matching.data<double>().ToArray(), m => Assert.Equal(expected, m, expected * 1e-5));
    }

    [Fact]
    public void MatchingVanishesForTheZeroDenoiserOracleAndIsNonNegativeOtherwise()
    {
        // ε̂ ≡ 0 keeps the chain on y_t = √ᾱ_t z, where the DDIM step and the forward posterior mean agree exactly.
        using var model = SmallModel(seed: 10);
        model.to(ScalarType.Float64).eval();
        var prior = new TestGaussianPrior(ScalarType.Float64);
        using var scope = NewDisposeScope();
        var x = Data(6, 14, ScalarType.Float64);

        var before = DdviObjectives.WakeLoss(model, x, prior, new DdviWeights(), Seeded(15));
        Assert.True(Term(before, "matching") >= 0);

        ConstantOutput(model, "posteriorDenoiser.output", [0.0, 0.0]);
        var wake = DdviObjectives.WakeLoss(model, x, prior, new DdviWeights(), Seeded(15));
        Assert.Equal(0.0, Term(wake, "matching"), 1e-12);
        var terms = DdviObjectives.ElboTerms(model, x, prior, Seeded(15));
        Assert.Equal(0.0, Value(terms.Matching.abs().max()), 1e-9);
    }

    [Fact]
    public void WakeAndSleepStepsLeaveNoTensorsBehind()
    {
        using var model = SmallModel(seed: 11);
        var prior = new TestGaussianPrior();
        using var wakeOptimizer = new FusedAdam(model.WakeParameters(), lr: 1e-3);
        using var sleepOptimizer = new FusedAdam(model.SleepParameters(), lr: 1e-3);
        using var generator = Seeded(16);
        using var x = Data(8, 17);

        void Step()
        {
            using var scope = NewDisposeScope();
            wakeOptimizer.zero_grad();
            DdviObjectives.WakeLoss(model, x, prior, new DdviWeights(), generator).Total.backward();
            wakeOptimizer.step();
            sleepOptimizer.zero_grad();
            DdviObjectives.SleepLoss(model, prior, 8, new DdviWeights(), generator).Total.backward();
            sleepOptimizer.step();
        }

        Step();
        Step();
        long before = DisposeScopeManager.Statistics.ThreadTotalLiveCount;
        for (int i = 0; i < 3; i++) Step();
        Assert.Equal(before, DisposeScopeManager.Statistics.ThreadTotalLiveCount);
    }

    [Fact]
    public void BadArgumentsAreRejectedWithTheirNames()
    {
        using var model = SmallModel();
        var prior = new TestGaussianPrior();
        using var scope = NewDisposeScope();
        var x = Data(3, 18);

        var negative = Assert.Throws<ArgumentOutOfRangeException>(() => DdviObjectives.WakeLoss(model, x, prior, new DdviWeights(KlWeight: -1), Seeded(1)));
        Assert.Contains("KlWeight", negative.Message);
        Assert.Contains("AggregateWeight", Assert.Throws<ArgumentOutOfRangeException>(
            () => DdviObjectives.WakeLoss(model, x, prior, new DdviWeights(AggregateWeight: -0.5), Seeded(1))).Message);
        Assert.Contains("MatchingWeight", Assert.Throws<ArgumentOutOfRangeException>(
            () => DdviObjectives.SleepLoss(model, prior, 4, new DdviWeights(MatchingWeight: double.NaN), Seeded(1))).Message);
        Assert.Contains("NoiseWeight", Assert.Throws<ArgumentOutOfRangeException>(
            () => DdviObjectives.WarmupLoss(model, x, prior, new DdviWarmupWeights(NoiseWeight: double.PositiveInfinity), Seeded(1))).Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => DdviObjectives.SleepLoss(model, prior, 0, new DdviWeights(), Seeded(1)));
        Assert.Throws<ArgumentOutOfRangeException>(
            () => DdviObjectives.PriorDiffusionLoss(model.PriorDenoiser, model.PriorSchedule, prior, 0, NoiseLossKind.Huber, Seeded(1)));
        var mismatch = Assert.Throws<ArgumentException>(
            () => DdviObjectives.PriorDiffusionLoss(model.PriorDenoiser, model.PosteriorSchedule, prior, 4, NoiseLossKind.Huber, Seeded(1)));
        Assert.Contains($"T = {PosteriorSteps}", mismatch.Message);
        Assert.Throws<ArgumentException>(() => DdviObjectives.WakeLoss(model, zeros(3, InputDim + 1), prior, new DdviWeights(), Seeded(1)));
        Assert.Throws<ArgumentNullException>(() => DdviObjectives.WakeLoss(model, x, prior, null!, Seeded(1)));
    }
}
