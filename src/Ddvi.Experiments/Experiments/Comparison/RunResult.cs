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
    /// are not pooled, plus " [SETTINGS]" when <see cref="Variant"/> is set, so that runs of different settings are not.</summary>
    public string ModelLabel => (Metrics.SemiSupervised is { } semi
        ? string.Create(CultureInfo.InvariantCulture, $"{Model} ({semi.Labels} labels)")
        : Model) + (string.IsNullOrEmpty(Variant) ? "" : $" [{Variant}]");

    /// <summary>
    /// The settings that set this run apart from other runs of the same model, dataset and prior it is reported with
    /// ("ddvi.sleep_steps 10, epochs 300"), or null when they all share their settings but the seed; set by
    /// <see cref="LabelVariants"/>.
    /// </summary>
    public string? Variant { get; init; }

    /// <summary>config.json keys that do not change what a run computes or that another label already carries (the seed,
    /// where and how fast it ran, the label budget, the prior's name and noise), left out of <see cref="Variant"/>.</summary>
    private static readonly HashSet<string> NotVariantKeys =
        ["seed", "device", "threads", "checkpoint_every", "tensorboard", "data_directory", "labels", "model", "dataset", "prior", "prior_noise"];

    /// <summary>
    /// The runs with <see cref="Variant"/> set wherever runs of one dataset, prior and model differ in a setting other
    /// than the seed: each such run is labelled with the settings (config.json keys, sections joined by a dot; an unset
    /// option by the value it resolved to where config.json records one, else "default") in which that group's runs differ, so an ablation — the same model
    /// with and without <c>--sleep-steps 10</c>, or on 8,000 and 60,000 images — gives one row per setting, pooled over
    /// seeds, instead of one row mixing them. Runs that share every setting but the seed keep <see cref="Variant"/> null.
    /// Same order as <paramref name="runs"/>.
    /// </summary>
    public static IReadOnlyList<RunResult> LabelVariants(IReadOnlyList<RunResult> runs)
    {
        ArgumentNullException.ThrowIfNull(runs);
        var labelled = runs.Select(r => r with { Variant = null }).ToArray();
        var groups = labelled.Select((run, index) => (Run: run, Index: index)).GroupBy(p => (p.Run.Dataset, p.Run.PriorLabel, p.Run.ModelLabel));
        foreach (var group in groups)
        {
            var members = group.ToList();
            if (members.Count < 2) continue;
            var settings = members.Select(p => Flatten(p.Run.Config)).ToList();
            // A key sets runs apart when what the runs wrote differs and the values it resolves to differ too: an option
            // left unset beside one set to its default is no variant, and a resolved value that follows another option
            // (semi.frozen_decoder_epochs from epochs in a DDVI run) is not counted twice.
            bool Differs(string key, Func<(Dictionary<string, string> Written, Dictionary<string, string> Shown), Dictionary<string, string>> part) =>
                settings.Select(s => part(s).GetValueOrDefault(key, "default")).Distinct(StringComparer.Ordinal).Count() > 1;
            var differing = settings.SelectMany(s => s.Written.Keys).Distinct(StringComparer.Ordinal)
                .Where(key => Differs(key, s => s.Written) && Differs(key, s => s.Shown))
                .Order(StringComparer.Ordinal).ToList();
            if (differing.Count == 0) continue;
            for (int i = 0; i < members.Count; i++)
            {
                var values = settings[i].Shown;
                string variant = string.Join(", ", differing.Select(key => $"{key} {values.GetValueOrDefault(key, "default")}"));
                labelled[members[i].Index] = members[i].Run with { Variant = variant };
            }
        }
        return labelled;
    }

    /// <summary>The configuration as "section.key" → value text, as config.json writes it (missing keys read as their
    /// defaults, so runs of older builds compare by value), without <see cref="NotVariantKeys"/>: as written, and as shown,
    /// where a resolved_* value stands in for its option.</summary>
    private static (Dictionary<string, string> Written, Dictionary<string, string> Shown) Flatten(ExperimentConfig config)
    {
        var written = new Dictionary<string, string>(StringComparer.Ordinal);
        var flat = new Dictionary<string, string>(StringComparer.Ordinal);
        using var document = JsonDocument.Parse(JsonSerializer.Serialize(config, ExperimentConfig.JsonOptions));
        // An option the run left to its default is compared by the value it resolved to (resolved_epochs for epochs,
        // resolved_frozen_decoder_epochs for ddvi.frozen_decoder_epochs, resolved_semi_… for semi.…), so a run that set
        // the default explicitly, as --resume writes it, is not a variant of one that did not.
        var resolved = document.RootElement.EnumerateObject().Where(p => p.Name.StartsWith("resolved_", StringComparison.Ordinal))
            .ToDictionary(p => p.Name, p => p.Value, StringComparer.Ordinal);
        void Walk(JsonElement element, string prefix)
        {
            foreach (var property in element.EnumerateObject())
            {
                string key = prefix.Length == 0 ? property.Name : $"{prefix}.{property.Name}";
                if (prefix.Length == 0 && (NotVariantKeys.Contains(property.Name) || property.Name.StartsWith("resolved_", StringComparison.Ordinal)))
                    continue;
                string resolvedName = prefix switch
                {
                    "" or "ddvi" => $"resolved_{property.Name}",
                    "semi" => $"resolved_semi_{property.Name}",
                    _ => "",
                };
                if (property.Value.ValueKind != JsonValueKind.Object)
                    written[key] = property.Value.ValueKind == JsonValueKind.Null ? "default" : JsonSerializer.Serialize(property.Value);
                if (resolved.TryGetValue(resolvedName, out var resolvedValue))
                {
                    flat[key] = JsonSerializer.Serialize(resolvedValue);
                    continue;
                }
                switch (property.Value.ValueKind)
                {
                    case JsonValueKind.Object:
                        Walk(property.Value, key);
                        break;
                    case JsonValueKind.Null:
                        flat[key] = "default";
                        break;
                    case JsonValueKind.String:
                        flat[key] = property.Value.GetString()!;
                        break;
                    default:
                        flat[key] = JsonSerializer.Serialize(property.Value); // numbers, booleans, arrays: compact JSON
                        break;
                }
            }
        }
        Walk(document.RootElement, "");
        return (written, flat);
    }

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

        runs = [.. LabelVariants(runs)];
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
