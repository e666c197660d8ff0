using Ddvi.Data;
using Ddvi.Experiments.Genomics;
using static Ddvi.Tests.Genomics.GenotypeTestFiles;

namespace Ddvi.Tests.Genomics;

public class PlinkTests
{
    const float M = float.NaN;
    static readonly string[] Samples = ["a", "b", "c", "d", "e", "f", "g"]; // 7: the last byte of each SNP is partly padding

    static readonly float[][] Dosages =
    [
        [0, 1, 2, M, 2, 1, 0],
        [2, 2, 2, 2, 2, 2, 2],
        [M, M, 0, 0, 1, 1, 2],
        [1, 0, 0, 0, 0, 0, M],
        [0, 2, 1, 1, 2, 0, 1],
    ];

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(4096)]
    public void WriterThenReaderRoundTripsExactly(int maxColumns)
    {
        using var folder = new TempFolder();
        string prefix = WritePlink(folder["geno"], Samples, Dosages);

        using var source = GenotypeFiles.Open(prefix + ".bed", GenotypeFilters.None);
        var (columns, sites) = ReadAll(source, maxColumns);

        Assert.IsType<PlinkReader>(source);
        Assert.Equal(Samples, source.SampleIds);
        Assert.Equal(Dosages, columns);
        Assert.Equal(new GenotypeSite("1", 300, "rs3", "A", "G"), sites[2]);
        Assert.Equal(3 + 5 * 2, new FileInfo(prefix + ".bed").Length);
        Assert.Equal("a a 0 0 0 -9", File.ReadLines(prefix + ".fam").First());
        Assert.Equal("1\trs1\t0\t100\tA\tG", File.ReadLines(prefix + ".bim").First());
    }

    [Fact]
    public void CodesAreDecodedAsCountsOfA1FirstSampleInTheLowBits()
    {
        using var folder = new TempFolder();
        string prefix = folder["hand"];
        File.WriteAllText(prefix + ".fam", "f a 0 0 1 -9\nf b 0 0 1 -9\nf c 0 0 2 -9\nf d 0 0 2 -9\nf e 0 0 2 -9\n");
        File.WriteAllText(prefix + ".bim", "1\trs1\t0\t10\tC\tT\n");
        // Samples a..d in byte 0 from the lowest bits: 00 (hom A1), 01 (missing), 10 (het), 11 (hom A2); e = 10 in byte 1.
        File.WriteAllBytes(prefix + ".bed", [0x6C, 0x1B, 0x01, 0b11_10_01_00, 0b10]);

        using var source = new PlinkReader(prefix, GenotypeFilters.None);
        var (columns, sites) = ReadAll(source);

        Assert.Equal([2f, M, 1f, 0f, 1f], columns[0]);
        Assert.Equal(("C", "T"), (sites[0].Allele, sites[0].OtherAllele));
    }

    [Fact]
    public void OpenPicksTheReaderByNameAndRejectsOthers()
    {
        using var folder = new TempFolder();
        string prefix = WritePlink(folder["geno"], Samples, Dosages);
        string vcf = Write(folder["x.vcf"], Vcf(["s"], "1\t1\t.\tA\tG\t.\tPASS\t.\tGT\t0/1"));
        string other = Write(folder["x.txt"], "nothing");

        using (var byPrefix = GenotypeFiles.Open(prefix, GenotypeFilters.None)) Assert.Equal(5, ReadAll(byPrefix).Columns.Length);
        using (var byBim = GenotypeFiles.Open(prefix + ".bim", GenotypeFilters.None)) Assert.Equal(prefix + ".bed", byBim.Path);
        using (var byVcf = GenotypeFiles.Open(vcf, GenotypeFilters.None)) Assert.IsType<VcfReader>(byVcf);
        var error = Assert.Throws<ArgumentException>(() => GenotypeFiles.Open(other, GenotypeFilters.None));
        File.Delete(prefix + ".bim");
        var missing = Assert.Throws<FileNotFoundException>(() => GenotypeFiles.Open(prefix + ".bed", GenotypeFilters.None));

        Assert.StartsWith($"{other}: not a genotype file", error.Message);
        Assert.StartsWith($"{prefix}.bim: file not found", missing.Message);
    }

    [Fact]
    public void WrongMagicBytesAreNamed()
    {
        using var folder = new TempFolder();
        string prefix = WritePlink(folder["geno"], Samples, Dosages);
        var bytes = File.ReadAllBytes(prefix + ".bed");
        bytes[2] = 0x00;
        File.WriteAllBytes(prefix + ".bed", bytes);

        var error = Assert.Throws<DataFormatException>(() => new PlinkReader(prefix, GenotypeFilters.None));

        Assert.Equal($"{prefix}.bed: not a SNP-major PLINK .bed: the first bytes are 6C 1B 00, expected 6C 1B 01 (00 is the individual-major layout, which is not read).", error.Message);
    }

    [Fact]
    public void TruncatedBedSaysExpectedAndActualBytesAndTheFirstIncompleteSnp()
    {
        using var folder = new TempFolder();
        string prefix = WritePlink(folder["geno"], Samples, Dosages);
        File.WriteAllBytes(prefix + ".bed", File.ReadAllBytes(prefix + ".bed")[..8]); // 3 + 2 whole SNPs + 1 byte of the 3rd

        var error = Assert.Throws<DataFormatException>(() => new PlinkReader(prefix, GenotypeFilters.None));

        Assert.Equal($"{prefix}.bed: truncated: 5 SNPs in {prefix}.bim × 7 samples need 3 + 5 × 2 = 13 bytes, the file has 8; SNP 3 (.bim line 3, byte offset 7) is the first incomplete one.", error.Message);
    }

    [Fact]
    public void FamWithAnotherSampleCountThanTheBedIsNamedAsTooLongOrTruncated()
    {
        using var folder = new TempFolder();
        string prefix = WritePlink(folder["geno"], Samples, Dosages);
        File.WriteAllLines(prefix + ".fam", Enumerable.Range(1, 4).Select(i => $"f s{i} 0 0 0 -9")); // 4 samples: 1 byte per SNP
        var tooLong = Assert.Throws<DataFormatException>(() => new PlinkReader(prefix, GenotypeFilters.None));
        File.WriteAllLines(prefix + ".fam", Enumerable.Range(1, 9).Select(i => $"f s{i} 0 0 0 -9"));  // 9 samples: 3 bytes per SNP
        var truncated = Assert.Throws<DataFormatException>(() => new PlinkReader(prefix, GenotypeFilters.None));

        Assert.Equal($"{prefix}.bed: too long: 5 SNPs in {prefix}.bim × 4 samples need 3 + 5 × 1 = 8 bytes, the file has 13 (5 bytes too many); does the .fam or .bim belong to another fileset?", tooLong.Message);
        Assert.StartsWith($"{prefix}.bed: truncated: 5 SNPs in {prefix}.bim × 9 samples need 3 + 5 × 3 = 18 bytes, the file has 13; SNP 4 (.bim line 4", truncated.Message);
    }

    [Fact]
    public void MalformedFamAndBimLinesNameFileAndLine()
    {
        using var folder = new TempFolder();
        string prefix = WritePlink(folder["geno"], Samples, Dosages);
        var fam = File.ReadAllLines(prefix + ".fam");
        var bim = File.ReadAllLines(prefix + ".bim");

        File.WriteAllLines(prefix + ".fam", fam.Select((l, i) => i == 2 ? "f c 0 0" : l));
        var famColumns = Assert.Throws<DataFormatException>(() => new PlinkReader(prefix, GenotypeFilters.None));
        File.WriteAllLines(prefix + ".fam", fam.Select((l, i) => i == 4 ? "f b 0 0 0 -9" : i == 6 ? "f a\t0 0 0 -9" : l));
        var famRepeats = Assert.Throws<DataFormatException>(() => new PlinkReader(prefix, GenotypeFilters.None));
        File.WriteAllLines(prefix + ".fam", fam);
        File.WriteAllLines(prefix + ".bim", bim.Select((l, i) => i == 3 ? "1\trs4\t0\t400\tA" : l));
        var bimColumns = Assert.Throws<DataFormatException>(() => new PlinkReader(prefix, GenotypeFilters.None));
        File.WriteAllLines(prefix + ".bim", bim.Select((l, i) => i == 1 ? "1\trs2\t0\t2kb\tA\tG" : l));
        var bimPosition = Assert.Throws<DataFormatException>(() => new PlinkReader(prefix, GenotypeFilters.None));

        Assert.Equal($"{prefix}.fam: line 3: expected 6 columns (FID, IID, father, mother, sex, phenotype) separated by spaces or tabs, found 4.", famColumns.Message);
        Assert.Equal($"{prefix}.fam: sample IDs (IID, column 2) must be unique; repeated: b (lines 2 and 5), a (lines 1 and 7).", famRepeats.Message);
        Assert.Equal($"{prefix}.bim: line 4: expected 6 columns (chromosome, ID, cM, position, allele 1, allele 2) separated by spaces or tabs, found 5.", bimColumns.Message);
        Assert.Equal($"{prefix}.bim: line 2: column 4 (base-pair position) must be an integer, found '2kb'.", bimPosition.Message);
    }

    [Fact]
    public void WriterRefusesDosagesThatAreNotHardCalls()
    {
        using var folder = new TempFolder();
        float[][] soft = [[0, 0.5f, 1, 2, 0, 0, 0]];

        var error = Assert.Throws<ArgumentException>(() => WritePlink(folder["soft"], Samples, soft));

        Assert.Equal("PlinkWriter: SNP 1 (rs1), sample 2: dosage 0.5 is not 0, 1, 2 or NaN; a .bed holds hard calls only.", error.Message);
        Assert.False(File.Exists(folder["soft.bed"]));
    }

    [Fact]
    public void FiltersOnPlinkUseCodesAndCountsOfA1()
    {
        using var folder = new TempFolder();
        string prefix = folder["f"];
        var sites = new[]
        {
            new GenotypeSite("1", 1, "keep1", "1", "3"),     // numeric alleles 1–4 are bases
            new GenotypeSite("0", 2, "unplaced", "A", "G"),
            new GenotypeSite("23", 3, "x", "A", "G"),
            new GenotypeSite("2", 4, "indel", "AT", "A"),
            new GenotypeSite("2", 5, "zero", "0", "G"),       // PLINK's missing allele
            new GenotypeSite("3", 6, "rare", "C", "G"),
            new GenotypeSite("3", 7, "gappy", "C", "G"),
            new GenotypeSite("4", 8, "thinned", "C", "G"),
            new GenotypeSite("22", 9, "keep2", "T", "G"),
        };
        float[][] dosages =
        [
            [0, 1, 2, 1, 0, 1, 2], [0, 1, 2, 1, 0, 1, 2], [0, 1, 2, 1, 0, 1, 2], [0, 1, 2, 1, 0, 1, 2], [0, 1, 2, 1, 0, 1, 2],
            [0, 0, 0, 0, 0, 0, 1],          // A1 frequency 1/14 < 0.1
            [M, M, M, 1, 0, 1, 2],          // 3/7 missing > 0.4
            [0, 1, 2, 1, 0, 1, 2],
            [2, 2, 2, 2, 2, 2, 1],          // A1 frequency 13/14: minor 1/14 < 0.1
        ];
        PlinkWriter.Write(prefix, Samples, [new GenotypeBlock(7, 9, dosages.SelectMany(d => d).ToArray(), sites)]);

        using var source = new PlinkReader(prefix, new GenotypeFilters { EveryNth = 2, MinMinorAlleleFrequency = 0.1, MaxMissingRate = 0.4 });
        var (_, kept) = ReadAll(source);

        Assert.Equal(["keep1"], kept.Select(s => s.Id));
        Assert.Equal(new GenotypeReadSummary(9, 2, 2, 0, 2, 1, 1, 1, 1), source.Summary);
    }
}
