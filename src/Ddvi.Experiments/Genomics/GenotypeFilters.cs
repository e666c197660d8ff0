using System.Globalization;
using Ddvi.Data;

namespace Ddvi.Experiments.Genomics;

/// <summary>
/// Which sites of a genotype file become columns, applied site by site while the file streams. The defaults are the
/// DDVI release's 1000 Genomes recipe: autosomal, single-base biallelic-looking SNPs that passed the caller's filters,
/// thinned to every 10th, with no frequency or call-rate threshold.
/// </summary>
/// <remarks>
/// Order: <see cref="AutosomesOnly"/>, <see cref="SingleBaseAllelesOnly"/>, <see cref="PassOnly"/>,
/// <see cref="MinMinorAlleleFrequency"/>, <see cref="MaxMissingRate"/>, then <see cref="EveryNth"/> over the sites that
/// passed all of them. A dropped site is counted once, under the first filter that dropped it
/// (<see cref="GenotypeReadSummary"/>).
/// </remarks>
public sealed record GenotypeFilters
{
    /// <summary>Keep only CHROM 1–22, written with or without a <c>chr</c> prefix (any case); in PLINK files the codes
    /// 1–22. Default true. PLINK's code 0 (unplaced), X, Y, MT and contigs are dropped.</summary>
    public bool AutosomesOnly { get; init; } = true;

    /// <summary>Keep only sites whose REF and every ALT is one of A, C, G, T (any case); PLINK's numeric allele codes 1–4
    /// stand for A, C, G, T and count as single bases. Drops indels, structural variants, symbolic alleles such as
    /// <c>&lt;A150&gt;</c>, the placeholder <c>N</c>, a missing ALT <c>.</c> and PLINK's missing allele <c>0</c>.
    /// Default true.</summary>
    public bool SingleBaseAllelesOnly { get; init; } = true;

    /// <summary>Keep only sites whose VCF FILTER is <c>PASS</c> or <c>.</c>: the VCF specification reads <c>.</c> as "no
    /// filter applied", so such sites pass; a named failing filter (e.g. <c>q10</c>, <c>LowQual;SB</c>) drops the site.
    /// PLINK files carry no FILTER and always pass. Default true.</summary>
    public bool PassOnly { get; init; } = true;

    /// <summary>Keep every n-th site among those that passed the other filters: the 1st, (n+1)-th, (2n+1)-th … Default 10;
    /// 1 keeps every site.</summary>
    public int EveryNth
    {
        get;
        init => field = value >= 1 ? value : throw Invalid(nameof(EveryNth), value, "must be at least 1 (1 keeps every site)");
    } = 10;

    /// <summary>Drop a site whose minor-allele frequency is below this, in [0, 0.5]. The frequency is counted over the
    /// called alleles of the site; at a multi-allelic site it is the non-major frequency, 1 − (the most common allele's
    /// frequency), as PLINK 2 does. A site with no call has frequency 0. Default 0 (keeps every site).</summary>
    public double MinMinorAlleleFrequency
    {
        get;
        init => field = value is >= 0 and <= 0.5 ? value : throw Invalid(nameof(MinMinorAlleleFrequency), value, "must lie in [0, 0.5]");
    }

    /// <summary>Drop a site whose fraction of samples with a missing genotype is above this, in [0, 1]. Default 1
    /// (keeps every site).</summary>
    public double MaxMissingRate
    {
        get;
        init => field = value is >= 0 and <= 1 ? value : throw Invalid(nameof(MaxMissingRate), value, "must lie in [0, 1]");
    } = 1.0;

    /// <summary>No filter at all: every site, every column.</summary>
    public static GenotypeFilters None { get; } = new() { AutosomesOnly = false, SingleBaseAllelesOnly = false, PassOnly = false, EveryNth = 1 };

    /// <summary>True when <see cref="MinMinorAlleleFrequency"/> or <see cref="MaxMissingRate"/> needs a site's genotypes.</summary>
    internal bool NeedsGenotypes => MinMinorAlleleFrequency > 0 || MaxMissingRate < 1;

    /// <summary>True for <c>1</c>…<c>22</c>, optionally prefixed by <c>chr</c> (any case).</summary>
    public static bool IsAutosome(ReadOnlySpan<char> chrom)
    {
        if (chrom.Length > 3 && chrom[..3].Equals("chr", StringComparison.OrdinalIgnoreCase)) chrom = chrom[3..];
        if (chrom.Length is 0 or > 2 || chrom[0] == '0') return false;
        return int.TryParse(chrom, NumberStyles.None, CultureInfo.InvariantCulture, out int code) && code is >= 1 and <= 22;
    }

    /// <summary>True for one of A, C, G, T (any case) or PLINK's numeric codes 1–4.</summary>
    public static bool IsSingleBase(ReadOnlySpan<char> allele) =>
        allele.Length == 1 && allele[0] is 'A' or 'C' or 'G' or 'T' or 'a' or 'c' or 'g' or 't' or '1' or '2' or '3' or '4';

    /// <summary>True for FILTER <c>PASS</c> and for <c>.</c> (no filter applied).</summary>
    public static bool IsPass(ReadOnlySpan<char> filter) => filter is "PASS" or ".";

