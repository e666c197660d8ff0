using System.Globalization;
using System.IO.Compression;
using Ddvi.Data;

namespace Ddvi.Experiments.Genomics;

/// <summary>
/// Reads the GT calls of a VCF (samtools.github.io/hts-specs/VCFv4.3.pdf), plain text or gzip-compressed — BGZF is a
/// series of gzip members, which <see cref="GZipStream"/> decodes one after another — told apart by the gzip magic
/// bytes, not by the name. Streamed line by line. A gzip file cut short is an error (<see cref="CheckedGzipStream"/>).
/// </summary>
/// <remarks>
/// <para>The <c>#CHROM</c> header line gives the sample IDs (columns 10 on). Each record gives one column per ALT
/// allele: the number of copies of that ALT in the sample's GT, so a biallelic site is one 0/1/2 column and a site with
/// k ALTs is k columns. GT may be phased (<c>|</c>) or unphased (<c>/</c>), of any ploidy (a haploid call counts 0 or
/// 1), and at any position in FORMAT. A call with any <c>.</c> allele (<c>.</c>, <c>./.</c>, <c>0/.</c>) or a sample
/// field that stops before GT is missing: NaN in every column of the site.</para>
/// <para>Errors name the file and line: a record whose field count is not 9 + samples, a FORMAT without GT, an allele
/// index above the number of ALTs, a non-numeric allele, a record before the <c>#CHROM</c> line or no such line, a
/// non-integer POS, and a gzip stream that is truncated or corrupt.</para>
/// </remarks>
public sealed class VcfReader : IGenotypeSource
{
    const int FixedFields = 9;
    readonly string[] sampleIds;
    SiteFilter counts;

    /// <summary>Opens <paramref name="path"/> and reads its header up to the <c>#CHROM</c> line.</summary>
    public VcfReader(string path, GenotypeFilters filters)
    {
        ArgumentNullException.ThrowIfNull(filters);
        if (!File.Exists(path)) throw new FileNotFoundException($"{path}: file not found.", path);
        Path = path;
        Filters = filters;
        counts = new SiteFilter(filters);
        using var lines = new LineReader(path);
        sampleIds = ReadHeader(lines);
    }

    public string Path { get; }

    public IReadOnlyList<string> SampleIds => sampleIds;

    public GenotypeFilters Filters { get; }

    public GenotypeReadSummary Summary => counts.Summary;

    public IEnumerable<GenotypeBlock> ReadBlocks(int maxColumns)
    {
        BlockBuilder.CheckWidth(maxColumns);
        return Read(maxColumns);
    }

    IEnumerable<GenotypeBlock> Read(int maxColumns)
    {
        var filter = counts = new SiteFilter(Filters);
        int n = sampleIds.Length;
        var builder = new BlockBuilder(n, maxColumns);
        var site = new float[n];
        var alleleCounts = new long[2];
        using var lines = new LineReader(Path);
        ReadHeader(lines);
        while (lines.Next() is { } line)
        {
            if (line.Length == 0) continue;
            var record = ParseFixedFields(line, lines.LineNumber, n);
            int altCount = record.Alt is "." ? 0 : record.Alt.Count(',') + 1;
            bool parsed = false;
            bool keep = filter.PassesSiteFilters(record.Chrom, record.Filter, record.Ref, record.Alt, ',');
            if (keep && Filters.NeedsGenotypes)
            {
                ParseGenotypes(line, record, altCount, lines.LineNumber, ref site, ref alleleCounts, out long missing);
                parsed = true;
                keep = filter.PassesGenotypeFilters(MinorAlleleFrequency(alleleCounts.AsSpan(0, altCount + 1)), (double)missing / n);
            }
            if (keep) keep = filter.PassesThinning();
            if (!keep) continue;
            if (!parsed) ParseGenotypes(line, record, altCount, lines.LineNumber, ref site, ref alleleCounts, out _);
            filter.Kept(altCount);
            if (altCount == 0) continue;
            string chrom = record.Chrom.ToString(), id = record.Id.ToString(), reference = record.Ref.ToString();
            var alts = record.Alt.ToString().Split(',');
            long position = record.Position;
            for (int a = 0; a < altCount; a++)
                if (builder.Add(new GenotypeSite(chrom, position, id, alts[a], reference), site.AsSpan(a * n, n)) is { } block)
                    yield return block;
        }
        if (builder.Flush() is { } last) yield return last;
        if (filter.Summary.SitesKept == 0) throw filter.NothingKept(Path);
    }

