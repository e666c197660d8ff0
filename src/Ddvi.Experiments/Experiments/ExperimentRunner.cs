using Ddvi.IO;
using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Ddvi.Data;
using Ddvi.Models;
using Ddvi.Plotting;
using Ddvi.Priors;
using Ddvi.Runtime;
using Ddvi.Training;
using static TorchSharp.torch;

namespace Ddvi.Experiments;

/// <summary>
/// Runs an experiment end to end in one run folder: data, prior and method from the configuration,
/// every training stage (skipping finished ones on resume), then evaluation, metrics and plots.
/// </summary>
public sealed class ExperimentRunner(ITrainingObserver observer)
{
    /// <summary>Called when training has ended and evaluation begins (a stop request can then no longer be honoured
    /// at a step: the command stops at once instead).</summary>
    public Action? EvaluationStarting { get; init; }

    /// <summary>Trains (or resumes) the run in <paramref name="runFolder"/> and evaluates it.</summary>
    /// <param name="config">The configuration of a new run; ignored on resume, where the run's config.json rules.</param>
    /// <param name="resume">Continue the run in the folder from its last intact checkpoint.</param>
    /// <param name="request">On resume, the options given with it (see <see cref="ResumeRequest"/>); null = none.</param>
    /// <param name="cancellationToken">A stop request: the run finishes its step, writes a checkpoint and throws
    /// <see cref="TrainingStoppedException"/> (logged with the command that resumes it).</param>
    /// <remarks>
    /// The folder is held (<see cref="RunLock"/>) for the whole call: a second process gets an error and writes nothing.
    /// A folder whose earlier run never wrote a checkpoint (it failed on bad data or a missing device) does not count as
    /// a run: starting again replaces its configuration. Every error that ends the run is also written to train.log.
    /// </remarks>
    public MetricsReport Train(ExperimentConfig config, string runFolder, bool resume, ResumeRequest? request = null,
        CancellationToken cancellationToken = default)
    {
        var run = new RunDirectory(runFolder);
        if (!resume) config.Validate();
        using var hold = RunLock.Acquire(run.Root);
        var orphans = AtomicFile.RemoveOrphans(run.Root);
        IReadOnlyList<ConfigChange> changes = [];
        bool replacing = false;
        if (resume)
        {
            if (!File.Exists(run.Config))
                throw new FileNotFoundException($"--resume: {run.Config} not found; there is no run to resume in {run.Root}.", run.Config);
            var saved = ExperimentConfig.FromJson(File.ReadAllText(run.Config), run.Config);
            (config, changes) = request is null ? (saved, []) : request.ApplyTo(saved);
        }
        else if (File.Exists(run.Config))
        {
            if (HasTrained(run))
                throw new InvalidOperationException($"--out {run.Root} already holds a run: pass --resume to continue it, or choose another --out.");
            replacing = true;
        }

        var log = new CompositeObserver(observer, new LogFileObserver(run.Log));
        return Logged(run, log, () =>
        {
            if (replacing) log.Message($"{run.Root} holds the configuration of an earlier attempt that never wrote a checkpoint: replacing it");
            if (!resume) WriteConfig(run, config, [new ConfigChange("", null, null, "new run")]);
            log.Message($"{(resume ? "resuming" : "starting")} {config.Model} on {config.Dataset} with prior {config.Prior}, seed {config.Seed}, in {run.Root}");
            if (orphans.Files > 0)
                log.Message($"removed {orphans.Files} temporary file(s) ({orphans.Bytes / 1e6:F1} MB) that interrupted saves had left behind");
            return TrainHeld(config, run, resume, changes, log, cancellationToken);
        });
    }

    /// <summary>Runs <paramref name="body"/>, writing a stop request's resume command or an error into the run's log before
    /// passing it on.</summary>
    private static MetricsReport Logged(RunDirectory run, ITrainingObserver log, Func<MetricsReport> body)
    {
        try
        {
            return body();
        }
        catch (TrainingStoppedException stop)
        {
            log.Message($"stopped on request: {stop.Message}. Resume with: ddvi train --resume --out {Quote(run.Root)}");
            throw;
        }
        catch (Exception e)
        {
            log.Message($"error: {e.Message}");
            throw;
        }
    }

