using System.Text.Json;
using System.Text.Json.Nodes;
using Ddvi.Experiments;
using Ddvi.Training;

namespace Ddvi.Tests.Experiments;

public class ExperimentRunnerTests
{
    /// <summary>A configuration small enough to train in seconds: tiny synthetic set, narrow networks, few samples.</summary>
    internal static ExperimentConfig Tiny(string model, int epochs = 2) => new()
    {
        Model = model,
        Dataset = "synthetic",
        Prior = "pinwheel",
        Epochs = epochs,
        BatchSize = 64,
        Seed = 3,
        CheckpointEvery = 1,
        Threads = 2,
        SyntheticTrainCount = 256,
        SyntheticTestCount = 128,
        Vae = new VaeSettings { Hidden = 32 },
        Aae = new AaeSettings { Hidden = 32, DiscriminatorHidden = 32 },
        Iaf = new IafSettings { Hidden = 32, MadeHidden = 16 },
        HierarchicalIaf = new HierarchicalIafSettings { Hidden = 32, MadeHidden = 16 },
        Ddvi = new DdviSettings
        {
            Hidden = 32, PriorDiffusionIterations = 40, PriorDiffusionStepsPerEpoch = 20, WarmupEpochs = 2,
            PriorSteps = 5, PosteriorSteps = 6, SleepSteps = 2, FrozenDecoderEpochs = 1,
        },
        Evaluation = new EvaluationSettings { PriorSamples = 300, MmdSamples = 100, KnnNeighbours = 5 },
    };

    private static JsonElement Metrics(string folder) => JsonDocument.Parse(File.ReadAllText(new RunDirectory(folder).Metrics)).RootElement;

    [Fact]
    public void DdviPipelineRunsEveryStageAndWritesTheRunFolder()
    {
        using var folder = new TempFolder();
        var observer = new RecordingObserver();
        var report = new ExperimentRunner(observer).Train(Tiny("ddvi"), folder.Path, resume: false);

        Assert.Contains("start prior-diffusion 0", observer.Lines);
        Assert.Contains("start warmup 0", observer.Lines);
        Assert.Contains("start ddvi 0", observer.Lines);
        var run = new RunDirectory(folder.Path);
        foreach (var file in new[] { run.Config, run.Log, run.Metrics, run.TestLatents })
            Assert.True(File.Exists(file), file);
        foreach (var plot in new[] { "latents.png", "prior.png", "prior-vs-latents.png", "samples.png", "losses-ddvi.png", "losses-warmup.png", "losses-prior-diffusion.png", "chain-start-vs-latents.png" })
            Assert.True(File.Exists(run.Plot(plot)), plot);
        foreach (var stage in new[] { "prior-diffusion", "warmup", "ddvi" })
            Assert.NotNull(Checkpoint.Latest(run.Checkpoints(stage)));

        Assert.True(report.Elbo.Available);
        Assert.True(double.IsFinite(report.Elbo.NatsPerImage!.Value) && double.IsFinite(report.LatentNll.Value) && double.IsFinite(report.Mmd.Value));
        Assert.InRange(report.KnnAccuracy.Value, 0, 1);
        var latentLines = File.ReadAllLines(run.TestLatents);
        Assert.Equal(129, latentLines.Length);
        Assert.Equal("z1,z2,label,yT1,yT2", latentLines[0]);
        var warmup = Assert.Single(report.StageSnapshots);
        Assert.Equal("warmup", warmup.Stage);
        Assert.True(double.IsFinite(warmup.LatentNll));
        Assert.Equal("ddvi", Metrics(folder.Path).GetProperty("model").GetString());
        Assert.Empty(Directory.GetFiles(folder.Path, "*.tmp", SearchOption.AllDirectories));
    }

