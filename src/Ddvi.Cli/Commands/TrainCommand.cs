using System.CommandLine;
using System.Text.Json.Nodes;
using Ddvi.Diffusion;
using Ddvi.Experiments;
using Ddvi.Experiments.Files;
using Ddvi.Models;
using Ddvi.Objectives;
using Ddvi.Priors;
using Ddvi.Runtime;
using Ddvi.Training;

namespace Ddvi.Cli.Commands;

/// <summary><c>ddvi train</c>: trains a model, evaluates it and writes everything into one run folder.</summary>
internal static class TrainCommand
{
    public static Command Create() => Build().Command;

    /// <summary>The names of the options of each built train command that map to config.json keys (for tests).</summary>
    internal static readonly System.Runtime.CompilerServices.ConditionalWeakTable<Command, (string Option, string Key)[]> KeyedOptions = new();

    /// <summary>The options of <c>ddvi train</c>, and which of them map to config.json keys (with the key).</summary>
    internal static (IReadOnlyList<string> All, IReadOnlyList<(string Option, string Key)> Keyed) OptionNames()
    {
        var command = Build().Command;
        return ([.. command.Options.Select(o => o.Name)], KeyedOptions.TryGetValue(command, out var keyed) ? keyed : []);
    }

    private static JsonNode? Lookup(JsonObject root, string key)
    {
        JsonNode? node = root;
        foreach (var part in key.Split('.')) node = node?[part];
        return node?.DeepClone();
    }

    /// <summary>
    /// The configuration <c>ddvi train ARGS</c> builds from its options, before validation (with <c>--resume</c> the run's
    /// saved config.json is used instead). A parse error is an <see cref="ArgumentException"/> with the parser's messages.
    /// </summary>
    internal static ExperimentConfig ConfigFor(params string[] args) => ResolveFor(args).Config;

    /// <summary>The configuration and the options given (flags, and the keys of a <c>--config</c> file) that
    /// <c>ddvi train ARGS</c> resolves, before validation.</summary>
    internal static (ExperimentConfig Config, IReadOnlyList<GivenOption> Given) ResolveFor(params string[] args)
    {
        var (command, configFrom) = Build();
        var parse = command.Parse(args);
        if (parse.Errors.Count > 0) throw new ArgumentException(string.Join(" ", parse.Errors.Select(e => e.Message)));
        var resolved = configFrom(parse);
        return (resolved.Config, resolved.Given);
    }

    /// <summary>What <c>ddvi train</c> builds from its options: the configuration and the options and file keys given.</summary>
    private sealed record Resolved(ExperimentConfig Config, IReadOnlyList<GivenOption> Given, ExperimentFile? File);