    /// <summary>
    /// Starts the run in <paramref name="runFolder"/> as a fork of <paramref name="fork"/>'s source (<c>ddvi train --fork-from</c>):
    /// the source's configuration with the options given, the source's newest intact checkpoint of each stage before the
    /// model's <see cref="ForkPoint"/> copied in (a stage the source has not finished is continued), then trained and
    /// evaluated as a resumed run. The source is only read. The folder must not hold a run.
    /// </summary>
    public MetricsReport Fork(ForkRequest fork, string runFolder, CancellationToken cancellationToken = default)
    {
        var source = new RunDirectory(fork.Source);
        var run = new RunDirectory(runFolder);
        if (source.Root == run.Root)
            throw new ArgumentException($"--fork-from {fork.Source}: the fork needs a folder of its own; --out names the source run itself.");
        if (!File.Exists(source.Config))
            throw new FileNotFoundException($"--fork-from {fork.Source}: {source.Config} not found; {source.Root} is not a Ddvi run folder.", source.Config);
        var saved = ExperimentConfig.FromJson(File.ReadAllText(source.Config), source.Config);
        var (config, point, changes) = fork.ApplyTo(saved);

        using var hold = RunLock.Acquire(run.Root);
        if (File.Exists(run.Config) && HasTrained(run))
            throw new InvalidOperationException($"--out {run.Root} already holds a run: a fork starts a new run; choose another --out.");
        var log = new CompositeObserver(observer, new LogFileObserver(run.Log));
        return Logged(run, log, () =>
        {
            var taken = new List<ForkedStage>();
            foreach (var stage in point.Reused)
            {
                if (IntactCheckpoint(source.Checkpoints(stage), log.Message) is not { } checkpoint) break;
                taken.Add(new ForkedStage(stage, checkpoint, Checkpoint.ReadHeader(checkpoint).State));
            }
            if (taken.Count == 0)
                throw new InvalidOperationException(
                    $"--fork-from {fork.Source}: the source has no intact checkpoint of its first stage '{point.Reused[0]}' in {source.Checkpoints(point.Reused[0])}, " +
                    "so there is nothing to reuse; start a new run instead.");

            foreach (var (stage, checkpoint, state) in taken)
            {
                string folder = run.Checkpoints(stage);
                Directory.CreateDirectory(folder);
                AtomicFile.Write(Path.Combine(folder, Path.GetFileName(checkpoint)), target =>
                {
                    using var input = File.OpenRead(checkpoint);
                    input.CopyTo(target);
                });
                Trainer.WriteLossTable(Path.Combine(folder, "losses.csv"), state.History);
                // The stage's posterior snapshot (DDVI's warm-up) belongs to its finished weights only.
                if (state.Partial is null && File.Exists(source.StageSnapshot(stage)) && Checkpoint.Latest(source.Checkpoints(stage)) == checkpoint)
                    AtomicFile.WriteAllText(run.StageSnapshot(stage), File.ReadAllText(source.StageSnapshot(stage)));
            }
            string what = string.Join(", ", taken.Select(t =>
                $"{t.Stage} ({t.State.EpochsCompleted} epochs{(t.State.Partial is { } p ? $" and {p.Steps} steps" : "")}, {Path.GetFileName(t.Checkpoint)})"));
            WriteConfig(run, config, [new ConfigChange("", null, null, $"forked from {source.Root}: reused {what}"), .. changes]);
            log.Message($"forking {source.Root} into {run.Root}: reusing {what}");
            foreach (var change in changes)
                log.Message($"config: {change.Key} {Show(change.From)} -> {Show(change.To)} ({change.Reason})");
            return TrainHeld(config, run, resume: true, [], log, cancellationToken);
        });
    }

    /// <summary>The newest checkpoint in <paramref name="folder"/> whose checksum holds, leaving damaged ones where they are
    /// (a fork only reads its source).</summary>
    private static string? IntactCheckpoint(string folder, Action<string> warn)
    {
        foreach (var path in Checkpoint.List(folder).Reverse())
        {
            if (Checkpoint.Problem(path) is not { } problem) return path;
            warn($"warning: {problem} The fork uses the previous checkpoint.");
        }
        return null;
    }