    [Fact]
    public void ResumeSkipsFinishedStagesAndRepeatsAnInterruptedOneExactly()
    {
        using var folder = new TempFolder();
        var first = new ExperimentRunner(SilentObserver.Instance).Train(Tiny("ddvi"), folder.Path, resume: false);

        // Simulate a run killed during its last DDVI epoch: only the checkpoint before it survives.
        var run = new RunDirectory(folder.Path);
        File.Delete(Checkpoint.Latest(run.Checkpoints("ddvi"))!);
        File.Delete(run.Metrics);

        var observer = new RecordingObserver();
        var resumed = new ExperimentRunner(observer).Train(new ExperimentConfig { Epochs = 99 }, folder.Path, resume: true);
        Assert.Contains(observer.Lines, l => l.StartsWith("prior-diffusion: finished earlier", StringComparison.Ordinal));
        Assert.Contains(observer.Lines, l => l.StartsWith("warmup: finished earlier", StringComparison.Ordinal));
        Assert.Contains("start ddvi 1", observer.Lines);
        Assert.DoesNotContain("epoch ddvi 0", observer.Lines);
        AssertSameMetrics(first, resumed);
    }

    /// <summary>Two evaluations give the same headline metrics, exactly.</summary>
    internal static void AssertSameMetrics(MetricsReport expected, MetricsReport actual)
    {
        Assert.Equal(expected.KnnAccuracy.Value, actual.KnnAccuracy.Value);
        Assert.Equal(expected.LatentNll.Value, actual.LatentNll.Value);
        Assert.Equal(expected.Elbo.NatsPerImage, actual.Elbo.NatsPerImage);
        Assert.Equal(expected.Mmd.Value, actual.Mmd.Value);
    }

    [Fact]
    public void VaeRunEvaluatesTheSameWayTwice()
    {
        using var folder = new TempFolder();
        var trained = new ExperimentRunner(SilentObserver.Instance).Train(Tiny("vae"), folder.Path, resume: false);
        var again = new ExperimentRunner(SilentObserver.Instance).Evaluate(folder.Path);
        AssertSameMetrics(trained, again);
        Assert.Equal(2, again.Epochs);
    }

    [Fact]
    public void SameSeedSameMetrics()
    {
        using var a = new TempFolder();
        using var b = new TempFolder();
        var first = new ExperimentRunner(SilentObserver.Instance).Train(Tiny("vae", 1), a.Path, false);
        var second = new ExperimentRunner(SilentObserver.Instance).Train(Tiny("vae", 1), b.Path, false);
        Assert.Equal(first.LatentNll.Value, second.LatentNll.Value);
        Assert.Equal(first.Elbo.NatsPerImage, second.Elbo.NatsPerImage);
    }

    [Fact]
    public void ExistingRunIsNotOverwrittenAndUnfinishedRunIsNotEvaluated()
    {
        using var folder = new TempFolder();
        var runner = new ExperimentRunner(SilentObserver.Instance);
        runner.Train(Tiny("vae", 1), folder.Path, false);
        Assert.Contains("--resume", Assert.Throws<InvalidOperationException>(() => runner.Train(Tiny("vae", 1), folder.Path, false)).Message);

        var run = new RunDirectory(folder.Path);
        var longer = Tiny("vae", 3);
        File.WriteAllText(run.Config, longer.ToJson());
        var error = Assert.Throws<InvalidOperationException>(() => runner.Evaluate(folder.Path));
        Assert.Contains("1/3", error.Message);
        Assert.Contains("--resume", error.Message);
    }

    [Fact]
    public void MissingOrBrokenRunFoldersGiveClearErrors()
    {
        using var folder = new TempFolder();
        var runner = new ExperimentRunner(SilentObserver.Instance);
        Assert.Contains("config.json", Assert.Throws<FileNotFoundException>(() => runner.Evaluate(folder.Path)).Message);
        Assert.Contains("--resume", Assert.Throws<FileNotFoundException>(() => runner.Train(new ExperimentConfig(), folder.Path, true)).Message);
        File.WriteAllText(Path.Combine(folder.Path, "config.json"), "{\"model\": \"vae\", \"no_such_option\": 1}");
        Assert.Contains("config.json", Assert.Throws<InvalidDataException>(() => runner.Evaluate(folder.Path)).Message);
    }

