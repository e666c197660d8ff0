using Ddvi.Diffusion;
using Ddvi.Models;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Ddvi.Tests.Models;

public class DdviModelTests
{
    const int InputDim = 12;
    const int PriorSteps = 4;
    const int PosteriorSteps = 6;

    static Generator Seeded(long seed) => new Generator((ulong)seed, CPU);

    static DdviModel SmallModel(long seed = 0, NoiseScheduleKind schedule = NoiseScheduleKind.Linear)
    {
        manual_seed(seed);
        return DdviModel.Paper(inputDim: InputDim, hidden: 16, priorSteps: PriorSteps, posteriorSteps: PosteriorSteps,
            schedule: schedule, denoiserHidden: 16);
    }

    static Tensor Data(long batch, long seed, ScalarType dtype = ScalarType.Float32)
        => rand([batch, InputDim], dtype: dtype, generator: Seeded(seed));

    static bool Same(Tensor a, Tensor b) => a.shape.SequenceEqual(b.shape) && a.equal(b).all().item<bool>();

    static void AssertClose(Tensor expected, Tensor actual, double tolerance)
    {
        Assert.Equal(expected.shape, actual.shape);
        double error = (expected - actual).abs().max().to(ScalarType.Float64).item<double>();
        Assert.True(error < tolerance, $"max |difference| {error} ≥ {tolerance}");
    }

    static Parameter Named(nn.Module model, string name) => model.named_parameters().Single(p => p.name == name).parameter;

    /// <summary>Makes a denoiser output the constant <paramref name="bias"/> (ε̂ = c) by zeroing its output weight.</summary>
    static void ConstantOutput(nn.Module model, string denoiser, double[] bias)
    {
        using var noGrad = no_grad();
        Named(model, $"{denoiser}.output.weight").zero_();
        using var values = tensor(bias, dtype: Named(model, $"{denoiser}.output.bias").dtype);
        Named(model, $"{denoiser}.output.bias").copy_(values);
    }

    [Fact]
    public void PosteriorsAndDecoderHaveTheExpectedShapes()
    {
        using var model = SmallModel();
        using var scope = NewDisposeScope();
        var x = Data(5, 1);

        var warmup = model.WarmupPosterior(x, Seeded(2), keepTrajectory: true);
        foreach (var tensor in new[] { warmup.Z, warmup.YT, warmup.Mean, warmup.LogVariance, warmup.Variance })
            Assert.Equal(new long[] { 5, 2 }, tensor.shape);
        Assert.Null(warmup.Context);
        Assert.Equal(Enumerable.Range(1, PriorSteps).Reverse(), warmup.Trajectory!.Select(s => s.Step));
        Assert.Same(warmup.YT, warmup.Trajectory![0].Yt);

        var ddvi = model.DdviPosterior(x, Seeded(2), keepTrajectory: true);
        Assert.Equal(new long[] { 5, 2 }, ddvi.Z.shape);
        Assert.Equal(new long[] { 5, 2 }, ddvi.Context!.shape);
        Assert.Equal(Enumerable.Range(1, PosteriorSteps).Reverse(), ddvi.Trajectory!.Select(s => s.Step));
        Assert.All(ddvi.Trajectory!, s => Assert.Equal(new long[] { 5, 2 }, s.EpsHat.shape));
        Assert.Null(model.DdviPosterior(x, Seeded(2)).Trajectory);
        AssertClose(ddvi.LogVariance.exp(), ddvi.Variance, 1e-6);

        var (yT, z) = model.EncodeWithStart(x, Seeded(3));
        Assert.Equal(new long[] { 5, 2 }, yT.shape);
        Assert.Equal(new long[] { 5, 2 }, z.shape);
        Assert.Equal(new long[] { 5, 2 }, model.EncodeLatents(x, Seeded(3)).shape);

        var means = model.DecodeMeans(z);
        Assert.Equal(new long[] { 5, InputDim }, means.shape);
        Assert.True(means.min().item<float>() >= 0 && means.max().item<float>() <= 1);
        Assert.Equal(new long[] { 7, 2 }, model.SamplePriorDiffusion(7, Seeded(4)).shape);
    }

