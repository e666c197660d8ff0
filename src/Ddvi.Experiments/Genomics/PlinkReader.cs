using System.Globalization;
using Ddvi.Data;

namespace Ddvi.Experiments.Genomics;

/// <summary>
/// Reads a PLINK 1 binary fileset (<c>.bed</c> + <c>.bim</c> + <c>.fam</c>, cog-genomics.org/plink/1.9/formats), one
/// column per SNP, streamed site by site.
/// </summary>
/// <remarks>
/// <para><c>.fam</c>: one sample per line, 6 columns separated by spaces or tabs (FID, IID, father, mother, sex,
/// phenotype). The sample ID is the IID; repeated IIDs are an error naming them (no FID_IID fallback).</para>
/// <para><c>.bim</c>: one SNP per line, 6 columns (chromosome code, ID, genetic distance, base-pair position, allele 1,
/// allele 2).</para>
/// <para><c>.bed</c>: the magic bytes <c>6C 1B 01</c> (the last says SNP-major), then per SNP ⌈n/4⌉ bytes, 4 samples
/// per byte, the first sample in the two lowest bits. Codes: <c>00</c> homozygous allele 1, <c>01</c> missing,
/// <c>10</c> heterozygous, <c>11</c> homozygous allele 2. The file is exactly 3 + SNPs·⌈n/4⌉ bytes.</para>
/// <para>The dosage is the count of allele 1 (A1, <c>.bim</c> column 5), PLINK's own convention: 2, NaN, 1, 0 for the
/// four codes. <see cref="GenotypeSite.Allele"/> is A1 and <see cref="GenotypeSite.OtherAllele"/> A2.</para>
/// </remarks>
public sealed class PlinkReader : IGenotypeSource
{
    /// <summary>The first three bytes of a SNP-major <c>.bed</c>.</summary>
    public static ReadOnlySpan<byte> Magic => [0x6C, 0x1B, 0x01];

    // Dosage of A1 per 2-bit code 00, 01, 10, 11.
    static readonly float[] CodeDosage = [2f, float.NaN, 1f, 0f];
    // The four dosages each byte holds, first sample in the lowest bits.
    static readonly float[] ByteDosages = BuildByteTable();

    readonly string bimPath, famPath;
    readonly string[] sampleIds;
    readonly long siteCount;
    SiteFilter counts;

    /// <summary>Opens <c>prefix.bed</c>, <c>prefix.bim</c> and <c>prefix.fam</c>, reading the <c>.fam</c> and checking the
    /// <c>.bim</c> and the <c>.bed</c>'s magic and size against each other.</summary>
    public PlinkReader(string prefix, GenotypeFilters filters)
    {
        ArgumentNullException.ThrowIfNull(filters);
        Path = prefix + ".bed";
        bimPath = prefix + ".bim";
        famPath = prefix + ".fam";
        foreach (var file in new[] { Path, bimPath, famPath })
            if (!File.Exists(file)) throw new FileNotFoundException($"{file}: file not found (a PLINK fileset needs .bed, .bim and .fam).", file);
        Filters = filters;
        counts = new SiteFilter(filters);
        sampleIds = ReadFam(famPath);
        siteCount = CountBimLines(bimPath);
        CheckBed(Path, bimPath, sampleIds.Length, siteCount);
    }

    public string Path { get; }

    public IReadOnlyList<string> SampleIds => sampleIds;

    public GenotypeFilters Filters { get; }

    /// <summary>The number of SNPs in the fileset before filtering.</summary>
    public long SiteCount => siteCount;

    public GenotypeReadSummary Summary => counts.Summary;

    /// <summary><paramref name="path"/>'s PLINK prefix when it ends in .bed, .bim or .fam, or when <c>path.bed</c>
    /// exists; otherwise null.</summary>
    public static string? PrefixOf(string path)
    {
        string extension = System.IO.Path.GetExtension(path).ToLowerInvariant();
        if (extension is ".bed" or ".bim" or ".fam") return path[..^4];
        return File.Exists(path + ".bed") ? path : null;
    }

