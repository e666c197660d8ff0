using Ddvi.Objectives;
using Ddvi.Training;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Ddvi.Tests.Training;

public class TrainerTests
{
    /// <summary>y = x·w_true + noise, fitted by a linear layer with dropout (so the global generator matters).</summary>
    private sealed class Regression : nn.Module<Tensor, Tensor>
    {
        private readonly Linear layer;
        private readonly Dropout dropout;

        public Regression() : base(nameof(Regression))
        {
            layer = nn.Linear(4, 1);
            dropout = nn.Dropout(0.1);
            RegisterComponents();
        }

        public override Tensor forward(Tensor x) => layer.call(dropout.call(x));
    }

    private static (Regression Model, TrainingPhase Phase, IBatchSource Batches, Ddvi.Data.ImageDataset Data) Setup(
        Func<PhaseStep, Tensor, Tensor>? corrupt = null)
    {
        torch.manual_seed(7);
        var generator = new Generator(11);
        var x = randn([256, 4], generator: generator);
        var y = x.matmul(tensor(new float[] { 1, -2, 0.5f, 3 }).view(4, 1)).squeeze(1);
        // The dataset type wants [N, D] images and [N] labels; the regression target rides in a side tensor.
        var data = new Ddvi.Data.ImageDataset("toy", x, arange(256L), new Ddvi.Data.ImageShape(1, 2, 2), 256);
        var model = new Regression();
        var phase = new TrainingPhase
        {
            Name = "fit",
            Parameters = model.parameters().ToList(),
            LearningRate = 0.05,
            Loss = step =>
            {
                var idx = step.Batch.Labels!;
                var prediction = model.call(step.Batch.RequireX()).squeeze(1);
                var loss = (prediction - y.index_select(0, idx)).square().mean();
                if (corrupt is not null) loss = corrupt(step, loss);
                return new LossTerms(loss, [("mse", loss)]);
            },
        };
        return (model, phase, new TensorBatches(data.Images, data.Labels, 32), data);
    }

    private static float[] Weights(nn.Module model) =>
        model.parameters().SelectMany(p => p.detach().cpu().data<float>().ToArray()).ToArray();

    [Fact]
    public void LossFallsAndHistoryIsRecorded()
    {
        using var folder = new TempFolder();
        var (model, phase, batches, _) = Setup();
        var state = new Trainer(SilentObserver.Instance).Fit(model, [phase], batches,
            new TrainerOptions("toy", 6, 1, folder["ckpt"]), "{}", resume: false);
        Assert.Equal(6, state.EpochsCompleted);
        Assert.Equal(6, state.History.Count);
        Assert.True(state.History[^1].Losses["fit/loss"] < 0.2 * state.History[0].Losses["fit/loss"]);
        Assert.True(File.Exists(folder["ckpt/losses.csv"]));
        Assert.Equal(7, File.ReadAllLines(folder["ckpt/losses.csv"]).Length);
    }

    [Fact]
    public void ResumedRunEqualsUninterruptedRun()
    {
        using var straight = new TempFolder();
        using var interrupted = new TempFolder();
        var trainer = new Trainer(SilentObserver.Instance);

        var (m1, p1, b1, _) = Setup();
        trainer.Fit(m1, [p1], b1, new TrainerOptions("toy", 4, 3, straight.Path, CheckpointEvery: 1), "{}", resume: false);

        var (m2, p2, b2, _) = Setup();
        trainer.Fit(m2, [p2], b2, new TrainerOptions("toy", 2, 3, interrupted.Path, CheckpointEvery: 1), "{}", resume: false);
        // A new process would rebuild the model from scratch: start from fresh (different) weights.
        var (m3, p3, b3, _) = Setup();
        using (no_grad()) foreach (var p in m3.parameters()) p.add_(1.0);
        var state = trainer.Fit(m3, [p3], b3, new TrainerOptions("toy", 4, 3, interrupted.Path, CheckpointEvery: 1), "{}", resume: true);

        Assert.Equal(4, state.EpochsCompleted);
        Assert.Equal(Weights(m1), Weights(m3));
    }

