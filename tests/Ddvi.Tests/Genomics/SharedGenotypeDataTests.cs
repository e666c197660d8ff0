using System.IO.Compression;
using Ddvi.Data;
using Ddvi.Experiments.Genomics;
using static Ddvi.Tests.Genomics.GenotypeTestFiles;

namespace Ddvi.Tests.Genomics;

/// <summary>The readers and the PCA on the project's shared real genotype files (README.md beside each).</summary>
public class SharedGenotypeDataTests
{
    [SharedGenotypesFact]
    public void SnpStatsSampleBedMatchesAByteByByteDecode()
    {
        string prefix = Shared("fixtures/sample");
        var bytes = File.ReadAllBytes(prefix + ".bed");
        using var source = GenotypeFiles.Open(prefix + ".bed", new GenotypeFilters { AutosomesOnly = false, EveryNth = 1 });

        var (columns, sites) = ReadAll(source, maxColumns: 6);

        Assert.Equal(120, source.SampleIds.Count);
        Assert.Equal(20, columns.Length);
        Assert.Equal(603, bytes.Length);
        for (int s = 0; s < 20; s++)
            for (int i = 0; i < 120; i++)
            {
                // Sample i's two bits: byte i/4 of the SNP's 30, shifted by 2·(i mod 4).
                int code = (bytes[3 + s * 30 + i / 4] >> (2 * (i % 4))) & 3;
                float expected = code switch { 0 => 2, 1 => float.NaN, 2 => 1, _ => 0 };
                Assert.Equal(expected, columns[s][i]);
            }
        Assert.Equal(141, columns.Sum(c => c.Count(float.IsNaN)));
        Assert.Equal([1f, 1f, 0f, 0f, 0f, 0f, 0f, 0f], columns[0][..8]);
        Assert.Equal(new GenotypeSite("0", 274044, "IGR1118a_1", "1", "3"), sites[0]);
        Assert.Equal(["430", "412", "431"], source.SampleIds.Take(3));
    }

    [SharedGenotypesFact]
    public void SnpStatsSampleHasNoAutosomeUnderTheDefaultFilters()
    {
        using var source = GenotypeFiles.Open(Shared("fixtures/sample.bed"), new GenotypeFilters());

        var error = Assert.Throws<DataFormatException>(() => ReadAll(source));

        Assert.Contains("20 sites read: 20 not autosomal", error.Message);
        Assert.Contains("relax AutosomesOnly = false", error.Message);
    }

    [SharedGenotypesFact]
    public void Chr22VcfKeepsTheSingleBaseSnpsWithTheirGenotypes()
    {
        string path = Shared("fixtures/chr22.vcf.gz");
        using var every = GenotypeFiles.Open(path, new GenotypeFilters { EveryNth = 1 });
        using var thinned = GenotypeFiles.Open(path, new GenotypeFilters());
        using var none = GenotypeFiles.Open(path, GenotypeFilters.None);

        var (columns, sites) = ReadAll(every);
        ReadAll(thinned);
        ReadAll(none);

        Assert.Equal(["HG00096", "HG00097", "HG00099", "HG00100", "HG00101"], every.SampleIds);
        Assert.Equal(new GenotypeReadSummary(10376, 0, 407, 0, 0, 0, 0, 9969, 9969), every.Summary);
        Assert.Equal(new GenotypeReadSummary(10376, 0, 407, 0, 0, 0, 8972, 997, 997), thinned.Summary);
        Assert.Equal(10376, none.Summary.ColumnsProduced);
        Assert.Equal(new GenotypeSite("22", 50300078, "rs7410291", "G", "A"), sites[0]);

        // Expected dosages straight from the text: the GT before the first ':' of each sample, ALT copies counted.
        var raw = new Dictionary<string, float[]>();
        using (var reader = new StreamReader(new GZipStream(File.OpenRead(path), CompressionMode.Decompress)))
            for (string? line; (line = reader.ReadLine()) is not null;)
            {
                var fields = line.Split('\t');
                if (fields[0] == "22" && fields[2] is "rs7410291" or "rs2294394" or "rs9628280")
                    raw[fields[2]] = fields[9..].Select(f => (float)f.Split(':')[0].Count(ch => ch == '1')).ToArray();
            }
        Assert.Equal([0f, 0f, 1f, 0f, 0f], raw["rs7410291"]);
        Assert.Equal([2f, 2f, 1f, 1f, 0f], raw["rs2294394"]);
        Assert.Equal([2f, 1f, 1f, 1f, 0f], raw["rs9628280"]);
        foreach (var (id, expected) in raw) Assert.Equal(expected, columns[sites.FindIndex(s => s.Id == id)]);
    }

