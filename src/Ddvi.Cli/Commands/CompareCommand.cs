using System.CommandLine;
using Ddvi.Experiments;
using Ddvi.Experiments.Comparison;
using Ddvi.Experiments.Files;
using Ddvi.Experiments.Sweeps;
using Ddvi.Models;
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
            Description = "Sweep file (.yaml, .yml or .json): lists of models, priors and seeds, out, jobs, threads, overrides (experiment-file keys for every run) and per_prior (keys for the runs of one prior); " +
                          "options given here override it. See configs/README.md",
        };
        var jobs = new Option<int>("--jobs") { Description = "Runs trained at the same time; above 1 each run is a child 'ddvi run' process. With --launcher slurm: array tasks running at once (default: all)", DefaultValueFactory = _ => 1 };
        var threads = new Option<int>("--threads") { Description = "libtorch CPU threads for all jobs together, divided among them (0 = libtorch's default; with --jobs, the cores divided among jobs). With --launcher slurm: threads of each task (default: --cpus-per-task, else 1)", DefaultValueFactory = _ => 0 };
        var priorDensity = CliOptions.PriorDensity();
        var device = CliOptions.Device();
        var dataDir = CliOptions.DataDirectory();
        var trainImages = CliOptions.TrainImages();
        var precision = CliOptions.Precision();
        var priorIterations = CliOptions.PriorDiffusionIterations();
        var warmupEpochs = CliOptions.WarmupEpochs();

        var launch = new SweepLauncherOptions();

        var command = new Command("compare",
            "Train several models on several priors and seeds (skipping finished runs, resuming unfinished ones), then write mean ± 95% t-interval tables and a latent panel figure")
        {
            sweep, dataset, trainImages, models, priors, priorDensity, seeds, epochs, output, jobs, threads, device, precision, dataDir, priorIterations, warmupEpochs,
        };
        launch.AddTo(command);
        command.SetAction(parse => CommandRunner.Run(signals =>
        {
            bool slurm = launch.IsSlurm(parse);
            var options = OptionsFrom(parse);
            if (slurm) return SubmitToSlurm(parse, options, signals);
            if (parse.GetValue(launch.DryRun))
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
            var slurmOptions = launch.Slurm(parse, options.Jobs);
            var commands = launch.RequireSlurm(parse);
            var (manifest, planned, manifestPath) = ComparisonRunner.WriteManifest(options);
            return launch.SubmitToSlurm(parse, commands, options.OutputFolder, manifest, manifestPath, planned, slurmOptions, "compare", signals);
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
                TrainImages = parse.GetValue(trainImages),
                PriorDensity = Enum.Parse<PriorDensityChoice>(parse.GetValue(priorDensity)!, ignoreCase: true),
                Device = Enum.Parse<DeviceChoice>(parse.GetValue(device)!, ignoreCase: true),
                Precision = NetworkPrecisions.Parse(parse.GetValue(precision)!),
                // Absolute, so that every task of the sweep (a child process or a Slurm task on another node) finds it.
                DataDirectory = parse.GetValue(dataDir) is { } data ? Path.GetFullPath(data) : null,
                Ddvi = new DdviSettings
                {
                    PriorDiffusionIterations = parse.GetValue(priorIterations),
                    WarmupEpochs = parse.GetValue(warmupEpochs),
                },
            };
            // The file's settings (overrides; per_prior on top of them for its priors), then the options given here.
            var values = System.Text.Json.Nodes.JsonNode.Parse(flags.ToJson())!.AsObject();
            (Option Option, string Key)[] keyed =
            [
                (dataset, "dataset"), (trainImages, "train_images"), (epochs, "epochs"), (priorDensity, "prior_density"), (device, "device"), (precision, "precision"), (dataDir, "data_directory"),
                (priorIterations, "ddvi.prior_diffusion_iterations"), (warmupEpochs, "ddvi.warmup_epochs"),
            ];
            var givenFlags = keyed.Where(k => Given(k.Option)).Select(k => (k.Key, Lookup(values, k.Key))).ToList();
            ExperimentConfig baseConfig = file?.Overrides is { } overrides ? overrides.ToConfig(givenFlags) : flags;
            var priorConfigs = new Dictionary<string, ExperimentConfig>(StringComparer.Ordinal);
            foreach (var (prior, settings) in file?.PerPrior ?? new Dictionary<string, ExperimentFile>())
                priorConfigs[prior] = (file!.Overrides?.Then(settings) ?? settings).ToConfig(givenFlags);
            var options = new ComparisonOptions
            {
                BaseConfig = baseConfig,
                PriorConfigs = priorConfigs,
                Models = parse.GetValue(models) is { } m ? ComparisonOptions.ParseNames(m) : file?.Models ?? ComparisonOptions.DefaultModels,
                Priors = parse.GetValue(priors) is { } p ? ComparisonOptions.ParseNames(p) : file?.Priors ?? ComparisonOptions.DefaultPriors,
                Seeds = parse.GetValue(seeds) is { } s ? ComparisonOptions.ParseSeeds(s) : file?.Seeds ?? ComparisonOptions.DefaultSeeds,
                OutputFolder = parse.GetValue(output) ?? file?.Out ?? "",
                Jobs = Given(jobs) ? parse.GetValue(jobs) : file?.Jobs ?? parse.GetValue(jobs),
                Threads = Given(threads) ? parse.GetValue(threads) : file?.Threads ?? parse.GetValue(threads),
            };
            if (parse.GetValue(launch.Launcher) == "slurm")
            {
                // Each array task has its own CPUs: --threads (or the sweep file's threads) is per run, else the task's CPUs.
                options = options with
                {
                    Jobs = Given(jobs) || file?.Jobs is not null ? options.Jobs : Math.Max(1, options.Plan().Count),
                    ThreadsEachRun = Given(threads) || file?.Threads is not null ? options.Threads : parse.GetValue(launch.CpusPerTask) ?? 1,
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
