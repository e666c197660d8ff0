using Ddvi.Cli.Commands;
using Ddvi.Objectives;
using Ddvi.Runtime;

namespace Ddvi.Tests.Comparison;

/// <summary><c>ddvi compare --sweep FILE</c>: lists, overrides, precedence of options over the file, and errors.</summary>
public class SweepFileTests
{
    private const string Sweep = """
        models: [vae, aae]
        priors: [pinwheel, swiss_roll]
        seeds: [3, 4]
        out: cmp
        jobs: 2
        overrides:
          dataset: synthetic
          training:
            epochs: 6
            batch_size: 32
          device: cpu
          vae:
            hidden: 64
        """;

    [Fact]
    public void TheFileSetsTheListsAndEveryRunsSettings()
    {
        using var folder = new TempFolder();
        File.WriteAllText(folder["sweep.yaml"], Sweep);
        var options = CompareCommand.OptionsFor("--sweep", folder["sweep.yaml"]);
        Assert.Equal(["vae", "aae"], options.Models);
        Assert.Equal(["pinwheel", "swiss_roll"], options.Priors);
        Assert.Equal([3L, 4L], options.Seeds);
        Assert.Equal("cmp", options.OutputFolder);
        Assert.Equal(2, options.Jobs);
        Assert.Equal(8, options.Plan().Count);
        Assert.All(options.Plan(), run =>
        {
            Assert.Equal(6, run.Config.Epochs);
            Assert.Equal(32, run.Config.BatchSize);
            Assert.Equal(DeviceChoice.Cpu, run.Config.Device);
            Assert.Equal(64, run.Config.Vae.Hidden);
        });
    }

    [Fact]
    public void OptionsOverrideTheFile()
    {
        using var folder = new TempFolder();
        File.WriteAllText(folder["sweep.yaml"], Sweep);
        var options = CompareCommand.OptionsFor("--sweep", folder["sweep.yaml"], "--models", "ddvi", "--seeds", "9", "--epochs", "2", "--out", folder["o"], "--jobs", "1");
        Assert.Equal(["ddvi"], options.Models);
        Assert.Equal([9L], options.Seeds);
        Assert.Equal(folder["o"], options.OutputFolder);
        Assert.Equal(1, options.Jobs);
        Assert.All(options.Plan(), run => Assert.Equal(2, run.Config.Epochs));
        Assert.All(options.Plan(), run => Assert.Equal(32, run.Config.BatchSize));
    }

    [Fact]
    public void TrainImagesReachesEveryRunFromTheOptionOrTheFile()
    {
        using var folder = new TempFolder();
        var options = CompareCommand.OptionsFor("--models", "vae,ddvi", "--priors", "pinwheel", "--seeds", "0", "--out", folder["o"], "--train-images", "8000");
        Assert.Equal(2, options.Plan().Count);
        Assert.All(options.Plan(), run => Assert.Equal(8000, run.Config.TrainImages));

        File.WriteAllText(folder["sweep.yaml"], Sweep.Replace("  dataset: synthetic", "  dataset:\n    name: synthetic\n    train_images: 500"));
        var fromFile = CompareCommand.OptionsFor("--sweep", folder["sweep.yaml"]);
        Assert.All(fromFile.Plan(), run => Assert.Equal(500, run.Config.TrainImages));
        var overridden = CompareCommand.OptionsFor("--sweep", folder["sweep.yaml"], "--train-images", "300");
        Assert.All(overridden.Plan(), run => Assert.Equal(300, run.Config.TrainImages));
    }

