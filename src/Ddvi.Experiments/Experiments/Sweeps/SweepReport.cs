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
