using System.CommandLine;
using System.Globalization;
using Ddvi.Experiments.Comparison;
using Ddvi.Experiments.Sweeps;
using Ddvi.Runtime;

namespace Ddvi.Cli.Commands;

/// <summary>
/// The launcher options of a sweep command (<c>ddvi compare</c>, <c>ddvi ancestry</c>): <c>--launcher local|slurm</c>,
/// <c>--dry-run</c> and the Slurm-only <c>--wait</c>, <c>--partition</c>, <c>--time</c>, <c>--cpus-per-task</c>,
/// <c>--mem</c>, <c>--gpus-per-task</c>, <c>--sbatch</c>; their checks; and the submission of a written manifest as one
/// job array (<see cref="SubmitToSlurm"/>). <c>--jobs</c> stays with each command, whose meaning of it differs.
/// </summary>
internal sealed class SweepLauncherOptions
{
    public Option<string> Launcher { get; } = new Option<string>("--launcher")
    {
        Description = "Where the runs run: local (this machine, --jobs at a time) or slurm (one Slurm job array over the sweep's manifest, " +
                      "submitted with sbatch; OUT must be on a file system the nodes share)",
        DefaultValueFactory = _ => "local",
    }.AcceptOnlyFromAmong("local", "slurm");

    public Option<bool> DryRun { get; } = new("--dry-run")
    {
        Description = $"Only write the sweep's manifest (OUT/{SweepManifest.FileName}; with --launcher slurm also the batch script OUT/{SlurmScript.FileName}); run and submit nothing",
    };

    public Option<bool> Wait { get; } = new("--wait") { Description = "--launcher slurm: follow the job array (squeue) with a progress line until it ends, then write the report" };
    public Option<string?> Partition { get; } = new("--partition") { Description = "--launcher slurm: partition of the array's tasks" };
    public Option<string?> Time { get; } = new("--time") { Description = "--launcher slurm: time limit of each task (MINUTES, HH:MM:SS or DAYS-HH:MM)" };
    public Option<int?> CpusPerTask { get; } = new("--cpus-per-task") { Description = "--launcher slurm: CPUs of each task; each run then uses that many libtorch threads unless --threads says otherwise" };
    public Option<string?> Memory { get; } = new("--mem") { Description = "--launcher slurm: memory of each task (e.g. 8G)" };
    public Option<int?> GpusPerTask { get; } = new("--gpus-per-task") { Description = "--launcher slurm: GPUs of each task (with --device cuda)" };

    public Option<string[]> Sbatch { get; } = new("--sbatch")
    {
        Description = "--launcher slurm: a further #SBATCH option for the script, e.g. --sbatch=--qos=low (repeat for more)",
        DefaultValueFactory = _ => [],
    };

    /// <summary>Every option, to add to a command.</summary>
    public IEnumerable<Option> All => [Launcher, DryRun, Wait, Partition, Time, CpusPerTask, Memory, GpusPerTask, Sbatch];

    private IEnumerable<Option> SlurmOnly => [Wait, Partition, Time, CpusPerTask, Memory, GpusPerTask, Sbatch];

    public void AddTo(Command command)
    {
        foreach (var option in All) command.Options.Add(option);
    }

    /// <summary>
    /// Whether the sweep goes to Slurm; a Slurm-only option given with the local launcher is a usage error naming it.
    /// </summary>
    public bool IsSlurm(ParseResult parse)
    {
        bool slurm = parse.GetValue(Launcher) == "slurm";
        if (!slurm && SlurmOnly.FirstOrDefault(o => parse.GetResult(o) is { Implicit: false }) is { } misplaced)
            throw new ArgumentException($"{misplaced.Name} applies to --launcher slurm only; add --launcher slurm or leave {misplaced.Name} out.");
        return slurm;
    }

