using Ddvi.Data;
using Ddvi.Experiments.Genomics;

namespace Ddvi.Tests.Genomics;

public class GenotypePcaCacheTests
{
    [Fact]
    public void SavedResultsLoadBackOnlyForTheSameInputs()
    {
        using var folder = new TempFolder();
        string panel = SyntheticGenotypes.WritePlink(folder["g"], samples: 20, sites: 400, populations: 2, seed: 3, missingRate: 0.01);
        var filters = new GenotypeFilters { EveryNth = 2 };
        var options = new GenotypePcaOptions { Components = 3 };
        GenotypePcaResult result;
        using (var source = GenotypeFiles.Open(folder["g.bed"], filters)) result = GenotypePca.Fit(source, options);
        var inputs = GenotypePcaInputs.Of(folder["g.bed"], filters, options);
        var labels = PopulationPanel.Read(panel).Match(result.SampleIds);
        string cache = folder["cache"];

        Assert.Null(GenotypePcaCache.TryLoad(cache, inputs));
        GenotypePcaCache.Save(cache, result, inputs, labels);
        var loaded = GenotypePcaCache.TryLoad(cache, GenotypePcaInputs.Of(folder["g"], new GenotypeFilters { EveryNth = 2 }, new GenotypePcaOptions { Components = 3 }));

        Assert.NotNull(loaded);
        Assert.Equal(result.Scores, loaded.Scores);
        Assert.Equal(result.SampleIds, loaded.SampleIds);
        Assert.Equal(result.Eigenvalues, loaded.Eigenvalues);
        Assert.Equal(result.ExplainedVarianceFraction, loaded.ExplainedVarianceFraction);
        Assert.Equal((result.Components, result.ColumnsUsed, result.ColumnsSkipped), (loaded.Components, loaded.ColumnsUsed, loaded.ColumnsSkipped));
        Assert.Equal(result.Summary, loaded.Summary);
        Assert.Equal(result.Divisor, loaded.Divisor);
        Assert.Equal(string.Create(System.Globalization.CultureInfo.InvariantCulture,
            $"Input: the top 3 principal components of {result.ColumnsUsed:N0} genotype columns, divided by {result.Divisor:G4} (chosen from the data: the components' mean variance is 10)."),
            GenotypePcaCache.Describe(cache));
        Assert.Equal("POP1_1\tPOP1\tPOP1", File.ReadLines(Path.Combine(cache, GenotypePcaCache.SamplesFile)).Skip(1).First());
        var (values, shape) = NpyFile.ReadFloat32(Path.Combine(cache, GenotypePcaCache.ScoresFile));
        Assert.Equal(new long[] { 20, 3 }, shape);
        Assert.Equal(result.Scores, values);

        Assert.Null(GenotypePcaCache.TryLoad(cache, inputs with { Options = options with { Divisor = 1 } }));
        Assert.Null(GenotypePcaCache.TryLoad(cache, inputs with { Filters = filters with { MaxMissingRate = 0.5 } }));
        File.SetLastWriteTimeUtc(folder["g.bim"], DateTime.UtcNow.AddMinutes(1));
        Assert.Null(GenotypePcaCache.TryLoad(cache, GenotypePcaInputs.Of(folder["g.bed"], filters, options)));
        Assert.Empty(Directory.GetFiles(cache, "*.tmp"));
        Assert.Null(GenotypePcaCache.Describe(folder["nothing-here"]));
    }

    [Fact]
    public void ACacheWrittenBeforeTheDivisorWasRecordedTakesItsOptionsFixedDivisor()
    {
        using var folder = new TempFolder();
        SyntheticGenotypes.WritePlink(folder["g"], samples: 12, sites: 100, populations: 2, seed: 5, missingRate: 0);
        string cache = folder["cache"], metadata = Path.Combine(cache, GenotypePcaCache.MetadataFile);
        foreach (double? divisor in new double?[] { 30, null })
        {
            var options = new GenotypePcaOptions { Components = 2, Divisor = divisor };
            var inputs = GenotypePcaInputs.Of(folder["g.bed"], GenotypePcaFilters(), options);
            GenotypePcaResult result;
            using (var source = GenotypeFiles.Open(folder["g.bed"], GenotypePcaFilters())) result = GenotypePca.Fit(source, options);
            GenotypePcaCache.Save(cache, result, inputs);
            var node = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(metadata))!.AsObject();
            Assert.True(node.Remove("divisor"));
            File.WriteAllText(metadata, node.ToJsonString());
            if (divisor is { } fixedDivisor)
            {
                Assert.Equal(fixedDivisor, GenotypePcaCache.TryLoad(cache, inputs)!.Divisor);
                Assert.EndsWith("divided by (not recorded).", GenotypePcaCache.Describe(cache));
            }
            else
            {
                var error = Assert.Throws<DataFormatException>(() => GenotypePcaCache.TryLoad(cache, inputs));
                Assert.Contains(metadata, error.Message);
                Assert.Contains("no \"divisor\"", error.Message);
            }
        }

        static GenotypeFilters GenotypePcaFilters() => new() { EveryNth = 1 };
    }
}