    public override string ToString() => string.Create(CultureInfo.InvariantCulture,
        $"AutosomesOnly={AutosomesOnly}, SingleBaseAllelesOnly={SingleBaseAllelesOnly}, PassOnly={PassOnly}, EveryNth={EveryNth}, MinMinorAlleleFrequency={MinMinorAlleleFrequency}, MaxMissingRate={MaxMissingRate}");

    static ArgumentException Invalid(string property, object value, string rule) =>
        new(string.Create(CultureInfo.InvariantCulture, $"GenotypeFilters.{property} {rule}; got {value}."), property);
}

/// <summary>
/// What one pass over a genotype file did: sites read, dropped by each filter (each dropped site counted under the
/// first filter that dropped it), kept, and the columns the kept sites gave (one per ALT allele in a VCF, one per SNP in
/// PLINK).
/// </summary>
public sealed record GenotypeReadSummary(
    long SitesRead,
    long DroppedNotAutosome,
    long DroppedNotSingleBase,
    long DroppedFilterNotPass,
    long DroppedMinorAlleleFrequency,
    long DroppedMissingRate,
    long DroppedEveryNth,
    long SitesKept,
    long ColumnsProduced)
{
    public override string ToString() => string.Create(CultureInfo.InvariantCulture,
        $"{SitesRead:N0} sites read: {DroppedNotAutosome:N0} not autosomal, {DroppedNotSingleBase:N0} not single-base, {DroppedFilterNotPass:N0} FILTER not PASS, {DroppedMinorAlleleFrequency:N0} below the minor-allele frequency, {DroppedMissingRate:N0} above the missing rate, {DroppedEveryNth:N0} thinned out by every-n-th; {SitesKept:N0} kept, {ColumnsProduced:N0} columns");
}

/// <summary>The mutable counts behind a <see cref="GenotypeReadSummary"/>, and the filters' decisions.</summary>
internal sealed class SiteFilter(GenotypeFilters filters)
{
    long read, notAutosome, notSingleBase, notPass, lowFrequency, highMissing, thinned, kept, columns, passedOthers;

    public GenotypeFilters Filters { get; } = filters;

    public GenotypeReadSummary Summary => new(read, notAutosome, notSingleBase, notPass, lowFrequency, highMissing, thinned, kept, columns);

    /// <summary>The filters that need only the site's description. <paramref name="refAllele"/> is the VCF REF (PLINK A1), <paramref name="altAlleles"/> the ALTs (PLINK A2)
    /// separated by <paramref name="altSeparator"/>.</summary>
    public bool PassesSiteFilters(ReadOnlySpan<char> chrom, ReadOnlySpan<char> filter, ReadOnlySpan<char> refAllele, ReadOnlySpan<char> altAlleles, char altSeparator)
    {
        read++;
        if (Filters.AutosomesOnly && !GenotypeFilters.IsAutosome(chrom)) { notAutosome++; return false; }
        if (Filters.SingleBaseAllelesOnly)
        {
            bool single = GenotypeFilters.IsSingleBase(refAllele);
            foreach (var range in altAlleles.Split(altSeparator))
                single &= GenotypeFilters.IsSingleBase(altAlleles[range]);
            if (!single) { notSingleBase++; return false; }
        }
        if (Filters.PassOnly && !GenotypeFilters.IsPass(filter)) { notPass++; return false; }
        return true;
    }

    /// <summary>The frequency and missingness filters, given the site's minor-allele frequency and missing rate.</summary>
    public bool PassesGenotypeFilters(double minorAlleleFrequency, double missingRate)
    {
        if (minorAlleleFrequency < Filters.MinMinorAlleleFrequency) { lowFrequency++; return false; }
        if (missingRate > Filters.MaxMissingRate) { highMissing++; return false; }
        return true;
    }

    /// <summary>Every-n-th over the sites that passed every other filter; true keeps the site.</summary>
    public bool PassesThinning()
    {
        bool keep = passedOthers++ % Filters.EveryNth == 0;
        if (!keep) thinned++;
        return keep;
    }

    public void Kept(int siteColumns)
    {
        kept++;
        columns += siteColumns;
    }

    /// <summary>The error for a pass that kept nothing: what each filter removed and what to relax.</summary>
    public DataFormatException NothingKept(string path)
    {
        var s = Summary;
        var advice = new List<string>();
        if (s.DroppedNotAutosome > 0) advice.Add($"AutosomesOnly = false (CHROM must be 1–22 or chr1–chr22; PLINK code 1–22)");
        if (s.DroppedNotSingleBase > 0) advice.Add("SingleBaseAllelesOnly = false (REF and every ALT must be A, C, G or T; symbolic alleles, indels and N are not)");
        if (s.DroppedFilterNotPass > 0) advice.Add("PassOnly = false (FILTER must be PASS or .)");
        if (s.DroppedMinorAlleleFrequency > 0) advice.Add($"a lower MinMinorAlleleFrequency (now {Filters.MinMinorAlleleFrequency})");
        if (s.DroppedMissingRate > 0) advice.Add($"a higher MaxMissingRate (now {Filters.MaxMissingRate})");
        string relax = s.SitesRead == 0 ? "the file has no site" : advice.Count == 0 ? "no site had a column" : "relax " + string.Join(", or ", advice);
        return new DataFormatException(path, $"no site passed the filters ({Filters}): {s}; {relax}.");
    }
}
