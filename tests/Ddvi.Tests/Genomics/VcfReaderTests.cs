using Ddvi.Data;
using Ddvi.Experiments.Genomics;
using static Ddvi.Tests.Genomics.GenotypeTestFiles;

namespace Ddvi.Tests.Genomics;

public class VcfReaderTests
{
    static readonly string[] Samples = ["s1", "s2", "s3", "s4"];
    const float M = float.NaN;

    // Phased and unphased, multi-allelic, missing in both spellings, haploid, GT not first in FORMAT, a sample field that
    // stops before GT, and a partly missing call.
    static readonly string[] Records =
    [
        Record("1 100 rs1 A G . PASS . GT 0|0 0|1 1|1 1/0"),
        Record("2 200 rs2 C A,T . PASS . GT:DS 1/2:1 2/2:2 ./.:. 0/1:1"),
        Record("3 300 rs3 G T . . . DS:GT 0.1:1 0.2:. 0.3:0 0.4:0|1"),
        Record("4 400 rs4 T C . PASS . GL:GT -1:0/1 . -2:./1 -3:1"),
    ];

    static readonly float[][] Expected =
    [
        [0, 1, 2, 1],
        [1, 0, M, 1],
        [1, 2, M, 0],
        [1, M, 0, 1],
        [1, M, M, 1],
    ];

    [Theory]
    [InlineData(false, 1)]
    [InlineData(true, 1)]
    [InlineData(true, 3)]
    public void DosagesAreAltAlleleCountsOneColumnPerAlt(bool gzip, int members)
    {
        using var folder = new TempFolder();
        string path = Write(folder[gzip ? "calls.vcf.gz" : "calls.vcf"], Vcf(Samples, Records), gzip, members);

        using var source = GenotypeFiles.Open(path, GenotypeFilters.None);
        var (columns, sites) = ReadAll(source, maxColumns: 2);

        Assert.IsType<VcfReader>(source);
        Assert.Equal(Samples, source.SampleIds);
        Assert.Equal(Expected, columns);
        Assert.Equal(new GenotypeSite("2", 200, "rs2", "A", "C"), sites[1]);
        Assert.Equal(new GenotypeSite("2", 200, "rs2", "T", "C"), sites[2]);
        Assert.Equal(["G", "A", "T", "T", "C"], sites.Select(s => s.Allele));
        Assert.Equal(new GenotypeReadSummary(4, 0, 0, 0, 0, 0, 0, 4, 5), source.Summary);
    }

    [Fact]
    public void ASourceCanBeReadTwice()
    {
        using var folder = new TempFolder();
        string path = Write(folder["calls.vcf.gz"], Vcf(Samples, Records), gzip: true);
        using var source = new VcfReader(path, GenotypeFilters.None);

        var first = ReadAll(source).Columns;
        var second = ReadAll(source, maxColumns: 1).Columns;

        Assert.Equal(Expected, first);
        Assert.Equal(first, second);
        Assert.Equal(5, source.Summary.ColumnsProduced);
    }

    [Fact]
    public void FiltersDropSitesAndCountEachFilter()
    {
        using var folder = new TempFolder();
        string[] records =
        [
            Record("chr1 1 a A G . PASS . GT 0/0 0/1 1/1 0/0"),     // kept (1st passing)
            Record("X 2 b A G . PASS . GT 0/0 0/1 1/1 0/0"),        // not autosome
            Record("0 3 c A G . PASS . GT 0/0 0/1 1/1 0/0"),        // not autosome
            Record("23 4 d A G . PASS . GT 0/0 0/1 1/1 0/0"),       // not autosome
            Record("22 5 e AT G . PASS . GT 0/0 0/1 1/1 0/0"),      // indel
            Record("22 6 f A <DEL> . PASS . GT 0/0 0/1 1/1 0/0"),   // symbolic
            Record("22 7 g N A . PASS . GT 0/0 0/1 1/1 0/0"),       // N
            Record("22 8 h A G,TT . PASS . GT 0/0 0/1 1/1 0/0"),    // one ALT not single-base
            Record("22 9 i A G . q10 . GT 0/0 0/1 1/1 0/0"),        // failed filter
            Record("chr22 10 j A G . . . GT 0/0 0/1 1/1 0/0"),      // passes (FILTER '.'), 2nd passing: thinned
            Record("5 11 k C T . PASS . GT 0/0 0/0 0/0 0/1"),       // MAF 1/8 < 0.2
            Record("5 12 l C T . PASS . GT ./. ./. 0/1 1/1"),       // missing 0.5 > 0.3
            Record("5 13 m C T,G . PASS . GT 0/1 0/2 1/2 0/0"),     // MAF 1 - 3/8: 3rd passing, kept
        ];
        string path = Write(folder["f.vcf"], Vcf(Samples, records));
        var filters = new GenotypeFilters { EveryNth = 2, MinMinorAlleleFrequency = 0.2, MaxMissingRate = 0.3 };
        using var source = GenotypeFiles.Open(path, filters);

        var (columns, sites) = ReadAll(source);

        Assert.Equal(["a", "m", "m"], sites.Select(s => s.Id));
        Assert.Equal(new GenotypeReadSummary(SitesRead: 13, DroppedNotAutosome: 3, DroppedNotSingleBase: 4, DroppedFilterNotPass: 1,
            DroppedMinorAlleleFrequency: 1, DroppedMissingRate: 1, DroppedEveryNth: 1, SitesKept: 2, ColumnsProduced: 3), source.Summary);
        Assert.Equal([[1, 0, 1, 0], [0, 1, 1, 0]], columns[1..]);
    }

