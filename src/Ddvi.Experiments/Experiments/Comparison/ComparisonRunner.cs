using System.Text.Json.Nodes;
using Ddvi.Experiments.Sweeps;
using Ddvi.Runtime;
using Ddvi.Training;

namespace Ddvi.Experiments.Comparison;

/// <summary>What happened to one run of a comparison.</summary>
public enum RunStatus
{
    /// <summary>Finished earlier with the same configuration: its metrics were reused, nothing was trained.</summary>
    Reused,
    /// <summary>Trained from the start.</summary>
    Trained,
    /// <summary>Continued from its checkpoints.</summary>
    Resumed,
    /// <summary>Could not be trained or evaluated; <see cref="RunOutcome.Error"/> says why.</summary>
    Failed,
    /// <summary>Stopped on request (a signal) with a checkpoint, or not started because of one: the same command continues it.</summary>
    Stopped,
}

public sealed record RunOutcome(PlannedRun Run, RunStatus Status, string? Error = null);

/// <summary>Every run's outcome and the result files (null when no run finished).</summary>
public sealed record ComparisonOutcome(IReadOnlyList<RunOutcome> Runs, ReportFiles? Files)
{
    public bool Succeeded => Files is not null && Runs.All(r => r.Status is not RunStatus.Failed and not RunStatus.Stopped);

    /// <summary>Whether a stop request ended the comparison before every run finished.</summary>
    public bool Stopped => Runs.Any(r => r.Status == RunStatus.Stopped);
}

/// <summary>
/// Trains the runs of a comparison that are not finished yet and writes its result files. The sweep is first written
/// as a manifest (<c>OUT/manifest.json</c>, see <see cref="SweepManifest"/>); each entry then runs through
/// <see cref="SweepTasks"/>, the code a Slurm array task runs too: a run folder whose metrics.json exists and whose
/// config.json describes the same experiment is reused; one with config.json but no metrics is resumed from its
/// checkpoints; a folder holding another experiment is reported as failed and left untouched. Settings that do not
/// change what a run computes (threads, device, data folder, checkpoint interval) do not count as a different
/// experiment; the current ones are written into a resumed run's config.json.
/// With one job the runs train one after another in this process; with more, each entry is a child
/// <c>ddvi run --manifest OUT/manifest.json --index N</c> process (libtorch's state is process-wide), at most
/// <see cref="ComparisonOptions.Jobs"/> at a time. A failed run does not stop the others.
/// </summary>
public sealed class ComparisonRunner(ITrainingObserver observer, ITrainProcessLauncher? launcher = null)
{
    private readonly Lock _observerLock = new();

    /// <summary>
    /// Writes the comparison's manifest (<c>OUT/manifest.json</c>, keeping the indices of an existing one) and returns
    /// it with its path and the entries of this comparison's runs, in plan order. Holds the comparison folder meanwhile.
    /// </summary>
    public static (SweepManifest Manifest, IReadOnlyList<ManifestEntry> Planned, string Path) WriteManifest(ComparisonOptions options)
    {
        options.Validate();
        using var hold = RunLock.Acquire(options.OutputFolder);
        return SweepManifest.WriteFor(options);
    }

    /// <param name="stop">A stop request: runs in progress stop at a step with a checkpoint (in this process, or as
    /// child processes sent SIGTERM), no new run starts, and the tables are written from the runs finished so far.</param>
    public ComparisonOutcome Run(ComparisonOptions options, CancellationToken stop = default)
    {
        options.Validate();
        // One comparison per folder at a time; each run folder is held by whoever trains it (RunLock).
        using var hold = RunLock.Acquire(options.OutputFolder);
        var (_, entries, manifestPath) = SweepManifest.WriteFor(options);
        var plan = options.Plan();
        var outcomes = new RunOutcome?[plan.Count];
        var pending = new List<(int Position, ManifestEntry Entry, bool Resume)>();
        for (int i = 0; i < plan.Count; i++)
        {
            var state = SweepTasks.Inspect(plan[i]);
            switch (state.Kind)
            {
                case SweepTasks.StateKind.Finished:
                    outcomes[i] = new RunOutcome(plan[i], RunStatus.Reused);
                    break;
                case SweepTasks.StateKind.Conflict:
                    outcomes[i] = new RunOutcome(plan[i], RunStatus.Failed, state.Error);
                    Say($"{plan[i].Name}: {state.Error}");
                    break;
                default:
                    pending.Add((i, entries[i], state.Kind == SweepTasks.StateKind.Unfinished));
                    break;
            }
        }
        Say($"comparison of {plan.Count} runs in {Path.GetFullPath(options.OutputFolder)}: " +
            $"{outcomes.Count(o => o?.Status == RunStatus.Reused)} finished earlier (reused), " +
            $"{pending.Count(p => p.Resume)} to resume, {pending.Count(p => !p.Resume)} to train" +
            (options.Jobs > 1 ? $", {options.Jobs} at a time with {options.ThreadsPerRun} threads each" : ""));

        if (options.Jobs == 1) RunInProcess(pending, plan, outcomes, manifestPath, stop);
        else RunAsProcesses(pending, plan, outcomes, manifestPath, options.Jobs, stop);

        var results = new List<RunResult>();
        for (int i = 0; i < plan.Count; i++)
        {
            if (outcomes[i]!.Status is RunStatus.Failed or RunStatus.Stopped) continue;
            try
            {
                results.Add(RunResult.Load(plan[i].Folder));
            }
            catch (Exception e) when (e is IOException or InvalidDataException or ArgumentException)
            {
                outcomes[i] = new RunOutcome(plan[i], RunStatus.Failed, e.Message);
            }
        }
        foreach (var failed in outcomes.Where(o => o!.Status == RunStatus.Failed))
            Say($"FAILED {failed!.Run.Name}: {failed.Error}");
        if (outcomes.Any(o => o!.Status == RunStatus.Stopped))
            Say($"stopped on request: {outcomes.Count(o => o!.Status == RunStatus.Stopped)} run(s) not finished; the same command continues them");

        ReportFiles? files = null;
        if (results.Count > 0)
        {
            files = ComparisonReport.Write(results, options.OutputFolder);
            Say($"results: {files.Markdown}, {files.Csv}, {files.Panel}");
        }
        else
        {
            Say("no run finished: no results written");
        }
        return new ComparisonOutcome([.. outcomes.Select(o => o!)], files);
    }