    public void Dispose() { }

    /// <summary>1 − (the most common allele's share of the called alleles); 0 when nothing is called.</summary>
    static double MinorAlleleFrequency(ReadOnlySpan<long> alleleCounts)
    {
        long total = 0, major = 0;
        foreach (long c in alleleCounts)
        {
            total += c;
            major = Math.Max(major, c);
        }
        return total == 0 ? 0 : 1.0 - (double)major / total;
    }

    string[] ReadHeader(LineReader lines)
    {
        while (lines.Next() is { } line)
        {
            if (line.StartsWith("##", StringComparison.Ordinal)) continue;
            if (!line.StartsWith("#CHROM", StringComparison.Ordinal))
                throw new DataFormatException(Path, $"line {lines.LineNumber}: expected the '#CHROM' header line before the first record, found '{Excerpt(line)}'.");
            var fields = line.Split('\t');
            string[] expected = ["#CHROM", "POS", "ID", "REF", "ALT", "QUAL", "FILTER", "INFO", "FORMAT"];
            for (int i = 0; i < Math.Min(fields.Length, expected.Length); i++)
                if (fields[i] != expected[i])
                    throw new DataFormatException(Path, $"line {lines.LineNumber}: header column {i + 1} is '{Excerpt(fields[i])}', expected '{expected[i]}' (columns are tab-separated).");
            if (fields.Length < FixedFields)
                throw new DataFormatException(Path, $"line {lines.LineNumber}: the '#CHROM' line has {fields.Length} tab-separated columns; genotypes need {FixedFields} (up to FORMAT) and one per sample.");
            var ids = fields[FixedFields..];
            var repeated = ids.GroupBy(id => id).Where(g => g.Count() > 1).Select(g => g.Key).ToList();
            if (repeated.Count > 0)
                throw new DataFormatException(Path, $"line {lines.LineNumber}: repeated sample IDs: {string.Join(", ", repeated.Take(10))}.");
            return ids;
        }
        throw new DataFormatException(Path, $"no '#CHROM' header line: the file ended after {lines.LineNumber} lines without one.");
    }

    readonly ref struct Record(ReadOnlySpan<char> chrom, long position, ReadOnlySpan<char> id, ReadOnlySpan<char> reference,
        ReadOnlySpan<char> alt, ReadOnlySpan<char> filter, int gtIndex, int samplesStart)
    {
        public readonly ReadOnlySpan<char> Chrom = chrom, Id = id, Ref = reference, Alt = alt, Filter = filter;
        public readonly long Position = position;
        public readonly int GtIndex = gtIndex, SamplesStart = samplesStart;
    }

    Record ParseFixedFields(string line, long lineNumber, int samples)
    {
        var span = line.AsSpan();
        int fieldCount = span.Count('\t') + 1;
        if (fieldCount != FixedFields + samples)
            throw new DataFormatException(Path, $"line {lineNumber}: expected {FixedFields + samples} tab-separated fields ({FixedFields} + {samples} samples), found {fieldCount}.");
        Span<Range> fields = stackalloc Range[FixedFields + 1];
        span.Split(fields, '\t');
        var pos = span[fields[1]];
        if (!long.TryParse(pos, NumberStyles.None, CultureInfo.InvariantCulture, out long position))
            throw new DataFormatException(Path, $"line {lineNumber}: POS must be a non-negative integer, found '{Excerpt(pos.ToString())}'.");
        var format = span[fields[8]];
        int gtIndex = -1, index = 0;
        foreach (var key in format.Split(':'))
        {
            if (format[key] is "GT") { gtIndex = index; break; }
            index++;
        }
        if (gtIndex < 0) throw new DataFormatException(Path, $"line {lineNumber}: FORMAT '{Excerpt(format.ToString())}' has no GT field.");
        return new Record(span[fields[0]], position, span[fields[2]], span[fields[3]], span[fields[4]], span[fields[6]], gtIndex, fields[9].Start.Value);
    }