    private MetricsReport TrainHeld(ExperimentConfig config, RunDirectory run, bool resume, IReadOnlyList<ConfigChange> changes,
        ITrainingObserver log, CancellationToken cancellationToken)
    {
        using var session = Session.Open(config);
        log.Message($"device {session.Device}, {get_num_threads()} threads ({ComputeDevice.HostKernelNotes(session.Device)}), {session.Data.Train.Count} train / {session.Data.Test.Count} test examples, prior density: {session.Prior.DensityDescription}");
        if (session.Data.Note is { } dataNote) log.Message(dataNote);
        log.Message($"networks: {ImageNetworks.For(config.Networks, session.Data.Train, config.ResolvedBatchSize).Description}" +
                    (session.Data.Train.FlipInTraining ? "; training images flipped left-right at random" : "") +
                    (config.Precision == NetworkPrecisions.Default ? "" : $"; {config.Precision.Name()} products (mixed precision)"));
        CheckEvaluationLimits(session);
        if (session.Budget is { } budget)
        {
            budget.WriteTo(run.Root);
            log.Message($"labels: {budget.Count} of {session.Data.Train.Count} training examples labelled (per class {string.Join(' ', budget.PerClass)}), " +
                        $"listed in {LabelBudget.FileName}; " +
                        (budget.Count == session.Data.Train.Count ? "none unlabelled" : $"the other {session.Data.Train.Count - budget.Count} unlabelled"));
        }
        if (changes.Count > 0)
        {
            var last = session.Method.Stages[^1];
            if (changes.Any(c => c.Key == "epochs") && Checkpoint.Latest(run.Checkpoints(last.Name)) is { } newest
                && Checkpoint.ReadHeader(newest).State.EpochsCompleted > last.Epochs)
                throw new ArgumentException($"--epochs {last.Epochs}: this run has already trained {Checkpoint.ReadHeader(newest).State.EpochsCompleted} epochs of '{last.Name}'; " +
                                            "--epochs can lengthen a run, not undo epochs already trained.");
            foreach (var change in changes)
                log.Message($"config: {change.Key} {Show(change.From)} -> {Show(change.To)} ({change.Reason})");
            WriteConfig(run, config, changes);
        }

        TensorBoardLog? tensorBoard = null;
        if (config.TensorBoard is { } boardFolder)
        {
            tensorBoard = new TensorBoardLog(boardFolder, Path.GetFileName(run.Root), session.Method, session.Data, session.Prior, config);
            log.Message($"TensorBoard event files: {tensorBoard.Folder} (tensorboard --logdir {Quote(boardFolder)})");
            log = new CompositeObserver(log, tensorBoard);
        }
        var trainer = new Trainer(log);
        string configJson = config.ToJson();
        // --threads 0 (the default) on a CPU: the count follows the machine's load, epoch by epoch (ThreadGovernor).
        var governor = config.Threads == 0 && session.Device.type == TorchSharp.DeviceType.CPU ? new ThreadGovernor(get_num_threads()) : null;
        string? pendingWeights = null;
        double trainingSeconds = 0;
        var histories = new List<(string Stage, IReadOnlyList<EpochRecord> History)>();
        foreach (var stage in session.Method.Stages)
        {
            string checkpoints = run.Checkpoints(stage.Name);
            var options = new TrainerOptions(stage.Name, stage.Epochs, config.Seed, checkpoints, config.CheckpointEvery, Threads: governor);
            string? latest = resume ? Checkpoint.LatestIntact(checkpoints, log.Message) : null;
            if (latest is not null && Checkpoint.ReadHeader(latest).State is { Partial: null } done && done.EpochsCompleted >= stage.Epochs)
            {
                log.Message($"{stage.Name}: finished earlier ({done.EpochsCompleted} epochs), skipped");
                pendingWeights = latest;
                trainingSeconds += done.SecondsElapsed;
                histories.Add((stage.Name, done.History));
                if (stage.UsePosterior is not null && !File.Exists(run.StageSnapshot(stage.Name)))
                {
                    // The run stopped between the stage's last checkpoint and its snapshot: measure it now.
                    log.Message($"{stage.Name}: its posterior snapshot is missing (the run stopped before it was taken); measuring it now");
                    Checkpoint.Load(latest, session.Method.Module);
                    TakeSnapshot(session, run, stage, log);
                }
                continue;
            }
            if (pendingWeights is not null) Checkpoint.Load(pendingWeights, session.Method.Module);
            pendingWeights = null;
            var state = trainer.Fit(session.Method.Module, stage.Phases, stage.Batches, options, configJson, resume, cancellationToken);
            trainingSeconds += state.SecondsElapsed;
            histories.Add((stage.Name, state.History));
            if (stage.UsePosterior is not null) TakeSnapshot(session, run, stage, log);
        }
        if (pendingWeights is not null) Checkpoint.Load(pendingWeights, session.Method.Module);
        if (governor is not null && get_num_threads() != governor.MaxThreads) set_num_threads(governor.MaxThreads);

        cancellationToken.ThrowIfCancellationRequested();
        EvaluationStarting?.Invoke();
        var report = EvaluateAndWrite(session, run, histories, trainingSeconds, log);
        tensorBoard?.Metrics(report);
        return report;
    }

