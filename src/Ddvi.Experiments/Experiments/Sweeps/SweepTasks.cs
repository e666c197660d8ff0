using System.Globalization;
using System.Text.Json.Nodes;
using Ddvi.Experiments.Ancestry;
using Ddvi.Experiments.Comparison;
using Ddvi.IO;
using Ddvi.Training;

namespace Ddvi.Experiments.Sweeps;

/// <summary>
/// Runs one manifest entry to its end, idempotently: a finished run is reported and left alone, an unfinished one
/// resumes from its last checkpoint, a new one trains, and a folder holding another experiment is left untouched and
/// reported as failed. Whoever runs the entry — <c>ddvi run</c> in a Slurm array task or a local child process, or a
/// one-job <c>ddvi compare</c> in its own process — goes through here, so a task may be retried or preempted at any
/// point: nothing is lost (checkpoints) or done twice (metrics.json ends a run). The run folder is held
/// (<see cref="RunLock"/>) while it is written: a second task given the same folder says so and writes nothing.
/// A failure is recorded in the run folder's failure.json (see <see cref="SweepStatus"/>) until the run finishes.
/// </summary>
public sealed class SweepTasks(ITrainingObserver observer)
{
    /// <summary>Called when a run's evaluation starts (see <see cref="ExperimentRunner.EvaluationStarting"/>): a command
    /// makes a stop signal end evaluation at once, since evaluation writes no checkpoint to stop at.</summary>
    public Action? EvaluationStarting { get; init; }

    /// <summary>
    /// Runs <paramref name="entry"/> by its kind (a <see cref="SweepManifest.TrainKind"/> run here, an
    /// <see cref="SweepManifest.AncestryKind"/> run by <see cref="AncestrySweep"/>); the outcome says whether it was
    /// reused, trained, resumed, failed or stopped. An unknown kind is an error naming the entry.
    /// </summary>
    public EntryOutcome Run(ManifestEntry entry, string manifestPath, CancellationToken stop = default)
    {
        switch (entry.Kind)
        {
            case SweepManifest.TrainKind:
                var outcome = Train(new PlannedRun(entry.Name, entry.Folder, entry.TrainConfig(manifestPath)), stop);
                return new EntryOutcome(entry, outcome.Status, outcome.Error);
            case SweepManifest.AncestryKind:
                return AncestrySweep.RunTask(entry, manifestPath, observer, stop);
            default:
                throw new InvalidDataException($"{manifestPath}, entry {entry.Index} ({entry.Name}): kind '{entry.Kind}' is not known to this ddvi " +
                                               $"(known: {SweepManifest.TrainKind}, {SweepManifest.AncestryKind}).");
        }
    }

    /// <summary>Trains, resumes or reuses one planned run (see the class).</summary>
    public RunOutcome Train(PlannedRun run, CancellationToken stop = default)
    {
        var state = Inspect(run);
        if (state.Kind == StateKind.Finished)
        {
            ClearFailure(run.Folder);
            return new RunOutcome(run, RunStatus.Reused);
        }
        if (state.Kind == StateKind.Conflict) return new RunOutcome(run, RunStatus.Failed, state.Error);
        bool resume = state.Kind == StateKind.Unfinished;
        try
        {
            if (resume)
            {
                using (RunLock.Acquire(run.Folder)) UpdateExecutionSettings(run);
            }
            new ExperimentRunner(observer) { EvaluationStarting = EvaluationStarting }.Train(run.Config, run.Folder, resume, cancellationToken: stop);
            ClearFailure(run.Folder);
            return new RunOutcome(run, resume ? RunStatus.Resumed : RunStatus.Trained);
        }
        catch (OperationCanceledException e) when (stop.IsCancellationRequested)
        {
            return new RunOutcome(run, RunStatus.Stopped, e.Message);
        }
        catch (RunFolderInUseException e)
        {
            // Another task holds the folder: its run, not ours to mark as failed.
            return new RunOutcome(run, RunStatus.Failed, e.Message);
        }
        catch (Exception e)
        {
            // Any failure of one run (bad checkpoint, diverged loss, full disk) is reported; the others still run.
            RecordFailure(run.Folder, e.Message);
            return new RunOutcome(run, RunStatus.Failed, e.Message);
        }
    }