    /// <summary>Bytes per SNP in a <c>.bed</c> for <paramref name="samples"/> samples: ⌈samples/4⌉.</summary>
    public static int BytesPerSite(int samples) => (samples + 3) / 4;

    public IEnumerable<GenotypeBlock> ReadBlocks(int maxColumns)
    {
        BlockBuilder.CheckWidth(maxColumns);
        return Read(maxColumns);
    }

    IEnumerable<GenotypeBlock> Read(int maxColumns)
    {
        var filter = counts = new SiteFilter(Filters);
        int n = sampleIds.Length, bytesPerSite = BytesPerSite(n);
        var builder = new BlockBuilder(n, maxColumns);
        var packed = new byte[bytesPerSite];
        var column = new float[n];
        using var bim = new StreamReader(bimPath);
        using var bed = new FileStream(Path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 20);
        bed.Seek(Magic.Length, SeekOrigin.Begin);
        for (long site = 0; site < siteCount; site++)
        {
            long lineNumber = site + 1;
            string line = bim.ReadLine() ?? throw new DataFormatException(bimPath, $"line {lineNumber}: the file ended early; it changed while being read.");
            var (chrom, id, position, a1, a2) = ParseBimLine(bimPath, lineNumber, line);
            bool decoded = false;
            bool keep = filter.PassesSiteFilters(chrom, "PASS", a1, a2, '\t');
            if (keep && Filters.NeedsGenotypes)
            {
                Decode(bed, packed, column, site);
                decoded = true;
                var (frequency, missingRate) = Frequencies(column);
                keep = filter.PassesGenotypeFilters(Math.Min(frequency, 1 - frequency), missingRate);
            }
            if (keep) keep = filter.PassesThinning();
            if (!keep)
            {
                if (!decoded) bed.Seek(bytesPerSite, SeekOrigin.Current);
                continue;
            }
            if (!decoded) Decode(bed, packed, column, site);
            filter.Kept(1);
            if (builder.Add(new GenotypeSite(chrom, position, id, a1, a2), column) is { } block) yield return block;
        }
        if (builder.Flush() is { } last) yield return last;
        if (filter.Summary.SitesKept == 0) throw filter.NothingKept(Path);
    }

    void Decode(FileStream bed, byte[] packed, float[] column, long site)
    {
        int read = bed.ReadAtLeast(packed, packed.Length, throwOnEndOfStream: false);
        if (read < packed.Length)
            throw new DataFormatException(Path, $"SNP {site + 1} (.bim line {site + 1}) at byte offset {Magic.Length + site * packed.Length}: the file ended early; it changed while being read.");
        DecodeSite(packed, column);
    }

    /// <summary>Decodes one SNP's ⌈n/4⌉ packed bytes into n dosages of A1.</summary>
    public static void DecodeSite(ReadOnlySpan<byte> packed, Span<float> dosages)
    {
        int n = dosages.Length, full = n / 4;
        var table = ByteDosages.AsSpan();
        for (int b = 0; b < full; b++) table.Slice(packed[b] * 4, 4).CopyTo(dosages.Slice(b * 4, 4));
        for (int i = full * 4; i < n; i++) dosages[i] = CodeDosage[(packed[i / 4] >> (2 * (i % 4))) & 3];
    }

    /// <summary>The frequency of the column's allele over called alleles (diploid) and the fraction of missing calls.</summary>
    internal static (double Frequency, double MissingRate) Frequencies(ReadOnlySpan<float> column)
    {
        double sum = 0;
        int called = 0;
        foreach (float d in column)
            if (!float.IsNaN(d)) { sum += d; called++; }
        double frequency = called == 0 ? 0 : sum / (2.0 * called);
        return (frequency, column.Length == 0 ? 0 : 1.0 - (double)called / column.Length);
    }

    public void Dispose() { }

    static float[] BuildByteTable()
    {
        var table = new float[256 * 4];
        for (int b = 0; b < 256; b++)
            for (int k = 0; k < 4; k++) table[b * 4 + k] = CodeDosage[(b >> (2 * k)) & 3];
        return table;
    }

    static readonly char[] Separators = [' ', '\t'];