    [Fact]
    public void SameSeedGivesSameWeightsAndOtherSeedDiffers()
    {
        using var a = new TempFolder();
        using var b = new TempFolder();
        using var c = new TempFolder();
        var trainer = new Trainer(SilentObserver.Instance);
        var (m1, p1, b1, _) = Setup();
        trainer.Fit(m1, [p1], b1, new TrainerOptions("toy", 2, 5, a.Path), "{}", false);
        var (m2, p2, b2, _) = Setup();
        trainer.Fit(m2, [p2], b2, new TrainerOptions("toy", 2, 5, b.Path), "{}", false);
        var (m3, p3, b3, _) = Setup();
        trainer.Fit(m3, [p3], b3, new TrainerOptions("toy", 2, 6, c.Path), "{}", false);
        Assert.Equal(Weights(m1), Weights(m2));
        Assert.NotEqual(Weights(m1), Weights(m3));
    }

    [Fact]
    public void NonFiniteLossStopsAndKeepsLastGoodCheckpoint()
    {
        using var folder = new TempFolder();
        var (model, phase, batches, _) = Setup((step, loss) => step.Epoch == 2 ? loss * double.NaN : loss);
        var error = Assert.Throws<NonFiniteLossException>(() => new Trainer(SilentObserver.Instance).Fit(model, [phase], batches,
            new TrainerOptions("toy", 5, 1, folder.Path, CheckpointEvery: 1, LogEvery: 3), "{}", false));
        Assert.Contains("fit/loss", error.Message);
        Assert.Contains("epoch 3", error.Message);
        Assert.Equal(Checkpoint.FileName(2), Path.GetFileName(Checkpoint.Latest(folder.Path)));
        Assert.Equal(2, Checkpoint.ReadHeader(Checkpoint.Latest(folder.Path)!).State.EpochsCompleted);
    }

    [Fact]
    public void LoadingACheckpointWritesIntoTheModelsOwnParameters()
    {
        // Optimisers and phases hold the parameter objects made before a load; the load must fill those very tensors
        // (TorchSharp's Module.load replaces them on a GPU), and a model of another shape must be refused with the path.
        using var folder = new TempFolder();
        var (trained, phase, batches, _) = Setup();
        new Trainer(SilentObserver.Instance).Fit(trained, [phase], batches, new TrainerOptions("toy", 2, 1, folder.Path), "{}", false);
        string path = Checkpoint.Latest(folder.Path)!;

        var (fresh, _, _, _) = Setup();
        var before = fresh.parameters().ToList();
        var handles = before.Select(p => p.Handle).ToList();
        Assert.NotEqual(Weights(trained), Weights(fresh));
        Checkpoint.Load(path, fresh);
        Assert.Equal(Weights(trained), Weights(fresh));
        var after = fresh.parameters().ToList();
        Assert.All(before.Zip(after, handles), t => { Assert.Same(t.First, t.Second); Assert.Equal(t.Third, t.Second.Handle); });

        using var unrelated = nn.Linear(4, 1);
        var nameError = Assert.Throws<InvalidDataException>(() => Checkpoint.Load(path, unrelated));
        Assert.Contains(path, nameError.Message);
        Assert.Contains("'layer.weight'", nameError.Message);

        string wide = Path.Combine(folder.Path, "wide.ckpt");
        Checkpoint.Save(wide, unrelated, new Dictionary<string, optim.Optimizer>(), new TrainerState("toy", 1, 0, []), "{}");
        using var narrow = nn.Linear(3, 1);
        var shapeError = Assert.Throws<InvalidDataException>(() => Checkpoint.Load(wide, narrow));
        Assert.Contains("Float32 [1, 4] in the checkpoint, Float32 [1, 3] in the model", shapeError.Message);
    }

    [Fact]
    public void StartingOverAnExistingRunWithoutResumeIsRefused()
    {
        using var folder = new TempFolder();
        var (model, phase, batches, _) = Setup();
        var trainer = new Trainer(SilentObserver.Instance);
        trainer.Fit(model, [phase], batches, new TrainerOptions("toy", 1, 1, folder.Path), "{}", false);
        var error = Assert.Throws<InvalidOperationException>(() =>
            trainer.Fit(model, [phase], batches, new TrainerOptions("toy", 2, 1, folder.Path), "{}", false));
        Assert.Contains("--resume", error.Message);
    }

