using Ddvi.Data;

namespace Ddvi.Experiments.Genomics;

/// <summary>One panel line: a sample and its population and super-population.</summary>
public sealed record PanelEntry(string Sample, string Population, string SuperPopulation);

/// <summary>
/// A population panel in the 1000 Genomes layout (e.g. <c>integrated_call_samples_v3.20130502.ALL.panel</c>): a header
/// line, then tab-separated <c>sample pop super_pop gender</c> per line; columns after the third are read past.
/// </summary>
public sealed class PopulationPanel
{
    readonly Dictionary<string, PanelEntry> bySample;

    PopulationPanel(string path, IReadOnlyList<PanelEntry> entries)
    {
        Path = path;
        Entries = entries;
        bySample = entries.ToDictionary(e => e.Sample, StringComparer.Ordinal);
        // Codes follow the order in which names first appear in the panel file, so they do not depend on which samples
        // a genotype file holds.
        SuperPopulations = entries.Select(e => e.SuperPopulation).Distinct(StringComparer.Ordinal).ToArray();
        Populations = entries.Select(e => e.Population).Distinct(StringComparer.Ordinal).ToArray();
    }

    public string Path { get; }

    /// <summary>The panel's lines, in file order.</summary>
    public IReadOnlyList<PanelEntry> Entries { get; }

    /// <summary>Population names in order of first appearance in the file; a population's code is its index here.</summary>
    public IReadOnlyList<string> Populations { get; }

    /// <summary>Super-population names in order of first appearance in the file; a code is the index here.</summary>
    public IReadOnlyList<string> SuperPopulations { get; }

    /// <summary>Reads a panel; errors name the file and line (too few columns, an empty field, a repeated sample).</summary>
    public static PopulationPanel Read(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"{path}: file not found.", path);
        var entries = new List<PanelEntry>();
        var lineOf = new Dictionary<string, long>(StringComparer.Ordinal);
        long lineNumber = 0;
        foreach (string line in File.ReadLines(path))
        {
            lineNumber++;
            var fields = line.Split('\t');
            if (lineNumber == 1)
            {
                if (fields.Length < 3 || fields[0] != "sample")
                    throw new DataFormatException(path, $"line 1: expected the header 'sample<TAB>pop<TAB>super_pop<TAB>gender', found '{line}'.");
                continue;
            }
            if (line.Length == 0) continue;
            if (fields.Length < 3)
                throw new DataFormatException(path, $"line {lineNumber}: expected at least 3 tab-separated columns (sample, pop, super_pop), found {fields.Length}.");
            if (fields[0].Length == 0 || fields[1].Length == 0 || fields[2].Length == 0)
                throw new DataFormatException(path, $"line {lineNumber}: sample, pop and super_pop must not be empty.");
            if (!lineOf.TryAdd(fields[0], lineNumber))
                throw new DataFormatException(path, $"line {lineNumber}: sample '{fields[0]}' is already on line {lineOf[fields[0]]}.");
            entries.Add(new PanelEntry(fields[0], fields[1], fields[2]));
        }
        if (lineNumber == 0) throw new DataFormatException(path, "empty file: expected a header line and one line per sample.");
        return new PopulationPanel(path, entries);
    }

    /// <summary>The panel's labels for <paramref name="sampleIds"/> (a genotype file's samples, in its order).</summary>
    public PanelMatch Match(IReadOnlyList<string> sampleIds)
    {
        ArgumentNullException.ThrowIfNull(sampleIds);
        int n = sampleIds.Count;
        var population = new string?[n];
        var superPopulation = new string?[n];
        var populationCode = new int[n];
        var superCode = new int[n];
        var populationIndex = Populations.Select((name, i) => (name, i)).ToDictionary(x => x.name, x => x.i, StringComparer.Ordinal);
        var superIndex = SuperPopulations.Select((name, i) => (name, i)).ToDictionary(x => x.name, x => x.i, StringComparer.Ordinal);
        var missing = new List<string>();
        var kept = new List<int>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        for (int i = 0; i < n; i++)
        {
            seen.Add(sampleIds[i]);
            if (bySample.TryGetValue(sampleIds[i], out var entry))
            {
                population[i] = entry.Population;
                superPopulation[i] = entry.SuperPopulation;
                populationCode[i] = populationIndex[entry.Population];
                superCode[i] = superIndex[entry.SuperPopulation];
                kept.Add(i);
            }
            else
            {
                populationCode[i] = superCode[i] = -1;
                missing.Add(sampleIds[i]);
            }
        }
        var extra = Entries.Where(e => !seen.Contains(e.Sample)).Select(e => e.Sample).ToList();
        var warnings = new List<string>();
        if (missing.Count > 0) warnings.Add($"{missing.Count} of {n} samples are not in the panel {Path}: {List(missing)}");
        if (extra.Count > 0) warnings.Add($"{extra.Count} of the panel's {Entries.Count} samples are not in the genotypes: {List(extra)}");
        return new PanelMatch(population, superPopulation, populationCode, superCode, Populations, SuperPopulations, missing, extra, kept, warnings);
    }

    static string List(List<string> names) => string.Join(", ", names.Take(10)) + (names.Count > 10 ? $" … ({names.Count - 10} more)" : "");
}

/// <summary>
/// Per-sample labels from a <see cref="PopulationPanel"/>, in the genotype file's sample order. A sample the panel lacks
/// has null names and code −1; <see cref="KeptIndices"/> lists the others, for a caller that drops unlabelled samples.
/// Codes index <see cref="PopulationNames"/> and <see cref="SuperPopulationNames"/> (the panel's order of first appearance).
/// </summary>
public sealed record PanelMatch(
    IReadOnlyList<string?> Population,
    IReadOnlyList<string?> SuperPopulation,
    IReadOnlyList<int> PopulationCode,
    IReadOnlyList<int> SuperPopulationCode,
    IReadOnlyList<string> PopulationNames,
    IReadOnlyList<string> SuperPopulationNames,
    IReadOnlyList<string> MissingFromPanel,
    IReadOnlyList<string> ExtraInPanel,
    IReadOnlyList<int> KeptIndices,
    IReadOnlyList<string> Warnings);
