using System.Globalization;
using System.Text.Json;
using Ddvi.Priors;

namespace Ddvi.Experiments.Comparison;

/// <summary>
/// A finished run as the result tables see it: its folder, its configuration (config.json), its metrics
/// (metrics.json) and the label of its prior: the canonical name, with the noise when it is not the prior's
/// default, so that runs of a release alias (e.g. less_noisy_swiss_roll) are not pooled with the plain prior.
/// </summary>
public sealed record RunResult(string Folder, ExperimentConfig Config, MetricsReport Metrics)
{
    public string Model => Metrics.Model;
    public string Dataset => Metrics.Dataset;
    public long Seed => Metrics.Seed;
    public string PriorLabel => PriorLabelOf(Config);

    /// <summary>The model's name, plus " (N labels)" for a semi-supervised run, so that runs of different label budgets
    /// are not pooled.</summary>
    public string ModelLabel => Metrics.SemiSupervised is { } semi
        ? string.Create(CultureInfo.InvariantCulture, $"{Model} ({semi.Labels} labels)")
        : Model;

    /// <summary>The canonical prior name, plus " (noise N)" when the run's noise differs from the prior's default.</summary>
    public static string PriorLabelOf(ExperimentConfig config)
    {
        var settings = PriorCatalog.Resolve(config.Prior, config.PriorNoise);
        var defaults = PriorCatalog.Resolve(settings.Name, null);
        return settings.Noise == defaults.Noise
            ? settings.Name
            : string.Create(CultureInfo.InvariantCulture, $"{settings.Name} (noise {settings.Noise})");
    }

    /// <summary>Reads config.json and metrics.json of a finished run; errors name the file.</summary>
    public static RunResult Load(string folder)
    {
        var run = new RunDirectory(folder);
        if (!File.Exists(run.Config))
            throw new FileNotFoundException($"{run.Config} not found: {run.Root} is not a Ddvi run folder.", run.Config);
        if (!File.Exists(run.Metrics))
            throw new FileNotFoundException($"{run.Metrics} not found: the run in {run.Root} has not finished (continue it with: ddvi train --resume --out {run.Root}).", run.Metrics);
        var config = ExperimentConfig.FromJson(File.ReadAllText(run.Config), run.Config);
        MetricsReport metrics;
        try
        {
            metrics = JsonSerializer.Deserialize<MetricsReport>(File.ReadAllText(run.Metrics), ExperimentConfig.JsonOptions)
                      ?? throw new InvalidDataException($"{run.Metrics}: empty metrics file.");
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{run.Metrics}: not a valid Ddvi metrics file ({e.Message})", e);
        }
        return new RunResult(run.Root, config, metrics);
    }

    /// <summary>
    /// The finished runs under <paramref name="paths"/>: each path is a run folder (it has metrics.json) or a
    /// comparison folder, whose runs/* subfolders are scanned (unfinished ones are listed, not loaded).
    /// A run folder that cannot be read (damaged config.json or metrics.json) is listed with the reason in
    /// <see cref="RunDiscovery.Malformed"/> and the others are still collected. Throws for a path that is neither, for an
    /// explicitly named unfinished run, and for two runs of the same dataset, prior, model and seed.
    /// </summary>
    public static RunDiscovery Discover(IEnumerable<string> paths)
    {
        var runs = new List<RunResult>();
        var unfinished = new List<string>();
        var malformed = new List<(string Folder, string Problem)>();
        void TryLoad(string folder)
        {
            try
            {
                runs.Add(Load(folder));
            }
            catch (Exception e) when (e is InvalidDataException or ArgumentException or JsonException or IOException or UnauthorizedAccessException
                                          && e is not FileNotFoundException)
            {
                malformed.Add((folder, e.Message));
            }
        }
        foreach (var path in paths)
        {
            string full = Path.GetFullPath(path);
            if (!Directory.Exists(full))
                throw new DirectoryNotFoundException($"RUN_DIR '{path}' is not a folder; expected a run folder (with metrics.json) or a comparison folder (with runs/).");
            var run = new RunDirectory(full);
            string runsFolder = Path.Combine(full, "runs");
            if (File.Exists(run.Metrics) || File.Exists(run.Config))
            {
                if (File.Exists(run.Metrics)) TryLoad(full);
                else runs.Add(Load(full)); // named explicitly but unfinished: an error that says how to finish it
            }
            else if (Directory.Exists(runsFolder))
            {
                foreach (var folder in Directory.EnumerateDirectories(runsFolder).Order(StringComparer.Ordinal))
                {
                    if (File.Exists(new RunDirectory(folder).Metrics)) TryLoad(folder);
                    else unfinished.Add(folder);
                }
            }
            else
            {
                throw new InvalidDataException($"RUN_DIR '{path}' is neither a run folder (no metrics.json or config.json) nor a comparison folder (no runs/ subfolder).");
            }
        }

        var duplicate = runs.GroupBy(r => (r.Dataset, r.PriorLabel, r.ModelLabel, r.Seed)).FirstOrDefault(g => g.Count() > 1);
        if (duplicate is not null)
            throw new InvalidDataException(
                $"two runs of {duplicate.Key.ModelLabel} with prior {duplicate.Key.PriorLabel}, seed {duplicate.Key.Seed} on {duplicate.Key.Dataset}: " +
                $"{string.Join(" and ", duplicate.Select(r => r.Folder))}; give each run once.");
        return new RunDiscovery(runs, unfinished, malformed);
    }
}

/// <summary>Finished runs found under some folders, the run folders skipped because they have no metrics.json yet,
/// and those skipped because their files could not be read (with the reason).</summary>
public sealed record RunDiscovery(IReadOnlyList<RunResult> Runs, IReadOnlyList<string> Unfinished,
    IReadOnlyList<(string Folder, string Problem)> Malformed);
