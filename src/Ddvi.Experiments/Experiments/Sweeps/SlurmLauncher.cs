using System.Diagnostics;
using System.Globalization;
using System.Text;
using Ddvi.IO;

namespace Ddvi.Experiments.Sweeps;

/// <summary>
/// How the Slurm job array of a sweep is requested. Every task runs one manifest entry with the resources here;
/// <see cref="Throttle"/> tasks at most run at once (<c>--array=…%P</c>). Null values leave Slurm's defaults.
/// </summary>
public sealed record SlurmOptions
{
    /// <summary>Tasks of the array running at the same time (the <c>%P</c> of <c>--array</c>); from <c>--jobs</c>.</summary>
    public int Throttle { get; init; } = 1;

    public string? Partition { get; init; }

    /// <summary>Time limit of each task, in a form sbatch takes (<c>MM</c>, <c>HH:MM:SS</c>, <c>D-HH:MM</c>, …).</summary>
    public string? TimeLimit { get; init; }

    public int? CpusPerTask { get; init; }

    /// <summary>Memory of each task, in a form sbatch takes (<c>4G</c>, <c>2000M</c>).</summary>
    public string? Memory { get; init; }

    public int? GpusPerTask { get; init; }

    /// <summary>Further <c>#SBATCH</c> lines, as given (<c>--qos=low</c> or <c>#SBATCH --qos=low</c>).</summary>
    public IReadOnlyList<string> ExtraDirectives { get; init; } = [];

    /// <summary>Checks every value; messages name the option and the form expected.</summary>
    public SlurmOptions Validate()
    {
        if (Throttle < 1) throw new ArgumentException($"--jobs must be ≥ 1 (array tasks running at the same time), got {Throttle}.");
        if (Partition is { } partition && (partition.Length == 0 || partition.Any(char.IsWhiteSpace)))
            throw new ArgumentException($"--partition '{partition}' is not a partition name (no spaces), e.g. --partition gpu.");
        if (TimeLimit is { } time && !System.Text.RegularExpressions.Regex.IsMatch(time, @"^(\d+-)?\d+(:\d+){0,2}$|^\d+-\d+$"))
            throw new ArgumentException($"--time '{time}' is not a Slurm time limit; expected MINUTES, HH:MM:SS or DAYS-HH[:MM[:SS]], e.g. --time 4:00:00.");
        if (CpusPerTask is < 1) throw new ArgumentException($"--cpus-per-task must be ≥ 1, got {CpusPerTask}.");
        if (Memory is { } memory && !System.Text.RegularExpressions.Regex.IsMatch(memory, @"^\d+[KMGT]?$", System.Text.RegularExpressions.RegexOptions.IgnoreCase))
            throw new ArgumentException($"--mem '{memory}' is not a Slurm memory size; expected a number with an optional unit K, M, G or T, e.g. --mem 8G.");
        if (GpusPerTask is < 0) throw new ArgumentException($"--gpus-per-task must be ≥ 0, got {GpusPerTask}.");
        foreach (var line in ExtraDirectives)
            if (line.Contains('\n') || Directive(line).Length == 0 || !Directive(line).StartsWith('-'))
                throw new ArgumentException($"--sbatch '{line}' is not one sbatch option; expected e.g. --sbatch=--qos=low or --sbatch '--account=proj'.");
        return this;
    }

    /// <summary>An extra line without its <c>#SBATCH</c> prefix.</summary>
    internal static string Directive(string line)
    {
        string text = line.Trim();
        return text.StartsWith("#SBATCH", StringComparison.Ordinal) ? text["#SBATCH".Length..].Trim() : text;
    }
}

/// <summary>
/// The batch script of a sweep's job array: one task per manifest entry, each running
/// <c>ddvi run --manifest MANIFEST --index $SLURM_ARRAY_TASK_ID</c>. Tasks are requeueable (<c>--requeue</c>): after a
/// preemption or a node failure Slurm starts the task again and <c>ddvi run</c> resumes the run from its last checkpoint.
/// On preemption Slurm sends SIGTERM first; the run stops at its next step with a checkpoint.
/// </summary>
public static class SlurmScript
{
    public const string FileName = "sweep.sbatch";

    /// <summary>The array's indices for sbatch: ranges and single indices, <c>0-3</c> for a fresh manifest of four entries.</summary>
    public static string ArrayIndices(IReadOnlyList<int> indices)
    {
        var sorted = indices.Distinct().Order().ToList();
        var parts = new List<string>();
        for (int i = 0; i < sorted.Count;)
        {
            int j = i;
            while (j + 1 < sorted.Count && sorted[j + 1] == sorted[j] + 1) j++;
            parts.Add(i == j ? sorted[i].ToString(CultureInfo.InvariantCulture) : string.Create(CultureInfo.InvariantCulture, $"{sorted[i]}-{sorted[j]}"));
            i = j + 1;
        }
        return string.Join(',', parts);
    }