    [Fact]
    public void OnlyTheNewestCheckpointsAreKept()
    {
        using var folder = new TempFolder();
        var (model, phase, batches, _) = Setup();
        new Trainer(SilentObserver.Instance).Fit(model, [phase], batches,
            new TrainerOptions("toy", 5, 1, folder.Path, CheckpointEvery: 1, KeepCheckpoints: 2), "{}", false);
        var names = Directory.GetFiles(folder.Path, "*.ckpt").Select(Path.GetFileName).Order().ToArray();
        Assert.Equal(new[] { Checkpoint.FileName(4), Checkpoint.FileName(5) }, names);
        Assert.Empty(Directory.GetFiles(folder.Path, "*.tmp"));
    }

    [Fact]
    public void FrozenParametersDoNotMoveAndInactivePhasesDoNotRun()
    {
        using var folder = new TempFolder();
        var (model, phase, batches, _) = Setup();
        var bias = model.parameters().Last();
        float before = bias.detach().clone().item<float>();
        bool sleptEver = false;
        var frozenBias = new TrainingPhase
        {
            Name = phase.Name, Parameters = phase.Parameters, LearningRate = phase.LearningRate, Loss = phase.Loss,
            FrozenParameters = epoch => epoch < 2 ? [bias] : [],
        };
        var never = new TrainingPhase
        {
            Name = "never", Parameters = phase.Parameters, LearningRate = 1, IsActive = _ => false,
            Loss = step => { sleptEver = true; throw new InvalidOperationException("inactive phase ran"); },
        };
        var trainer = new Trainer(SilentObserver.Instance);
        trainer.Fit(model, [frozenBias, never], batches, new TrainerOptions("toy", 2, 1, folder.Path), "{}", false);
        Assert.Equal(before, bias.detach().item<float>());
        Assert.False(sleptEver);
        Assert.True(bias.requires_grad);
        trainer.Fit(model, [frozenBias, never], batches, new TrainerOptions("toy", 3, 1, folder.Path), "{}", true);
        Assert.NotEqual(before, bias.detach().item<float>());
    }

    [Fact]
    public void RepeatsAndLearningRateScheduleAreApplied()
    {
        using var folder = new TempFolder();
        var (model, phase, batches, _) = Setup();
        int calls = 0;
        var repeated = new TrainingPhase
        {
            Name = "fit", Parameters = phase.Parameters, LearningRate = phase.LearningRate, RepeatsPerBatch = 3,
            LearningRateFactor = epoch => epoch == 0 ? 1 : 0,
            Loss = step => { calls++; return phase.Loss(step); },
        };
        var trainer = new Trainer(SilentObserver.Instance);
        trainer.Fit(model, [repeated], batches, new TrainerOptions("toy", 1, 1, folder.Path), "{}", false);
        Assert.Equal(3 * batches.StepsPerEpoch, calls);
        var after = Weights(model);
        trainer.Fit(model, [repeated], batches, new TrainerOptions("toy", 2, 1, folder.Path), "{}", true);
        Assert.Equal(after, Weights(model)); // learning rate × 0 in epoch 2
    }

    [Fact]
    public void TrainingStepsLeakNoTensors()
    {
        using var folder = new TempFolder();
        var (model, phase, batches, _) = Setup();
        var trainer = new Trainer(SilentObserver.Instance);
        trainer.Fit(model, [phase], batches, new TrainerOptions("toy", 1, 1, folder["a"]), "{}", false);
        long start = DisposeScopeManager.Statistics.ThreadTotalLiveCount;
        trainer.Fit(model, [phase], batches, new TrainerOptions("toy", 2, 1, folder["a"], CheckpointEvery: 100), "{}", true);
        long afterOneEpoch = DisposeScopeManager.Statistics.ThreadTotalLiveCount;
        trainer.Fit(model, [phase], batches, new TrainerOptions("toy", 5, 1, folder["a"], CheckpointEvery: 100), "{}", true);
        long afterThreeEpochs = DisposeScopeManager.Statistics.ThreadTotalLiveCount;
        // One resumed epoch (8 steps) and three (24 steps) leave the same number of live tensors behind.
        Assert.Equal(afterOneEpoch - start, afterThreeEpochs - afterOneEpoch);
    }