    /// <summary>Whether any stage of the run in <paramref name="run"/> has written a checkpoint or the run has metrics.</summary>
    private static bool HasTrained(RunDirectory run) =>
        File.Exists(run.Metrics)
        || (Directory.Exists(Path.Combine(run.Root, "checkpoints"))
            && Directory.EnumerateDirectories(Path.Combine(run.Root, "checkpoints")).Any(stage => Checkpoint.Latest(stage) is not null));

    /// <summary>Limits of the evaluation that the data must meet, checked before any training.</summary>
    private static void CheckEvaluationLimits(Session session)
    {
        int k = session.Config.Evaluation.KnnNeighbours;
        if (session.Data.Train.Count < k)
            throw new ArgumentException(
                $"--dataset {session.Config.Dataset}: its {session.Data.Train.Count} training examples are fewer than the {k} neighbours of the KNN " +
                $"accuracy (evaluation.knn_neighbours): use a dataset with at least {k} training examples.");
    }

    /// <summary>Writes config.json and appends the changes to config-history.json (both atomically).</summary>
    internal static void WriteConfig(RunDirectory run, ExperimentConfig config, IReadOnlyList<ConfigChange> changes)
    {
        var history = File.Exists(run.ConfigHistory) ? TryParseArray(run.ConfigHistory) : new JsonArray();
        history.Add(new JsonObject
        {
            ["time"] = DateTime.UtcNow.ToString("yyyy-MM-ddTHH:mm:ssZ", CultureInfo.InvariantCulture),
            ["changes"] = new JsonArray([.. changes.Select(c => (JsonNode)new JsonObject
            {
                ["key"] = c.Key.Length == 0 ? null : c.Key,
                ["from"] = c.From?.DeepClone(),
                ["to"] = c.To?.DeepClone(),
                ["reason"] = c.Reason,
            })]),
        });
        AtomicFile.WriteAllText(run.Config, config.ToJson());
        AtomicFile.WriteAllText(run.ConfigHistory, history.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
    }

    private static JsonArray TryParseArray(string path)
    {
        try
        {
            return JsonNode.Parse(File.ReadAllText(path)) as JsonArray ?? new JsonArray();
        }
        catch (JsonException)
        {
            return new JsonArray(); // A damaged history is started again rather than stopping the run.
        }
    }

    private static string Show(JsonNode? value) => value is null ? "(default)" : value.ToJsonString();

    private static string Quote(string path) => path.Any(c => char.IsWhiteSpace(c) || c is '\'' or '"' or '$' or '&' or ';') ? $"'{path.Replace("'", "'\\''")}'" : path;

    /// <summary>Evaluates the finished run in <paramref name="runFolder"/> again, rewriting its metrics, latents and plots.</summary>
    /// <param name="runFolder">The run folder.</param>
    /// <param name="evaluation">
    /// Replaces the saved evaluation settings for this evaluation only (config.json is not changed); gets the saved ones
    /// and returns the ones to use. Null keeps them.
    /// </param>
    public MetricsReport Evaluate(string runFolder, Func<EvaluationSettings, EvaluationSettings>? evaluation = null)
    {
        var run = new RunDirectory(runFolder);
        if (!File.Exists(run.Config))
            throw new FileNotFoundException($"{run.Config} not found: {run.Root} is not a Ddvi run folder (expected config.json and checkpoints/).", run.Config);
        using var hold = RunLock.Acquire(run.Root, "RUN_FOLDER");
        var config = ExperimentConfig.FromJson(File.ReadAllText(run.Config), run.Config);
        if (evaluation is not null) config = (config with { Evaluation = evaluation(config.Evaluation) }).Validate();
        var log = new CompositeObserver(observer, new LogFileObserver(run.Log));
        using var session = Session.Open(config);
        var (histories, trainingSeconds) = LoadFinished(session, run, log.Message);
        return EvaluateAndWrite(session, run, histories, trainingSeconds, log);
    }

    /// <summary>
    /// Loads the weights a finished run ended with into <paramref name="session"/>'s method; a stage that has not finished
    /// is an error naming it and the command that finishes it. Returns each stage's loss history and the training time.
    /// </summary>
    internal static (List<(string Stage, IReadOnlyList<EpochRecord> History)> Histories, double TrainingSeconds) LoadFinished(
        Session session, RunDirectory run, Action<string> warn)
    {
        double trainingSeconds = 0;
        var histories = new List<(string Stage, IReadOnlyList<EpochRecord> History)>();
        string? last = null;
        foreach (var stage in session.Method.Stages)
        {
            string? latest = Checkpoint.LatestIntact(run.Checkpoints(stage.Name), warn);
            var state = latest is null ? null : Checkpoint.ReadHeader(latest).State;
            if (state is null || state.Partial is not null || state.EpochsCompleted < stage.Epochs)
                throw new InvalidOperationException(
                    $"{run.Root}: stage '{stage.Name}' has not finished ({state?.EpochsCompleted ?? 0}/{stage.Epochs} epochs); " +
                    $"finish it with: ddvi train --resume --out {Quote(run.Root)}");
            trainingSeconds += state.SecondsElapsed;
            histories.Add((stage.Name, state.History));
            last = latest;
        }
        Checkpoint.Load(last!, session.Method.Module);
        return (histories, trainingSeconds);
    }

    private static MetricsReport EvaluateAndWrite(Session session, RunDirectory run,
        IReadOnlyList<(string Stage, IReadOnlyList<EpochRecord> History)> histories, double trainingSeconds, ITrainingObserver log)
    {
        log.Message("evaluating");
        var (report, artifacts) = ModelEvaluator.Evaluate(session.Method, session.Data, session.Prior, session.Config, session.Device, session.Budget);
        using (artifacts)
        {
            var snapshots = session.Method.Stages.Select(s => run.StageSnapshot(s.Name)).Where(File.Exists)
                .Select(path => JsonSerializer.Deserialize<StageSnapshot>(File.ReadAllText(path), ExperimentConfig.JsonOptions)!).ToList();
            report = (report with { TrainingSeconds = trainingSeconds, StageSnapshots = snapshots }).WithNonFiniteNamed();
            foreach (var (key, reason) in report.NotComputed ?? new Dictionary<string, string>())
                log.Message($"warning: metric {key}: {reason}");
            AtomicFile.WriteAllText(run.Metrics, JsonSerializer.Serialize(report, ExperimentConfig.JsonOptions));
            WriteLatents(run.TestLatents, artifacts.TestLatents, artifacts.TestLabels, artifacts.TestChainStarts);
            WritePlots(run, session, artifacts, histories);
        }
        log.Message(Summary(report));
        return report;
    }

    /// <summary>Measures the posterior a stage ended with and keeps it beside the stage's checkpoints.</summary>
    private static void TakeSnapshot(Session session, RunDirectory run, TrainingStage stage, ITrainingObserver log)
    {
        var restore = stage.UsePosterior!();
        try
        {
            var snapshot = ModelEvaluator.Snapshot(stage.Name, session.Method, session.Data, session.Prior, session.Config);
            AtomicFile.WriteAllText(run.StageSnapshot(stage.Name), JsonSerializer.Serialize(snapshot, ExperimentConfig.JsonOptions));
            log.Message($"{stage.Name}: knn_accuracy={snapshot.KnnAccuracy:F4} latent_nll={snapshot.LatentNll:F4} (posterior at the end of this stage)");
        }
        finally
        {
            restore();
        }
    }

    /// <summary>One line of the headline metrics.</summary>
    public static string Summary(MetricsReport r) =>
        $"knn_accuracy={r.KnnAccuracy.Value:F4} latent_nll={r.LatentNll.Value:F4} " +
        (r.LatentNll.PriorSampleReference is double reference ? $"(prior samples themselves: {reference:F4}) " : "") +
        (r.Elbo.Available ? $"elbo={r.Elbo.NatsPerImage:F2} nats/image ({r.Elbo.ReleasePerPixelScale:F4} per-pixel scale) " : "elbo=n/a ") +
        (r.LikelihoodBounds is { } b
            ? $"true_elbo={b.TrueElbo.NatsPerImage:F2} log_px_iwae{b.Samples}={b.LogLikelihood.NatsPerImage:F2} " +
              (b.Injectivity is { } i ? $"sign_changes={i.ExamplesWithSignChange} " : "")
            : "") +
        $"mmd={r.Mmd.Value:F4}" +
        (r.SemiSupervised is { } s
            ? (s.ClassificationAccuracy is { } a ? $" classification_accuracy={a.Value:F4}" : "") +
              $" knn_labelled_accuracy={s.KnnLabelledAccuracy.Value:F4} class_latent_nll={s.ClassLatentNll.Value:F4} ({s.Labels} labels)"
            : "");

    /// <summary>
    /// latents-test.csv: z1, …, zd, label, and y_T (yT1, yT2, …) for diffusion posteriors; for the paper's d = 2 the
    /// header is z1,z2,label[,yT1,yT2].
    /// </summary>
    internal static void WriteLatents(string path, Tensor latents, Tensor labels, Tensor? chainStarts)
    {
        int d = (int)latents.shape[1];
        int startWidth = chainStarts is null ? 0 : (int)chainStarts.shape[1];
        var z = latents.cpu().to(float32).contiguous().data<float>().ToArray();
        var y = labels.cpu().to(int64).contiguous().data<long>().ToArray();
        var start = chainStarts?.cpu().to(float32).contiguous().data<float>().ToArray();
        var columns = Enumerable.Range(1, d).Select(j => $"z{j}").Append("label");
        if (start is not null) columns = columns.Concat(Enumerable.Range(1, startWidth).Select(j => $"yT{j}"));
        var text = new StringBuilder(string.Join(',', columns)).Append('\n');
        for (int i = 0; i < y.Length; i++)
        {
            for (int j = 0; j < d; j++) text.Append(CultureInfo.InvariantCulture, $"{z[d * i + j]:R},");
            text.Append(CultureInfo.InvariantCulture, $"{y[i]}");
            if (start is not null)
                for (int j = 0; j < startWidth; j++) text.Append(CultureInfo.InvariantCulture, $",{start[startWidth * i + j]:R}");
            text.Append('\n');
        }
        AtomicFile.WriteAllText(path, text.ToString());
    }

    private static void WritePlots(RunDirectory run, Session session, EvaluationArtifacts a,
        IReadOnlyList<(string Stage, IReadOnlyList<EpochRecord> History)> histories)
    {
        // One projection for every latent plot (the coordinates themselves for d = 2), fitted on the test latents, so
        // prior samples and chain starts are drawn on the latents' axes; for d ≠ 2 the titles and axes say what is shown.
        var view = LatentProjection.Fit(a.TestLatents, "test latents");
        var (zx, zy) = view.Apply(a.TestLatents);
        var labels = a.TestLabels.cpu().to(int32).contiguous().data<int>().ToArray();
        var (px, py) = view.Apply(a.PriorSamples);
        var classes = a.PriorClasses.cpu().to(int32).contiguous().data<int>().ToArray();
        string model = session.Config.Model.ToUpperInvariant();
        LatentScatter.Save(run.Plot("latents.png"), zx, zy, labels, view.Title($"{model} test latents ({DatasetCatalog.ShortName(session.Config.Dataset)})"), axes: view);
        LatentScatter.Save(run.Plot("prior.png"), px, py, classes, view.Title($"prior samples: {session.Prior.Name}"), axes: view);
        LatentScatter.SaveSideBySide(run.Plot("prior-vs-latents.png"),
            (view.Title($"prior: {session.Prior.Name}"), px, py, classes), (view.Title($"{model} latents"), zx, zy, labels), axes: view);
        if (a.TestChainStarts is not null)
        {
            bool shared = a.TestChainStarts.shape[1] == view.Dimension;
            var startView = shared ? view : LatentProjection.Fit(a.TestChainStarts, "chain starts");
            var (sx, sy) = startView.Apply(a.TestChainStarts);
            LatentScatter.SaveSideBySide(run.Plot("chain-start-vs-latents.png"),
                (startView.Title("chain start y_T ~ q(y_T|x)"), sx, sy, labels), (view.Title($"{model} latents z = y_0"), zx, zy, labels),
                axes: shared ? view : null);
        }
        var shape = session.Data.Test.Shape;
        using var shown = session.Data.Test.Range.ToUnitInterval(a.DecodedByClass.cpu().to(float32)).contiguous();
        ImageGrid.Save(run.Plot("samples.png"), shown.data<float>().ToArray(), (int)a.DecodedByClass.shape[0],
            shape.Channels, shape.Height, shape.Width, columns: ModelEvaluator.SamplesPerClass);
        foreach (var (stage, history) in histories.Where(h => h.History.Count > 0))
        {
            var series = history.SelectMany(r => r.Losses.Keys).Distinct()
                .ToDictionary(k => k, k => (IReadOnlyList<double>)history.Select(r => r.Losses.GetValueOrDefault(k, double.NaN)).ToList());
            LossCurves.Save(run.Plot($"losses-{stage}.png"), series, "epoch");
        }
    }

    /// <summary>The objects of one run on its device: data, prior, method. Disposes its tensors.</summary>
    internal sealed class Session : IDisposable
    {
        public required ExperimentConfig Config { get; init; }
        public required Device Device { get; init; }
        public required DatasetSplits Data { get; init; }
        public required ILabelledPrior Prior { get; init; }
        public required IExperimentMethod Method { get; init; }

        /// <summary>The run's label budget (<see cref="ExperimentConfig.ResolvedLabels"/>), or null when every label is kept.</summary>
        public LabelBudget? Budget { get; init; }

        /// <summary>The training labels under <see cref="Budget"/> (unlabelled = <see cref="LabelBudget.Unlabelled"/>), or null.</summary>
        public Tensor? TrainingLabels { get; init; }

        public static Session Open(ExperimentConfig config)
        {
            ComputeDevice.SetThreads(config.Threads);
            var device = ComputeDevice.Resolve(config.Device);
            var loaded = DatasetCatalog.Load(config.Dataset,
                new DatasetOptions(config.DataDirectory, config.Seed, SyntheticTrainCount: config.SyntheticTrainCount, SyntheticTestCount: config.SyntheticTestCount));
            if (config.TrainImages is int trainImages)
            {
                try { loaded = loaded.WithFirstTrainingExamples(trainImages, config.Dataset); }
                catch { loaded.Dispose(); throw; }
            }
            var data = device.type == TorchSharp.DeviceType.CPU ? loaded : MoveTo(loaded, device);
            var prior = PriorCatalog.Create(config.Prior, config.PriorNoise, config.Seed, device, config.PriorDensity);
            // Weight initialisation draws from the global generator: seed it so a run is repeatable.
            ComputeDevice.SeedGlobal(config.Seed);
            var budget = config.ResolvedLabels(data.Train) is int labels
                ? LabelBudget.Choose(data.Train.Labels, data.Train.ClassCount, labels, Training.Trainer.EpochSeed(config.Seed, "labels", 0))
                : null;
            var trainingLabels = budget?.MaskLabels(data.Train.Labels).DetachFromDisposeScope();
            var method = ModelCatalog.Create(new MethodContext(config, data.Train, prior, device, trainingLabels));
            return new Session { Config = config, Device = device, Data = data, Prior = prior, Method = method, Budget = budget, TrainingLabels = trainingLabels };
        }

        private static DatasetSplits MoveTo(DatasetSplits data, Device device)
        {
            using (data) return new DatasetSplits(data.Train.To(device), data.Test.To(device), data.Note);
        }

        public void Dispose()
        {
            Method.Module.Dispose();
            TrainingLabels?.Dispose();
            (Prior as IDisposable)?.Dispose();
            Data.Dispose();
        }
    }
}
