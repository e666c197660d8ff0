using System.CommandLine;
using Ddvi.Experiments.Ancestry;
using Ddvi.Experiments.Comparison;
using Ddvi.Experiments.Sweeps;

namespace Ddvi.Cli.Commands;

/// <summary>
/// <c>ddvi run --manifest FILE --index N</c>: runs one entry of a sweep manifest, idempotently (see <see cref="SweepTasks"/>).
/// What a Slurm array task and a local <c>ddvi compare --jobs N</c> child run.
/// </summary>
internal static class RunCommand
{
    public static Command Create()
    {
        var manifest = new Option<string>("--manifest")
        {
            Description = $"Sweep manifest ({SweepManifest.FileName} in a 'ddvi compare' or 'ddvi ancestry' folder; written by them, also with --dry-run)",
            Required = true,
        };
        var index = new Option<int>("--index")
        {
            Description = "Index of the entry to run (0, 1, …; a Slurm array task passes $SLURM_ARRAY_TASK_ID)",
            Required = true,
        };
        var command = new Command("run",
            "Run one entry of a sweep manifest: a finished run is reported and left alone, an unfinished one resumes from its last checkpoint, a new one trains")
        {
            manifest, index,
        };
        command.SetAction(parse => CommandRunner.Run(signals =>
        {
            string path = Path.GetFullPath(parse.GetValue(manifest)!);
            var sweep = SweepManifest.Load(path);
            var entry = sweep.Entry(parse.GetValue(index), path);
            var outcome = ConsoleProgress.Run(observer =>
            {
                observer.Message($"entry {entry.Index} of {path}: {entry.Name} in {entry.Folder}");
                return new SweepTasks(observer) { EvaluationStarting = () => signals.Graceful = false }.Run(entry, path, signals.Token);
            });
            switch (outcome.Status)
            {
                case RunStatus.Reused:
                    Console.WriteLine($"finished earlier: {entry.Name} in {entry.Folder} has its {(entry.Kind == SweepManifest.AncestryKind ? AncestrySweep.ScoresFile : "metrics.json")}; nothing to do");
                    return 0;
                case RunStatus.Trained or RunStatus.Resumed:
                    Console.WriteLine($"{outcome.Status.ToString().ToLowerInvariant()}: {entry.Name}; run folder: {entry.Folder}");
                    return 0;
                case RunStatus.Stopped when signals.Received is { } signal:
                    StopSignals.ShowCursor();
                    Console.Error.WriteLine($"stopped: {outcome.Error}");
                    Console.Error.WriteLine($"the same command resumes it from its checkpoint: ddvi run --manifest {path} --index {entry.Index}");
                    return StopSignals.ExitCode(signal);
                default:
                    Console.Error.WriteLine($"error: {entry.Name}: {outcome.Error}");
                    return 1;
            }
        }));
        return command;
    }
}
