using System.CommandLine;
using Ddvi.Experiments;
using Ddvi.Runtime;

namespace Ddvi.Cli.Commands;

/// <summary><c>ddvi train</c>: trains a model, evaluates it and writes everything into one run folder.</summary>
internal static class TrainCommand
{
    public static Command Create()
    {
        var dataset = CliOptions.Dataset();
        var model = CliOptions.Model();
        var prior = CliOptions.Prior();
        var priorNoise = new Option<double?>("--prior-noise") { Description = "Swiss-roll noise (default 0; the release's less-noisy variant is 0.1) or square noise level (default 3, the paper's square; the release's plain square is 1)" };
        var priorKde = new Option<bool>("--prior-kde") { Description = "Use the release's kernel density estimate of log p(z) even where the exact density exists" };
        var epochs = new Option<int?>("--epochs") { Description = "Training epochs (default: the paper's, e.g. 200 for vae; 30 on the synthetic dataset)" };
        var batchSize = new Option<int>("--batch-size") { Description = "Mini-batch size", DefaultValueFactory = _ => 128 };
        var learningRate = new Option<double?>("--lr") { Description = "Adam learning rate (default: the model's, 1e-4)" };
        var seed = new Option<long>("--seed") { Description = "Random seed of everything in the run", DefaultValueFactory = _ => 0 };
        var output = new Option<string?>("--out") { Description = "Run folder (default runs/MODEL-DATASET-PRIOR-sSEED)" };
        var resume = new Option<bool>("--resume") { Description = "Continue the stopped run in --out from its last checkpoint, with its saved configuration" };
        var checkpointEvery = new Option<int>("--checkpoint-every") { Description = "Save a checkpoint every N epochs (and at the end)", DefaultValueFactory = _ => 5 };
        var device = CliOptions.Device();
        var threads = CliOptions.Threads();
        var dataDir = CliOptions.DataDirectory();

        var command = new Command("train", "Train a model, evaluate it and write config, log, checkpoints, metrics, latents and plots to a run folder")
        {
            dataset, model, prior, priorNoise, priorKde, epochs, batchSize, learningRate, seed, output, resume, checkpointEvery, device, threads, dataDir,
        };
        command.SetAction(parse => CommandRunner.Run(() =>
        {
            var config = new ExperimentConfig
            {
                Dataset = parse.GetValue(dataset)!,
                Model = parse.GetValue(model)!,
                Prior = parse.GetValue(prior)!,
                PriorNoise = parse.GetValue(priorNoise),
                PriorKde = parse.GetValue(priorKde),
                Epochs = parse.GetValue(epochs),
                BatchSize = parse.GetValue(batchSize),
                LearningRate = parse.GetValue(learningRate),
                Seed = parse.GetValue(seed),
                CheckpointEvery = parse.GetValue(checkpointEvery),
                Device = Enum.Parse<DeviceChoice>(parse.GetValue(device)!, ignoreCase: true),
                Threads = parse.GetValue(threads),
                DataDirectory = parse.GetValue(dataDir),
            };
            bool resuming = parse.GetValue(resume);
            string? folder = parse.GetValue(output);
            if (resuming && folder is null) throw new ArgumentException("--resume needs --out RUN_FOLDER: the run to continue");
            if (!resuming) config.Validate();
            folder ??= RunDirectory.DefaultFor(config);
            var report = ConsoleProgress.Run(observer => new ExperimentRunner(observer).Train(config, folder, resuming));
            Console.WriteLine($"run folder: {Path.GetFullPath(folder)}");
            return 0;
        }));
        return command;
    }
}