    /// <summary>Cancels the token when the given epoch (0-based) reaches the given step.</summary>
    private sealed class CancelAt(CancellationTokenSource source, int epoch, int step) : ITrainingObserver
    {
        public List<string> Messages { get; } = [];
        public void StageStarted(string stage, int firstEpoch, int epochs, int stepsPerEpoch) { }
        public void StepCompleted(string stage, int e, int s, IReadOnlyDictionary<string, double>? runningLosses)
        {
            if (e == epoch && s == step) source.Cancel();
        }
        public void EpochCompleted(string stage, EpochRecord record, int epochs) { }
        public void Message(string text) => Messages.Add(text);
    }

    [Fact]
    public void AStopMidEpochWritesACheckpointThereAndResumingIsExact()
    {
        using var straight = new TempFolder();
        using var stopped = new TempFolder();
        var (m1, p1, b1, _) = Setup();
        var uninterrupted = new Trainer(SilentObserver.Instance).Fit(m1, [p1], b1,
            new TrainerOptions("toy", 4, 3, straight.Path, CheckpointEvery: 2, LogEvery: 3), "{}", resume: false);

        var (m2, p2, b2, _) = Setup();
        using var stop = new CancellationTokenSource();
        var error = Assert.Throws<TrainingStoppedException>(() => new Trainer(new CancelAt(stop, 2, 5)).Fit(m2, [p2], b2,
            new TrainerOptions("toy", 4, 3, stopped.Path, CheckpointEvery: 2, LogEvery: 3), "{}", resume: false, stop.Token));
        Assert.Equal((2, 5), (error.EpochsCompleted, error.Steps));
        Assert.Equal(Checkpoint.FileName(2, 5), Path.GetFileName(error.Checkpoint));
        Assert.Equal(error.Checkpoint, Checkpoint.Latest(stopped.Path));
        var partial = Checkpoint.ReadHeader(error.Checkpoint!).State.Partial!;
        Assert.Equal(5, partial.Steps);
        Assert.Equal(5, partial.LossCounts["fit/loss"]);

        // A new process: fresh weights that the checkpoint replaces; the epoch continues at step 6 with the same draws.
        var (m3, p3, b3, _) = Setup();
        using (no_grad()) foreach (var p in m3.parameters()) p.add_(1.0);
        var observer = new CancelAt(new CancellationTokenSource(), -1, -1);
        var resumed = new Trainer(observer).Fit(m3, [p3], b3,
            new TrainerOptions("toy", 4, 3, stopped.Path, CheckpointEvery: 2, LogEvery: 3), "{}", resume: true);
        Assert.Contains(observer.Messages, m => m.Contains("after 2 epoch(s) and 5 step(s)", StringComparison.Ordinal));
        Assert.Equal(Weights(m1), Weights(m3));
        Assert.Equal(uninterrupted.History.Select(r => r.Losses["fit/loss"]), resumed.History.Select(r => r.Losses["fit/loss"]));
    }

    [Fact]
    public void AStopAtAnEpochBoundarySavesThatEpochAndNothingTrainedYetSavesNothing()
    {
        using var folder = new TempFolder();
        var (model, phase, batches, _) = Setup();
        using var stop = new CancellationTokenSource();
        // Cancelled at the last step of epoch 1 (0-based): the epoch ends, and the next one does not start.
        var error = Assert.Throws<TrainingStoppedException>(() => new Trainer(new CancelAt(stop, 1, batches.StepsPerEpoch)).Fit(model, [phase], batches,
            new TrainerOptions("toy", 5, 1, folder.Path, CheckpointEvery: 4), "{}", resume: false, stop.Token));
        Assert.Equal((2, 0), (error.EpochsCompleted, error.Steps));
        Assert.Equal(Checkpoint.FileName(2), Path.GetFileName(error.Checkpoint));
        Assert.Null(Checkpoint.ReadHeader(error.Checkpoint!).State.Partial);

        using var empty = new TempFolder();
        using var already = new CancellationTokenSource();
        already.Cancel();
        var none = Assert.Throws<TrainingStoppedException>(() => new Trainer(SilentObserver.Instance).Fit(model, [phase], batches,
            new TrainerOptions("toy", 5, 1, empty.Path), "{}", resume: false, already.Token));
        Assert.Null(none.Checkpoint);
        Assert.Null(Checkpoint.Latest(empty.Path));
    }

