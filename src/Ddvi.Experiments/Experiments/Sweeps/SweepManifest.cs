using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Ddvi.Experiments.Comparison;
using Ddvi.IO;

namespace Ddvi.Experiments.Sweeps;

/// <summary>
/// One task of a sweep: its stable index, its kind (what runs it, e.g. <see cref="SweepManifest.TrainKind"/>), its
/// name, its run folder and its fully resolved configuration as JSON (for a train entry, the run's config.json).
/// The configuration is kept as JSON so that other kinds of task can carry their own settings.
/// </summary>
public sealed record ManifestEntry(int Index, string Kind, string Name, string Folder, JsonObject Config)
{
    /// <summary>The configuration of a <see cref="SweepManifest.TrainKind"/> entry, parsed and validated; errors name the entry.</summary>
    public ExperimentConfig TrainConfig(string manifestPath) =>
        ExperimentConfig.FromJson(Config.ToJsonString(), $"{manifestPath}, entry {Index} ({Name})");
}

/// <summary>
/// The tasks of a sweep, written to <c>OUT/manifest.json</c> before anything runs: every run with a stable index, its
/// kind, its resolved configuration and its run folder. <c>ddvi run --manifest FILE --index N</c> runs entry N (one
/// Slurm array task, or one local child process). Indices never change once given: a sweep that grows (another seed)
/// keeps the old entries where they were and appends the new ones, so an array in flight still finds its entries.
/// </summary>
public sealed record SweepManifest(string Folder, IReadOnlyList<ManifestEntry> Entries)
{
    /// <summary>The kind of an entry that trains and evaluates one model (<see cref="ExperimentRunner"/>).</summary>
    public const string TrainKind = "train";

    /// <summary>The kind of an entry that runs one method × seed of an ancestry study (<see cref="Ancestry.AncestrySweep"/>).</summary>
    public const string AncestryKind = "ancestry";

    public const string FileName = "manifest.json";
    private const string Format = "ddvi-sweep-manifest";
    private const int Version = 1;

    /// <summary>The manifest file of the sweep in <paramref name="folder"/>.</summary>
    public static string PathIn(string folder) => Path.Combine(Path.GetFullPath(folder), FileName);

    /// <summary>The entry with index <paramref name="index"/>, or an error naming the valid range.</summary>
    public ManifestEntry Entry(int index, string manifestPath) =>
        index >= 0 && index < Entries.Count
            ? Entries[index]
            : throw new ArgumentException(string.Create(CultureInfo.InvariantCulture,
                $"--index {index} is out of range: {manifestPath} has {Entries.Count} entries, indices 0 to {Entries.Count - 1}."));

    /// <summary>
    /// This manifest with the runs of <paramref name="plan"/>: a run whose folder already has an entry keeps its index (its
    /// configuration is updated), a new one is appended. Returns the manifest and the entry of each planned run, in plan order.
    /// </summary>
    public (SweepManifest Manifest, IReadOnlyList<ManifestEntry> Planned) With(IReadOnlyList<PlannedRun> plan) =>
        With(TrainKind, [.. plan.Select(run => (run.Name, run.Folder, JsonNode.Parse(run.Config.ToJson())!.AsObject()))]);

    /// <summary>
    /// This manifest with the tasks of kind <paramref name="kind"/> in <paramref name="tasks"/>: a task whose kind and folder
    /// already have an entry keeps its index (its name and configuration are updated), a new one is appended; entries of
    /// other kinds are kept as they are. Returns the manifest and the entry of each task, in the order given.
    /// </summary>
    public (SweepManifest Manifest, IReadOnlyList<ManifestEntry> Planned) With(string kind, IReadOnlyList<(string Name, string Folder, JsonObject Config)> tasks)
    {
        var entries = Entries.ToList();
        var planned = new List<ManifestEntry>();
        foreach (var (name, folder, config) in tasks)
        {
            int index = entries.FindIndex(e => e.Kind == kind && SameFolder(e.Folder, folder));
            var entry = new ManifestEntry(index >= 0 ? index : entries.Count, kind, name, Path.GetFullPath(folder), config);
            if (index >= 0) entries[index] = entry;
            else entries.Add(entry);
            planned.Add(entry);
        }
        return (this with { Entries = entries }, planned);
    }