    static string[] ReadFam(string path)
    {
        var ids = new List<string>();
        var firstLine = new Dictionary<string, long>(StringComparer.Ordinal);
        var repeats = new List<string>();
        long lineNumber = 0;
        foreach (string line in File.ReadLines(path))
        {
            lineNumber++;
            var fields = line.Split(Separators, StringSplitOptions.RemoveEmptyEntries);
            if (fields.Length != 6)
                throw new DataFormatException(path, $"line {lineNumber}: expected 6 columns (FID, IID, father, mother, sex, phenotype) separated by spaces or tabs, found {fields.Length}.");
            string iid = fields[1];
            if (!firstLine.TryAdd(iid, lineNumber)) repeats.Add($"{iid} (lines {firstLine[iid]} and {lineNumber})");
            ids.Add(iid);
        }
        if (repeats.Count > 0)
            throw new DataFormatException(path, $"sample IDs (IID, column 2) must be unique; repeated: {string.Join(", ", repeats.Take(10))}{(repeats.Count > 10 ? $" and {repeats.Count - 10} more" : "")}.");
        if (ids.Count == 0) throw new DataFormatException(path, "no sample: the file is empty.");
        return [.. ids];
    }

    static long CountBimLines(string path)
    {
        long lineNumber = 0;
        foreach (string line in File.ReadLines(path))
        {
            lineNumber++;
            ParseBimLine(path, lineNumber, line);
        }
        if (lineNumber == 0) throw new DataFormatException(path, "no SNP: the file is empty.");
        return lineNumber;
    }

    static (string Chrom, string Id, long Position, string A1, string A2) ParseBimLine(string path, long lineNumber, string line)
    {
        var fields = line.Split(Separators, StringSplitOptions.RemoveEmptyEntries);
        if (fields.Length != 6)
            throw new DataFormatException(path, $"line {lineNumber}: expected 6 columns (chromosome, ID, cM, position, allele 1, allele 2) separated by spaces or tabs, found {fields.Length}.");
        if (!long.TryParse(fields[3], NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out long position))
            throw new DataFormatException(path, $"line {lineNumber}: column 4 (base-pair position) must be an integer, found '{fields[3]}'.");
        return (fields[0], fields[1], position, fields[4], fields[5]);
    }

    static void CheckBed(string path, string bimPath, int samples, long sites)
    {
        long bytesPerSite = BytesPerSite(samples);
        long expected = Magic.Length + sites * bytesPerSite;
        long actual = new FileInfo(path).Length;
        Span<byte> start = stackalloc byte[3];
        int read;
        using (var file = File.OpenRead(path)) read = file.ReadAtLeast(start, 3, throwOnEndOfStream: false);
        if (read < 3 || !start.SequenceEqual(Magic))
            throw new DataFormatException(path,
                $"not a SNP-major PLINK .bed: the first bytes are {Hex(start[..read])}{(read < 3 ? $" (only {read} bytes)" : "")}, expected 6C 1B 01{(read == 3 && start[..2].SequenceEqual(Magic[..2]) && start[2] == 0 ? " (00 is the individual-major layout, which is not read)" : "")}.");
        if (actual < expected)
        {
            long complete = (actual - Magic.Length) / bytesPerSite;
            throw new DataFormatException(path,
                $"truncated: {sites:N0} SNPs in {bimPath} × {samples:N0} samples need 3 + {sites:N0} × {bytesPerSite} = {expected:N0} bytes, the file has {actual:N0}; SNP {complete + 1} (.bim line {complete + 1}, byte offset {Magic.Length + complete * bytesPerSite:N0}) is the first incomplete one.");
        }
        if (actual > expected)
            throw new DataFormatException(path,
                $"too long: {sites:N0} SNPs in {bimPath} × {samples:N0} samples need 3 + {sites:N0} × {bytesPerSite} = {expected:N0} bytes, the file has {actual:N0} ({actual - expected:N0} bytes too many); does the .fam or .bim belong to another fileset?");
    }

    static string Hex(ReadOnlySpan<byte> bytes) => bytes.Length == 0 ? "(none)" : string.Join(" ", bytes.ToArray().Select(b => b.ToString("X2", CultureInfo.InvariantCulture)));
}