    private void RunInProcess(List<(int Position, ManifestEntry Entry, bool Resume)> pending, IReadOnlyList<PlannedRun> plan, RunOutcome?[] outcomes,
        string manifestPath, CancellationToken stop)
    {
        var tasks = new SweepTasks(observer);
        foreach (var (position, (index, entry, resume)) in pending.Index())
        {
            var run = plan[index];
            if (stop.IsCancellationRequested)
            {
                outcomes[index] = new RunOutcome(run, RunStatus.Stopped, "not started: the comparison was stopped");
                continue;
            }
            Say($"[{position + 1}/{pending.Count}] {(resume ? "resuming" : "training")} {run.Name}");
            var outcome = tasks.Run(entry, manifestPath, stop);
            outcomes[index] = new RunOutcome(run, outcome.Status, outcome.Error);
            if (outcome.Status == RunStatus.Failed) Say($"{run.Name} failed: {outcome.Error}");
        }
    }

    private void RunAsProcesses(List<(int Position, ManifestEntry Entry, bool Resume)> pending, IReadOnlyList<PlannedRun> plan, RunOutcome?[] outcomes,
        string manifestPath, int jobs, CancellationToken stop)
    {
        var processes = launcher ?? DdviProcessLauncher.ForCurrentProcess();
        var parallel = new ParallelOptions { MaxDegreeOfParallelism = jobs };
        Parallel.ForEachAsync(pending, parallel, async (item, _) =>
        {
            var (index, entry, resume) = item;
            var run = plan[index];
            if (stop.IsCancellationRequested)
            {
                outcomes[index] = new RunOutcome(run, RunStatus.Stopped, "not started: the comparison was stopped");
                return;
            }
            try
            {
                // The child reads the whole configuration from the manifest, the file a Slurm array task reads.
                Say($"{(resume ? "resuming" : "training")} {run.Name} in a child process");
                string[] arguments = ["run", "--manifest", manifestPath, "--index", entry.Index.ToString(System.Globalization.CultureInfo.InvariantCulture)];
                var result = await processes.RunAsync(arguments, line => Say($"[{run.Name}] {line}"), stop).ConfigureAwait(false);
                bool finished = result.ExitCode == 0 && File.Exists(new RunDirectory(run.Folder).Metrics);
                outcomes[index] = finished
                    ? new RunOutcome(run, resume ? RunStatus.Resumed : RunStatus.Trained)
                    : stop.IsCancellationRequested
                        ? new RunOutcome(run, RunStatus.Stopped, $"stopped on request (exit code {result.ExitCode})")
                        : new RunOutcome(run, RunStatus.Failed, ChildError(result, run));
            }
            catch (Exception e)
            {
                outcomes[index] = new RunOutcome(run, RunStatus.Failed, e.Message);
            }
            if (outcomes[index]!.Status == RunStatus.Failed) Say($"{run.Name} failed: {outcomes[index]!.Error}");
        }).GetAwaiter().GetResult();
    }

    private static string ChildError(TrainProcessResult result, PlannedRun run)
    {
        var errors = result.ErrorLines.Where(l => l.StartsWith("error: ", StringComparison.Ordinal)).Select(l => l["error: ".Length..]).ToList();
        if (errors.Count == 0) errors = [.. result.ErrorLines.Where(l => l.Trim().Length > 0).Take(3)];
        string detail = errors.Count > 0 ? string.Join("; ", errors) : "no error message";
        string ending = result.ExitCode == 0 ? "exited with code 0 but wrote no metrics.json" : $"exit code {result.ExitCode}";
        return $"{detail} ({ending}; log: {new RunDirectory(run.Folder).Log})";
    }

    /// <summary>The config.json keys in which two configurations describe different experiments (execution settings aside).</summary>
    public static IReadOnlyList<string> Differences(ExperimentConfig existing, ExperimentConfig planned)
    {
        var a = JsonNode.Parse(WithoutExecutionSettings(existing).ToJson())!.AsObject();
        var b = JsonNode.Parse(WithoutExecutionSettings(planned).ToJson())!.AsObject();
        var keys = a.Select(p => p.Key).Union(b.Select(p => p.Key)).Where(key => !JsonNode.DeepEquals(a[key], b[key])).ToList();
        // Derived values (resolved_*) follow the settings they derive from; name them only when nothing else differs (changed model defaults).
        var settings = keys.Where(key => !key.StartsWith("resolved_", StringComparison.Ordinal)).ToList();
        return settings.Count > 0 ? settings : keys;
    }

    private static ExperimentConfig WithoutExecutionSettings(ExperimentConfig config) =>
        config with { Threads = 0, Device = DeviceChoice.Auto, DataDirectory = null, CheckpointEvery = 1 };

    private void Say(string text)
    {
        lock (_observerLock) observer.Message(text);
    }
}