    [Theory]
    [InlineData("dataset", "imagenet", "--dataset")]
    [InlineData("model", "gan", "--model")]
    [InlineData("prior", "banana", "--prior")]
    [InlineData("epochs", "0", "--epochs")]
    [InlineData("batch", "0", "--batch-size")]
    [InlineData("noise", "-1", "--prior-noise")]
    [InlineData("pinwheel-noise", "0.1", "pinwheel")]
    public void BadConfigurationsNameTheOption(string field, string value, string expected)
    {
        var config = field switch
        {
            "dataset" => new ExperimentConfig { Dataset = value },
            "model" => new ExperimentConfig { Model = value },
            "prior" => new ExperimentConfig { Prior = value },
            "epochs" => new ExperimentConfig { Epochs = int.Parse(value) },
            "batch" => new ExperimentConfig { BatchSize = int.Parse(value) },
            "noise" => new ExperimentConfig { Prior = "swiss-roll", PriorNoise = double.Parse(value) },
            _ => new ExperimentConfig { Prior = "pinwheel", PriorNoise = double.Parse(value) },
        };
        var error = Assert.ThrowsAny<ArgumentException>(() => config.Validate());
        Assert.Contains(expected, error.Message);
    }

    [Fact]
    public void AFolderOfMnistFormatFilesTrainsAndNamesTheRunFolder()
    {
        using var folder = new TempFolder();
        using var files = new Ddvi.Tests.Data.IdxTestFiles();
        // Not MNIST's shape: 20×24 images, labels 1–26 as in EMNIST letters; the networks take the width from the data.
        foreach (var (name, content) in Ddvi.Tests.Data.IdxTestFiles.MnistFormatGzipFiles(256, 128, seed: 6, height: 20, width: 24, classes: 26, firstLabel: 1))
            files.Write("letters/" + name, content);
        string data = Path.Combine(files.Root, "letters");
        var config = Tiny("ddvi", epochs: 1) with { Dataset = data };
        Assert.Equal(Path.Combine("runs", "ddvi-letters-pinwheel-s3"), RunDirectory.DefaultFor(config));

        var report = new ExperimentRunner(SilentObserver.Instance).Train(config, folder.Path, resume: false);

        var run = new RunDirectory(folder.Path);
        Assert.Equal(data, Metrics(folder.Path).GetProperty("dataset").GetString());
        Assert.Equal(128, File.ReadAllLines(run.TestLatents).Length - 1);
        Assert.True(double.IsFinite(report.KnnAccuracy.Value) && report.Elbo.NatsPerImage is double elbo && double.IsFinite(elbo));
        Assert.True(double.IsFinite(report.LatentNll.Value) && double.IsFinite(report.Mmd.Value));
        // Decoded prior samples are drawn at the data's own size: 10 rows (prior classes) of 20×24 images, scaled 2×.
        using (var samples = SkiaSharp.SKBitmap.Decode(Path.Combine(folder.Path, "plots", "samples.png")))
            Assert.Equal(10 * (20 * 2 + 2) + 2, samples.Height);
        File.Delete(Path.Combine(data, Ddvi.Data.MnistFormat.TestLabels + ".gz"));
        var error = Assert.Throws<ArgumentException>(() => config.Validate());
        Assert.Contains($"--dataset folder {data} lacks {Ddvi.Data.MnistFormat.TestLabels}", error.Message);
    }

    [Fact]
    public void TrainImagesKeepsTheFirstTrainingExamplesAndTheWholeTestSplit()
    {
        using var files = new Ddvi.Tests.Data.IdxTestFiles();
        foreach (var (name, content) in Ddvi.Tests.Data.IdxTestFiles.MnistFormatGzipFiles(256, 128, seed: 6, height: 20, width: 24, classes: 26, firstLabel: 1))
            files.Write("letters/" + name, content);
        string data = Path.Combine(files.Root, "letters");
        var whole = Tiny("vae", epochs: 1) with { Dataset = data };
        var config = whole with { TrainImages = 100 };
        Assert.Equal(Path.Combine("runs", "vae-letters-n100-pinwheel-s3"), RunDirectory.DefaultFor(config));
        Assert.Equal(100, ExperimentConfig.FromJson(config.ToJson(), "test").TrainImages);

        using (var all = ExperimentRunner.Session.Open(whole))
        using (var first = ExperimentRunner.Session.Open(config))
        {
            Assert.Equal(100, first.Data.Train.Count);
            Assert.True(first.Data.Train.Images.equal(all.Data.Train.Images[..100]).all().item<bool>());
            Assert.True(first.Data.Train.Labels.equal(all.Data.Train.Labels[..100]).all().item<bool>());
            Assert.Equal(128, first.Data.Test.Count);
            Assert.True(first.Data.Test.Images.equal(all.Data.Test.Images).all().item<bool>());
        }

        var tooMany = Assert.Throws<ArgumentException>(() => ExperimentRunner.Session.Open(whole with { TrainImages = 257 }));
        Assert.Contains("--train-images 257 is more than the 256 training examples of dataset", tooMany.Message);
        Assert.Contains(data, tooMany.Message);
        var zero = Assert.Throws<ArgumentException>(() => (whole with { TrainImages = 0 }).Validate());
        Assert.Contains("--train-images must be ≥ 1", zero.Message);
    }