    [Fact]
    public void CheckpointKeysAreTheFieldNamesAndTheSchedulesAddNone()
    {
        using var model = DdviModel.Paper(denoiserHidden: 8, hidden: 8);
        var prefixes = model.state_dict().Keys.Select(k => k[..k.IndexOf('.')]).ToHashSet();
        Assert.Equal(new HashSet<string> { "encoder", "likelihood", "priorDenoiser", "auxiliaryEncoder", "posteriorDenoiser" }, prefixes);
        Assert.Equal(new long[] { 8, 784 }, model.state_dict()["encoder.hidden.0.weight"].shape);
        Assert.Equal(new long[] { 20, 8 }, model.state_dict()["priorDenoiser.timeEmbeddings.0.weight"].shape);
        Assert.Equal(new long[] { 40, 8 }, model.state_dict()["posteriorDenoiser.timeEmbeddings.0.weight"].shape);
        Assert.Equal(20, model.PriorSchedule.Steps);
        Assert.Equal(40, model.PosteriorSchedule.Steps);
        Assert.Equal(DdviStage.Ddvi, model.Stage);
    }

    [Fact]
    public void DdviPosteriorIsTheReparameterisedStartThenAHandRunDdimChain()
    {
        using var model = SmallModel(seed: 5);
        model.to(ScalarType.Float64).eval();
        using var scope = NewDisposeScope();
        var x = Data(6, 6, ScalarType.Float64);

        var sample = model.DdviPosterior(x, Seeded(7));

        var (mean, logVariance) = model.Encode(x);
        var eps = randn([6, 2], dtype: ScalarType.Float64, generator: Seeded(7));
        var yT = mean + (0.5 * logVariance).exp() * eps;
        AssertClose(yT, sample.YT, 1e-12);

        var context = model.AuxiliaryEncoder.forward(x);
        var y = yT;
        for (int step = PosteriorSteps; step >= 1; step--)
        {
            var t = full(6, step, dtype: ScalarType.Int64);
            y = GaussianDiffusion.ReverseStep(model.PosteriorSchedule, y, t, model.PosteriorDenoiser.forward(y, context, t));
        }
        AssertClose(y, sample.Z, 1e-12);
    }

    [Theory]
    [InlineData(DdviStage.Ddvi)]
    [InlineData(DdviStage.Warmup)]
    public void WithAZeroDenoiserTheChainIsTheDdimMapYTOverRootAlphaBar(DdviStage stage)
    {
        using var model = SmallModel(seed: 8);
        model.to(ScalarType.Float64).eval();
        model.Stage = stage;
        ConstantOutput(model, stage == DdviStage.Ddvi ? "posteriorDenoiser" : "priorDenoiser", [0.0, 0.0]);
        using var scope = NewDisposeScope();

        var (yT, z) = model.EncodeWithStart(Data(4, 9, ScalarType.Float64), Seeded(10));

        // ε̂ = 0 makes every step y_{t−1} = √(ᾱ_{t−1}/ᾱ_t) y_t, so the product telescopes to z = y_T/√ᾱ_T.
        var schedule = model.CurrentSchedule;
        Assert.Equal(stage == DdviStage.Ddvi ? PosteriorSteps : PriorSteps, schedule.Steps);
        AssertClose(yT / schedule.SqrtAlphaBar[schedule.Steps], z, 1e-12);
    }

    [Fact]
    public void StageSelectsThePosteriorBehindEncodeLatents()
    {
        using var model = SmallModel(seed: 11);
        model.eval();
        using var scope = NewDisposeScope();
        var x = Data(5, 12);

        model.Stage = DdviStage.Warmup;
        Assert.True(Same(model.WarmupPosterior(x, Seeded(13)).Z, model.EncodeLatents(x, Seeded(13))));
        Assert.True(Same(model.WarmupPosterior(x, Seeded(13)).Z, model.Posterior(x, Seeded(13)).Z));
        Assert.Same(model.PriorSchedule, model.CurrentSchedule);

        model.Stage = DdviStage.Ddvi;
        Assert.True(Same(model.DdviPosterior(x, Seeded(13)).Z, model.EncodeLatents(x, Seeded(13))));
        Assert.False(Same(model.WarmupPosterior(x, Seeded(13)).Z, model.EncodeLatents(x, Seeded(13))));
        Assert.Same(model.PosteriorSchedule, model.CurrentSchedule);

        // Both posteriors start from the same y_T: the encoder and the draw are shared.
        Assert.True(Same(model.WarmupPosterior(x, Seeded(13)).YT, model.DdviPosterior(x, Seeded(13)).YT));
    }

    [Fact]
    public void EvalModeTurnsDropoutOffSoAFixedGeneratorFixesTheLatents()
    {
        using var model = SmallModel(seed: 14);
        using var scope = NewDisposeScope();
        var x = Data(8, 15);

        model.eval();
        Assert.True(Same(model.EncodeLatents(x, Seeded(16)), model.EncodeLatents(x, Seeded(16))));

        model.train();
        Assert.False(Same(model.EncodeLatents(x, Seeded(16)), model.EncodeLatents(x, Seeded(16))));
    }

