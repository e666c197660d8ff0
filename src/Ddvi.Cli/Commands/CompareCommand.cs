using System.CommandLine;
using Ddvi.Experiments;
using Ddvi.Experiments.Comparison;
using Ddvi.Experiments.Files;
using Ddvi.Experiments.Sweeps;
using Ddvi.Priors;
using Ddvi.Runtime;

namespace Ddvi.Cli.Commands;

/// <summary><c>ddvi compare</c>: trains every model × prior × seed that is not finished yet and writes the comparison tables and panel.</summary>
internal static class CompareCommand
{
    public static Command Create()
    {
        var dataset = CliOptions.Dataset();
        var models = new Option<string?>("--models")
        {
            Description = $"Comma-separated models; default: all known models of the paper's comparison ({string.Join(",", ComparisonOptions.DefaultModels)}). Valid: {string.Join(", ", ModelCatalog.Names)}",
        };
        var priors = new Option<string?>("--priors")
        {
            Description = $"Comma-separated priors; default: {string.Join(",", ComparisonOptions.DefaultPriors)}. Valid: {string.Join(", ", PriorCatalog.Names)} (and {string.Join(", ", PriorCatalog.Aliases.Keys)})",
        };
        var seeds = new Option<string?>("--seeds") { Description = $"Comma-separated seeds (integers ≥ 0); default: {string.Join(",", ComparisonOptions.DefaultSeeds)}" };
        var epochs = new Option<int?>("--epochs") { Description = "Training epochs of every model (DDVI: of stage 3); default: each model's own (see ddvi train --help)" };
        var output = new Option<string?>("--out") { Description = "Comparison folder: runs go to OUT/runs/MODEL-PRIOR-sSEED, tables to OUT/results.md and OUT/results.csv, the latent panel to OUT/panel.png. Required unless the sweep file gives out" };
        var sweep = new Option<string?>("--sweep")
        {
            Description = "Sweep file (.yaml, .yml or .json): lists of models, priors and seeds, out, jobs, threads, and overrides (experiment-file keys for every run); " +
                          "options given here override it. See configs/README.md",
        };
        var jobs = new Option<int>("--jobs") { Description = "Runs trained at the same time; above 1 each run is a child 'ddvi run' process. With --launcher slurm: array tasks running at once (default: all)", DefaultValueFactory = _ => 1 };
        var threads = new Option<int>("--threads") { Description = "libtorch CPU threads for all jobs together, divided among them (0 = libtorch's default; with --jobs, the cores divided among jobs). With --launcher slurm: threads of each task (default: --cpus-per-task, else 1)", DefaultValueFactory = _ => 0 };
        var priorDensity = CliOptions.PriorDensity();
        var device = CliOptions.Device();
        var dataDir = CliOptions.DataDirectory();
        var priorIterations = CliOptions.PriorDiffusionIterations();
        var warmupEpochs = CliOptions.WarmupEpochs();

        var launcher = new Option<string>("--launcher")
        {
            Description = "Where the runs train: local (this machine, --jobs at a time) or slurm (one Slurm job array over the sweep's manifest, " +
                          "submitted with sbatch; OUT must be on a file system the nodes share)",
            DefaultValueFactory = _ => "local",
        }.AcceptOnlyFromAmong("local", "slurm");
        var dryRun = new Option<bool>("--dry-run")
        {
            Description = $"Only write the sweep's manifest (OUT/{SweepManifest.FileName}; with --launcher slurm also the batch script OUT/{SlurmScript.FileName}); train and submit nothing",
        };
        var wait = new Option<bool>("--wait") { Description = "--launcher slurm: follow the job array (squeue) with a progress line until it ends, then write the report" };
        var partition = new Option<string?>("--partition") { Description = "--launcher slurm: partition of the array's tasks" };
        var time = new Option<string?>("--time") { Description = "--launcher slurm: time limit of each task (MINUTES, HH:MM:SS or DAYS-HH:MM)" };
        var cpus = new Option<int?>("--cpus-per-task") { Description = "--launcher slurm: CPUs of each task; each run then uses that many libtorch threads unless --threads says otherwise" };
        var memory = new Option<string?>("--mem") { Description = "--launcher slurm: memory of each task (e.g. 8G)" };
        var gpus = new Option<int?>("--gpus-per-task") { Description = "--launcher slurm: GPUs of each task (with --device cuda)" };
        var sbatchLines = new Option<string[]>("--sbatch")
        {
            Description = "--launcher slurm: a further #SBATCH option for the script, e.g. --sbatch=--qos=low (repeat for more)",
            DefaultValueFactory = _ => [],
        };
        Option[] slurmOnly = [wait, partition, time, cpus, memory, gpus, sbatchLines];

        var command = new Command("compare",
            "Train several models on several priors and seeds (skipping finished runs, resuming unfinished ones), then write mean ± 95% t-interval tables and a latent panel figure")
        {
            sweep, dataset, models, priors, priorDensity, seeds, epochs, output, jobs, threads, device, dataDir, priorIterations, warmupEpochs,
            launcher, dryRun, wait, partition, time, cpus, memory, gpus, sbatchLines,
        };
        command.SetAction(parse => CommandRunner.Run(signals =>
        {
            bool slurm = parse.GetValue(launcher) == "slurm";
            if (!slurm && slurmOnly.FirstOrDefault(o => parse.GetResult(o) is { Implicit: false }) is { } misplaced)
                throw new ArgumentException($"{misplaced.Name} applies to --launcher slurm only; add --launcher slurm or leave {misplaced.Name} out.");
            var options = OptionsFrom(parse);
            if (slurm) return SubmitToSlurm(parse, options, signals);
            if (parse.GetValue(dryRun))
            {
                var (_, planned, path) = ComparisonRunner.WriteManifest(options);
                Console.WriteLine($"manifest: {path} ({planned.Count} runs; run one with: ddvi run --manifest {path} --index N)");
                return 0;
            }
            var outcome = ConsoleProgress.Run(observer => new ComparisonRunner(observer).Run(options, signals.Token));
            foreach (var run in outcome.Runs)
                Console.WriteLine($"{run.Status.ToString().ToLowerInvariant(),-8} {run.Run.Name}{(run.Error is null ? "" : $": {run.Error}")}");
            if (outcome.Files is { } files) Console.WriteLine($"results: {files.Markdown}");
            int failed = outcome.Runs.Count(r => r.Status == RunStatus.Failed);
            if (failed > 0) Console.Error.WriteLine($"error: {failed} of {outcome.Runs.Count} runs failed (listed above); the tables hold the others.");
            if (outcome.Stopped && signals.Received is { } signal)
            {
                StopSignals.ShowCursor();
                Console.Error.WriteLine($"stopped: run the same command again to continue the unfinished runs from their checkpoints");
                return StopSignals.ExitCode(signal);
            }
            return outcome.Succeeded ? 0 : 1;
        }));
        OptionsGetter.AddOrUpdate(command, new Func<ParseResult, ComparisonOptions>(OptionsFrom));
        return command;

        // --launcher slurm: the manifest and the batch script, then sbatch (and with --wait, squeue until the array ends).
        int SubmitToSlurm(ParseResult parse, ComparisonOptions options, StopSignals signals)
        {
            var slurmOptions = new SlurmOptions
            {
                Throttle = options.Jobs,
                Partition = parse.GetValue(partition),
                TimeLimit = parse.GetValue(time),
                CpusPerTask = parse.GetValue(cpus),
                Memory = parse.GetValue(memory),
                GpusPerTask = parse.GetValue(gpus),
                ExtraDirectives = parse.GetValue(sbatchLines) ?? [],
            }.Validate();
            bool dry = parse.GetValue(dryRun);
            var commands = new SlurmCommands();
            if (!dry)
            {
                // Before anything is written: a machine without Slurm learns which command it lacks.
                commands.Require("sbatch");
                if (parse.GetValue(wait)) commands.Require("squeue");
            }
            var (manifest, planned, manifestPath) = ComparisonRunner.WriteManifest(options);
            string folder = Path.GetFullPath(options.OutputFolder);
            var ddvi = DdviProcessLauncher.ForCurrentProcess();
            string script = SlurmScript.Write(folder,
                SlurmScript.Build(manifestPath, folder, [.. planned.Select(e => e.Index)], slurmOptions, [ddvi.FileName, .. ddvi.LeadingArguments]));
            Console.WriteLine($"manifest: {manifestPath} ({planned.Count} runs)");
            Console.WriteLine($"script:   {script}");
            if (dry)
            {
                Console.WriteLine($"dry run: nothing submitted; submit with: sbatch {script}");
                return 0;
            }
            string job = commands.Submit(script);
            Console.WriteLine($"submitted job array {job}: {planned.Count} tasks, at most {slurmOptions.Throttle} at a time; " +
                              $"task logs in {Path.Combine(folder, "slurm")}; collect the results with: ddvi report {folder}");
            if (!parse.GetValue(wait)) return 0;

            var interval = TimeSpan.FromSeconds(double.TryParse(Environment.GetEnvironmentVariable("DDVI_SLURM_POLL_SECONDS"),
                System.Globalization.CultureInfo.InvariantCulture, out double seconds) && seconds > 0 ? seconds : 10);
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

        // The sweep file's values, then the options given on the command line; defaults for what neither gives.
        ComparisonOptions OptionsFrom(ParseResult parse)
        {
            var file = parse.GetValue(sweep) is { } path ? SweepFile.Load(path) : null;
            bool Given(Option option) => parse.GetResult(option) is { Implicit: false };
            var flags = new ExperimentConfig
            {
                Dataset = parse.GetValue(dataset)!,
                Epochs = parse.GetValue(epochs),
                PriorDensity = Enum.Parse<PriorDensityChoice>(parse.GetValue(priorDensity)!, ignoreCase: true),
                Device = Enum.Parse<DeviceChoice>(parse.GetValue(device)!, ignoreCase: true),
                // Absolute, so that every task of the sweep (a child process or a Slurm task on another node) finds it.
                DataDirectory = parse.GetValue(dataDir) is { } data ? Path.GetFullPath(data) : null,
                Ddvi = new DdviSettings
                {
                    PriorDiffusionIterations = parse.GetValue(priorIterations),
                    WarmupEpochs = parse.GetValue(warmupEpochs),
                },
            };
            ExperimentConfig baseConfig = flags;
            if (file?.Overrides is { } overrides)
            {
                var values = System.Text.Json.Nodes.JsonNode.Parse(flags.ToJson())!.AsObject();
                (Option Option, string Key)[] keyed =
                [
                    (dataset, "dataset"), (epochs, "epochs"), (priorDensity, "prior_density"), (device, "device"), (dataDir, "data_directory"),
                    (priorIterations, "ddvi.prior_diffusion_iterations"), (warmupEpochs, "ddvi.warmup_epochs"),
                ];
                baseConfig = overrides.ToConfig(keyed.Where(k => Given(k.Option)).Select(k => (k.Key, Lookup(values, k.Key))));
            }
            var options = new ComparisonOptions
            {
                BaseConfig = baseConfig,
                Models = parse.GetValue(models) is { } m ? ComparisonOptions.ParseNames(m) : file?.Models ?? ComparisonOptions.DefaultModels,
                Priors = parse.GetValue(priors) is { } p ? ComparisonOptions.ParseNames(p) : file?.Priors ?? ComparisonOptions.DefaultPriors,
                Seeds = parse.GetValue(seeds) is { } s ? ComparisonOptions.ParseSeeds(s) : file?.Seeds ?? ComparisonOptions.DefaultSeeds,
                OutputFolder = parse.GetValue(output) ?? file?.Out ?? "",
                Jobs = Given(jobs) ? parse.GetValue(jobs) : file?.Jobs ?? parse.GetValue(jobs),
                Threads = Given(threads) ? parse.GetValue(threads) : file?.Threads ?? parse.GetValue(threads),
            };
            if (parse.GetValue(launcher) == "slurm")
            {
                // Each array task has its own CPUs: --threads (or the sweep file's threads) is per run, else the task's CPUs.
                options = options with
                {
                    Jobs = Given(jobs) || file?.Jobs is not null ? options.Jobs : Math.Max(1, options.Plan().Count),
                    ThreadsEachRun = Given(threads) || file?.Threads is not null ? options.Threads : parse.GetValue(cpus) ?? 1,
                };
            }
            try
            {
                return options.Validate();
            }
            catch (ArgumentException e) when (file is not null)
            {
                throw new ArgumentException($"{e.Message} (in the comparison from {file.Path} and the command line)", e);
            }
        }
    }

    /// <summary>The comparison each built compare command resolves from its options (for tests).</summary>
    internal static readonly System.Runtime.CompilerServices.ConditionalWeakTable<Command, Func<ParseResult, ComparisonOptions>> OptionsGetter = new();

    /// <summary>The comparison <c>ddvi compare ARGS</c> resolves, validated; a parse error is an <see cref="ArgumentException"/>.</summary>
    internal static ComparisonOptions OptionsFor(params string[] args)
    {
        var command = Create();
        var parse = command.Parse(args);
        if (parse.Errors.Count > 0) throw new ArgumentException(string.Join(" ", parse.Errors.Select(e => e.Message)));
        return OptionsGetter.TryGetValue(command, out var get) ? get(parse) : throw new InvalidOperationException("compare command not registered");
    }

    private static System.Text.Json.Nodes.JsonNode? Lookup(System.Text.Json.Nodes.JsonObject root, string key)
    {
        System.Text.Json.Nodes.JsonNode? node = root;
        foreach (var part in key.Split('.')) node = node?[part];
        return node?.DeepClone();
    }
}