    [Fact]
    public void NothingKeptSaysWhatEachFilterRemovedAndWhatToRelax()
    {
        using var folder = new TempFolder();
        string path = Write(folder["loci.vcf"], Vcf(Samples,
            Record("0 1 loc-1 N <A1>,<A2> . . . GT 1/2 2/2 ./. 1/1"),
            Record("0 2 loc-2 N <A1> . . . GT 1/1 ./. 1/1 1/1")));

        var defaults = Assert.Throws<DataFormatException>(() => ReadAll(new VcfReader(path, new GenotypeFilters())));
        var relaxed = Assert.Throws<DataFormatException>(() => ReadAll(new VcfReader(path, new GenotypeFilters { AutosomesOnly = false })));
        using var none = new VcfReader(path, GenotypeFilters.None);

        Assert.StartsWith(path + ":", defaults.Message);
        Assert.Contains("2 not autosomal", defaults.Message);
        Assert.Contains("AutosomesOnly = false", defaults.Message);
        Assert.Contains("2 not single-base", relaxed.Message);
        Assert.Contains("SingleBaseAllelesOnly = false", relaxed.Message);
        Assert.Equal(3, ReadAll(none).Columns.Length);
    }

    [Theory]
    [InlineData("1 100 rs1 A G . PASS . GT 0|0 0|1 1|1", "line 4: expected 13 tab-separated fields (9 + 4 samples), found 12")]
    [InlineData("1 100 rs1 A G . PASS . DS:GL 0 1 2 1", "line 4: FORMAT 'DS:GL' has no GT field")]
    [InlineData("1 100 rs1 A G . PASS . GT 0|0 0|2 1|1 0|0", "line 4, sample s2 (column 11): GT '0|2' refers to allele 2, but the site has 1 ALT allele")]
    [InlineData("1 100 rs1 A G . PASS . GT 0|0 0|0 A|1 0|0", "line 4, sample s3 (column 12): GT 'A|1' has a non-numeric allele 'A'")]
    [InlineData("1 1e5 rs1 A G . PASS . GT 0|0 0|0 0|1 0|0", "line 4: POS must be a non-negative integer, found '1e5'")]
    public void MalformedRecordsNameFileAndLine(string record, string expected)
    {
        using var folder = new TempFolder();
        string path = Write(folder["bad.vcf"], Vcf(Samples, Record(record)));

        using var source = new VcfReader(path, GenotypeFilters.None);
        var error = Assert.Throws<DataFormatException>(() => ReadAll(source));

        Assert.Equal($"{path}: {expected}.", error.Message);
    }

    [Fact]
    public void ARecordBeforeTheChromLineIsAnError()
    {
        using var folder = new TempFolder();
        string path = Write(folder["nohead.vcf"], "##fileformat=VCFv4.2\n" + Record("1 100 rs1 A G . PASS . GT 0|0") + "\n");
        string empty = Write(folder["empty.vcf"], "##fileformat=VCFv4.2\n##source=x\n");

        var error = Assert.Throws<DataFormatException>(() => new VcfReader(path, new GenotypeFilters()));
        var none = Assert.Throws<DataFormatException>(() => new VcfReader(empty, new GenotypeFilters()));

        Assert.StartsWith($"{path}: line 2: expected the '#CHROM' header line before the first record", error.Message);
        Assert.Equal($"{empty}: no '#CHROM' header line: the file ended after 2 lines without one.", none.Message);
    }

    [Theory]
    [InlineData(1, 2, 0)]    // one gzip member cut in half: the trailer's size disagrees
    [InlineData(20, 2, 0)]   // BGZF cut inside a block
    [InlineData(20, 1, 28)]  // BGZF without its end-of-file block: cut at a block boundary
    public void TruncatedGzipNamesFileAndLine(int members, int keepFraction, int dropBytes)
    {
        using var folder = new TempFolder();
        var records = Enumerable.Range(1, 2000).Select(i => Record($"1 {i} rs{i} A G . PASS . GT 0|0 0|1 1|1 1/0")).ToArray();
        string whole = Write(folder["whole.vcf.gz"], Vcf(Samples, records), gzip: true, members);
        var bytes = File.ReadAllBytes(whole);
        string path = folder["cut.vcf.gz"];
        File.WriteAllBytes(path, bytes[..(bytes.Length / keepFraction - dropBytes)]);

        Assert.Equal(2000, ReadAll(new VcfReader(whole, GenotypeFilters.None)).Columns.Length);
        using var source = new VcfReader(path, GenotypeFilters.None);
        var error = Assert.Throws<DataFormatException>(() => ReadAll(source));

        Assert.True(System.Text.RegularExpressions.Regex.IsMatch(error.Message,
            $"^{System.Text.RegularExpressions.Regex.Escape(path)}: line [0-9]+: the gzip stream is truncated or corrupt: truncated: "), error.Message);
    }
}