    public enum StateKind
    {
        New,
        Unfinished,
        Finished,
        Conflict,
    }

    public sealed record RunState(StateKind Kind, string? Error = null);

    /// <summary>What the run folder holds: nothing yet, an unfinished or finished run of this configuration, or another experiment.</summary>
    public static RunState Inspect(PlannedRun run)
    {
        var folder = new RunDirectory(run.Folder);
        if (!File.Exists(folder.Config))
            return File.Exists(folder.Metrics)
                ? new RunState(StateKind.Conflict, $"{folder.Metrics} exists without config.json: not a run of this sweep; delete {folder.Root} or choose another --out.")
                : new RunState(StateKind.New);
        ExperimentConfig existing;
        try
        {
            existing = ExperimentConfig.FromJson(File.ReadAllText(folder.Config), folder.Config);
        }
        catch (Exception e) when (e is InvalidDataException or ArgumentException)
        {
            return new RunState(StateKind.Conflict, e.Message);
        }
        var differences = ComparisonRunner.Differences(existing, run.Config);
        if (differences.Count > 0)
            return new RunState(StateKind.Conflict,
                $"{folder.Root} holds a run with another configuration (differs in {string.Join(", ", differences)}); delete it or choose another --out.");
        return new RunState(File.Exists(folder.Metrics) ? StateKind.Finished : StateKind.Unfinished);
    }

    /// <summary>
    /// A resumed run runs with this sweep's threads and device (<see cref="Inspect"/> has checked that nothing else
    /// differs): its config.json is rewritten when they differ, and the change appended to config-history.json, as
    /// <c>ddvi train --resume</c> does.
    /// </summary>
    private static void UpdateExecutionSettings(PlannedRun run)
    {
        var folder = new RunDirectory(run.Folder);
        var saved = ExperimentConfig.FromJson(File.ReadAllText(folder.Config), folder.Config);
        var changes = ResumeRequest.ChangedKeys(saved, run.Config, "the sweep resumed the run with its own execution settings").ToList();
        if (changes.Count > 0) ExperimentRunner.WriteConfig(folder, run.Config, changes);
    }

    /// <summary>failure.json in the run folder: why the last attempt failed, where and when.</summary>
    public static string FailureFile(string runFolder) => Path.Combine(Path.GetFullPath(runFolder), "failure.json");

    /// <summary>Records why the last attempt of the run in <paramref name="runFolder"/> failed (failure.json); the error is kept in the outcome when the folder cannot be written.</summary>
    internal static void RecordFailure(string runFolder, string error)
    {
        try
        {
            var record = new JsonObject
            {
                ["error"] = error,
                ["host"] = Environment.MachineName,
                ["time"] = DateTime.UtcNow.ToString("yyyy-MM-ddTHH:mm:ssZ", CultureInfo.InvariantCulture),
                ["slurm_job"] = Environment.GetEnvironmentVariable("SLURM_JOB_ID"),
            };
            AtomicFile.WriteAllText(FailureFile(runFolder), record.ToJsonString() + "\n");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // The outcome still carries the error; the folder may be what failed.
        }
    }

    /// <summary>Removes the failure.json of a run that has now finished.</summary>
    internal static void ClearFailure(string runFolder)
    {
        try
        {
            File.Delete(FailureFile(runFolder));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // A stale failure.json only matters while metrics.json is absent.
        }
    }
}

/// <summary>How running one manifest entry ended: reused, trained, resumed, failed or stopped, with the error when it did not finish.</summary>
public sealed record EntryOutcome(ManifestEntry Entry, RunStatus Status, string? Error = null);
