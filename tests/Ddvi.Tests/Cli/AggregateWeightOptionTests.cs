using Ddvi.Cli.Commands;
using Ddvi.Experiments;

namespace Ddvi.Tests.Cli;

public class AggregateWeightOptionTests
{
    [Theory]
    [InlineData(null, 0.0)]
    [InlineData("0", 0.0)]
    [InlineData("2.5", 2.5)]
    public void TheAggregateWeightReachesStageThreeAndSurvivesResume(string? value, double expected)
    {
        string[] args = value is null ? ["--model", "ddvi", "--epochs", "1"] : ["--model", "ddvi", "--epochs", "1", "--aggregate-weight", value];
        var config = TrainCommand.ConfigFor(args).Validate();
        Assert.Equal(expected, config.Ddvi.AggregateWeight);
        Assert.Equal(expected, ExperimentConfig.FromJson(config.ToJson(), "config.json").Ddvi.AggregateWeight);

        Assert.Equal(expected, StartTermOptionTests.StageThreeWeights(config).AggregateWeight);
    }

    [Theory]
    [InlineData("-1")]
    [InlineData("NaN")]
    public void ANegativeOrNonFiniteAggregateWeightIsRejectedByName(string value)
    {
        var error = Assert.ThrowsAny<Exception>(() => TrainCommand.ConfigFor("--model", "ddvi", "--aggregate-weight", value).Validate());
        Assert.Contains("--aggregate-weight must be a finite number ≥ 0", error.Message);
    }

    [Fact]
    public void AConfigFromBeforeTheOptionReadsItAsOff()
    {
        var json = System.Text.Json.Nodes.JsonNode.Parse(TrainCommand.ConfigFor("--model", "ddvi").ToJson())!.AsObject();
        json["ddvi"]!.AsObject().Remove("aggregate_weight");
        Assert.Equal(0.0, ExperimentConfig.FromJson(json.ToJsonString(), "config.json").Ddvi.AggregateWeight);
    }
}
