using System.Text.Json.Nodes;
using Ddvi.Cli.Commands;
using Ddvi.Diffusion;
using Ddvi.Experiments;
using Ddvi.Experiments.Files;
using Ddvi.Priors;
using Ddvi.Runtime;

namespace Ddvi.Tests.Cli;

/// <summary><c>ddvi train --config FILE</c>: grouped and config.json-shaped files, precedence, and every error.</summary>
public class ExperimentFileTests
{
    private const string Grouped = """
        # an experiment as a user writes it
        dataset:
          name: fashion-mnist
        model:
          name: ddvi
          settings:
            kl_weight: 0.01
            sleep_steps: 2
            schedule: cosine
        prior:
          name: swiss_roll
          noise: 0.1
          density: kde
        training:
          epochs: 12
          batch_size: 64
          learning_rate: 2.0e-4
          seed: 4
        device:
          name: cpu
          threads: 1
          precision: bfloat16
        evaluation:
          nll_bandwidths: [0.01, 0.05]
        """;

    private static string Write(TempFolder folder, string name, string text)
    {
        File.WriteAllText(folder[name], text);
        return folder[name];
    }

    [Fact]
    public void GroupedYamlSetsEveryGroup()
    {
        using var folder = new TempFolder();
        var config = TrainCommand.ConfigFor("--config", Write(folder, "exp.yaml", Grouped)).Validate();
        Assert.Equal("fashion-mnist", config.Dataset);
        Assert.Equal("ddvi", config.Model);
        Assert.Equal(0.01, config.Ddvi.KlWeight);
        Assert.Equal(2, config.Ddvi.SleepSteps);
        Assert.Equal(NoiseScheduleKind.Cosine, config.Ddvi.Schedule);
        Assert.Equal("swiss_roll", config.Prior);
        Assert.Equal(0.1, config.PriorNoise);
        Assert.Equal(PriorDensityChoice.Kde, config.PriorDensity);
        Assert.Equal(12, config.Epochs);
        Assert.Equal(64, config.BatchSize);
        Assert.Equal(2e-4, config.LearningRate);
        Assert.Equal(4, config.Seed);
        Assert.Equal(DeviceChoice.Cpu, config.Device);
        Assert.Equal(1, config.Threads);
        Assert.Equal(Ddvi.Models.NetworkPrecision.Bfloat16, config.Precision);
        Assert.Equal([0.01, 0.05], config.Evaluation.NllBandwidths);
        // Keys the file leaves out keep their defaults.
        Assert.Equal(new DdviSettings().MatchingWeight, config.Ddvi.MatchingWeight);
        Assert.Equal(5, config.CheckpointEvery);
    }

    [Fact]
    public void FlagsOverrideTheFileAndTheFileOverridesDefaults()
    {
        using var folder = new TempFolder();
        string file = Write(folder, "exp.yaml", Grouped);
        var config = TrainCommand.ConfigFor("--config", file, "--epochs", "3", "--kl-weight", "0.5", "--prior", "pinwheel", "--device", "auto");
        Assert.Equal(3, config.Epochs);
        Assert.Equal(0.5, config.Ddvi.KlWeight);
        Assert.Equal("pinwheel", config.Prior);
        Assert.Equal(DeviceChoice.Auto, config.Device);
        // Not given on the command line: the file's values, not the options' defaults.
        Assert.Equal(64, config.BatchSize);
        Assert.Equal(2, config.Ddvi.SleepSteps);
        Assert.Equal(4, config.Seed);
    }

    [Fact]
    public void ARunsConfigJsonLoadsAsAnExperimentFile()
    {
        using var folder = new TempFolder();
        var original = ExperimentConfig.FromJson(ExperimentRunnerTestsConfig(), "test") with { Epochs = 9, PriorNoise = 0.2, Prior = "swiss-roll" };
        var config = TrainCommand.ConfigFor("--config", Write(folder, "config.json", original.ToJson()));
        Assert.Equal(original.ToJson(), config.ToJson());
    }

    private static string ExperimentRunnerTestsConfig() => Ddvi.Tests.Experiments.ExperimentRunnerTests.Tiny("vae").ToJson();

