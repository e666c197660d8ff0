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
        Assert.Equal("POP1_1\tPOP1\tPOP1", File.ReadLines(Path.Combine(cache, GenotypePcaCache.SamplesFile)).Skip(1).First());
        var (values, shape) = NpyFile.ReadFloat32(Path.Combine(cache, GenotypePcaCache.ScoresFile));
        Assert.Equal(new long[] { 20, 3 }, shape);
        Assert.Equal(result.Scores, values);

        Assert.Null(GenotypePcaCache.TryLoad(cache, inputs with { Options = options with { Divisor = 1 } }));
        Assert.Null(GenotypePcaCache.TryLoad(cache, inputs with { Filters = filters with { MaxMissingRate = 0.5 } }));
        File.SetLastWriteTimeUtc(folder["g.bim"], DateTime.UtcNow.AddMinutes(1));
        Assert.Null(GenotypePcaCache.TryLoad(cache, GenotypePcaInputs.Of(folder["g.bed"], filters, options)));
        Assert.Empty(Directory.GetFiles(cache, "*.tmp"));
    }
}
