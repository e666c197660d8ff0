using Ddvi.Cli.Commands;
using Ddvi.Data;
using Ddvi.Experiments;
using Ddvi.Experiments.Methods;
using Ddvi.Priors;
using static TorchSharp.torch;

namespace Ddvi.Tests.Cli;

/// <summary>
/// <c>--lr</c>, <c>--prior-diffusion-lr</c> and <c>--warmup-lr</c>: parsed by <c>ddvi train</c>, checked, written to
/// config.json and read back from it, and handed to the phases of each DDVI stage.
/// </summary>
public class StageLearningRateTests
{
    private static readonly string[] AllThree = ["--model", "ddvi", "--lr", "5e-5", "--prior-diffusion-lr", "2e-3", "--warmup-lr", "3e-4"];

    [Fact]
    public void EachStagesOptionReachesTheConfiguration()
    {
        var config = TrainCommand.ConfigFor(AllThree).Validate();
        Assert.Equal(5e-5, config.LearningRate);
        Assert.Equal(5e-5, config.ResolvedLearningRate);
        Assert.Equal(2e-3, config.Ddvi.PriorDiffusionLearningRate);
        Assert.Equal(3e-4, config.Ddvi.WarmupLearningRate);
    }

    [Fact]
    public void LeftOutTheyKeepTheReleasesValues()
    {
        var config = TrainCommand.ConfigFor().Validate();
        Assert.Null(config.LearningRate);
        Assert.Equal(1e-4, config.ResolvedLearningRate);
        Assert.Equal(1e-3, config.Ddvi.PriorDiffusionLearningRate);
        Assert.Equal(1e-4, config.Ddvi.WarmupLearningRate);
        Assert.Equal(new DdviSettings(), config.Ddvi);
    }

    [Theory]
    [InlineData("--prior-diffusion-lr", "0")]
    [InlineData("--prior-diffusion-lr", "-1e-3")]
    [InlineData("--prior-diffusion-lr", "NaN")]
    [InlineData("--prior-diffusion-lr", "Infinity")]
    [InlineData("--warmup-lr", "0")]
    [InlineData("--warmup-lr", "-0.5")]
    [InlineData("--warmup-lr", "NaN")]
    [InlineData("--lr", "0")]
    [InlineData("--lr", "Infinity")]
    public void BadValuesAreErrorsNamingTheOption(string option, string value)
    {
        var error = Assert.Throws<ArgumentException>(() => TrainCommand.ConfigFor(option, value).Validate());
        Assert.StartsWith($"{option} must be a finite number > 0", error.Message);
    }

    [Theory]
    [InlineData("--prior-diffusion-lr")]
    [InlineData("--warmup-lr")]
    public void NonNumbersAreParseErrorsNamingTheOption(string option)
    {
        var error = Assert.Throws<ArgumentException>(() => TrainCommand.ConfigFor(option, "fast"));
        Assert.Contains(option, error.Message);
    }

    [Fact]
    public void ConfigJsonKeepsThemForResume()
    {
        var config = TrainCommand.ConfigFor(AllThree).Validate();
        string json = config.ToJson();
        Assert.Contains("\"prior_diffusion_learning_rate\": 0.002", json);
        Assert.Contains("\"warmup_learning_rate\": 0.0003", json);
        var read = ExperimentConfig.FromJson(json, "config.json"); // what --resume reads
        Assert.Equal(5e-5, read.LearningRate);
        Assert.Equal(2e-3, read.Ddvi.PriorDiffusionLearningRate);
        Assert.Equal(3e-4, read.Ddvi.WarmupLearningRate);

        var error = Assert.Throws<ArgumentException>(() => ExperimentConfig.FromJson(json.Replace("0.0003", "-0.0003"), "config.json"));
        Assert.Contains("--warmup-lr", error.Message);
    }

    [Fact]
    public void EachDdviStageTrainsWithItsOwnRate()
    {
        var config = TrainCommand.ConfigFor([.. AllThree, "--prior-steps", "3", "--posterior-steps", "4", "--epochs", "1"]).Validate();
        config = config with { Ddvi = config.Ddvi with { Hidden = 8 } }; // small networks: only the phases matter here
        using var generator = new Generator(5);
        using var train = new ImageDataset("toy", rand([16, 12], generator: generator), randint(0, 3, [16], generator: generator),
            new ImageShape(1, 3, 4), classCount: 3);
        var prior = PriorCatalog.Create("pinwheel", null, config.Seed, CPU, PriorDensityChoice.Exact);
        var method = new DdviMethod(new MethodContext(config, train, prior, CPU));
        using var module = method.Module;

        Assert.Equal([DdviMethod.PriorDiffusionStage, DdviMethod.WarmupStage, DdviMethod.DdviStageName], method.Stages.Select(s => s.Name));
        Assert.Equal([2e-3], method.Stages[0].Phases.Select(p => p.LearningRate));
        Assert.Equal([3e-4], method.Stages[1].Phases.Select(p => p.LearningRate));
        Assert.Equal([5e-5, 5e-5], method.Stages[2].Phases.Select(p => p.LearningRate)); // wake and sleep
    }

    [Theory]
    [InlineData("vae")]
    [InlineData("iaf-vae")]
    [InlineData("h-iaf-vae")]
    [InlineData("aae")]
    public void OtherModelsTrainTheirSingleStageAtLr(string model)
    {
        var config = TrainCommand.ConfigFor("--model", model, "--lr", "7e-4", "--epochs", "1").Validate()
            with { Vae = new() { Hidden = 8 }, Iaf = new() { Hidden = 8, MadeHidden = 8 }, HierarchicalIaf = new() { Hidden = 8, MadeHidden = 8 },
                   Aae = new() { Hidden = 8, DiscriminatorHidden = 8 } };
        using var generator = new Generator(6);
        using var train = new ImageDataset("toy", rand([16, 12], generator: generator), randint(0, 3, [16], generator: generator),
            new ImageShape(1, 3, 4), classCount: 3);
        var prior = PriorCatalog.Create("pinwheel", null, config.Seed, CPU, PriorDensityChoice.Exact);
        var method = ModelCatalog.Create(new MethodContext(config, train, prior, CPU));
        using var module = method.Module;
        var stage = Assert.Single(method.Stages);
        Assert.All(stage.Phases, p => Assert.Equal(7e-4, p.LearningRate));
    }
}
