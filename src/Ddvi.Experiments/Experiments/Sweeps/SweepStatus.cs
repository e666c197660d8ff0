using System.Text.Json;
using System.Text.Json.Nodes;

namespace Ddvi.Experiments.Sweeps;

/// <summary>Where one entry of a sweep stands, read from its run folder.</summary>
public enum EntryState
{
    /// <summary>metrics.json exists.</summary>
    Finished,
    /// <summary>Its last attempt failed (failure.json says why) and it has not finished since.</summary>
    Failed,
    /// <summary>Started (config.json exists) but not finished: running now, or stopped with its checkpoints.</summary>
    Unfinished,
    /// <summary>Not started: its run folder has no config.json.</summary>
    Missing,
}

/// <summary>One entry's state, with the failure message when it failed.</summary>
public sealed record EntryStatus(ManifestEntry Entry, EntryState State, string? Detail = null);

/// <summary>The state of every entry of a sweep, from the run folders alone (what any node of a cluster can see).</summary>
public static class SweepStatus
{
    public static IReadOnlyList<EntryStatus> Of(SweepManifest manifest) => [.. manifest.Entries.Select(Of)];

    /// <summary>An entry's state: finished when its run wrote its result (metrics.json; an ancestry run's scores.json), started when it wrote config.json.</summary>
    public static EntryStatus Of(ManifestEntry entry)
    {
        var run = new RunDirectory(entry.Folder);
        string result = entry.Kind == SweepManifest.AncestryKind ? Path.Combine(run.Root, Ancestry.AncestrySweep.ScoresFile) : run.Metrics;
        if (File.Exists(result)) return new EntryStatus(entry, EntryState.Finished);
        string failure = SweepTasks.FailureFile(entry.Folder);
        if (File.Exists(failure)) return new EntryStatus(entry, EntryState.Failed, FailureMessage(failure));
        return File.Exists(run.Config) ? new EntryStatus(entry, EntryState.Unfinished) : new EntryStatus(entry, EntryState.Missing);
    }

    /// <summary>"2 finished, 1 failed, 1 unfinished, 0 not started (of 4)".</summary>
    public static string Summary(IReadOnlyList<EntryStatus> statuses) =>
        $"{Count(statuses, EntryState.Finished)} finished, {Count(statuses, EntryState.Failed)} failed, " +
        $"{Count(statuses, EntryState.Unfinished)} unfinished, {Count(statuses, EntryState.Missing)} not started (of {statuses.Count})";

    /// <summary>One line per entry that has not finished, saying what to do about it.</summary>
    public static IEnumerable<string> Problems(IReadOnlyList<EntryStatus> statuses, string manifestPath) =>
        statuses.Where(s => s.State != EntryState.Finished).Select(s => s.State switch
        {
            EntryState.Failed => $"failed      [{s.Entry.Index}] {s.Entry.Name}: {s.Detail}" +
                                 (s.Entry.Kind == SweepManifest.TrainKind ? $" (log: {new RunDirectory(s.Entry.Folder).Log})" : ""),
            EntryState.Unfinished => $"unfinished  [{s.Entry.Index}] {s.Entry.Name}: started, not finished; continue it with: ddvi run --manifest {manifestPath} --index {s.Entry.Index}",
            _ => $"missing     [{s.Entry.Index}] {s.Entry.Name}: not started; run it with: ddvi run --manifest {manifestPath} --index {s.Entry.Index}",
        });

    private static int Count(IReadOnlyList<EntryStatus> statuses, EntryState state) => statuses.Count(s => s.State == state);

    private static string FailureMessage(string file)
    {
        try
        {
            return JsonNode.Parse(File.ReadAllText(file))?["error"]?.GetValue<string>() ?? "no message recorded";
        }
        catch (Exception e) when (e is IOException or JsonException or InvalidOperationException)
        {
            return $"{file} cannot be read ({e.Message})";
        }
    }
}
