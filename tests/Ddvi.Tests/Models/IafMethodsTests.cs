using System.Text.Json;
using Ddvi.Experiments;
using Ddvi.Tests.Experiments;
using Ddvi.Training;

namespace Ddvi.Tests.Models;

public class IafMethodsTests
{
    private static ExperimentConfig Tiny(string model) => ExperimentRunnerTests.Tiny(model) with
    {
        Iaf = new IafSettings { Hidden = 32, MadeHidden = 8 },
        HierarchicalIaf = new HierarchicalIafSettings { Hidden = 32, MadeHidden = 8, FeatureSize = 8, Level2Hidden = 6 },
    };

    [Theory]
    [InlineData("iaf-vae")]
    [InlineData("h-iaf-vae")]
    public void TinyRunWritesFiniteMetrics(string model)
    {
        using var folder = new TempFolder();
        var report = new ExperimentRunner(SilentObserver.Instance).Train(Tiny(model), folder.Path, resume: false);
        var run = new RunDirectory(folder.Path);
        Assert.NotNull(Checkpoint.Latest(run.Checkpoints(model)));
        Assert.True(report.Elbo.Available);
        Assert.True(double.IsFinite(report.Elbo.NatsPerImage!.Value) && double.IsFinite(report.LatentNll.Value) && double.IsFinite(report.Mmd.Value));
        Assert.InRange(report.KnnAccuracy.Value, 0, 1);
        var metrics = JsonDocument.Parse(File.ReadAllText(run.Metrics)).RootElement;
        Assert.Equal(model, metrics.GetProperty("model").GetString());
    }

    [Fact]
    public void CatalogAndConfigCarryTheReleaseDefaults()
    {
        foreach (var model in new[] { "iaf-vae", "h-iaf-vae" })
        {
            Assert.Contains(model, ModelCatalog.Names);
            Assert.Equal(200, new ExperimentConfig { Dataset = "mnist", Model = model }.ResolvedEpochs);
            Assert.Equal(1e-4, new ExperimentConfig { Model = model }.ResolvedLearningRate);
        }
        var iaf = new IafSettings();
        Assert.Equal((0.01, 1.0, 10, 4, 128), (iaf.KlWeight, iaf.PriorWeight, iaf.ContextSize, iaf.FlowLayers, iaf.MadeHidden));
        var hierarchical = new HierarchicalIafSettings();
        Assert.Equal((0.005, 0.5, 64, 128, 24), (hierarchical.KlWeight, hierarchical.PriorWeight, hierarchical.MadeHidden, hierarchical.FeatureSize, hierarchical.Level2Hidden));
        // β ramps linearly over the first 80% of the epochs, then stays.
        Assert.Equal(0.0, iaf.KlWeightAt(0, 200));
        Assert.Equal(0.005, iaf.KlWeightAt(80, 200), 12);
        Assert.Equal(0.01, iaf.KlWeightAt(199, 200), 12);
    }

    [Fact]
    public void PartialSettingsInConfigJsonKeepEachModelsDefaults()
    {
        var json = new ExperimentConfig { Model = "h-iaf-vae" }.ToJson();
        Assert.Contains("\"hierarchical_iaf\"", json);
        Assert.Contains("\"level2_hidden\": 24", json);
        var parsed = ExperimentConfig.FromJson("{\"model\": \"h-iaf-vae\", \"hierarchical_iaf\": {\"hidden\": 32}, \"iaf\": {\"made_hidden\": 16}}", "test.json");
        Assert.Equal((32, 0.005, 0.5, 64), (parsed.HierarchicalIaf.Hidden, parsed.HierarchicalIaf.KlWeight, parsed.HierarchicalIaf.PriorWeight, parsed.HierarchicalIaf.MadeHidden));
        Assert.Equal((16, 0.01), (parsed.Iaf.MadeHidden, parsed.Iaf.KlWeight));
    }

    [Theory]
    [InlineData("iaf.kl_weight", "{\"iaf\": {\"kl_weight\": -1}}")]
    [InlineData("iaf.context_size", "{\"iaf\": {\"context_size\": 0}}")]
    [InlineData("iaf.flow_layers", "{\"iaf\": {\"flow_layers\": 0}}")]
    [InlineData("iaf.made_hidden", "{\"iaf\": {\"made_hidden\": 0}}")]
    [InlineData("iaf.dropout", "{\"iaf\": {\"dropout\": 1}}")]
    [InlineData("hierarchical_iaf.kl_ramp_fraction", "{\"hierarchical_iaf\": {\"kl_ramp_fraction\": 0}}")]
    [InlineData("hierarchical_iaf.prior_weight", "{\"hierarchical_iaf\": {\"prior_weight\": -0.5}}")]
    [InlineData("hierarchical_iaf.feature_size", "{\"hierarchical_iaf\": {\"feature_size\": 0}}")]
    [InlineData("hierarchical_iaf.level2_hidden", "{\"hierarchical_iaf\": {\"level2_hidden\": 0}}")]
    [InlineData("hierarchical_iaf.hidden", "{\"hierarchical_iaf\": {\"hidden\": 0}}")]
    public void BadSettingsNameTheirOption(string option, string json)
    {
        var error = Assert.Throws<ArgumentException>(() => ExperimentConfig.FromJson(json, "bad.json"));
        Assert.Contains(option, error.Message);
    }
}
