using System.CommandLine;
using Ddvi.Experiments.Comparison;
using Ddvi.Experiments.Sweeps;

namespace Ddvi.Cli.Commands;

/// <summary><c>ddvi report RUN_DIR...</c>: rebuilds the comparison tables and panel from finished runs' metrics.json files.</summary>
internal static class ReportCommand
{
    public static Command Create()
    {
        var folders = new Argument<string[]>("RUN_DIR")
        {
            Description = "Run folders (with metrics.json), or comparison folders whose runs/ subfolders are scanned; a sweep folder with manifest.json (of 'ddvi compare' or 'ddvi ancestry') lists every run that is missing or failed (exit code 1 until all finished)",
            Arity = ArgumentArity.OneOrMore,
        };
        var output = new Option<string?>("--out")
        {
            Description = "Folder for results.md, results.csv and panel.png; default: the comparison folder when exactly one is given",
        };
        var command = new Command("report", "Rebuild the comparison tables (mean ± 95% t-interval over seeds) and the latent panel from existing runs")
        {
            folders, output,
        };
        command.SetAction(parse => CommandRunner.Run(() =>
        {
            var paths = parse.GetValue(folders)!;
            // A sweep folder (with its manifest): every entry is accounted for, finished or not.
            if (paths.Length == 1 && File.Exists(SweepManifest.PathIn(paths[0])))
            {
                string manifestPath = SweepManifest.PathIn(paths[0]);
                var manifest = SweepManifest.Load(manifestPath);
                return Print(SweepReport.Write(manifest, parse.GetValue(output) ?? Path.GetFullPath(paths[0])), manifestPath);
            }
            string outputFolder = parse.GetValue(output)
                ?? (paths.Length == 1 && Directory.Exists(Path.Combine(paths[0], "runs"))
                    ? paths[0]
                    : throw new ArgumentException("--out is required unless exactly one comparison folder (with runs/) is given."));
            var discovery = RunResult.Discover(paths);
            foreach (var folder in discovery.Unfinished)
                Console.Error.WriteLine($"warning: {folder} has no metrics.json (unfinished or failed run): left out");
            foreach (var (folder, problem) in discovery.Malformed)
                Console.Error.WriteLine($"warning: {folder} cannot be read, left out: {problem}");
            if (discovery.Runs.Count == 0)
                throw new InvalidDataException($"no finished run could be read under {string.Join(", ", paths)}: nothing to report.");
            var files = ComparisonReport.Write(discovery.Runs, outputFolder);
            Console.WriteLine($"{discovery.Runs.Count} runs; results: {files.Markdown}, {files.Csv}, {files.Panel}");
            return 0;
        }));
        return command;
    }

    /// <summary>
    /// Prints a sweep's report: the result files, then each run that is missing, unfinished or failed (on stderr).
    /// Exit code 0 when every run finished, 1 otherwise (the tables then hold the finished ones).
    /// </summary>
    internal static int Print(SweepReportOutcome report, string manifestPath)
    {
        int finished = report.Entries.Count(e => e.State == EntryState.Finished);
        if (report.Written.Count > 0)
            Console.WriteLine($"{finished} of {report.Entries.Count} runs finished; results: {string.Join(", ", report.Written)}");
        foreach (var line in SweepStatus.Problems(report.Entries, manifestPath)) Console.Error.WriteLine(line);
        if (report.Complete) return 0;
        Console.Error.WriteLine($"error: {SweepStatus.Summary(report.Entries)}; " +
                                (report.Written.Count == 0 ? "no run finished: nothing to report." : "the tables hold the finished runs only."));
        return 1;
    }
}