    /// <summary>
    /// Writes the manifest of the sweep in <paramref name="folder"/> (<c>manifest.json</c>, atomically) with the tasks of
    /// kind <paramref name="kind"/>, keeping the indices of an existing one; returns it with the tasks' entries in order.
    /// </summary>
    public static (SweepManifest Manifest, IReadOnlyList<ManifestEntry> Planned, string Path) WriteFor(string folder, string kind,
        IReadOnlyList<(string Name, string Folder, JsonObject Config)> tasks)
    {
        string full = System.IO.Path.GetFullPath(folder);
        string path = PathIn(full);
        var existing = File.Exists(path) ? Load(path) : new SweepManifest(full, []);
        var (manifest, planned) = (existing with { Folder = full }).With(kind, tasks);
        manifest.Save(path);
        return (manifest, planned, path);
    }

    /// <summary>
    /// Writes the comparison's manifest to <c>OUT/manifest.json</c> (atomically), keeping the indices of an existing one,
    /// and returns it with the entries of the comparison's runs in plan order.
    /// </summary>
    public static (SweepManifest Manifest, IReadOnlyList<ManifestEntry> Planned, string Path) WriteFor(ComparisonOptions options) =>
        WriteFor(options.OutputFolder, TrainKind, [.. options.Plan().Select(run => (run.Name, run.Folder, JsonNode.Parse(run.Config.ToJson())!.AsObject()))]);

    public void Save(string path) => AtomicFile.WriteAllText(path, ToJson());

    public string ToJson()
    {
        var entries = new JsonArray();
        foreach (var entry in Entries)
            entries.Add(new JsonObject
            {
                ["index"] = entry.Index,
                ["kind"] = entry.Kind,
                ["name"] = entry.Name,
                ["folder"] = entry.Folder,
                ["config"] = entry.Config.DeepClone(),
            });
        var root = new JsonObject
        {
            ["format"] = Format,
            ["version"] = Version,
            ["folder"] = Folder,
            ["entries"] = entries,
        };
        return root.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n";
    }

    /// <summary>Reads a manifest; every problem is an error naming the file (and the entry) and what was expected.</summary>
    public static SweepManifest Load(string path)
    {
        string full = System.IO.Path.GetFullPath(path);
        if (!File.Exists(full))
            throw new ArgumentException($"--manifest {full} not found: expected the manifest.json that 'ddvi compare' or 'ddvi ancestry' writes into its --out folder.");
        JsonObject root;
        try
        {
            root = JsonNode.Parse(File.ReadAllText(full)) as JsonObject ?? throw new InvalidDataException($"{full}: not a JSON object.");
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{full}: not a valid sweep manifest ({e.Message}).", e);
        }
        if (root["format"]?.GetValueKind() != JsonValueKind.String || root["format"]!.GetValue<string>() != Format)
            throw new InvalidDataException($"{full}: not a sweep manifest (expected \"format\": \"{Format}\").");
        int version = Read(() => root["version"]!.GetValue<int>(), full, "version");
        if (version != Version)
            throw new InvalidDataException($"{full}: manifest version {version} is not supported by this ddvi (it reads version {Version}).");
        string folder = Read(() => root["folder"]!.GetValue<string>(), full, "folder");
        var items = root["entries"] as JsonArray ?? throw new InvalidDataException($"{full}: \"entries\" must be a list.");
        var entries = new List<ManifestEntry>();
        foreach (var (position, item) in items.Index())
        {
            string where = $"entry {position}";
            if (item is not JsonObject e) throw new InvalidDataException($"{full}: {where} is not an object.");
            int index = Read(() => e["index"]!.GetValue<int>(), full, $"{where}: index");
            if (index != position)
                throw new InvalidDataException($"{full}: {where} has index {index}; entries must be listed in index order 0, 1, 2, …");
            entries.Add(new ManifestEntry(index,
                Read(() => e["kind"]!.GetValue<string>(), full, $"{where}: kind"),
                Read(() => e["name"]!.GetValue<string>(), full, $"{where}: name"),
                Read(() => e["folder"]!.GetValue<string>(), full, $"{where}: folder"),
                e["config"] as JsonObject is { } config ? config.DeepClone().AsObject() : throw new InvalidDataException($"{full}: {where}: \"config\" must be an object.")));
        }
        return new SweepManifest(folder, entries);
    }

    private static T Read<T>(Func<T> read, string file, string key)
    {
        try
        {
            return read();
        }
        catch (Exception e) when (e is NullReferenceException or InvalidOperationException or FormatException)
        {
            throw new InvalidDataException($"{file}: \"{key}\" is missing or of the wrong type.", e);
        }
    }

    private static bool SameFolder(string a, string b) =>
        string.Equals(System.IO.Path.GetFullPath(a).TrimEnd('/'), System.IO.Path.GetFullPath(b).TrimEnd('/'), StringComparison.Ordinal);
}