    private static (Command Command, Func<ParseResult, Resolved> ConfigFrom) Build()
    {
        var dataset = CliOptions.Dataset();
        var model = CliOptions.Model();
        var networks = CliOptions.Networks();
        var prior = CliOptions.Prior();
        var priorNoise = new Option<double?>("--prior-noise") { Description = "Swiss-roll noise (default 0; the release's less-noisy variant is 0.1) or square noise level (default 3, the paper's square; the release's plain square is 1)" };
        var priorDensity = CliOptions.PriorDensity();
        var epochs = new Option<int?>("--epochs")
        {
            Description = $"Training epochs of the model (DDVI: of stage 3). Default: the paper's ({ModelCatalog.Describe(m => m.PaperEpochs)}); " +
                          $"shorter on the synthetic dataset ({ModelCatalog.Describe(m => m.QuickEpochs)})",
        };
        var batchSize = new Option<int?>("--batch-size") { Description = $"Mini-batch size. Default: the model's ({ModelCatalog.Describe(m => m.BatchSize)})" };
        var learningRate = new Option<double?>("--lr")
        {
            Description = "Adam learning rate of the model's training: for DDVI, of stage 3 (its wake and sleep phases; stages 1 and 2 " +
                          "take --prior-diffusion-lr and --warmup-lr); for the other models, of their single stage. " +
                          $"Default: the model's ({ModelCatalog.Describe(m => m.LearningRate)})",
        };
        var labels = new Option<int?>("--labels")
        {
            Description = "Keep exactly N training labels, balanced over the classes and chosen by --seed (listed in the run folder's " +
                          "labelled-indices.csv); the rest are unlabelled. Default: 1,000 (MNIST format) or 10,000 (CIFAR-10) for the " +
                          "semi-supervised models, every label for the others. The release also ran 10, 50, 100, 250, 500 and 2,500",
            HelpName = "N",
        };
        var seed = new Option<long>("--seed") { Description = "Random seed of everything in the run", DefaultValueFactory = _ => 0 };
        var output = new Option<string?>("--out") { Description = "Run folder (default runs/MODEL-DATASET-PRIOR-sSEED)" };
        var resume = new Option<bool>("--resume") { Description = "Continue the stopped run in --out from its last checkpoint, with its saved configuration" };
        var forkFrom = new Option<string?>("--fork-from")
        {
            Description = "Start a new run in --out from the run RUN: its configuration with the options given here, reusing what RUN trained of the stages " +
                          "before the last (DDVI's prior diffusion and warm-up; ddvi-semi's too) and training the rest. Only options the last stage reads " +
                          "may differ (DDVI: --kl-weight, --prior-weight, --matching-weight, --sleep-steps, --frozen-decoder-epochs, --start-term, " +
                          "--aggregate-weight, --lr, --epochs), besides --device, --threads, --data-dir, --checkpoint-every and --tensorboard",
            HelpName = "RUN",
        };
        var configFile = new Option<string?>("--config")
        {
            Description = "Experiment file (.yaml, .yml or .json; a run's config.json is one) with any of these options as keys; options given " +
                          "on the command line override it. See configs/README.md",
        };
        var checkpointEvery = new Option<int>("--checkpoint-every") { Description = "Save a checkpoint every N epochs (and at the end)", DefaultValueFactory = _ => 5 };
        var device = CliOptions.Device();
        var threads = CliOptions.Threads();
        var dataDir = CliOptions.DataDirectory();
        var tensorBoard = new Option<string?>("--tensorboard")
        {
            Description = "Write TensorBoard event files into DIR/RUN_NAME: losses per logging interval and epoch, learning rates, latents, " +
                          "sample grids and encoder variances at each checkpoint, evaluation metrics (tensorboard --logdir DIR)",
            HelpName = "DIR",
            CustomParser = result => result.Tokens.Count == 0 ? null : Path.GetFullPath(result.Tokens[^1].Value),
        };

        var trainImages = CliOptions.TrainImages();
        var precision = CliOptions.Precision();

        // DDVI pipeline (arXiv:2401.02739; the authors' release); defaults are the release's.
        var priorIterations = CliOptions.PriorDiffusionIterations();
        var warmupEpochs = CliOptions.WarmupEpochs();
        var priorDiffusionLr = CliOptions.PriorDiffusionLearningRate();
        var warmupLr = CliOptions.WarmupLearningRate();
        var priorSteps = new Option<int>("--prior-steps") { Description = "DDVI: T of the prior (warm-up) chain", DefaultValueFactory = _ => 20 };
        var posteriorSteps = new Option<int>("--posterior-steps") { Description = "DDVI: T of the x-conditioned posterior chain", DefaultValueFactory = _ => 40 };
        var klWeight = new Option<double>("--kl-weight") { Description = "DDVI: β_KL of the wake loss", DefaultValueFactory = _ => 0.003 };
        var priorWeight = new Option<double>("--prior-weight") { Description = "DDVI: λ_z, weight of −log p(z) in the wake loss", DefaultValueFactory = _ => 1.0 };
        var matchingWeight = new Option<double>("--matching-weight") { Description = "DDVI: w, weight of the wake mean matching and the sleep loss", DefaultValueFactory = _ => 1.0 };
        var sleepSteps = new Option<int>("--sleep-steps") { Description = "DDVI: K sleep steps per wake step", DefaultValueFactory = _ => 3 };
        var frozenDecoder = new Option<int?>("--frozen-decoder-epochs") { Description = "DDVI: stage-3 epochs with the decoder fixed (default 30% of --epochs, the release's 30 of 100)" };
        var schedule = new Option<string>("--schedule") { Description = "DDVI: β schedule of the chains: linear (the release's) or cosine", DefaultValueFactory = _ => "linear" }.AcceptOnlyFromAmong("linear", "cosine");
        var startTerm = new Option<string>("--start-term") { Description = "DDVI stage 3: what the wake loss compares the chain's start y_T with: standard-normal (KL to N(0, I), the release's) or forward-marginal (r(y_T|z) = N(√ᾱ_T z, (1 − ᾱ_T) I), as the auxiliary-variable ELBO has it)", DefaultValueFactory = _ => "standard-normal" }.AcceptOnlyFromAmong("standard-normal", "forward-marginal");
        var aggregateWeight = new Option<double>("--aggregate-weight") { Description = "DDVI stage 3: λ_agg, weight of an MMD² between each wake batch's latents and as many prior draws (kernel widths 0.1-2), a term on the aggregate posterior that is not the release's (InfoVAE's MMD regulariser; docs/elbo.md); 0 = off, the release's", DefaultValueFactory = _ => 0.0 };
        var noiseLoss = new Option<string>("--noise-loss") { Description = "DDVI: noise-prediction loss: huber (the release's) or l2", DefaultValueFactory = _ => "huber" }.AcceptOnlyFromAmong("huber", "l2");

        var command = new Command("train", "Train a model, evaluate it and write config, log, checkpoints, metrics, latents and plots to a run folder")
        {
            configFile, dataset, trainImages, model, networks, prior, priorNoise, priorDensity, epochs, batchSize, learningRate, seed, labels, output, resume, forkFrom, checkpointEvery, device, threads, precision, dataDir, tensorBoard,
            priorIterations, warmupEpochs, priorDiffusionLr, warmupLr, priorSteps, posteriorSteps, klWeight, priorWeight, matchingWeight, sleepSteps, frozenDecoder, schedule, noiseLoss, startTerm, aggregateWeight,
        };
        ExperimentConfig FlagsConfig(ParseResult parse) => new()
        {
            Dataset = parse.GetValue(dataset)!,
            Model = parse.GetValue(model)!,
            Networks = Enum.Parse<NetworkChoice>(parse.GetValue(networks)!, ignoreCase: true),
            Prior = parse.GetValue(prior)!,
            PriorNoise = parse.GetValue(priorNoise),
            PriorDensity = Enum.Parse<PriorDensityChoice>(parse.GetValue(priorDensity)!, ignoreCase: true),
            Epochs = parse.GetValue(epochs),
            BatchSize = parse.GetValue(batchSize),
            LearningRate = parse.GetValue(learningRate),
            Seed = parse.GetValue(seed),
            Labels = parse.GetValue(labels),
            TrainImages = parse.GetValue(trainImages),
            CheckpointEvery = parse.GetValue(checkpointEvery),
            Device = Enum.Parse<DeviceChoice>(parse.GetValue(device)!, ignoreCase: true),
            Precision = NetworkPrecisions.Parse(parse.GetValue(precision)!),
            Threads = parse.GetValue(threads),
            DataDirectory = parse.GetValue(dataDir),
            TensorBoard = parse.GetValue(tensorBoard),
            Ddvi = new DdviSettings
            {
                PriorDiffusionIterations = parse.GetValue(priorIterations),
                WarmupEpochs = parse.GetValue(warmupEpochs),
                PriorDiffusionLearningRate = parse.GetValue(priorDiffusionLr),
                WarmupLearningRate = parse.GetValue(warmupLr),
                PriorSteps = parse.GetValue(priorSteps),
                PosteriorSteps = parse.GetValue(posteriorSteps),
                KlWeight = parse.GetValue(klWeight),
                PriorWeight = parse.GetValue(priorWeight),
                MatchingWeight = parse.GetValue(matchingWeight),
                SleepSteps = parse.GetValue(sleepSteps),
                FrozenDecoderEpochs = parse.GetValue(frozenDecoder),
                Schedule = Enum.Parse<NoiseScheduleKind>(parse.GetValue(schedule)!, ignoreCase: true),
                NoiseLoss = Enum.Parse<NoiseLossKind>(parse.GetValue(noiseLoss)!, ignoreCase: true),
                Start = Enum.Parse<StartTarget>(parse.GetValue(startTerm)!.Replace("-", ""), ignoreCase: true),
                AggregateWeight = parse.GetValue(aggregateWeight),
            },
        };
        // Every option that sets a config.json key, with its key: with --resume, those given are checked against the run's
        // own values (see ResumeRequest). A test checks that every option of the command is here or is --out/--resume.
        (Option Option, string Key)[] keyed =
        [
            (dataset, "dataset"), (model, "model"), (networks, "networks"), (prior, "prior"), (priorNoise, "prior_noise"), (priorDensity, "prior_density"),
            (epochs, ResumeRequest.EpochsKey), (batchSize, "batch_size"), (learningRate, "learning_rate"), (seed, "seed"), (labels, "labels"), (trainImages, "train_images"), (precision, "precision"),
            (checkpointEvery, "checkpoint_every"), (device, "device"), (threads, "threads"), (dataDir, "data_directory"), (tensorBoard, "tensorboard"),
            (priorIterations, "ddvi.prior_diffusion_iterations"), (warmupEpochs, "ddvi.warmup_epochs"),
            (priorDiffusionLr, "ddvi.prior_diffusion_learning_rate"), (warmupLr, "ddvi.warmup_learning_rate"),
            (priorSteps, "ddvi.prior_steps"), (posteriorSteps, "ddvi.posterior_steps"), (klWeight, "ddvi.kl_weight"),
            (priorWeight, "ddvi.prior_weight"), (matchingWeight, "ddvi.matching_weight"), (sleepSteps, "ddvi.sleep_steps"),
            (frozenDecoder, "ddvi.frozen_decoder_epochs"), (schedule, "ddvi.schedule"), (noiseLoss, "ddvi.noise_loss"), (startTerm, "ddvi.start"),
            (aggregateWeight, "ddvi.aggregate_weight"),
        ];
        KeyedOptions.AddOrUpdate(command, [.. keyed.Select(k => (k.Option.Name, k.Key))]);

        // The options given on the command line override the experiment file's keys, which override the defaults. With
        // --resume, a key the file sets counts as an option given (ResumeRequest checks it against the run's own value).
        Resolved ConfigFrom(ParseResult parse)
        {
            var flags = FlagsConfig(parse);
            var flagValues = JsonNode.Parse(flags.ToJson())!.AsObject();
            var explicitFlags = keyed.Where(k => parse.GetResult(k.Option) is { Implicit: false })
                .Select(k => new GivenOption(k.Option.Name, k.Key, Lookup(flagValues, k.Key))).ToList();
            if (parse.GetValue(configFile) is not { } path) return new Resolved(flags, explicitFlags, null);
            var file = ExperimentFile.Load(path);
            var config = file.ToConfig(explicitFlags.Select(g => (g.Key, g.Value)));
            var merged = JsonNode.Parse(config.ToJson())!.AsObject();
            var fromFile = file.Keys.Where(k => explicitFlags.All(g => g.Key != k.Key))
                .Select(k => new GivenOption($"{k.Written} (line {k.Line} of {path})", k.Key, Lookup(merged, k.Key)));
            return new Resolved(config, [.. explicitFlags, .. fromFile], file);
        }

        command.SetAction(parse => CommandRunner.Run(signals =>
        {
            var (config, given, file) = ConfigFrom(parse);
            bool resuming = parse.GetValue(resume);
            string? folder = parse.GetValue(output);
            if (resuming && folder is null) throw new ArgumentException("--resume needs --out RUN_FOLDER: the run to continue");
            string? forkSource = parse.GetValue(forkFrom);
            if (forkSource is not null)
            {
                if (resuming) throw new ArgumentException("--fork-from starts a new run and --resume continues one: give one of them");
                if (folder is null) throw new ArgumentException("--fork-from needs --out NEW_RUN_FOLDER: the folder of the forked run");
            }
            ResumeRequest? request = null;
            if (resuming)
            {
                request = new ResumeRequest(given);
            }
            else if (forkSource is null)
            {
                try
                {
                    config.Validate();
                }
                catch (ArgumentException e) when (file is not null)
                {
                    throw new ArgumentException($"{e.Message} (in the configuration from {file.Path} and the command line)", e);
                }
            }
            folder ??= RunDirectory.DefaultFor(config);
            try
            {
                ConsoleProgress.Run(observer =>
                {
                    var runner = new ExperimentRunner(observer) { EvaluationStarting = () => signals.Graceful = false };
                    return forkSource is not null
                        ? runner.Fork(new ForkRequest(forkSource, given), folder, signals.Token)
                        : runner.Train(config, folder, resuming, request, signals.Token);
                });
            }
            catch (TrainingStoppedException stop) when (signals.Received is { } signal)
            {
                StopSignals.ShowCursor();
                Console.Error.WriteLine($"stopped: {stop.Message}");
                Console.Error.WriteLine($"resume with: ddvi train --resume --out {Path.GetFullPath(folder)}");
                return StopSignals.ExitCode(signal);
            }
            Console.WriteLine($"run folder: {Path.GetFullPath(folder)}");
            return 0;
        }));
        return (command, ConfigFrom);
    }
}
