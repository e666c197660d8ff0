using Ddvi.Data;
using Ddvi.Experiments.Genomics;

namespace Ddvi.Tests.Genomics;

public class PopulationPanelTests
{
    const string Panel = "sample\tpop\tsuper_pop\tgender\textra\n" +
                         "HG1\tGBR\tEUR\tmale\tx\n" +
                         "HG2\tYRI\tAFR\tfemale\ty\n" +
                         "HG3\tCHB\tEAS\tmale\tz\n" +
                         "HG4\tFIN\tEUR\tfemale\tw\n" +
                         "HG5\tGBR\tEUR\tmale\tv\n";

    [Fact]
    public void MatchGivesLabelsCodesInPanelOrderAndWarnings()
    {
        using var folder = new TempFolder();
        File.WriteAllText(folder["p.panel"], Panel);
        var panel = PopulationPanel.Read(folder["p.panel"]);

        var match = panel.Match(["HG4", "NA9", "HG1", "HG2"]);

        Assert.Equal(["EUR", "AFR", "EAS"], panel.SuperPopulations);
        Assert.Equal(["GBR", "YRI", "CHB", "FIN"], panel.Populations);
        Assert.Equal(["FIN", null, "GBR", "YRI"], match.Population);
        Assert.Equal(["EUR", null, "EUR", "AFR"], match.SuperPopulation);
        Assert.Equal([3, -1, 0, 1], match.PopulationCode);
        Assert.Equal([0, -1, 0, 1], match.SuperPopulationCode);
        Assert.Equal([0, 2, 3], match.KeptIndices);
        Assert.Equal(["NA9"], match.MissingFromPanel);
        Assert.Equal(["HG3", "HG5"], match.ExtraInPanel);
        Assert.Equal([$"1 of 4 samples are not in the panel {folder["p.panel"]}: NA9", "2 of the panel's 5 samples are not in the genotypes: HG3, HG5"], match.Warnings);
    }

    [Fact]
    public void LongListsInWarningsShowTenNamesAndACount()
    {
        using var folder = new TempFolder();
        File.WriteAllText(folder["p.panel"], Panel);
        var ids = Enumerable.Range(1, 25).Select(i => $"X{i}").ToArray();

        var match = PopulationPanel.Read(folder["p.panel"]).Match(ids);

        Assert.Equal(25, match.MissingFromPanel.Count);
        Assert.Equal($"25 of 25 samples are not in the panel {folder["p.panel"]}: X1, X2, X3, X4, X5, X6, X7, X8, X9, X10 … (15 more)", match.Warnings[0]);
    }

    [Fact]
    public void MalformedPanelsNameFileAndLine()
    {
        using var folder = new TempFolder();
        File.WriteAllText(folder["a"], "id,pop\n");
        File.WriteAllText(folder["b"], Panel + "HG6\tGBR\n");
        File.WriteAllText(folder["c"], Panel + "HG2\tGBR\tEUR\tmale\n");

        Assert.Equal($"{folder["a"]}: line 1: expected the header 'sample<TAB>pop<TAB>super_pop<TAB>gender', found 'id,pop'.",
            Assert.Throws<DataFormatException>(() => PopulationPanel.Read(folder["a"])).Message);
        Assert.Equal($"{folder["b"]}: line 7: expected at least 3 tab-separated columns (sample, pop, super_pop), found 2.",
            Assert.Throws<DataFormatException>(() => PopulationPanel.Read(folder["b"])).Message);
        Assert.Equal($"{folder["c"]}: line 7: sample 'HG2' is already on line 3.",
            Assert.Throws<DataFormatException>(() => PopulationPanel.Read(folder["c"])).Message);
    }
}
