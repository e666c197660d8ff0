using Ddvi.Data;

namespace Ddvi.Experiments.Genomics;

/// <summary>
/// One column's site: where it is and which allele its dosage counts. <see cref="Allele"/> is the counted allele (a VCF
/// ALT, PLINK's A1) and <see cref="OtherAllele"/> the allele it is counted against (the VCF REF, PLINK's A2).
/// </summary>
public sealed record GenotypeSite(string Chrom, long Position, string Id, string Allele, string OtherAllele);

/// <summary>
/// <see cref="Columns"/> consecutive columns of the genotype matrix: <see cref="Dosages"/> holds them column-major,
/// column j at <c>[j·SampleCount, (j+1)·SampleCount)</c>, i.e. row-major <c>[Columns, SampleCount]</c>; a dosage is the
/// count of the column's allele in the sample's genotype (0, 1, 2 for a diploid call), <see cref="float.NaN"/> where the
/// call is missing.
/// </summary>
public sealed record GenotypeBlock(int SampleCount, int Columns, float[] Dosages, IReadOnlyList<GenotypeSite> Sites)
{
    /// <summary>Column <paramref name="column"/>'s dosages, one per sample.</summary>
    public ReadOnlySpan<float> Column(int column) => Dosages.AsSpan(column * SampleCount, SampleCount);
}

/// <summary>
/// A genotype file read as a stream of column blocks after <see cref="GenotypeFilters"/>; never the whole file in
/// memory. Each enumeration of <see cref="ReadBlocks"/> reopens the file and starts from its first site.
/// </summary>
public interface IGenotypeSource : IDisposable
{
    /// <summary>The file read (for PLINK, the <c>.bed</c>).</summary>
    string Path { get; }

    /// <summary>The samples, in the order of each block's rows.</summary>
    IReadOnlyList<string> SampleIds { get; }

    /// <summary>The filters applied.</summary>
    GenotypeFilters Filters { get; }

    /// <summary>The kept sites' columns in file order, <paramref name="maxColumns"/> per block (the last block fewer).
    /// When a pass keeps no site it throws a <see cref="DataFormatException"/> that says what each filter removed.</summary>
    IEnumerable<GenotypeBlock> ReadBlocks(int maxColumns);

    /// <summary>The counts of the latest enumeration of <see cref="ReadBlocks"/> (so far, while it runs); all zero before.</summary>
    GenotypeReadSummary Summary { get; }
}

/// <summary>Opens a genotype file with the reader its name asks for.</summary>
public static class GenotypeFiles
{
    /// <summary>
    /// <c>.vcf</c> or <c>.vcf.gz</c>/<c>.vcf.bgz</c> (gzip or BGZF) → <see cref="VcfReader"/>; <c>.bed</c>, <c>.bim</c> or
    /// <c>.fam</c> with the other two beside it, or a prefix <c>P</c> with <c>P.bed</c>, <c>P.bim</c>, <c>P.fam</c> →
    /// <see cref="PlinkReader"/>. Anything else is an <see cref="ArgumentException"/> naming what was looked for.
    /// </summary>
    public static IGenotypeSource Open(string path, GenotypeFilters filters)
    {
        ArgumentNullException.ThrowIfNull(filters);
        string lower = path.ToLowerInvariant();
        if (lower.EndsWith(".vcf") || lower.EndsWith(".vcf.gz") || lower.EndsWith(".vcf.bgz"))
            return new VcfReader(path, filters);
        if (PlinkReader.PrefixOf(path) is { } prefix)
            return new PlinkReader(prefix, filters);
        throw new ArgumentException(
            $"{path}: not a genotype file this library reads: expected a .vcf, .vcf.gz or .vcf.bgz file, a PLINK .bed with its .bim and .fam beside it, or a PLINK prefix P with P.bed, P.bim and P.fam.",
            nameof(path));
    }
}

/// <summary>Gathers site columns into blocks of a fixed width, splitting a multi-column site across blocks when needed.</summary>
internal sealed class BlockBuilder(int sampleCount, int maxColumns)
{
    float[] dosages = new float[(long)sampleCount * maxColumns <= Array.MaxLength ? sampleCount * maxColumns
        : throw new ArgumentOutOfRangeException(nameof(maxColumns), maxColumns, $"{maxColumns} columns × {sampleCount} samples is more than one array holds.")];
    List<GenotypeSite> sites = new(maxColumns);

    public static void CheckWidth(int maxColumns)
    {
        if (maxColumns < 1) throw new ArgumentOutOfRangeException(nameof(maxColumns), maxColumns, "a block must hold at least one column.");
    }

    /// <summary>Adds one column; returns a full block when this column filled it.</summary>
    public GenotypeBlock? Add(GenotypeSite site, ReadOnlySpan<float> column)
    {
        column.CopyTo(dosages.AsSpan(sites.Count * sampleCount, sampleCount));
        sites.Add(site);
        return sites.Count == maxColumns ? Take() : null;
    }

    /// <summary>The columns gathered so far as a block, or null when there are none.</summary>
    public GenotypeBlock? Flush() => sites.Count == 0 ? null : Take();

    GenotypeBlock Take()
    {
        var data = sites.Count == maxColumns ? dosages : dosages[..(sites.Count * sampleCount)];
        var block = new GenotypeBlock(sampleCount, sites.Count, data, sites);
        // Each block owns its arrays: a consumer may keep a block while the next one is read.
        dosages = new float[sampleCount * maxColumns];
        sites = new List<GenotypeSite>(maxColumns);
        return block;
    }
}