    /// <summary>Fills <paramref name="site"/> ([altCount, n], column-major by ALT) with ALT counts and
    /// <paramref name="alleleCounts"/> with the called count of REF then each ALT.</summary>
    void ParseGenotypes(string line, Record record, int altCount, long lineNumber, ref float[] site, ref long[] alleleCounts, out long missing)
    {
        int n = sampleIds.Length;
        if (site.Length < altCount * n) site = new float[altCount * n];
        if (alleleCounts.Length < altCount + 1) alleleCounts = new long[altCount + 1];
        Array.Clear(alleleCounts);
        site.AsSpan(0, altCount * n).Clear();
        missing = 0;
        var rest = line.AsSpan(record.SamplesStart);
        int sample = 0;
        foreach (var range in rest.Split('\t'))
        {
            var gt = Subfield(rest[range], record.GtIndex);
            if (!ParseCall(gt, altCount, lineNumber, sample, site, n, alleleCounts))
            {
                missing++;
                for (int a = 0; a < altCount; a++) site[a * n + sample] = float.NaN;
            }
            sample++;
        }
    }

    static ReadOnlySpan<char> Subfield(ReadOnlySpan<char> field, int index)
    {
        for (int i = 0; i < index; i++)
        {
            int colon = field.IndexOf(':');
            if (colon < 0) return ".";
            field = field[(colon + 1)..];
        }
        int end = field.IndexOf(':');
        return end < 0 ? field : field[..end];
    }

    /// <summary>Adds one call's ALT counts to column <paramref name="sample"/>; false when the call is missing.</summary>
    bool ParseCall(ReadOnlySpan<char> gt, int altCount, long lineNumber, int sample, float[] site, int n, long[] alleleCounts)
    {
        if (gt.IsEmpty) return false;
        Span<int> alleles = stackalloc int[8];
        int ploidy = 0;
        bool missing = false;
        int start = 0;
        for (int i = 0; i <= gt.Length; i++)
        {
            if (i < gt.Length && gt[i] is not ('/' or '|')) continue;
            var token = gt[start..i];
            start = i + 1;
            if (token is ".") { missing = true; continue; }
            if (!int.TryParse(token, NumberStyles.None, CultureInfo.InvariantCulture, out int allele))
                throw new DataFormatException(Path, $"line {lineNumber}, sample {sampleIds[sample]} (column {FixedFields + sample + 1}): GT '{Excerpt(gt.ToString())}' has a non-numeric allele '{Excerpt(token.ToString())}'.");
            if (allele > altCount)
                throw new DataFormatException(Path, $"line {lineNumber}, sample {sampleIds[sample]} (column {FixedFields + sample + 1}): GT '{Excerpt(gt.ToString())}' refers to allele {allele}, but the site has {altCount} ALT allele{(altCount == 1 ? "" : "s")}.");
            if (ploidy == alleles.Length)
                throw new DataFormatException(Path, $"line {lineNumber}, sample {sampleIds[sample]}: GT '{Excerpt(gt.ToString())}' has more than {alleles.Length} alleles.");
            alleles[ploidy++] = allele;
        }
        if (missing) return false;
        for (int k = 0; k < ploidy; k++)
        {
            alleleCounts[alleles[k]]++;
            if (alleles[k] > 0) site[(alleles[k] - 1) * n + sample] += 1f;
        }
        return true;
    }

    static string Excerpt(string text) => text.Length <= 60 ? text : text[..57] + "...";

    /// <summary>Lines of a plain or gzip-compressed text file, counting them, with gzip damage reported as a
    /// <see cref="DataFormatException"/> at the line being read.</summary>
    sealed class LineReader : IDisposable
    {
        readonly string path;
        readonly bool gzip;
        readonly StreamReader reader;

        public LineReader(string path)
        {
            this.path = path;
            gzip = IdxReader.IsGzip(path);
            Stream stream = gzip ? new CheckedGzipStream(path) : new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
            reader = new StreamReader(stream, bufferSize: 1 << 16);
        }

        public long LineNumber { get; private set; }

        public string? Next()
        {
            try
            {
                string? line = reader.ReadLine();
                if (line is not null) LineNumber++;
                return line;
            }
            catch (InvalidDataException e) when (gzip)
            {
                throw new DataFormatException(path, $"line {LineNumber + 1}: the gzip stream is truncated or corrupt: {e.Message}.", e);
            }
        }

        public void Dispose() => reader.Dispose();
    }
}
