using System.Globalization;
using System.Text;
using Ddvi.Evaluation;
using Ddvi.Experiments.Genomics;
using Ddvi.IO;

namespace Ddvi.Experiments.Ancestry;

/// <summary>
/// The tables of <c>ddvi ancestry</c>: <c>results.csv</c> (one row per run, every score) and <c>results.md</c> (per
/// method, the mean ± 95% Student-t half width over seeds of each score, the paper's format; a single seed shows its
/// value alone; a method with fewer finished runs than seeds says over how many, "pca (2 of 3 seeds)"), with the runs that
/// failed or are missing named below the tables.
/// </summary>
public static class AncestryReport
{
    public const string CsvFile = "results.csv", MarkdownFile = "results.md";

    /// <summary>The score key of <see cref="AncestryModels.NoiseShare"/> in a learned run's scores.</summary>
    public const string NoiseShareKey = "latent_noise_share";

    static readonly string[] ClusterScores = ["purity", "homogeneity", "completeness", "v_measure", "nmi"];
    static readonly string[] ClusterScoreTitles = ["purity", "homogeneity", "completeness", "V-measure", "NMI"];

    public static void Write(AncestryRequest request, IReadOnlyList<AncestryRunScores> runs, IReadOnlyList<string> failures, AncestryLabels labels)
    {
        var keys = runs.SelectMany(r => r.Values.Keys).Distinct().ToList();
        var csv = new StringBuilder("method,seed,seconds," + string.Join(',', keys) + "\n");
        foreach (var run in runs)
        {
            csv.Append(CultureInfo.InvariantCulture, $"{run.Method},{run.Seed},{run.Seconds:F3}");
            foreach (string key in keys)
                csv.Append(',').Append(run.Values.TryGetValue(key, out double v) && double.IsFinite(v) ? v.ToString("R", CultureInfo.InvariantCulture) : "");
            csv.Append('\n');
        }
        AtomicFile.WriteAllText(Path.Combine(request.Out, CsvFile), csv.ToString());
        AtomicFile.WriteAllText(Path.Combine(request.Out, MarkdownFile), Markdown(request, runs, failures, labels));
    }

    static string Markdown(AncestryRequest request, IReadOnlyList<AncestryRunScores> runs, IReadOnlyList<string> failures, AncestryLabels labels)
    {
        var text = new StringBuilder();
        text.AppendLine("# Latent ancestry: cluster scores");
        text.AppendLine();
        text.AppendLine(CultureInfo.InvariantCulture,
            $"Genotypes `{request.Genotypes}`, panel `{request.Panel}`: {labels.SampleIds.Count} labelled samples, {labels.PopulationNames.Count} populations, {labels.SuperPopulationNames.Count} super-populations. Seeds {string.Join(", ", request.Seeds)}; mean ± 95% t-interval over seeds.");
        text.AppendLine();
        text.AppendLine(CultureInfo.InvariantCulture,
            $"Clusters: a {request.Settings.ScoreComponents}-component full-covariance Gaussian mixture fitted on each method's 2-D latents ({request.Settings.ScoreInitialisations} k-means++ starts, covariance regularisation {request.Settings.ScoreRegularisation}, seeded by the run's seed).");
        if (GenotypePcaCache.Describe(Path.Combine(request.Out, AncestryRunner.PcaFolder)) is { } input)
        {
            text.AppendLine();
            text.AppendLine(input);
        }
        var methods = request.Methods.Where(m => runs.Any(r => r.Method == m)).ToList();
        foreach (var (prefix, title) in new[] { ("population", "populations"), ("super_population", "super-populations") })
        {
            text.AppendLine();
            text.AppendLine(CultureInfo.InvariantCulture, $"## Against the {title}");
            text.AppendLine();
            text.AppendLine("| method | " + string.Join(" | ", ClusterScoreTitles) + " |");
            text.AppendLine("| --- |" + string.Concat(Enumerable.Repeat(" --- |", ClusterScoreTitles.Length)));
            foreach (string method in methods)
                text.AppendLine($"| {RowLabel(request, runs, method)} | " + string.Join(" | ", ClusterScores.Select(s => Cell(runs, method, $"{prefix}_{s}"))) + " |");
        }
        var ks = request.Settings.NeighbourCounts;
        text.AppendLine();
        text.AppendLine("## KNN accuracy against the populations");
        text.AppendLine();
        text.AppendLine("\"same set\": fitted and scored on the same latents, a point being its own neighbour (the release's definition); " +
            string.Create(CultureInfo.InvariantCulture, $"\"held out\": fitted on {1 - request.Settings.HeldOutFraction:P0} of the samples and scored on the other {request.Settings.HeldOutFraction:P0} (stratified by population)."));
        text.AppendLine();
        text.AppendLine("| method | " + string.Join(" | ", ks.Select(k => $"same set, k = {k}")) + " | " + string.Join(" | ", ks.Select(k => $"held out, k = {k}")) + " | seconds |");
        text.AppendLine("| --- |" + string.Concat(Enumerable.Repeat(" --- |", 2 * ks.Count + 1)));
        foreach (string method in methods)
            text.AppendLine($"| {RowLabel(request, runs, method)} | " + string.Join(" | ", ks.Select(k => Cell(runs, method, $"knn{k}"))) + " | "
                + string.Join(" | ", ks.Select(k => Cell(runs, method, $"heldout_knn{k}"))) + " | "
                + Interval(runs.Where(r => r.Method == method).Select(r => r.Seconds).ToList(), "F0") + " |");
        var learned = methods.Where(m => runs.Any(r => r.Method == m && r.Values.ContainsKey(NoiseShareKey))).ToList();
        if (learned.Count > 0)
        {
            text.AppendLine();
            text.AppendLine("## Posterior noise");
            text.AppendLine();
            text.AppendLine("The share of each learned method's latent variance that is posterior noise rather than the input (every sample encoded twice with independent draws; 0 for a deterministic encoder, about 1 when the posterior collapsed and the map says nothing of the samples).");
            text.AppendLine();
            text.AppendLine("| method | noise share |");
            text.AppendLine("| --- | --- |");
            foreach (string method in learned)
                text.AppendLine($"| {RowLabel(request, runs, method)} | {Cell(runs, method, NoiseShareKey)} |");
        }
        if (failures.Count > 0)
        {
            text.AppendLine();
            text.AppendLine("## Failed runs");
            text.AppendLine();
            foreach (string failure in failures) text.AppendLine($"- {failure}");
        }
        return text.ToString();
    }

    // A method whose runs did not all finish says over how many seeds its cells are, so that a partial study's means are
    // not read as the full study's.
    static string RowLabel(AncestryRequest request, IReadOnlyList<AncestryRunScores> runs, string method)
    {
        int finished = runs.Count(r => r.Method == method);
        return finished < request.Seeds.Count
            ? string.Create(CultureInfo.InvariantCulture, $"{method} ({finished} of {request.Seeds.Count} seeds)")
            : method;
    }

    static string Cell(IReadOnlyList<AncestryRunScores> runs, string method, string key) =>
        Interval(runs.Where(r => r.Method == method && r.Values.TryGetValue(key, out double v) && double.IsFinite(v)).Select(r => r.Values[key]).ToList(), "F3");

    static string Interval(IReadOnlyList<double> values, string format)
    {
        if (values.Count == 0) return "–";
        if (values.Count == 1) return values[0].ToString(format, CultureInfo.InvariantCulture);
        var interval = Confidence.StudentT(values);
        return interval.Mean.ToString(format, CultureInfo.InvariantCulture) + " ± " + interval.HalfWidth95.ToString(format, CultureInfo.InvariantCulture);
    }
}
