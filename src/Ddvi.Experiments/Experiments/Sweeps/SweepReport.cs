using Ddvi.Experiments.Comparison;

namespace Ddvi.Experiments.Sweeps;

/// <summary>A sweep's entries as they stand, and the result files written from its finished runs (null when none finished).</summary>
public sealed record SweepReportOutcome(IReadOnlyList<EntryStatus> Entries, ReportFiles? Files)
{
    public bool Complete => Entries.All(e => e.State == EntryState.Finished);
}

/// <summary>Collects the finished runs of a sweep into the comparison tables and names the ones that are missing or failed.</summary>
public static class SweepReport
{
    /// <summary>
    /// Writes results.md, results.csv and panel.png into <paramref name="outputFolder"/> from the finished entries among
    /// <paramref name="entries"/> (all of the manifest's when null). A finished run whose files cannot be read counts as failed.
    /// </summary>
    public static SweepReportOutcome Write(SweepManifest manifest, string outputFolder, IReadOnlyList<ManifestEntry>? entries = null)
    {
        var statuses = (entries ?? manifest.Entries).Select(SweepStatus.Of).ToList();
        var results = new List<RunResult>();
        for (int i = 0; i < statuses.Count; i++)
        {
            if (statuses[i].State != EntryState.Finished || statuses[i].Entry.Kind != SweepManifest.TrainKind) continue;
            try
            {
                results.Add(RunResult.Load(statuses[i].Entry.Folder));
            }
            catch (Exception e) when (e is IOException or InvalidDataException or ArgumentException)
            {
                statuses[i] = statuses[i] with { State = EntryState.Failed, Detail = e.Message };
            }
        }
        var files = results.Count > 0 ? ComparisonReport.Write(results, outputFolder) : null;
        return new SweepReportOutcome(statuses, files);
    }
}

/// <summary>Follows a submitted job array until no task of it is left in the queue, reporting progress as it changes.</summary>
public static class SlurmWait
{
    /// <summary>
    /// Polls squeue every <paramref name="interval"/> and the run folders of <paramref name="entries"/>; calls
    /// <paramref name="progress"/> with a line whenever the counts change ("job 12: 1 finished, 0 failed; 2 running, 1 pending").
    /// Returns when the array has left the queue (or on <paramref name="stop"/>, which leaves the array running).
    /// </summary>
    public static void Until(SlurmCommands slurm, string jobId, IReadOnlyList<ManifestEntry> entries, TimeSpan interval, Action<string> progress,
        CancellationToken stop = default)
    {
        string? last = null;
        while (true)
        {
            var queue = slurm.Queue(jobId);
            var statuses = entries.Select(SweepStatus.Of).ToList();
            string line = $"job {jobId}: {statuses.Count(s => s.State == EntryState.Finished)} of {statuses.Count} finished, " +
                          $"{statuses.Count(s => s.State == EntryState.Failed)} failed; {queue.Running} running, {queue.Pending} pending" +
                          (queue.Other > 0 ? $", {queue.Other} in other states" : "");
            if (line != last) progress(line);
            last = line;
            if (queue.InQueue == 0) return;
            if (stop.WaitHandle.WaitOne(interval)) return;
        }
    }
}