    [Fact]
    public void EveryKeyedTrainOptionCanBeSetInAFile()
    {
        using var folder = new TempFolder();
        var defaults = JsonNode.Parse(new ExperimentConfig { Epochs = 4, LearningRate = 0.01, PriorNoise = 0.1, DataDirectory = "/tmp/data" }.ToJson())!.AsObject();
        foreach (var (option, key) in TrainCommand.OptionNames().Keyed)
        {
            var only = new JsonObject();
            JsonNode? value = defaults;
            foreach (var part in key.Split('.')) value = value![part];
            ExperimentFile.Set(only, key, value?.DeepClone());
            var file = ExperimentFile.Load(Write(folder, "one.json", only.ToJsonString()));
            Assert.Equal(key, Assert.Single(file.Keys).Key);
            JsonNode? read = JsonNode.Parse(file.ToConfig().ToJson());
            foreach (var part in key.Split('.')) read = read![part];
            Assert.True(JsonNode.DeepEquals(value, read), $"{option} ({key}): wrote {value?.ToJsonString()}, read {read?.ToJsonString()}");
        }
    }

    [Fact]
    public void WithResumeTheFilesKeysCountAsOptionsGiven()
    {
        using var folder = new TempFolder();
        string file = Write(folder, "exp.yaml", "model:\n  name: ddvi\n  settings:\n    kl_weight: 0.02\ndevice: cpu\n");
        var (_, given) = TrainCommand.ResolveFor("--config", file, "--resume", "--out", folder.Path, "--threads", "1");
        Assert.Contains(given, g => g.Option == "--threads" && g.Key == "threads");
        Assert.Contains(given, g => g.Key == "ddvi.kl_weight" && g.Option.Contains("model.settings.kl_weight (line 4 of", StringComparison.Ordinal));
        var saved = new ExperimentConfig { Dataset = "synthetic" };
        var error = Assert.Throws<ArgumentException>(() => new ResumeRequest(given).ApplyTo(saved));
        Assert.Contains("model.settings.kl_weight (line 4 of", error.Message);
        Assert.Contains("0.003", error.Message);
        Assert.Contains("0.02", error.Message);
        // Execution keys from the file apply like the flags.
        var (resumed, changes) = new ResumeRequest([.. given.Where(g => g.Key != "ddvi.kl_weight")]).ApplyTo(saved);
        Assert.Equal(DeviceChoice.Cpu, resumed.Device);
        Assert.Contains(changes, c => c.Key == "device");
    }

