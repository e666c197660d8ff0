using System.Globalization;
using System.Runtime.ExceptionServices;
using System.Text;
using Ddvi.IO;

namespace Ddvi.Experiments.Genomics;

/// <summary>
/// Writes a PLINK 1 binary fileset (<c>.bed</c> SNP-major, <c>.bim</c>, <c>.fam</c>; layout in <see cref="PlinkReader"/>)
/// from column blocks of A1 dosages, streamed, each file atomically (<see cref="AtomicFile"/>): a reader never sees half
/// a file, and an interrupted write leaves the old files in place.
/// </summary>
public static class PlinkWriter
{
    /// <summary>
    /// Writes <c>prefix.fam</c> (FID = IID = the sample ID, parents 0, sex 0, phenotype -9), then <c>prefix.bim</c> and
    /// <c>prefix.bed</c> from <paramref name="blocks"/>: each column a SNP whose dosage counts
    /// <see cref="GenotypeSite.Allele"/> (written as A1) against <see cref="GenotypeSite.OtherAllele"/> (A2). Dosages
    /// must be 0, 1, 2 or NaN (missing). Returns the number of SNPs written.
    /// </summary>
    public static long Write(string prefix, IReadOnlyList<string> sampleIds, IEnumerable<GenotypeBlock> blocks)
    {
        ArgumentNullException.ThrowIfNull(sampleIds);
        ArgumentNullException.ThrowIfNull(blocks);
        if (sampleIds.Count == 0) throw new ArgumentException("PlinkWriter: at least one sample is needed.", nameof(sampleIds));
        foreach (string id in sampleIds)
            if (id.Length == 0 || id.Any(char.IsWhiteSpace))
                throw new ArgumentException($"PlinkWriter: sample ID '{id}' is empty or holds white space, which .fam columns cannot.", nameof(sampleIds));
        int n = sampleIds.Count, bytesPerSite = PlinkReader.BytesPerSite(n);

        var fam = new StringBuilder();
        foreach (string id in sampleIds) fam.Append(id).Append(' ').Append(id).Append(" 0 0 0 -9\n");
        AtomicFile.WriteAllText(prefix + ".fam", fam.ToString());

        long written = 0;
        AtomicFile.Write(prefix + ".bim", bimStream =>
        {
            using var bim = new StreamWriter(bimStream, new UTF8Encoding(false), 1 << 16, leaveOpen: true) { NewLine = "\n" };
            AtomicFile.Write(prefix + ".bed", bed =>
            {
                bed.Write(PlinkReader.Magic);
                byte[] packed = [];
                foreach (var block in blocks)
                {
                    if (block.SampleCount != n)
                        throw new ArgumentException($"PlinkWriter: a block has {block.SampleCount} samples, the fileset {n}.", nameof(blocks));
                    int columns = block.Columns;
                    if (packed.Length < columns * bytesPerSite) packed = new byte[columns * bytesPerSite];
                    long first = written;
                    try
                    {
                        Parallel.For(0, columns, j => Encode(block.Column(j), packed.AsSpan(j * bytesPerSite, bytesPerSite), block.Sites[j], first + j));
                    }
                    catch (AggregateException e)
                    {
                        // The caller's mistake, as ArgumentException, not the parallel loop's wrapper.
                        ExceptionDispatchInfo.Throw(e.InnerExceptions[0]);
                    }
                    bed.Write(packed, 0, columns * bytesPerSite);
                    foreach (var site in block.Sites)
                    {
                        foreach (string field in new[] { site.Chrom, site.Id, site.Allele, site.OtherAllele })
                            if (field.Length == 0 || field.Any(char.IsWhiteSpace))
                                throw new ArgumentException($"PlinkWriter: SNP {site.Id} has an empty field or one with white space ('{field}').", nameof(blocks));
                        bim.Write(string.Create(CultureInfo.InvariantCulture, $"{site.Chrom}\t{site.Id}\t0\t{site.Position}\t{site.Allele}\t{site.OtherAllele}\n"));
                    }
                    written += columns;
                }
            });
            bim.Flush();
        });
        return written;
    }

    /// <summary>Packs one SNP's dosages: 2 → 00, NaN → 01, 1 → 10, 0 → 11, first sample in the lowest bits.</summary>
    static void Encode(ReadOnlySpan<float> dosages, Span<byte> packed, GenotypeSite site, long index)
    {
        packed.Clear();
        for (int i = 0; i < dosages.Length; i++)
        {
            float d = dosages[i];
            int code = d switch
            {
                2f => 0b00,
                1f => 0b10,
                0f => 0b11,
                _ when float.IsNaN(d) => 0b01,
                _ => throw new ArgumentException(string.Create(CultureInfo.InvariantCulture,
                    $"PlinkWriter: SNP {index + 1} ({site.Id}), sample {i + 1}: dosage {d} is not 0, 1, 2 or NaN; a .bed holds hard calls only.")),
            };
            packed[i >> 2] |= (byte)(code << (2 * (i & 3)));
        }
    }
}
