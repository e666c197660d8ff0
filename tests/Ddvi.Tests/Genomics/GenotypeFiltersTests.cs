using Ddvi.Experiments.Genomics;

namespace Ddvi.Tests.Genomics;

public class GenotypeFiltersTests
{
    [Fact]
    public void DefaultsAreTheReleaseRecipe()
    {
        var filters = new GenotypeFilters();

        Assert.True(filters.AutosomesOnly);
        Assert.True(filters.SingleBaseAllelesOnly);
        Assert.True(filters.PassOnly);
        Assert.Equal(10, filters.EveryNth);
        Assert.Equal(0, filters.MinMinorAlleleFrequency);
        Assert.Equal(1, filters.MaxMissingRate);
    }

    [Fact]
    public void InvalidValuesNameThePropertyAndTheValue()
    {
        var every = Assert.Throws<ArgumentException>(() => new GenotypeFilters { EveryNth = 0 });
        var maf = Assert.Throws<ArgumentException>(() => new GenotypeFilters { MinMinorAlleleFrequency = 0.6 });
        var missing = Assert.Throws<ArgumentException>(() => new GenotypeFilters { MaxMissingRate = -0.1 });
        var nan = Assert.Throws<ArgumentException>(() => new GenotypeFilters { MaxMissingRate = double.NaN });

        Assert.StartsWith("GenotypeFilters.EveryNth must be at least 1 (1 keeps every site); got 0.", every.Message);
        Assert.StartsWith("GenotypeFilters.MinMinorAlleleFrequency must lie in [0, 0.5]; got 0.6.", maf.Message);
        Assert.StartsWith("GenotypeFilters.MaxMissingRate must lie in [0, 1]; got -0.1.", missing.Message);
        Assert.Equal("MaxMissingRate", nan.ParamName);
    }

    [Theory]
    [InlineData("1", true)]
    [InlineData("22", true)]
    [InlineData("chr7", true)]
    [InlineData("CHR7", true)]
    [InlineData("0", false)]
    [InlineData("01", false)]
    [InlineData("23", false)]
    [InlineData("X", false)]
    [InlineData("chrX", false)]
    [InlineData("MT", false)]
    [InlineData("chr", false)]
    [InlineData("GL000207.1", false)]
    public void AutosomesAreOneToTwentyTwo(string chrom, bool autosome) => Assert.Equal(autosome, GenotypeFilters.IsAutosome(chrom));

    [Theory]
    [InlineData("A", true)]
    [InlineData("t", true)]
    [InlineData("4", true)]
    [InlineData("0", false)]
    [InlineData("5", false)]
    [InlineData("N", false)]
    [InlineData("AT", false)]
    [InlineData("<A150>", false)]
    [InlineData("*", false)]
    [InlineData(".", false)]
    public void SingleBasesAreACGTOrPlinkCodesOneToFour(string allele, bool single) => Assert.Equal(single, GenotypeFilters.IsSingleBase(allele));

    [Theory]
    [InlineData("PASS", true)]
    [InlineData(".", true)]
    [InlineData("q10", false)]
    [InlineData("LowQual;SB", false)]
    public void FilterPassOrDotPasses(string filter, bool pass) => Assert.Equal(pass, GenotypeFilters.IsPass(filter));
}