    /// <summary>The array's resources from the options, checked; <paramref name="throttle"/> tasks at most run at once.</summary>
    public SlurmOptions Slurm(ParseResult parse, int throttle) => new SlurmOptions
    {
        Throttle = throttle,
        Partition = parse.GetValue(Partition),
        TimeLimit = parse.GetValue(Time),
        CpusPerTask = parse.GetValue(CpusPerTask),
        Memory = parse.GetValue(Memory),
        GpusPerTask = parse.GetValue(GpusPerTask),
        ExtraDirectives = parse.GetValue(Sbatch) ?? [],
    }.Validate();

    /// <summary>
    /// Before anything is written: the Slurm commands, checked to exist unless this is a dry run (a machine without Slurm
    /// learns which command it lacks).
    /// </summary>
    public SlurmCommands RequireSlurm(ParseResult parse)
    {
        var commands = new SlurmCommands();
        if (!parse.GetValue(DryRun))
        {
            commands.Require("sbatch");
            if (parse.GetValue(Wait)) commands.Require("squeue");
        }
        return commands;
    }

    /// <summary>
    /// Writes the batch script over the <paramref name="planned"/> entries of a written manifest and, unless a dry run,
    /// submits it; with <c>--wait</c> follows the array until it ends and prints the sweep's report. Returns the exit code.
    /// </summary>
    /// <param name="commandName">The sweep command, named in the script's header.</param>
    public int SubmitToSlurm(ParseResult parse, SlurmCommands commands, string sweepFolder, SweepManifest manifest, string manifestPath,
        IReadOnlyList<ManifestEntry> planned, SlurmOptions slurmOptions, string commandName, StopSignals signals)
    {
        string folder = Path.GetFullPath(sweepFolder);
        var ddvi = DdviProcessLauncher.ForCurrentProcess();
        string script = SlurmScript.Write(folder,
            SlurmScript.Build(manifestPath, folder, [.. planned.Select(e => e.Index)], slurmOptions, [ddvi.FileName, .. ddvi.LeadingArguments], commandName));
        Console.WriteLine($"manifest: {manifestPath} ({planned.Count} runs)");
        Console.WriteLine($"script:   {script}");
        if (parse.GetValue(DryRun))
        {
            Console.WriteLine($"dry run: nothing submitted; submit with: sbatch {script}");
            return 0;
        }
        string job = commands.Submit(script);
        Console.WriteLine($"submitted job array {job}: {planned.Count} tasks, at most {slurmOptions.Throttle} at a time; " +
                          $"task logs in {Path.Combine(folder, "slurm")}; collect the results with: ddvi report {folder}");
        if (!parse.GetValue(Wait)) return 0;

        var interval = TimeSpan.FromSeconds(double.TryParse(Environment.GetEnvironmentVariable("DDVI_SLURM_POLL_SECONDS"),
            CultureInfo.InvariantCulture, out double seconds) && seconds > 0 ? seconds : 10);
        SlurmWait.Until(commands, job, planned, interval, Console.WriteLine, signals.Token);
        if (signals.Received is { } signal)
        {
            Console.Error.WriteLine($"stopped following job {job}; it keeps running (scancel {job} stops it); collect the results later with: ddvi report {folder}");
            return StopSignals.ExitCode(signal);
        }
        var report = SweepReport.Write(manifest, folder, planned);
        // Slurm's word on the tasks that did not finish (time limit, memory, cancelled), where it keeps accounting.
        if (!report.Complete && commands.Accounting(job) is { } ended)
            foreach (var entry in report.Entries.Where(e => e.State != EntryState.Finished && ended.ContainsKey(e.Entry.Index)))
                Console.Error.WriteLine($"slurm: task {job}_{entry.Entry.Index} ({entry.Entry.Name}) ended {ended[entry.Entry.Index]}; its log: {Path.Combine(folder, "slurm", $"{job}_{entry.Entry.Index}.out")}");
        return ReportCommand.Print(report, manifestPath);
    }
}