    [Fact]
    public void ADamagedNewestCheckpointIsNamedAndThePreviousIntactOneIsUsed()
    {
        using var straight = new TempFolder();
        using var folder = new TempFolder();
        var (m1, p1, b1, _) = Setup();
        new Trainer(SilentObserver.Instance).Fit(m1, [p1], b1, new TrainerOptions("toy", 3, 1, straight.Path, CheckpointEvery: 1), "{}", false);

        var (model, phase, batches, _) = Setup();
        new Trainer(SilentObserver.Instance).Fit(model, [phase], batches, new TrainerOptions("toy", 3, 1, folder.Path, CheckpointEvery: 1), "{}", false);
        string newest = Checkpoint.Latest(folder.Path)!;
        Assert.Equal(Checkpoint.FileName(3), Path.GetFileName(newest));
        var bytes = File.ReadAllBytes(newest);
        File.WriteAllBytes(newest, bytes[..(bytes.Length / 2)]); // truncated, as by a full disk or a copy cut short

        var (again, p2, b2, _) = Setup();
        var observer = new CancelAt(new CancellationTokenSource(), -1, -1);
        var state = new Trainer(observer).Fit(again, [p2], b2, new TrainerOptions("toy", 3, 1, folder.Path, CheckpointEvery: 1), "{}", resume: true);
        Assert.Contains(observer.Messages, m => m.StartsWith("warning: ", StringComparison.Ordinal) && m.Contains(newest, StringComparison.Ordinal));
        Assert.Contains(observer.Messages, m => m.Contains($"resumed from {Path.Combine(folder.Path, Checkpoint.FileName(2))}", StringComparison.Ordinal));
        Assert.True(File.Exists(newest + ".damaged"));
        Assert.Equal(3, state.EpochsCompleted);
        Assert.Equal(Weights(m1), Weights(again)); // epoch 3 trained again from the intact epoch 2: the same result
    }

    [Fact]
    public void UnderLoadTheGovernorLowersTheThreadsAtAnEpochAndAStoppedEpochResumesWithItsCount()
    {
        int before = get_num_threads();
        try
        {
            set_num_threads(2);
            double busy = 0, clockSeconds = 0;
            // A machine where something else keeps one core busy: each sample is one virtual second later.
            var governor = new Ddvi.Runtime.ThreadGovernor(2, 2, () =>
            {
                clockSeconds += 1;
                busy += 1.0;
                return new Ddvi.Runtime.CpuActivity(busy, 0, (long)(clockSeconds * System.Diagnostics.Stopwatch.Frequency));
            });
            using var folder = new TempFolder();
            var (model, phase, batches, _) = Setup();
            using var stop = new CancellationTokenSource();
            var observer = new CancelAt(stop, 1, 3);
            var error = Assert.Throws<TrainingStoppedException>(() => new Trainer(observer).Fit(model, [phase], batches,
                new TrainerOptions("toy", 3, 1, folder.Path, CheckpointEvery: 1, Threads: governor), "{}", resume: false, stop.Token));
            Assert.Contains(observer.Messages, m => m.StartsWith("toy: threads: 1 from epoch 1", StringComparison.Ordinal));
            var state = Checkpoint.ReadHeader(error.Checkpoint!).State;
            Assert.Equal(1, state.History[0].Threads);
            Assert.Equal(1, state.Partial!.Threads);

            // Resumed without a governor at two threads: the stopped epoch still runs at the one it started with.
            set_num_threads(2);
            var (again, p2, b2, _) = Setup();
            var resumed = new Trainer(SilentObserver.Instance).Fit(again, [p2], b2,
                new TrainerOptions("toy", 3, 1, folder.Path, CheckpointEvery: 1), "{}", resume: true);
            Assert.Equal([1, 1, 1], resumed.History.Select(r => r.Threads));
        }
        finally
        {
            set_num_threads(before);
        }
    }
}