    [SharedGenotypesFact]
    public void HgdpMicrosatellitesReadAllMembersAndAlleles()
    {
        string path = Shared("hgdp-microsatellites/hgdp.vcf.gz");
        using var source = GenotypeFiles.Open(path, GenotypeFilters.None);
        long columns = 0, nanCells = 0, missingCalls = 0, sites = 0;
        bool everyCallHasTwoAlleles = true;

        foreach (var block in source.ReadBlocks(4096))
            for (int j = 0; j < block.Columns; j++)
            {
                columns++;
                nanCells += block.Column(j).ToArray().Count(float.IsNaN);
            }
        // Per locus: a sample is missing in all of the locus's columns or none, and a called sample carries 2 alleles.
        string? lastId = null;
        float[] perSample = new float[1350];
        bool[] missing = new bool[1350];
        void Close()
        {
            if (lastId is null) return;
            sites++;
            missingCalls += missing.Count(m => m);
            everyCallHasTwoAlleles &= Enumerable.Range(0, 1350).All(i => missing[i] || perSample[i] == 2);
        }
        foreach (var block in source.ReadBlocks(1000))
            for (int j = 0; j < block.Columns; j++)
            {
                if (block.Sites[j].Id != lastId)
                {
                    Close();
                    lastId = block.Sites[j].Id;
                    Array.Clear(perSample);
                    Array.Clear(missing);
                }
                var column = block.Column(j);
                for (int i = 0; i < 1350; i++)
                    if (float.IsNaN(column[i])) missing[i] = true;
                    else perSample[i] += column[i];
            }
        Close();

        Assert.Equal(1350, source.SampleIds.Count);
        Assert.Equal(8170, columns);
        Assert.Equal(678, sites);
        Assert.Equal(36679, missingCalls);
        Assert.Equal(448890, nanCells); // Σ over missing calls of the locus's allele count, from the text
        Assert.True(everyCallHasTwoAlleles);
        Assert.Equal(new GenotypeReadSummary(678, 0, 0, 0, 0, 0, 0, 678, 8170), source.Summary);
    }

    [SharedGenotypesFact]
    public void HgdpUnderTheDefaultFiltersSaysWhichSettingsToRelax()
    {
        string path = Shared("hgdp-microsatellites/hgdp.vcf.gz");

        var defaults = Assert.Throws<DataFormatException>(() => ReadAll(GenotypeFiles.Open(path, new GenotypeFilters())));
        var placed = Assert.Throws<DataFormatException>(() => ReadAll(GenotypeFiles.Open(path, new GenotypeFilters { AutosomesOnly = false })));

        Assert.Contains("678 sites read: 678 not autosomal", defaults.Message);
        Assert.Contains("AutosomesOnly = false", defaults.Message);
        Assert.Contains("678 sites read: 0 not autosomal, 678 not single-base", placed.Message);
        Assert.Contains("SingleBaseAllelesOnly = false", placed.Message);
    }

    [SharedGenotypesFact]
    public void HgdpPanelMatchesEverySample()
    {
        using var source = GenotypeFiles.Open(Shared("hgdp-microsatellites/hgdp.vcf.gz"), GenotypeFilters.None);

        var match = PopulationPanel.Read(Shared("hgdp-microsatellites/hgdp.panel")).Match(source.SampleIds);

        Assert.Empty(match.Warnings);
        Assert.Equal(7, match.SuperPopulationNames.Count);
        Assert.Equal(111, match.SuperPopulation.Count(s => s == "AFRICA"));
        Assert.Equal(431, match.SuperPopulation.Count(s => s == "AMERICA"));
    }

    [SharedGenotypesFact]
    public void HapmapChr10HasTheDocumentedShapeAndMissingCount()
    {
        using var source = GenotypeFiles.Open(Shared("hapmap-sim-chr10/chr10.bed"), new GenotypeFilters { EveryNth = 1 });
        long columns = 0, missing = 0;

        foreach (var block in source.ReadBlocks(4096))
        {
            columns += block.Columns;
            foreach (float d in block.Dosages) if (float.IsNaN(d)) missing++;
        }

        Assert.Equal(1000, source.SampleIds.Count);
        Assert.Equal(28501, columns);
        Assert.Equal(285163, missing);
    }

    [SharedGenotypesFact]
    public void HapmapPc1SeparatesEuropeansFromEastAsians()
    {
        using var source = GenotypeFiles.Open(Shared("hapmap-sim-chr10/chr10"), new GenotypeFilters());
        var result = GenotypePca.Fit(source, new GenotypePcaOptions { Components = 10 });
        var match = PopulationPanel.Read(Shared("hapmap-sim-chr10/chr10.panel")).Match(result.SampleIds);

        Assert.Empty(match.Warnings);
        Assert.Equal(2851, source.Summary.SitesKept);
        var pc1 = Enumerable.Range(0, 1000).Select(i => result.Score(i, 0)).ToArray();
        double eur = match.KeptIndices.Where(i => match.SuperPopulation[i] == "EUR").Average(i => pc1[i]);
        double eas = match.KeptIndices.Where(i => match.SuperPopulation[i] == "EAS").Average(i => pc1[i]);
        double threshold = (eur + eas) / 2;
        int right = Enumerable.Range(0, 1000).Count(i => (pc1[i] > threshold) == (eur > eas) == (match.SuperPopulation[i] == "EUR"));
        Assert.True(right > 950, $"PC1 at threshold {threshold:F3} classifies {right} of 1000 samples right");
        Assert.Equal(494, match.SuperPopulation.Count(s => s == "EUR"));
    }
}
