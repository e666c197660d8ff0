using Ddvi.Experiments;
using Ddvi.Experiments.Comparison;

namespace Ddvi.Tests.Comparison;

public class ComparisonOptionsTests
{
    private static readonly ComparisonOptions Valid = new() { OutputFolder = "cmp", Models = ["vae"], Priors = ["pinwheel"], Seeds = [0] };

    [Fact]
    public void DefaultsAreThePapersKnownMethodsThreePriorsAndThreeSeeds()
    {
        var options = new ComparisonOptions { OutputFolder = "cmp" }.Validate();
        Assert.Equal(ModelCatalog.Names.Where(ComparisonOptions.PaperModels.Contains), options.Models);
        Assert.Contains("ddvi", options.Models);
        Assert.Contains("vae", options.Models);
        Assert.Equal(["pinwheel", "swiss-roll", "square"], options.Priors);
        Assert.Equal([0L, 1, 2], options.Seeds);
        Assert.Equal(options.Models.Count * 3 * 3, options.Plan().Count);
    }

    [Fact]
    public void PlanNamesEachRunFolderAndSetsItsModelPriorSeedAndThreads()
    {
        var options = Valid with { Models = ["vae", "ddvi"], Priors = ["square"], Seeds = [4, 7], Jobs = 2, Threads = 8, BaseConfig = new ExperimentConfig { Epochs = 3 } };
        var plan = options.Plan();
        Assert.Equal(["vae-square-s4", "vae-square-s7", "ddvi-square-s4", "ddvi-square-s7"], plan.Select(r => r.Name));
        Assert.Equal(Path.Combine(Path.GetFullPath("cmp"), "runs", "ddvi-square-s7"), plan[3].Folder);
        Assert.Equal(("ddvi", "square", 7L, 4, 3), (plan[3].Config.Model, plan[3].Config.Prior, plan[3].Config.Seed, plan[3].Config.Threads, plan[3].Config.Epochs));
    }

    [Theory]
    [InlineData(1, 6, 6)]
    [InlineData(2, 6, 3)]
    [InlineData(4, 6, 1)]
    [InlineData(8, 6, 1)]
    [InlineData(1, 0, 0)]
    public void ThreadsAreDividedAmongJobs(int jobs, int threads, int perRun)
    {
        Assert.Equal(perRun, (Valid with { Jobs = jobs, Threads = threads }).ThreadsPerRun);
    }

    [Fact]
    public void ListsAreParsedFromCommas()
    {
        Assert.Equal(["vae", "ddvi"], ComparisonOptions.ParseNames(" VAE, ddvi ,"));
        Assert.Equal([0L, 1, 12], ComparisonOptions.ParseSeeds("0, 1,12"));
    }

    [Theory]
    [InlineData("x")]
    [InlineData("1.5")]
    [InlineData("-1")]
    public void BadSeedsNameTheOption(string text)
    {
        var error = Assert.Throws<ArgumentException>(() => ComparisonOptions.ParseSeeds($"0,{text}"));
        Assert.Contains("--seeds", error.Message);
        Assert.Contains($"'{text}'", error.Message);
    }

    public static TheoryData<string, string[]> BadOptions => new()
    {
        { "models-unknown", ["--models", "'gan'", "ddvi", "vae"] },
        { "models-empty", ["--models", "empty", "ddvi", "vae"] },
        { "models-twice", ["--models", "'vae'", "2 times"] },
        { "priors-unknown", ["--priors", "'banana'", "pinwheel", "swiss-roll", "square", "less_noisy_square"] },
        { "priors-empty", ["--priors", "empty", "pinwheel"] },
        { "seeds-empty", ["--seeds", "empty", "0,1,2"] },
        { "seeds-negative", ["--seeds", "-3", "≥ 0"] },
        { "seeds-twice", ["--seeds", "'1'", "2 times"] },
        { "jobs", ["--jobs", "≥ 1", "got 0"] },
        { "threads", ["--threads", "≥ 0", "got -2"] },
        { "out", ["--out", "required"] },
        { "epochs", ["--epochs", "≥ 1"] },
    };

    [Theory]
    [MemberData(nameof(BadOptions))]
    public void BadInputsNameTheOptionAndTheValidValues(string kind, string[] expected)
    {
        var options = kind switch
        {
            "models-unknown" => Valid with { Models = ["vae", "gan"] },
            "models-empty" => Valid with { Models = [] },
            "models-twice" => Valid with { Models = ["vae", "vae"] },
            "priors-unknown" => Valid with { Priors = ["banana"] },
            "priors-empty" => Valid with { Priors = [] },
            "seeds-empty" => Valid with { Seeds = [] },
            "seeds-negative" => Valid with { Seeds = [1, -3] },
            "seeds-twice" => Valid with { Seeds = [1, 1] },
            "jobs" => Valid with { Jobs = 0 },
            "threads" => Valid with { Threads = -2 },
            "out" => Valid with { OutputFolder = " " },
            _ => Valid with { BaseConfig = new ExperimentConfig { Epochs = 0 } },
        };
        var error = Assert.Throws<ArgumentException>(() => options.Validate());
        foreach (var text in expected) Assert.Contains(text, error.Message);
    }
}