    /// <summary>
    /// The script's text. <paramref name="ddvi"/> is how a node starts ddvi (an executable, or the dotnet host and the
    /// assembly); it must be reachable on the nodes, as must the manifest and the run folders (a shared file system).
    /// <paramref name="command"/> is the sweep command that wrote it (<c>compare</c>, <c>ancestry</c>), named in its header.
    /// </summary>
    public static string Build(string manifestPath, string sweepFolder, IReadOnlyList<int> indices, SlurmOptions options, IReadOnlyList<string> ddvi,
        string command = "compare")
    {
        string logs = Path.Combine(sweepFolder, "slurm");
        var text = new StringBuilder();
        text.Append("#!/bin/bash\n");
        text.Append("# Written by 'ddvi ").Append(command).Append(" --launcher slurm': one array task per entry of the manifest below.\n");
        text.Append("# Submit with: sbatch ").Append(Quote(Path.Combine(sweepFolder, FileName))).Append('\n');
        Directive(text, $"--job-name=ddvi-{Path.GetFileName(sweepFolder.TrimEnd('/'))}");
        Directive(text, string.Create(CultureInfo.InvariantCulture, $"--array={ArrayIndices(indices)}%{options.Throttle}"));
        Directive(text, $"--output={Path.Combine(logs, "%A_%a.out")}");
        Directive(text, "--open-mode=append");
        Directive(text, "--requeue");
        // SIGTERM reaches ddvi itself (exec below); it stops at a step with a checkpoint before Slurm's KillWait ends.
        if (options.Partition is { } partition) Directive(text, $"--partition={partition}");
        if (options.TimeLimit is { } time) Directive(text, $"--time={time}");
        Directive(text, "--ntasks=1");
        if (options.CpusPerTask is int cpus) Directive(text, string.Create(CultureInfo.InvariantCulture, $"--cpus-per-task={cpus}"));
        if (options.Memory is { } memory) Directive(text, $"--mem={memory}");
        if (options.GpusPerTask is int gpus and > 0) Directive(text, string.Create(CultureInfo.InvariantCulture, $"--gpus-per-task={gpus}"));
        foreach (var line in options.ExtraDirectives) Directive(text, SlurmOptions.Directive(line));
        text.Append("set -euo pipefail\n");
        text.Append("echo \"ddvi sweep task ${SLURM_ARRAY_TASK_ID} of job ${SLURM_ARRAY_JOB_ID} on $(hostname), attempt ${SLURM_RESTART_COUNT:-0}\"\n");
        text.Append("exec ").Append(string.Join(' ', ddvi.Select(Quote)))
            .Append(" run --manifest ").Append(Quote(manifestPath)).Append(" --index \"$SLURM_ARRAY_TASK_ID\"\n");
        return text.ToString();
    }

    /// <summary>Writes the script (atomically, executable) into the sweep folder, with its log folder; returns its path.</summary>
    public static string Write(string sweepFolder, string script)
    {
        Directory.CreateDirectory(Path.Combine(sweepFolder, "slurm"));
        string path = Path.Combine(sweepFolder, FileName);
        AtomicFile.WriteAllText(path, script);
        if (!OperatingSystem.IsWindows())
            File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute | UnixFileMode.GroupRead | UnixFileMode.OtherRead);
        return path;
    }

    private static void Directive(StringBuilder text, string option) => text.Append("#SBATCH ").Append(option).Append('\n');

    /// <summary>Single-quotes a word for bash when it holds anything but safe characters.</summary>
    public static string Quote(string word) =>
        word.Length > 0 && word.All(c => char.IsAsciiLetterOrDigit(c) || "/._-+=:,@%".Contains(c))
            ? word
            : "'" + word.Replace("'", "'\\''") + "'";
}

/// <summary>A job array's tasks as squeue sees them: how many are pending and running (finished ones have left the queue).</summary>
public sealed record QueueState(int Pending, int Running, int Other)
{
    public int InQueue => Pending + Running + Other;
}

/// <summary>
/// The Slurm client commands a sweep uses: sbatch to submit the array, squeue to follow it, sacct (where accounting
/// is kept) to say how its tasks ended.
/// Each is looked up on PATH first, so a machine without Slurm gets an error naming the missing command.
/// </summary>
public sealed class SlurmCommands(string? searchPath = null)
{
    private readonly string? _path = searchPath ?? Environment.GetEnvironmentVariable("PATH");