    [Fact]
    public void PerPriorSettingsReachOnlyThatPriorsRunsOnTopOfTheOverrides()
    {
        using var folder = new TempFolder();
        File.WriteAllText(folder["sweep.yaml"], """
            models: [ddvi, vae]
            priors: [pinwheel, swiss_roll, square]
            seeds: [0]
            out: cmp
            overrides:
              dataset: synthetic
              training:
                epochs: 6
              ddvi:
                sleep_steps: 10
                aggregate_weight: 0.3
            per_prior:
              swiss-roll:
                training:
                  epochs: 8
                ddvi:
                  start: forward-marginal
            """);
        var options = CompareCommand.OptionsFor("--sweep", folder["sweep.yaml"]);
        Assert.Equal(6, options.Plan().Count);
        foreach (var run in options.Plan())
        {
            bool swiss = run.Config.Prior == "swiss_roll";
            Assert.Equal(swiss ? StartTarget.ForwardMarginal : StartTarget.StandardNormal, run.Config.Ddvi.Start);
            Assert.Equal(swiss ? 8 : 6, run.Config.Epochs);
            // The shared settings stay under the prior's own.
            Assert.Equal(10, run.Config.Ddvi.SleepSteps);
            Assert.Equal(0.3, run.Config.Ddvi.AggregateWeight);
            Assert.Equal("synthetic", run.Config.Dataset);
        }

        // Options given on the command line override per_prior too.
        var overridden = CompareCommand.OptionsFor("--sweep", folder["sweep.yaml"], "--epochs", "2", "--priors", "swiss-roll");
        Assert.All(overridden.Plan(), run =>
        {
            Assert.Equal(2, run.Config.Epochs);
            Assert.Equal(StartTarget.ForwardMarginal, run.Config.Ddvi.Start);
        });

        // Without overrides the prior's settings start from the defaults.
        File.WriteAllText(folder["alone.yaml"], "priors: [square, pinwheel]\nper_prior:\n  less_noisy_square:\n    ddvi:\n      sleep_steps: 7\n");
        var alone = CompareCommand.OptionsFor("--sweep", folder["alone.yaml"], "--models", "ddvi", "--seeds", "0", "--out", folder["o"]);
        Assert.Equal([7, 3], alone.Plan().Select(run => run.Config.Ddvi.SleepSteps));
    }

    [Theory]
    [InlineData("model: [vae]\n", "line 1", "unknown key 'model'", "models, priors, seeds")]
    [InlineData("models: [gan]\nout: x\n", "sweep.yaml", "--models: 'gan' is not known", "vae")]
    [InlineData("seeds: [a]\n", "line 1", "seeds must be a list of integers", "'a'")]
    [InlineData("overrides:\n  prior: square\n", "line 2", "overrides.prior is set per run by the sweep", "")]
    [InlineData("overrides:\n  training:\n    epoks: 3\n", "line 3", "unknown key 'overrides.training.epoks'", "epochs")]
    [InlineData("overrides:\n  training:\n    epochs: many\n", "line 3", "overrides.training.epochs must be an integer", "'many'")]
    [InlineData("jobs: two\n", "line 1", "jobs must be an integer", "")]
    [InlineData("per_prior: [square]\n", "line 1", "per_prior must be a mapping from prior names", "forward-marginal")]
    [InlineData("per_prior:\n  spiral:\n    epochs: 3\n", "line 2", "per_prior.spiral: 'spiral' is not a prior", "swiss-roll")]
    [InlineData("per_prior:\n  square: 3\n", "line 2", "per_prior.square must be a mapping", "")]
    [InlineData("per_prior:\n  square:\n    seed: 3\n", "line 3", "per_prior.square.seed is set per run by the sweep", "remove it from per_prior.square")]
    [InlineData("per_prior:\n  square:\n    ddvi:\n      sleep_stepz: 3\n", "line 4", "unknown key 'per_prior.square.ddvi.sleep_stepz'", "sleep_steps")]
    [InlineData("per_prior:\n  square:\n    epochs: 3\n  less_noisy_square:\n    epochs: 4\n", "line 4", "names the prior square twice", "")]
    public void ErrorsNameTheFileLineAndKey(string yaml, string where, string what, string valid)
    {
        using var folder = new TempFolder();
        File.WriteAllText(folder["sweep.yaml"], yaml);
        var error = Assert.Throws<ArgumentException>(() => CompareCommand.OptionsFor("--sweep", folder["sweep.yaml"]));
        Assert.Contains("sweep.yaml", error.Message);
        Assert.Contains(where, error.Message);
        Assert.Contains(what, error.Message);
        Assert.Contains(valid, error.Message);
    }
}
