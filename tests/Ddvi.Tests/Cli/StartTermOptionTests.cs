using Ddvi.Cli.Commands;
using Ddvi.Data;
using Ddvi.Experiments;
using Ddvi.Experiments.Methods;
using Ddvi.Objectives;
using Ddvi.Priors;
using static TorchSharp.torch;

namespace Ddvi.Tests.Cli;

public class StartTermOptionTests
{
    [Theory]
    [InlineData(null, StartTarget.StandardNormal)]
    [InlineData("standard-normal", StartTarget.StandardNormal)]
    [InlineData("forward-marginal", StartTarget.ForwardMarginal)]
    public void TheStartTermReachesStageThreeAndSurvivesResume(string? value, StartTarget expected)
    {
        string[] args = value is null ? ["--model", "ddvi", "--epochs", "1"] : ["--model", "ddvi", "--epochs", "1", "--start-term", value];
        var config = TrainCommand.ConfigFor(args).Validate();
        Assert.Equal(expected, config.Ddvi.Start);
        Assert.Equal(expected, ExperimentConfig.FromJson(config.ToJson(), "config.json").Ddvi.Start);

        Assert.Equal(expected, StageThreeWeights(config).Start);
    }

    /// <summary>The weights stage 3 trains with under <paramref name="config"/>: a small DDVI method built on toy images.</summary>
    internal static DdviWeights StageThreeWeights(ExperimentConfig config)
    {
        config = config with { Ddvi = config.Ddvi with { Hidden = 8, PriorSteps = 3, PosteriorSteps = 4 } };
        using var generator = new Generator(5);
        using var train = new ImageDataset("toy", rand([16, 12], generator: generator), randint(0, 3, [16], generator: generator),
            new ImageShape(1, 3, 4), classCount: 3);
        var prior = PriorCatalog.Create("pinwheel", null, config.Seed, CPU, PriorDensityChoice.Exact);
        var method = new DdviMethod(new MethodContext(config, train, prior, CPU));
        using var module = method.Module;
        return method.Weights;
    }

    [Fact]
    public void AnUnknownStartTermIsRejectedWithTheValidOnes()
    {
        var error = Assert.ThrowsAny<Exception>(() => TrainCommand.ConfigFor("--start-term", "zero"));
        Assert.Contains("zero", error.Message);
        Assert.Contains("forward-marginal", error.Message);
    }
}