    /// <summary>The full path of <paramref name="command"/> on PATH, or an error naming it.</summary>
    public string Require(string command)
    {
        foreach (var folder in (_path ?? "").Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries))
        {
            string candidate = Path.Combine(folder, command);
            if (File.Exists(candidate)) return candidate;
        }
        throw new InvalidOperationException(
            $"{command} not found on PATH: --launcher slurm needs the Slurm client commands (sbatch, squeue) on this machine, " +
            "a login node of the cluster. Use --dry-run to write the script and manifest only, or --launcher local to run on this machine.");
    }

    /// <summary>Submits <paramref name="script"/>; returns the job id sbatch prints.</summary>
    public string Submit(string script)
    {
        var (code, output, error) = Execute(Require("sbatch"), ["--parsable", script]);
        if (code != 0)
            throw new InvalidOperationException($"sbatch {script} failed (exit code {code}): {error.Trim()}{(output.Trim().Length > 0 ? " " + output.Trim() : "")}");
        string id = output.Trim().Split('\n')[^1].Split(';')[0].Trim();
        if (id.Length == 0 || !id.All(char.IsAsciiDigit))
            throw new InvalidOperationException($"sbatch {script} printed no job id (output: '{output.Trim()}').");
        return id;
    }

    /// <summary>The tasks of job <paramref name="jobId"/> still in the queue (squeue); none once the array has ended.</summary>
    public QueueState Queue(string jobId)
    {
        var (code, output, error) = Execute(Require("squeue"), ["--noheader", "--array", "--jobs", jobId, "--format=%i %T"]);
        if (code != 0)
        {
            // squeue reports a job that has left the queue as an invalid job id.
            if (error.Contains("Invalid job id", StringComparison.OrdinalIgnoreCase)) return new QueueState(0, 0, 0);
            throw new InvalidOperationException($"squeue --jobs {jobId} failed (exit code {code}): {error.Trim()}");
        }
        int pending = 0, running = 0, other = 0;
        foreach (var line in output.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            string state = line.Split(' ', StringSplitOptions.RemoveEmptyEntries).ElementAtOrDefault(1) ?? "";
            switch (state)
            {
                case "PENDING" or "REQUEUED" or "REQUEUE_HOLD" or "REQUEUE_FED" or "CONFIGURING":
                    pending++;
                    break;
                case "RUNNING" or "COMPLETING" or "STAGE_OUT" or "SIGNALING":
                    running++;
                    break;
                default:
                    other++;
                    break;
            }
        }
        return new QueueState(pending, running, other);
    }

    /// <summary>
    /// How Slurm's accounting (sacct) says each task of job <paramref name="jobId"/> ended, by array index (COMPLETED,
    /// FAILED, TIMEOUT, OUT_OF_MEMORY, CANCELLED, …); null where sacct is missing or accounting is disabled, as on
    /// clusters without a database: the run folders then tell the state alone.
    /// </summary>
    public IReadOnlyDictionary<int, string>? Accounting(string jobId)
    {
        string sacct;
        try
        {
            sacct = Require("sacct");
        }
        catch (InvalidOperationException)
        {
            return null;
        }
        var (code, output, _) = Execute(sacct, ["--jobs", jobId, "--array", "--allocations", "--noheader", "--parsable2", "--format=JobID,State"]);
        if (code != 0) return null;
        var states = new Dictionary<int, string>();
        foreach (var line in output.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var fields = line.Split('|');
            if (fields.Length < 2) continue;
            var id = fields[0].Split('_');
            if (id.Length == 2 && id[0] == jobId && int.TryParse(id[1], NumberStyles.None, CultureInfo.InvariantCulture, out int index))
                states[index] = fields[1].Split(' ')[0];
        }
        return states;
    }

    private static (int Code, string Output, string Error) Execute(string file, IReadOnlyList<string> arguments)
    {
        var start = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var argument in arguments) start.ArgumentList.Add(argument);
        using var process = Process.Start(start) ?? throw new InvalidOperationException($"could not start {file}");
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(TimeSpan.FromMinutes(2)))
        {
            process.Kill();
            throw new InvalidOperationException($"{file} {string.Join(' ', arguments)} did not answer in 2 minutes.");
        }
        return (process.ExitCode, output.Result, error.Result);
    }
}

/// <summary>Follows a submitted job array until no task of it is left in the queue, reporting progress as it changes.</summary>
public static class SlurmWait
{
    /// <summary>
    /// Polls squeue every <paramref name="interval"/> and the run folders of <paramref name="entries"/>; calls
    /// <paramref name="progress"/> with a line whenever the counts change ("job 12: 1 finished, 0 failed; 2 running, 1 pending").
    /// Returns when the array has left the queue (or on <paramref name="stop"/>, which leaves the array running); squeue
    /// failing five times in a row is an <see cref="InvalidOperationException"/>.
    /// </summary>
    public static void Until(SlurmCommands slurm, string jobId, IReadOnlyList<ManifestEntry> entries, TimeSpan interval, Action<string> progress,
        CancellationToken stop = default)
    {
        string? last = null;
        int failures = 0;
        while (true)
        {
            QueueState queue;
            try
            {
                queue = slurm.Queue(jobId);
                failures = 0;
            }
            catch (InvalidOperationException e) when (++failures < 5)
            {
                // A controller that restarts or is busy answers again shortly; five failures in a row end the wait.
                progress($"squeue did not answer ({e.Message}); trying again");
                if (stop.WaitHandle.WaitOne(interval)) return;
                continue;
            }
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