    [Theory]
    [InlineData("training:\n  epoch: 3\n", "line 2", "unknown key 'training.epoch'", "epochs, batch_size")]
    [InlineData("dataset: synthetic\nlearning_rte: 0.1\n", "line 2", "unknown key 'learning_rte'", "learning_rate")]
    [InlineData("ddvi:\n  kl_weigth: 0.1\n", "line 2", "unknown key 'ddvi.kl_weigth'", "kl_weight")]
    [InlineData("training:\n  epochs: ten\n", "line 2", "training.epochs must be an integer", "'ten'")]
    [InlineData("training:\n  epochs: 2.5\n", "line 2", "training.epochs must be an integer", "'2.5'")]
    [InlineData("training:\n  learning_rate: fast\n", "line 2", "training.learning_rate must be a finite number", "'fast'")]
    [InlineData("prior:\n  name: pinwheel\n  density: fancy\n", "line 3", "prior.density must be one of auto, exact, kde", "'fancy'")]
    [InlineData("device: tpu\n", "line 1", "device must be one of auto, cpu, cuda", "'tpu'")]
    [InlineData("device:\n  precision: fp8\n", "line 2", "device.precision must be one of float32, bfloat16", "'fp8'")]
    [InlineData("model: gan\n", "line 1", "'gan' is not a known model", "h-iaf-vae")]
    [InlineData("prior: banana\n", "line 1", "'banana' is not a known prior", "swiss-roll")]
    [InlineData("epochs: 3\ntraining:\n  epochs: 4\n", "line 3", "training.epochs sets 'epochs', which line 1 already sets", "give it once")]
    [InlineData("epochs: 3\nepochs: 4\n", "line 2", "epochs", "")]
    [InlineData("model:\n  settings:\n    kl_weight: 0.1\n", "line 2", "model.settings needs the model's name", "ddvi: for ddvi")]
    [InlineData("model:\n  name: vae\n  settings:\n    sleep_steps: 2\n", "line 4", "unknown key 'model.settings.sleep_steps'", "kl_ramp_fraction")]
    [InlineData("evaluation:\n  nll_bandwidths: 0.1\n", "line 2", "evaluation.nll_bandwidths must be a list", "")]
    [InlineData("training: 5\n", "line 1", "training must be a mapping", "epochs")]
    [InlineData("ddvi: 5\n", "line 1", "ddvi must be a mapping", "kl_weight")]
    [InlineData("checkpoint_every: null\n", "line 1", "checkpoint_every needs a value", "an integer")]
    [InlineData("training:\n  seed: [1, 2]\n", "line 2", "training.seed must be an integer, got a list", "")]
    [InlineData("dataset: [a\n", "line", "", "")]
    [InlineData("- 1\n- 2\n", "line 1", "must hold a mapping", "")]
    public void YamlErrorsNameTheKeyTheLineAndWhatIsValid(string yaml, string line, string what, string valid)
    {
        using var folder = new TempFolder();
        string file = Write(folder, "bad.yaml", yaml);
        var error = Assert.Throws<ArgumentException>(() => TrainCommand.ConfigFor("--config", file));
        Assert.Contains(file, error.Message);
        Assert.Contains(line, error.Message);
        Assert.Contains(what, error.Message);
        Assert.Contains(valid, error.Message);
    }

    [Theory]
    [InlineData("{\n  \"epochs\": \"3\"\n}", "line 2", "epochs must be an integer")]
    [InlineData("{\n  \"dataset\": \"synthetic\",\n  \"ddvi\": {\n    \"sleeep_steps\": 3\n  }\n}", "line 4", "unknown key 'ddvi.sleeep_steps'")]
    [InlineData("{\n  \"epochs\": 3,\n  \"epochs\": 4\n}", "line 3", "key 'epochs' is given again (first on line 2)")]
    [InlineData("{\n  \"epochs\": 3\n  \"seed\": 1\n}", "line 3", "not valid JSON")]
    public void JsonErrorsNameTheKeyAndTheLine(string json, string line, string what)
    {
        using var folder = new TempFolder();
        string file = Write(folder, "bad.json", json);
        var error = Assert.Throws<ArgumentException>(() => TrainCommand.ConfigFor("--config", file));
        Assert.Contains(file, error.Message);
        Assert.Contains(line, error.Message);
        Assert.Contains(what, error.Message);
    }

    [Fact]
    public void MissingFilesAndUnknownExtensionsAreNamed()
    {
        using var folder = new TempFolder();
        var error = Assert.Throws<ArgumentException>(() => TrainCommand.ConfigFor("--config", folder["none.yaml"]));
        Assert.Contains("none.yaml not found", error.Message);
        error = Assert.Throws<ArgumentException>(() => TrainCommand.ConfigFor("--config", Write(folder, "exp.toml", "epochs = 3")));
        Assert.Contains(".yaml, .yml, .json", error.Message);
    }

    [Fact]
    public void RangeErrorsOfAFileNameTheFileThroughTheCli()
    {
        using var folder = new TempFolder();
        string file = Write(folder, "exp.yaml", "training:\n  epochs: 0\n");
        var (code, _, error) = DdviProcess.Run("train", "--config", file, "--out", folder["run"]);
        Assert.Equal(2, code);
        Assert.Contains("--epochs must be ≥ 1", error);
        Assert.Contains(file, error);
        (code, _, error) = DdviProcess.Run("train", "--config", Write(folder, "typo.yaml", "trainig:\n  epochs: 3\n"));
        Assert.Equal(2, code);
        Assert.Contains("line 1: unknown key 'trainig'", error);
    }
}