    [Fact]
    public void SaveThenLoadReproducesEveryWeightAndOutput()
    {
        using var saved = SmallModel(seed: 17);
        using var loaded = SmallModel(seed: 18);
        saved.eval();
        loaded.eval();
        using var scope = NewDisposeScope();
        var x = Data(4, 19);
        Assert.False(Same(saved.EncodeLatents(x, Seeded(20)), loaded.EncodeLatents(x, Seeded(20))));

        using (var stream = new MemoryStream())
        {
            saved.save(stream);
            using var reader = new MemoryStream(stream.ToArray());
            loaded.load(reader);
        }

        var savedState = saved.state_dict();
        var loadedState = loaded.state_dict();
        Assert.Equal(savedState.Keys.Order(), loadedState.Keys.Order());
        Assert.All(savedState, kv => Assert.True(Same(kv.Value, loadedState[kv.Key]), kv.Key));
        foreach (var stage in new[] { DdviStage.Warmup, DdviStage.Ddvi })
        {
            saved.Stage = loaded.Stage = stage;
            var (yT, z) = saved.EncodeWithStart(x, Seeded(21));
            var (yTLoaded, zLoaded) = loaded.EncodeWithStart(x, Seeded(21));
            Assert.True(Same(yT, yTLoaded));
            Assert.True(Same(z, zLoaded));
            Assert.True(Same(saved.DecodeMeans(z), loaded.DecodeMeans(z)));
        }
        Assert.True(Same(saved.SamplePriorDiffusion(5, Seeded(22)), loaded.SamplePriorDiffusion(5, Seeded(22))));
    }

    [Fact]
    public void ParameterGroupsCoverTheRightModules()
    {
        using var model = SmallModel();
        static HashSet<Parameter> Of(IEnumerable<Parameter> parameters) => parameters.ToHashSet(ReferenceEqualityComparer.Instance as IEqualityComparer<Parameter>);
        var encoder = Of(model.Encoder.parameters());
        var decoder = Of(model.Decoder.parameters());
        var prior = Of(model.PriorDenoiser.parameters());
        var auxiliary = Of(model.AuxiliaryEncoder.parameters());
        var posterior = Of(model.PosteriorDenoiser.parameters());

        Assert.True(Of(model.PriorDiffusionParameters()).SetEquals(prior));
        Assert.True(Of(model.WarmupParameters()).SetEquals(encoder.Concat(decoder).Concat(prior)));
        Assert.True(Of(model.WakeParameters()).SetEquals(encoder.Concat(auxiliary).Concat(posterior).Concat(decoder)));
        Assert.True(Of(model.SleepParameters()).SetEquals(auxiliary.Concat(posterior)));
        Assert.True(Of(model.DecoderParameters()).SetEquals(decoder));
        Assert.Equal(model.parameters().Count(), encoder.Count + decoder.Count + prior.Count + auxiliary.Count + posterior.Count);
    }

    [Fact]
    public void BadInputsAndOptionsAreRejectedWithTheirNames()
    {
        using var model = SmallModel();
        using var scope = NewDisposeScope();
        var wrongWidth = Assert.Throws<ArgumentException>(() => model.DdviPosterior(zeros(3, InputDim + 1), Seeded(1)));
        Assert.Contains($"[B, {InputDim}]", wrongWidth.Message);
        Assert.Throws<ArgumentException>(() => model.EncodeLatents(zeros(InputDim), Seeded(1)));
        Assert.Throws<ArgumentNullException>(() => model.WarmupPosterior(zeros(3, InputDim), null!));
        Assert.Throws<ArgumentOutOfRangeException>(() => model.SamplePriorDiffusion(0, Seeded(1)));

        Assert.Contains("inputDim", Assert.Throws<ArgumentOutOfRangeException>(() => DdviModel.Paper(inputDim: 0)).Message);
        Assert.Contains("latentDim", Assert.Throws<ArgumentOutOfRangeException>(() => DdviModel.Paper(latentDim: 0)).Message);
        Assert.Contains("priorSteps", Assert.Throws<ArgumentOutOfRangeException>(() => DdviModel.Paper(priorSteps: 0)).Message);
        Assert.Contains("posteriorSteps", Assert.Throws<ArgumentOutOfRangeException>(() => DdviModel.Paper(posteriorSteps: 0)).Message);
        Assert.Contains("dropout", Assert.Throws<ArgumentOutOfRangeException>(() => DdviModel.Paper(dropout: 1.0)).Message);
        Assert.Contains("dropout", Assert.Throws<ArgumentOutOfRangeException>(() => DdviModel.Paper(hidden: 8, denoiserHidden: 8, auxiliaryDropout: -0.1)).Message);
    }
}
