using Ddvi.Experiments.Ancestry;
using Ddvi.Experiments.Comparison;

namespace Ddvi.Experiments.Sweeps;

/// <summary>
/// A sweep's entries as they stand, and the result files written from its finished runs: a comparison's tables and panel
/// (<see cref="Files"/>), or an ancestry study's tables; <see cref="Written"/> lists them (empty when none finished).
/// </summary>
public sealed record SweepReportOutcome(IReadOnlyList<EntryStatus> Entries, ReportFiles? Files, IReadOnlyList<string>? Written = null)
{
    public bool Complete => Entries.All(e => e.State == EntryState.Finished);

    public IReadOnlyList<string> Written { get; init; } = Written ?? (Files is { } files ? [files.Markdown, files.Csv, files.Panel] : []);
}

/// <summary>Collects the finished runs of a sweep into its tables and names the ones that are missing or failed.</summary>
public static class SweepReport
{
    /// <summary>
    /// Writes the sweep's tables into <paramref name="outputFolder"/> from the finished entries among
    /// <paramref name="entries"/> (all of the manifest's when null): results.md, results.csv and panel.png of the train
    /// entries, or, for an ancestry study, results.md and results.csv of its ancestry entries (the unfinished ones named
    /// below the tables). A finished run whose files cannot be read counts as failed.
    /// </summary>
    public static SweepReportOutcome Write(SweepManifest manifest, string outputFolder, IReadOnlyList<ManifestEntry>? entries = null)
    {
        var statuses = (entries ?? manifest.Entries).Select(SweepStatus.Of).ToList();
        var ancestry = statuses.Where(s => s.Entry.Kind == SweepManifest.AncestryKind).ToList();
        if (ancestry.Count > 0 && ancestry.Count == statuses.Count)
        {
            string manifestPath = SweepManifest.PathIn(manifest.Folder);
            try
            {
                return new SweepReportOutcome(statuses, null, AncestrySweep.Report(statuses, manifestPath, outputFolder));
            }
            catch (Exception e) when (e is IOException or InvalidDataException or ArgumentException or NullReferenceException or InvalidOperationException or FormatException)
            {
                // A scores.json that cannot be read: its entry and the others are named, nothing tabulated.
                var failed = statuses.Select(s => s.State == EntryState.Finished ? s with { State = EntryState.Failed, Detail = $"its results cannot be tabulated: {e.Message}" } : s).ToList();
                return new SweepReportOutcome(failed, null, []);
            }
        }
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
