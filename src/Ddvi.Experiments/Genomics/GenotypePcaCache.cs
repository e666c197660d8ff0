using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Ddvi.Data;
using Ddvi.IO;

namespace Ddvi.Experiments.Genomics;

/// <summary>One input file as the cache remembers it: full path, size and last write time (UTC).</summary>
public sealed record GenotypeInputFile(string Path, long Length, DateTime LastWriteUtc)
{
    public static GenotypeInputFile Of(string path)
    {
        var info = new FileInfo(path);
        if (!info.Exists) throw new FileNotFoundException($"{path}: file not found.", path);
        return new GenotypeInputFile(info.FullName, info.Length, info.LastWriteTimeUtc);
    }
}

/// <summary>
/// What a PCA was computed from: the genotype files (for PLINK the .bed, .bim and .fam), the filters and the options.
/// Two fingerprints are equal when every field is, so an edited file, or any changed filter or option, misses the cache.
/// </summary>
public sealed record GenotypePcaInputs(IReadOnlyList<GenotypeInputFile> Files, GenotypeFilters Filters, GenotypePcaOptions Options)
{
    /// <summary>The fingerprint of what <see cref="GenotypeFiles.Open"/> would read at <paramref name="path"/>.</summary>
    public static GenotypePcaInputs Of(string path, GenotypeFilters filters, GenotypePcaOptions options)
    {
        string lower = path.ToLowerInvariant();
        bool vcf = lower.EndsWith(".vcf") || lower.EndsWith(".vcf.gz") || lower.EndsWith(".vcf.bgz");
        string[] files = !vcf && PlinkReader.PrefixOf(path) is { } prefix ? [prefix + ".bed", prefix + ".bim", prefix + ".fam"] : [path];
        return new GenotypePcaInputs(files.Select(GenotypeInputFile.Of).ToArray(), filters, options);
    }
}

/// <summary>
/// Keeps a <see cref="GenotypePcaResult"/> in a folder: <c>pcs.npy</c> (float32 <c>[n, K]</c>, <see cref="NpyFile"/>),
/// <c>samples.tsv</c> (sample, and pop and super_pop when labels are given) and <c>pca.json</c> (the inputs'
/// fingerprint, eigenvalues, explained variance, column counts, read summary and the divisor applied). Every file is written atomically,
/// <c>pca.json</c> last and removed first, so a half-saved cache is never taken for a whole one.
/// </summary>
public static class GenotypePcaCache
{
    public const string ScoresFile = "pcs.npy", SamplesFile = "samples.tsv", MetadataFile = "pca.json";

    static readonly JsonSerializerOptions Json = new() { WriteIndented = true };

    public static void Save(string folder, GenotypePcaResult result, GenotypePcaInputs inputs, PanelMatch? labels = null)
    {
        ArgumentNullException.ThrowIfNull(result);
        ArgumentNullException.ThrowIfNull(inputs);
        if (labels is not null && labels.Population.Count != result.SampleCount)
            throw new ArgumentException($"{labels.Population.Count} labels for {result.SampleCount} samples.", nameof(labels));
        Directory.CreateDirectory(folder);
        File.Delete(Path.Combine(folder, MetadataFile));
        NpyFile.WriteFloat32(Path.Combine(folder, ScoresFile), result.Scores, [result.SampleCount, result.Components]);

        var samples = new StringBuilder(labels is null ? "sample\n" : "sample\tpop\tsuper_pop\n");
        for (int i = 0; i < result.SampleCount; i++)
        {
            samples.Append(result.SampleIds[i]);
            if (labels is not null) samples.Append('\t').Append(labels.Population[i] ?? "").Append('\t').Append(labels.SuperPopulation[i] ?? "");
            samples.Append('\n');
        }
        AtomicFile.WriteAllText(Path.Combine(folder, SamplesFile), samples.ToString());

        var metadata = new JsonObject
        {
            ["inputs"] = JsonSerializer.SerializeToNode(inputs, Json),
            ["sampleCount"] = result.SampleCount,
            ["components"] = result.Components,
            ["columnsUsed"] = result.ColumnsUsed,
            ["columnsSkipped"] = result.ColumnsSkipped,
            ["divisor"] = result.Divisor,
            ["eigenvalues"] = JsonSerializer.SerializeToNode(result.Eigenvalues, Json),
            ["explainedVarianceFraction"] = JsonSerializer.SerializeToNode(result.ExplainedVarianceFraction, Json),
            ["summary"] = JsonSerializer.SerializeToNode(result.Summary, Json),
        };
        AtomicFile.WriteAllText(Path.Combine(folder, MetadataFile), metadata.ToJsonString(Json));
    }

