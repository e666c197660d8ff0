using Ddvi.Cli.Commands;
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

    [Theory]
    [InlineData("model: [vae]\n", "line 1", "unknown key 'model'", "models, priors, seeds")]
    [InlineData("models: [gan]\nout: x\n", "sweep.yaml", "--models: 'gan' is not known", "vae")]
    [InlineData("seeds: [a]\n", "line 1", "seeds must be a list of integers", "'a'")]
    [InlineData("overrides:\n  prior: square\n", "line 2", "overrides.prior is set per run by the sweep", "")]
    [InlineData("overrides:\n  training:\n    epoks: 3\n", "line 3", "unknown key 'overrides.training.epoks'", "epochs")]
    [InlineData("overrides:\n  training:\n    epochs: many\n", "line 3", "overrides.training.epochs must be an integer", "'many'")]
    [InlineData("jobs: two\n", "line 1", "jobs must be an integer", "")]
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
