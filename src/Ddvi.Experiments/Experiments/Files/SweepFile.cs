using System.Globalization;
using Ddvi.Priors;

namespace Ddvi.Experiments.Files;

/// <summary>
/// A sweep file (<c>ddvi compare --sweep FILE</c>): the lists of a comparison and the settings every run shares, in YAML
/// or JSON. Keys: <c>models</c>, <c>priors</c>, <c>seeds</c> (lists), <c>out</c>, <c>jobs</c>, <c>threads</c>, and
/// <c>overrides</c>, an experiment file's keys (<see cref="ExperimentFile"/>) applied to every run, and <c>per_prior</c>, a
/// mapping from prior names to experiment-file keys applied, after <c>overrides</c>, to the runs of that prior only (the
/// swiss roll's <c>ddvi.start</c>, say). Options given to <c>compare</c> override the file. Errors name the file, the
/// line and the key.
/// </summary>
public sealed class SweepFile
{
    /// <summary>The keys of a sweep file.</summary>
    public static IReadOnlyList<string> KeyNames { get; } = ["models", "priors", "seeds", "out", "jobs", "threads", "overrides", "per_prior"];

    /// <summary>Keys of <c>overrides</c> that the sweep's lists set per run.</summary>
    private static readonly IReadOnlySet<string> PerRunKeys = new HashSet<string> { "model", "prior", "seed", "threads" };

    public required string Path { get; init; }
    public IReadOnlyList<string>? Models { get; init; }
    public IReadOnlyList<string>? Priors { get; init; }
    public IReadOnlyList<long>? Seeds { get; init; }
    public string? Out { get; init; }
    public int? Jobs { get; init; }
    public int? Threads { get; init; }

    /// <summary>The settings every run shares; null when the file has no <c>overrides</c>.</summary>
    public ExperimentFile? Overrides { get; init; }

    /// <summary>
    /// Settings for the runs of one prior, keyed by the prior's canonical name (<see cref="PriorCatalog.Names"/>); they
    /// apply after <see cref="Overrides"/>. Empty when the file has no <c>per_prior</c>.
    /// </summary>
    public IReadOnlyDictionary<string, ExperimentFile> PerPrior { get; init; } = new Dictionary<string, ExperimentFile>();

    public static SweepFile Load(string path)
    {
        var root = ConfigTree.Read(path);
        IReadOnlyList<string>? models = null, priors = null;
        IReadOnlyList<long>? seeds = null;
        string? output = null;
        int? jobs = null, threads = null;
        ExperimentFile? overrides = null;
        var perPrior = new Dictionary<string, ExperimentFile>(StringComparer.Ordinal);
        foreach (var entry in root.Entries)
        {
            string where = $"{path} line {entry.Line}";
            switch (entry.Key)
            {
                case "models":
                    models = Names(entry, where);
                    break;
                case "priors":
                    priors = Names(entry, where);
                    break;
                case "seeds":
                    seeds = [.. Scalars(entry, where).Select(s => long.TryParse(s.Text, NumberStyles.Integer, CultureInfo.InvariantCulture, out long seed) && s.Kind == ScalarKind.Number
                        ? seed
                        : throw new ArgumentException($"{path} line {s.Line}: seeds must be a list of integers ≥ 0, got '{s.Text}'."))];
                    break;
                case "out":
                    output = entry.Value is ConfigScalar { Kind: ScalarKind.String } folder
                        ? folder.Text
                        : throw new ArgumentException($"{where}: out must be a folder path.");
                    break;
                case "jobs" or "threads":
                    int value = entry.Value is ConfigScalar { Kind: ScalarKind.Number } n && int.TryParse(n.Text, NumberStyles.Integer, CultureInfo.InvariantCulture, out int parsed)
                        ? parsed
                        : throw new ArgumentException($"{where}: {entry.Key} must be an integer.");
                    if (entry.Key == "jobs") jobs = value;
                    else threads = value;
                    break;
                case "overrides":
                    if (entry.Value is not ConfigMapping mapping)
                        throw new ArgumentException($"{where}: overrides must be a mapping of experiment-file keys (see configs/README.md).");
                    overrides = ExperimentFile.FromMapping(mapping, path, "overrides.");
                    RejectPerRunKeys(overrides, path, "overrides");
                    break;
                case "per_prior":
                    if (entry.Value is not ConfigMapping priorEntries)
                        throw new ArgumentException($"{where}: per_prior must be a mapping from prior names to experiment-file keys, e.g. per_prior: {{swiss-roll: {{ddvi: {{start: forward-marginal}}}}}} (see configs/README.md).");
                    foreach (var prior in priorEntries.Entries)
                    {
                        string at = $"{path} line {prior.Line}";
                        string canonical = PriorCatalog.CanonicalName(prior.Key)
                            ?? throw new ArgumentException($"{at}: per_prior.{prior.Key}: '{prior.Key}' is not a prior; valid: {string.Join(", ", PriorCatalog.Names)} (and {string.Join(", ", PriorCatalog.Aliases.Keys)}).");
                        if (prior.Value is not ConfigMapping settings)
                            throw new ArgumentException($"{at}: per_prior.{prior.Key} must be a mapping of experiment-file keys (see configs/README.md).");
                        if (perPrior.ContainsKey(canonical))
                            throw new ArgumentException($"{at}: per_prior names the prior {canonical} twice (as '{prior.Key}' and before); give its settings once.");
                        var file = ExperimentFile.FromMapping(settings, path, $"per_prior.{prior.Key}.");
                        RejectPerRunKeys(file, path, $"per_prior.{prior.Key}");
                        perPrior[canonical] = file;
                    }
                    break;
                default:
                    throw new ArgumentException($"{where}: unknown key '{entry.Key}'; valid keys of a sweep file: {string.Join(", ", KeyNames)}.");
            }
        }
        return new SweepFile { Path = path, Models = models, Priors = priors, Seeds = seeds, Out = output, Jobs = jobs, Threads = threads, Overrides = overrides, PerPrior = perPrior };
    }

    private static void RejectPerRunKeys(ExperimentFile file, string path, string section)
    {
        if (file.Keys.FirstOrDefault(k => PerRunKeys.Contains(k.Key)) is { } perRun)
            throw new ArgumentException(
                $"{path} line {perRun.Line}: {perRun.Written} is set per run by the sweep (models, priors, seeds; threads at the top level); " +
                $"remove it from {section}.");
    }

    private static IEnumerable<ConfigScalar> Scalars(ConfigEntry entry, string where)
    {
        var items = entry.Value switch
        {
            ConfigSequence list => list.Items,
            ConfigScalar one => [one],
            _ => throw new ArgumentException($"{where}: {entry.Key} must be a list, e.g. [a, b]."),
        };
        return items.Select(item => item as ConfigScalar ?? throw new ArgumentException($"{where}: {entry.Key} must be a list of plain values."));
    }

    private static IReadOnlyList<string> Names(ConfigEntry entry, string where) =>
        [.. Scalars(entry, where).Select(s => s.Text.ToLowerInvariant())];
}