    /// <summary>One line on what a cached PCA in <paramref name="folder"/> gives the methods (components, columns, divisor),
    /// or null when the folder holds none or it cannot be read.</summary>
    public static string? Describe(string folder)
    {
        string path = Path.Combine(folder, MetadataFile);
        JsonObject? metadata;
        try
        {
            metadata = File.Exists(path) ? JsonNode.Parse(File.ReadAllText(path)) as JsonObject : null;
        }
        catch (Exception e) when (e is JsonException or IOException)
        {
            return null;
        }
        if (metadata?["components"] is not JsonValue components || metadata["columnsUsed"] is not JsonValue columns) return null;
        string divisor = metadata["divisor"] is JsonValue d ? d.GetValue<double>().ToString("G4", CultureInfo.InvariantCulture) : "(not recorded)";
        bool chosen = metadata["inputs"]?["Options"] is JsonObject options && options["Divisor"] is null;
        return string.Create(CultureInfo.InvariantCulture,
            $"Input: the top {components.GetValue<int>()} principal components of {columns.GetValue<long>():N0} genotype columns, divided by {divisor}{(chosen ? $" (chosen from the data: the components' mean variance is {GenotypePca.AutomaticMeanVariance})" : "")}.");
    }

    /// <summary>The saved result when <paramref name="folder"/> holds one computed from exactly
    /// <paramref name="inputs"/>; null when there is none or its inputs differ. A cache whose files disagree with
    /// each other is a <see cref="DataFormatException"/>.</summary>
    public static GenotypePcaResult? TryLoad(string folder, GenotypePcaInputs inputs)
    {
        ArgumentNullException.ThrowIfNull(inputs);
        string metadataPath = Path.Combine(folder, MetadataFile);
        if (!File.Exists(metadataPath)) return null;
        var metadata = JsonNode.Parse(File.ReadAllText(metadataPath))?.AsObject()
            ?? throw new DataFormatException(metadataPath, "expected a JSON object.");
        if (!JsonNode.DeepEquals(metadata["inputs"], JsonSerializer.SerializeToNode(inputs, Json))) return null;

        int n = metadata["sampleCount"]!.GetValue<int>(), k = metadata["components"]!.GetValue<int>();
        string scoresPath = Path.Combine(folder, ScoresFile), samplesPath = Path.Combine(folder, SamplesFile);
        var (scores, shape) = NpyFile.ReadFloat32(scoresPath);
        if (shape.Length != 2 || shape[0] != n || shape[1] != k)
            throw new DataFormatException(scoresPath, $"shape ({string.Join(", ", shape)}), but {metadataPath} says ({n}, {k}).");
        var ids = File.ReadLines(samplesPath).Skip(1).Where(l => l.Length > 0).Select(l => l.Split('\t')[0]).ToArray();
        if (ids.Length != n) throw new DataFormatException(samplesPath, $"{ids.Length} samples, but {metadataPath} says {n}.");
        return new GenotypePcaResult(ids, k, scores,
            metadata["eigenvalues"].Deserialize<double[]>(Json)!,
            metadata["explainedVarianceFraction"].Deserialize<double[]>(Json)!,
            metadata["columnsUsed"]!.GetValue<long>(),
            metadata["columnsSkipped"]!.GetValue<long>(),
            metadata["summary"].Deserialize<GenotypeReadSummary>(Json)!,
            // A cache written before the divisor was recorded always had a fixed one, its options'.
            metadata["divisor"]?.GetValue<double>() ?? inputs.Options.Divisor
                ?? throw new DataFormatException(metadataPath, "no \"divisor\" for scores whose divisor was chosen from the data."));
    }
}
