using Ddvi.Inference;
using Ddvi.Likelihoods;
using Ddvi.Models;
using Ddvi.Priors;
using static TorchSharp.torch;

namespace Ddvi.Tests.Inference;

public sealed class DdviFitTests
{
    private static readonly DdviOptions Short = new()
    {
        Epochs = 2, BatchSize = 32, PosteriorSteps = 6, HiddenWidths = [16], DenoiserHidden = 16, ContextDim = 3, Seed = 1,
    };

    private static Tensor GaussianData(int rows, int width, int seed)
        => (3 * randn(new long[] { rows, width }, generator: new Generator((ulong)seed)) + 5).to(float32); // far outside [0, 1]

    private static GaussianLikelihood Gaussian(int d, int width, bool learnScale = true)
        => new(new Mlp(d, [16], [width]), d, width, sigma: 1.0, learnScale: learnScale);

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(8)]
    [InlineData(32)]
    public void AnyLatentSizeTrainsOnGaussianDataOutsideTheUnitInterval(int d)
    {
        var x = GaussianData(96, 6, seed: d);
        using var likelihood = Gaussian(d, 6);
        var progress = new List<FitProgress>();
        using var fitted = DdviFit.Fit(x, likelihood, new StandardNormalPrior(d, CPU), Short, new Recorder(progress));

        Assert.Equal(2, progress.Count);
        Assert.All(progress, p => Assert.True(p.Losses.Values.All(double.IsFinite)));
        var z = fitted.PosteriorMean(x, samples: 3);
        Assert.Equal(new long[] { 96, d }, z.shape);
        Assert.True(z.isfinite().all().item<bool>());
        var elbo = fitted.Elbo(x);
        Assert.Equal(new long[] { 96 }, elbo.shape);
        Assert.True(elbo.isfinite().all().item<bool>());
        Assert.Equal(new long[] { 10, 6 }, fitted.SampleData(10).shape);
    }

    [Fact]
    public void LikelihoodBoundsGivePerRowTrueElboBelowTheImportanceWeightedBound()
    {
        var x = GaussianData(40, 6, seed: 3);
        using var likelihood = Gaussian(2, 6);
        using var fitted = DdviFit.Fit(x, likelihood, new StandardNormalPrior(2, CPU), Short);
        x[0, 2] = float.NaN; // a missing entry is left out of log p(x|z), as in Elbo
        using var bounds = fitted.LikelihoodBounds(x, samples: 20, seed: 4);
        Assert.Equal(new long[] { 40 }, bounds.TrueElbo.shape);
        Assert.True(bounds.LogLikelihood.isfinite().all().item<bool>());
        // log (1/K) Σ w ≥ (1/K) Σ log w for every row's draws (Jensen).
        Assert.True((bounds.LogLikelihood - bounds.TrueElbo).min().item<double>() >= 0);
        Assert.Equal([1, 10, 20], bounds.Summary.Bounds.Select(b => b.K));
        Assert.Equal(800, bounds.Summary.Injectivity!.Draws);
        // A seed fixes the draws.
        using var again = fitted.LikelihoodBounds(x, samples: 20, seed: 4);
        Assert.True(again.LogLikelihood.equal(bounds.LogLikelihood).all().item<bool>());
        Assert.Throws<ArgumentOutOfRangeException>(() => fitted.LikelihoodBounds(x, samples: 0));
    }

    [Fact]
    public void TrainingRaisesTheElbo()
    {
        var x = GaussianData(256, 6, seed: 7);
        using var before = Gaussian(2, 6);
        var untrained = Short with { Epochs = 0 };
        using var start = DdviFit.Fit(x, before, new StandardNormalPrior(2, CPU), untrained);
        double initial = start.Elbo(x).mean().item<float>();
        using var after = Gaussian(2, 6);
        using var trained = DdviFit.Fit(x, after, new StandardNormalPrior(2, CPU), Short with { Epochs = 15 });
        double final = trained.Elbo(x).mean().item<float>();
        Assert.True(final > initial + 1, $"ELBO {initial:F2} → {final:F2} nats: training did not raise it");
    }

    [Fact]
    public void ABfloat16FitTrainsItsMlpsInMixedPrecisionAndLoadsAsOne()
    {
        var x = GaussianData(256, 6, seed: 7);
        using var folder = new TempFolder();
        string path = Path.Combine(folder.Path, "bf16.ddvi");
        using var likelihood = Gaussian(2, 6);
        var options = Short with { Epochs = 15, Precision = NetworkPrecision.Bfloat16 };
        using var start = DdviFit.Fit(x, Gaussian(2, 6), new StandardNormalPrior(2, CPU), options with { Epochs = 0 });
        using var fitted = DdviFit.Fit(x, likelihood, new StandardNormalPrior(2, CPU), options);
        // The default encoders and the likelihood's decoder: every Mlp of the model.
        var mlps = fitted.Model.modules().OfType<Mlp>().ToList();
        Assert.Equal(3, mlps.Count);
        Assert.All(mlps, m => Assert.Equal(NetworkPrecision.Bfloat16, m.Precision));
        Assert.All(fitted.Model.parameters(), p => Assert.Equal(ScalarType.Float32, p.dtype));
        double initial = start.Elbo(x).mean().item<float>(), final = fitted.Elbo(x).mean().item<float>();
        Assert.True(final > initial + 1, $"ELBO {initial:F2} → {final:F2} nats: bfloat16 training did not raise it");

        fitted.Save(path);
        using var loaded = FittedDdvi.Load(path, Gaussian(2, 6), new StandardNormalPrior(2, CPU));
        Assert.Equal(NetworkPrecision.Bfloat16, loaded.Options.Precision);
        Assert.All(loaded.Model.modules().OfType<Mlp>(), m => Assert.Equal(NetworkPrecision.Bfloat16, m.Precision));
        Assert.True(fitted.Elbo(x, seed: 2).equal(loaded.Elbo(x, seed: 2)).all().item<bool>());
    }

    [Fact]
    public void SaveThenLoadGivesBitIdenticalPosteriorSamplesElboAndDataSamples()
    {
        var x = GaussianData(80, 5, seed: 3);
        using var folder = new TempFolder();
        string path = Path.Combine(folder.Path, "model.ddvi");
        using var likelihood = Gaussian(3, 5);
        var prior = new LearnableGaussianMixture(3, 3, seed: 2);
        using var fitted = DdviFit.Fit(x, likelihood, prior, Short);
        fitted.Save(path);

        using var loaded = FittedDdvi.Load(path, Gaussian(3, 5), new LearnableGaussianMixture(3, 3, seed: 99));
        Assert.True(fitted.PosteriorSamples(x, 4, seed: 8).equal(loaded.PosteriorSamples(x, 4, seed: 8)).all().item<bool>());
        Assert.True(fitted.Elbo(x, seed: 2).equal(loaded.Elbo(x, seed: 2)).all().item<bool>());
        Assert.True(fitted.SampleData(50, seed: 4).equal(loaded.SampleData(50, seed: 4)).all().item<bool>());
        Assert.Equal(fitted.Options, loaded.Options with { HiddenWidths = fitted.Options.HiddenWidths });
    }

    [Fact]
    public void LoadNamesWhatDoesNotMatch()
    {
        var x = GaussianData(40, 5, seed: 3);
        using var folder = new TempFolder();
        string path = Path.Combine(folder.Path, "model.ddvi");
        using (var fitted = DdviFit.Fit(x, Gaussian(2, 5), new StandardNormalPrior(2, CPU), Short with { Epochs = 1 }))
            fitted.Save(path);

        var kind = Assert.Throws<InvalidDataException>(() => FittedDdvi.Load(path, new PoissonLikelihood(new Mlp(2, [16], [5]), 2, 5), new StandardNormalPrior(2, CPU)));
        Assert.Contains("likelihood kind", kind.Message);
        Assert.Contains(path, kind.Message);
        var width = Assert.Throws<InvalidDataException>(() => FittedDdvi.Load(path, Gaussian(2, 4), new StandardNormalPrior(2, CPU)));
        Assert.Contains("data dimension D", width.Message);
        var dim = Assert.Throws<InvalidDataException>(() => FittedDdvi.Load(path, Gaussian(3, 5), new StandardNormalPrior(3, CPU)));
        Assert.Contains("latent dimension d", dim.Message);
        var layout = Assert.Throws<InvalidDataException>(() => FittedDdvi.Load(path, new GaussianLikelihood(new Mlp(2, [32], [5]), 2, 5, learnScale: true), new StandardNormalPrior(2, CPU)));
        Assert.Contains("networks", layout.Message);

        File.WriteAllText(Path.Combine(folder.Path, "other.ddvi"), "not a model");
        Assert.Throws<InvalidDataException>(() => FittedDdvi.Load(Path.Combine(folder.Path, "other.ddvi"), Gaussian(2, 5), new StandardNormalPrior(2, CPU)));
        Assert.Throws<FileNotFoundException>(() => FittedDdvi.Load(Path.Combine(folder.Path, "missing.ddvi"), Gaussian(2, 5), new StandardNormalPrior(2, CPU)));
    }

    [Fact]
    public void BadInputsAreNamed()
    {
        using var likelihood = Gaussian(2, 5);
        var prior = new StandardNormalPrior(2, CPU);
        Assert.Contains("[N, 5]", Assert.Throws<ArgumentException>(() => DdviFit.Fit(zeros(10, 4), likelihood, prior, Short)).Message);
        Assert.Contains("R^3", Assert.Throws<ArgumentException>(() => DdviFit.Fit(zeros(10, 5), likelihood, new StandardNormalPrior(3, CPU), Short)).Message);
        Assert.Contains("BatchSize", Assert.Throws<ArgumentException>(() => DdviFit.Fit(zeros(10, 5), likelihood, prior, Short with { BatchSize = 0 })).Message);
        Assert.Contains("LearningRate", Assert.Throws<ArgumentException>(() => DdviFit.Fit(zeros(10, 5), likelihood, prior, Short with { LearningRate = double.NaN })).Message);
        var counts = new PoissonLikelihood(new Mlp(2, [16], [5]), 2, 5);
        var support = Assert.Throws<ArgumentException>(() => DdviFit.Fit(full(10, 5, 0.5f), counts, prior, Short));
        Assert.Contains("row 0, column 0", support.Message);
    }

    [Fact]
    public void MissingEntriesAreLeftOutAndALearnablePriorIsTrained()
    {
        var x = GaussianData(64, 5, seed: 9);
        x[3, 2] = tensor(float.NaN);
        x[10, 0] = tensor(float.NaN);
        using var likelihood = Gaussian(2, 5);
        var prior = new LearnableGaussianMixture(2, 2, seed: 5);
        var before = prior.PriorParameters.Select(p => p.detach().clone()).ToList();
        using var fitted = DdviFit.Fit(x, likelihood, prior, Short);
        Assert.True(fitted.History!.History.SelectMany(r => r.Losses.Values).All(double.IsFinite));
        Assert.Contains(prior.PriorParameters.Zip(before), pair => !pair.First.detach().equal(pair.Second).all().item<bool>());
        Assert.True(fitted.Elbo(x).isfinite().all().item<bool>());
        Assert.True(x[3, 2].isnan().item<bool>(), "the caller's data must be left as it was");
    }

    [Fact]
    public void CancellationStopsTheFitAndACheckpointFolderResumes()
    {
        var x = GaussianData(64, 5, seed: 4);
        using var folder = new TempFolder();
        var options = Short with { Epochs = 3, CheckpointFolder = folder.Path, CheckpointEvery = 1 };
        using var cancel = new CancellationTokenSource();
        var progress = new Recorder(new List<FitProgress>(), afterEpoch: p => { if (p.Epoch == 1) cancel.Cancel(); });
        // The caller's decoder is initialised when the caller builds it: the same seed before each, so all three start alike.
        manual_seed(21);
        Assert.ThrowsAny<OperationCanceledException>(() => DdviFit.Fit(x, Gaussian(2, 5), new StandardNormalPrior(2, CPU), options, progress, cancel.Token));
        Assert.True(File.Exists(Path.Combine(folder.Path, "epoch-0001.ckpt")));
        Assert.False(File.Exists(Path.Combine(folder.Path, "epoch-0002.ckpt")));

        manual_seed(21);
        using var resumed = DdviFit.Fit(x, Gaussian(2, 5), new StandardNormalPrior(2, CPU), options);
        manual_seed(21);
        using var straight = DdviFit.Fit(x, Gaussian(2, 5), new StandardNormalPrior(2, CPU), options with { CheckpointFolder = null });
        Assert.Equal(3, resumed.History!.EpochsCompleted);
        Assert.True(resumed.PosteriorSamples(x, 2).equal(straight.PosteriorSamples(x, 2)).all().item<bool>(), "a resumed fit must end where an uninterrupted one does");
    }

    [Fact]
    public void ThePaperModelIsAPresetOfTheGeneralModel()
    {
        using var model = DdviModel.Paper(inputDim: 20, latentDim: 2, hidden: 8, priorSteps: 3, posteriorSteps: 4);
        Assert.IsType<BernoulliLikelihood>(model.Likelihood);
        Assert.Equal(20, model.InputDim);
        Assert.True(model.HasPriorDenoiser);
        var keys = model.state_dict().Keys.ToList();
        Assert.Contains("likelihood.decoder.hidden.0.weight", keys);
        Assert.Contains("encoder.heads.1.weight", keys);
        Assert.Contains("auxiliaryEncoder.heads.0.weight", keys);
    }

    [Fact]
    public void AUsersOwnLikelihoodAndPriorModuleFitSaveAndLoad()
    {
        var x = GaussianData(64, 4, seed: 12);
        using var folder = new TempFolder();
        string path = Path.Combine(folder.Path, "own.ddvi");
        manual_seed(3);
        using var likelihood = new LaplaceLikelihood(new Mlp(2, [16], [4]), 2, 4);
        using var prior = new ShiftedNormalPrior(2);
        using var fitted = DdviFit.Fit(x, likelihood, prior, Short);
        Assert.NotEqual(0f, prior.Shift.detach().abs().sum().item<float>());   // trained without listing PriorParameters
        fitted.Save(path);
        using var loaded = FittedDdvi.Load(path, new LaplaceLikelihood(new Mlp(2, [16], [4]), 2, 4), new ShiftedNormalPrior(2));
        Assert.True(fitted.PosteriorMean(x, 3).equal(loaded.PosteriorMean(x, 3)).all().item<bool>());
        Assert.True(((ShiftedNormalPrior)loaded.Prior).Shift.equal(prior.Shift).all().item<bool>());
    }

    /// <summary>A likelihood a user might write: Laplace with unit scale around the decoder's output.</summary>
    private sealed class LaplaceLikelihood : Likelihood
    {
        public LaplaceLikelihood(nn.Module<Tensor, Tensor> decoder, int latentDim, int dataDim) : base(nameof(LaplaceLikelihood), decoder, latentDim, dataDim)
            => RegisterComponents();

        public override string Kind => "laplace";
        public override string SupportDescription => "any finite value";
        public override Tensor MeanFromOutput(Tensor output) => output.alias();
        public override Tensor SampleFromOutput(Tensor output, Generator generator)
        {
            var u = rand(output.shape, generator: generator) - 0.5;
            return output - u.sign() * (1 - 2 * u.abs()).log();
        }
        protected override Tensor ElementLogProb(Tensor output, Tensor x, Tensor? mask) => -(x - output).abs() - Math.Log(2);
        protected override Tensor InvalidValues(Tensor x) => zeros_like(x, dtype: ScalarType.Bool);
    }

    /// <summary>A learnable prior a user might write: N(shift, I) with a learned shift, a module that does not list its parameters.</summary>
    private sealed class ShiftedNormalPrior : nn.Module, IPrior
    {
        private readonly TorchSharp.Modules.Parameter shift;

        public ShiftedNormalPrior(int dimension) : base(nameof(ShiftedNormalPrior))
        {
            Dimension = dimension;
            shift = nn.Parameter(zeros(dimension));
            RegisterComponents();
        }

        public TorchSharp.Modules.Parameter Shift => shift;
        public string Name => "shifted-normal";
        public int Dimension { get; }
        public bool HasExactDensity => true;
        public string DensityDescription => "exact: N(shift, I)";
        public Tensor Sample(long n, Generator generator) => randn(new long[] { n, Dimension }, generator: generator) + shift.detach();
        public Tensor LogDensity(Tensor z) => -0.5 * (z - shift).square().sum(1) - 0.5 * Dimension * Math.Log(2 * Math.PI);
    }

    private sealed class Recorder(List<FitProgress> list, Action<FitProgress>? afterEpoch = null) : IProgress<FitProgress>
    {
        public void Report(FitProgress value)
        {
            list.Add(value);
            afterEpoch?.Invoke(value);
        }
    }
}
