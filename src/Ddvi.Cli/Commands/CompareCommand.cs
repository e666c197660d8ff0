using System.CommandLine;
using Ddvi.Experiments;
using Ddvi.Experiments.Comparison;
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
        var output = new Option<string>("--out") { Description = "Comparison folder: runs go to OUT/runs/MODEL-PRIOR-sSEED, tables to OUT/results.md and OUT/results.csv, the latent panel to OUT/panel.png", Required = true };
        var jobs = new Option<int>("--jobs") { Description = "Runs trained at the same time; above 1 each run is a child 'ddvi train' process", DefaultValueFactory = _ => 1 };
        var threads = new Option<int>("--threads") { Description = "libtorch CPU threads for all jobs together, divided among them (0 = libtorch's default; with --jobs, the cores divided among jobs)", DefaultValueFactory = _ => 0 };
        var priorDensity = CliOptions.PriorDensity();
        var device = CliOptions.Device();
        var dataDir = CliOptions.DataDirectory();
        var priorIterations = CliOptions.PriorDiffusionIterations();
        var warmupEpochs = CliOptions.WarmupEpochs();

        var command = new Command("compare",
            "Train several models on several priors and seeds (skipping finished runs, resuming unfinished ones), then write mean ± 95% t-interval tables and a latent panel figure")
        {
            dataset, models, priors, priorDensity, seeds, epochs, output, jobs, threads, device, dataDir, priorIterations, warmupEpochs,
        };
        command.SetAction(parse => CommandRunner.Run(signals =>
        {
            var options = new ComparisonOptions
            {
                BaseConfig = new ExperimentConfig
                {
                    Dataset = parse.GetValue(dataset)!,
                    Epochs = parse.GetValue(epochs),
                    PriorDensity = Enum.Parse<PriorDensityChoice>(parse.GetValue(priorDensity)!, ignoreCase: true),
                    Device = Enum.Parse<DeviceChoice>(parse.GetValue(device)!, ignoreCase: true),
                    DataDirectory = parse.GetValue(dataDir),
                    Ddvi = new DdviSettings
                    {
                        PriorDiffusionIterations = parse.GetValue(priorIterations),
                        WarmupEpochs = parse.GetValue(warmupEpochs),
                    },
                },
                Models = parse.GetValue(models) is { } m ? ComparisonOptions.ParseNames(m) : ComparisonOptions.DefaultModels,
                Priors = parse.GetValue(priors) is { } p ? ComparisonOptions.ParseNames(p) : ComparisonOptions.DefaultPriors,
                Seeds = parse.GetValue(seeds) is { } s ? ComparisonOptions.ParseSeeds(s) : ComparisonOptions.DefaultSeeds,
                OutputFolder = parse.GetValue(output)!,
                Jobs = parse.GetValue(jobs),
                Threads = parse.GetValue(threads),
            }.Validate();
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
        return command;
    }
}