    [Fact]
    public void ThePrecisionReachesEveryMlpOfTheModelAndIsPartOfTheRunsConfig()
    {
        var config = Tiny("ddvi", epochs: 1) with { Precision = Ddvi.Models.NetworkPrecision.Bfloat16 };
        var json = JsonNode.Parse(config.ToJson())!.AsObject();
        Assert.Equal("Bfloat16", json["precision"]!.GetValue<string>());
        Assert.Equal(Ddvi.Models.NetworkPrecision.Bfloat16, ExperimentConfig.FromJson(config.ToJson(), "test").Precision);
        // A config.json written before --precision existed is a float32 run.
        json.Remove("precision");
        Assert.Equal(Ddvi.Models.NetworkPrecision.Float32, ExperimentConfig.FromJson(json.ToJsonString(), "old").Precision);

        foreach (var precision in new[] { Ddvi.Models.NetworkPrecision.Bfloat16, Ddvi.Models.NetworkPrecision.Float32 })
        {
            using var session = ExperimentRunner.Session.Open(config with { Precision = precision });
            var mlps = session.Method.Module.modules().OfType<Ddvi.Models.Mlp>().ToList();
            Assert.Equal(3, mlps.Count); // DDVI's encoder, decoder and auxiliary encoder
            Assert.All(mlps, m => Assert.Equal(precision, m.Precision));
        }
    }

    [Fact]
    public void ConfigJsonRoundTrips()
    {
        var config = Tiny("ddvi") with { PriorNoise = null, Prior = "swiss-roll", LearningRate = 3e-4 };
        var back = ExperimentConfig.FromJson(config.ToJson(), "test");
        Assert.Equal(config.ToJson(), back.ToJson());
    }

    [Theory]
    [InlineData("true", Ddvi.Priors.PriorDensityChoice.Kde)]
    [InlineData("false", Ddvi.Priors.PriorDensityChoice.Exact)]
    public void ConfigsWrittenBeforePriorDensityStillRead(string priorKde, Ddvi.Priors.PriorDensityChoice expected)
    {
        string json = Tiny("vae").ToJson().Replace("\"prior_density\": \"Auto\"", $"\"prior_kde\": {priorKde}");
        Assert.Contains("prior_kde", json);
        var config = ExperimentConfig.FromJson(json, "old config.json");
        Assert.Equal(expected, config.PriorDensity);
        Assert.DoesNotContain("prior_kde", config.ToJson());
        Assert.Contains("\"prior_density\"", config.ToJson());
    }

    [Fact]
    public void SyntheticDefaultsAreShortAndFileDatasetsUseThePapersLengths()
    {
        var quick = new ExperimentConfig { Dataset = "synthetic", Model = "ddvi" };
        var paper = new ExperimentConfig { Dataset = "fashion-mnist", Model = "ddvi" };
        Assert.Equal(100, paper.ResolvedEpochs);
        Assert.Equal(100, paper.ResolvedWarmupEpochs);
        Assert.Equal(100_000, paper.ResolvedPriorDiffusionIterations);
        Assert.Equal(30, paper.ResolvedFrozenDecoderEpochs);
        Assert.True(quick.ResolvedEpochs < paper.ResolvedEpochs && quick.ResolvedWarmupEpochs < paper.ResolvedWarmupEpochs);
        Assert.Equal(200, new ExperimentConfig { Dataset = "mnist", Model = "vae" }.ResolvedEpochs);
    }
}
