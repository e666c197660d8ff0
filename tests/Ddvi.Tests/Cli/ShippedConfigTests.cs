using Ddvi.Cli.Commands;
using Ddvi.Experiments;
using Ddvi.Experiments.Comparison;
using Ddvi.Objectives;

namespace Ddvi.Tests.Cli;

/// <summary>The experiment and sweep files under configs/: each parses and validates, and each release command has its file.</summary>
public class ShippedConfigTests
{
    /// <summary>The repository's configs/ folder, found upwards from the test assembly.</summary>
    internal static string ConfigsFolder()
    {
        for (var folder = new DirectoryInfo(AppContext.BaseDirectory); folder is not null; folder = folder.Parent)
            if (File.Exists(Path.Combine(folder.FullName, "Ddvi.slnx"))) return Path.Combine(folder.FullName, "configs");
        throw new InvalidOperationException("repository root (Ddvi.slnx) not found above " + AppContext.BaseDirectory);
    }

    private static IEnumerable<string> Names(string dataset) =>
        Directory.GetFiles(Path.Combine(ConfigsFolder(), dataset), "*.yaml").Select(path => Path.GetFileName(path)).Order();

    public static TheoryData<string, string> ExperimentFiles()
    {
        var files = new TheoryData<string, string>();
        foreach (var dataset in new[] { "mnist", "cifar10" })
            foreach (var name in Names(dataset)) files.Add(dataset, name);
        return files;
    }

    [Theory]
    [MemberData(nameof(ExperimentFiles))]
    public void EachPaperExperimentFileValidatesWithTheReleaseSettings(string dataset, string name)
    {
        var config = TrainCommand.ConfigFor("--config", Path.Combine(ConfigsFolder(), dataset, name)).Validate();
        Assert.Equal(dataset, config.Dataset);
        Assert.Equal(Path.GetFileNameWithoutExtension(name), $"{config.Model}-{config.Prior}");
        Assert.Equal(0, config.Seed);
        // Unset lengths resolve to the paper's.
        Assert.Equal(ModelCatalog.PaperEpochs(config.Model), config.ResolvedEpochs);
        if (config.Model == "ddvi")
        {
            Assert.Equal(100_000, config.ResolvedPriorDiffusionIterations);
            Assert.Equal(100, config.ResolvedWarmupEpochs);
        }
        if (config.Prior == "square") Assert.Equal(3, config.PriorNoise);
        if (ModelCatalog.Get(config.Model).SemiSupervised)
        {
            // The release's budgets: 1,000 labels for MNIST-format data, 10,000 for CIFAR-10.
            Assert.Equal(dataset == "cifar10" ? 10_000 : 1_000, config.Labels);
            if (config.Model == "ddvi-semi")
            {
                Assert.Equal(1024, config.ResolvedBatchSize);
                Assert.Equal(50, config.ResolvedSemiWarmupEpochs);
                Assert.Equal(100, config.Semi.Steps);
                Assert.Equal(30, config.Semi.SleepSteps);
            }
        }
    }

    [Theory]
    [InlineData("mnist")]
    [InlineData("cifar10")]
    public void EveryReleaseCommandHasItsFile(string dataset)
    {
        // ./run.sh mnist|cifar METHOD PRIOR for the release's five methods and three priors.
        // ./run.sh mnist_semi|cifar_semi METHOD PRIOR for the release's four semi-supervised methods.
        string[] methods = ["ddvi", "vae", "iaf-vae", "h-iaf-vae", "aae", "ddvi-semi", "vae-semi", "iaf-vae-semi", "aae-semi"];
        string[] priors = ["pinwheel", "swiss-roll", "square"];
        var expected = (from m in methods from p in priors select $"{m}-{p}.yaml").Order();
        Assert.Equal(expected, Names(dataset));
    }

    [Fact]
    public void ShippedSweepsValidate()
    {
        var mnist = CompareCommand.OptionsFor("--sweep", Path.Combine(ConfigsFolder(), "sweeps", "mnist-unsupervised.yaml"));
        Assert.Equal(15 * 3, mnist.Plan().Count);
        Assert.All(mnist.Plan(), run => Assert.Equal("mnist", run.Config.Dataset));
        Assert.Equal(ComparisonOptions.DefaultModels.Order(), mnist.Models.Order());

        var cifar = CompareCommand.OptionsFor("--sweep", Path.Combine(ConfigsFolder(), "sweeps", "cifar10-unsupervised.yaml"));
        Assert.Equal(15 * 3, cifar.Plan().Count);
        Assert.All(cifar.Plan(), run => Assert.Equal("cifar10", run.Config.Dataset));

        foreach (var (name, dataset, labels) in new[] { ("mnist-semi", "mnist", 1_000), ("cifar10-semi", "cifar10", 10_000) })
        {
            var semi = CompareCommand.OptionsFor("--sweep", Path.Combine(ConfigsFolder(), "sweeps", $"{name}.yaml"));
            Assert.Equal(12 * 3, semi.Plan().Count);
            Assert.All(semi.Plan(), run => Assert.Equal((dataset, labels), (run.Config.Dataset, run.Config.Labels)));
        }

        // The coverage settings: DDVI's K = 10 and aggregate term everywhere, the forward-marginal start term under the swiss roll only.
        var coverage = CompareCommand.OptionsFor("--sweep", Path.Combine(ConfigsFolder(), "sweeps", "fashion-mnist-coverage.yaml"));
        Assert.Equal(5 * 3, coverage.Plan().Count);
        Assert.All(coverage.Plan(), run =>
        {
            Assert.Equal(("fashion-mnist", 10, 0.3), (run.Config.Dataset, run.Config.Ddvi.SleepSteps, run.Config.Ddvi.AggregateWeight));
            Assert.Equal(run.Config.Prior == "swiss-roll" ? StartTarget.ForwardMarginal : StartTarget.StandardNormal, run.Config.Ddvi.Start);
            Assert.Null(run.Config.Epochs);
        });

        var quick = CompareCommand.OptionsFor("--sweep", Path.Combine(ConfigsFolder(), "sweeps", "synthetic-quick.yaml"));
        Assert.Equal(4, quick.Plan().Count);
        Assert.All(quick.Plan(), run => Assert.Equal(10, run.Config.Epochs));
        Assert.Equal(5, quick.BaseConfig.Ddvi.WarmupEpochs);
    }
}
