using Ddvi.Experiments;

namespace Ddvi.Tests.Experiments;

public class ModelCatalogTests
{
    [Fact]
    public void NamesKeepTheirOrderAndEveryModelItsPaperDefaults()
    {
        Assert.Equal(["ddvi", "vae", "iaf-vae", "h-iaf-vae", "aae", "ddvi-semi", "vae-semi", "iaf-vae-semi", "aae-semi"], ModelCatalog.Names);
        var expected = new Dictionary<string, (int Paper, int Quick, double Lr)>
        {
            ["ddvi"] = (100, 15, 1e-4),
            ["vae"] = (200, 30, 1e-4),
            ["iaf-vae"] = (200, 30, 1e-4),
            ["h-iaf-vae"] = (200, 30, 1e-4),
            ["aae"] = (200, 15, 2e-4),
            ["ddvi-semi"] = (50, 4, 1e-4),
            ["vae-semi"] = (50, 30, 1e-4),
            ["iaf-vae-semi"] = (50, 30, 1e-4),
            ["aae-semi"] = (200, 15, 2e-4),
        };
        foreach (var (name, (paper, quick, lr)) in expected)
        {
            var model = ModelCatalog.Get(name);
            Assert.Equal(name, model.Name);
            Assert.Equal(paper, ModelCatalog.PaperEpochs(name));
            Assert.Equal(quick, ModelCatalog.QuickEpochs(name));
            Assert.Equal(lr, ModelCatalog.DefaultLearningRate(name));
        }
    }

    [Fact]
    public void ConfigurationsResolveTheirModelsDefaults()
    {
        var vae = new ExperimentConfig { Model = "vae" };
        Assert.Equal(30, vae.ResolvedEpochs); // synthetic
        Assert.Equal(200, (vae with { Dataset = "mnist" }).ResolvedEpochs);
        Assert.Equal(2e-4, new ExperimentConfig { Model = "aae" }.ResolvedLearningRate);
        Assert.Equal(3e-3, new ExperimentConfig { Model = "aae", LearningRate = 3e-3 }.ResolvedLearningRate);
        Assert.Equal(50, new ExperimentConfig { Model = "ddvi-semi", Dataset = "mnist" }.ResolvedEpochs);
        Assert.Equal(1024, new ExperimentConfig { Model = "ddvi-semi" }.ResolvedBatchSize);
        Assert.Equal(128, new ExperimentConfig { Model = "vae-semi" }.ResolvedBatchSize);
        Assert.Equal(64, new ExperimentConfig { Model = "ddvi-semi", BatchSize = 64 }.ResolvedBatchSize);
    }

    [Fact]
    public void UnknownNamesAreErrorsListingTheValidOnes()
    {
        var error = Assert.Throws<ArgumentException>(() => ModelCatalog.Get("gan"));
        Assert.Contains("--model 'gan'", error.Message);
        Assert.Contains("ddvi, vae, iaf-vae, h-iaf-vae, aae, ddvi-semi, vae-semi, iaf-vae-semi, aae-semi", error.Message);
        Assert.Throws<ArgumentException>(() => ModelCatalog.PaperEpochs("gan"));
    }

    [Fact]
    public void HelpTextsListEachModelsDefault()
    {
        Assert.Equal("ddvi 100, vae 200, iaf-vae 200, h-iaf-vae 200, aae 200, ddvi-semi 50, vae-semi 50, iaf-vae-semi 50, aae-semi 200", ModelCatalog.Describe(m => m.PaperEpochs));
        Assert.Equal("ddvi 1e-4, vae 1e-4, iaf-vae 1e-4, h-iaf-vae 1e-4, aae 2e-4, ddvi-semi 1e-4, vae-semi 1e-4, iaf-vae-semi 1e-4, aae-semi 2e-4", ModelCatalog.Describe(m => m.LearningRate));
    }
}
