using Ddvi.Runtime;
using Ddvi.IO;
using System.Diagnostics;
using System.Globalization;
using System.Text;
using TorchSharp;
using static TorchSharp.torch;

namespace Ddvi.Training;

/// <summary>How long to train and where to keep checkpoints.</summary>
/// <param name="Stage">Name of what is trained (e.g. "vae", "prior-diffusion"); prefixes log lines.</param>
/// <param name="Epochs">Total epochs of the stage.</param>
/// <param name="Seed">Run seed; each epoch derives its own generator from it, so a resumed run repeats exactly.</param>
/// <param name="CheckpointDirectory">Folder of this stage's checkpoints (and its losses.csv), or null to write nothing.</param>
/// <param name="CheckpointEvery">Save every N epochs; the last epoch is always saved.</param>
/// <param name="LogEvery">Read running losses every N steps (each read synchronises with the device).</param>
/// <param name="KeepCheckpoints">How many of the newest checkpoints to keep.</param>
/// <param name="Threads">Chooses the CPU thread count at every epoch's start from the machine's load; null keeps the
/// count as it is (bit-identical repetition at that count).</param>
public sealed record TrainerOptions(
    string Stage,
    int Epochs,
    long Seed,
    string? CheckpointDirectory,
    int CheckpointEvery = 5,
    int LogEvery = 50,
    int KeepCheckpoints = 2,
    ThreadGovernor? Threads = null)
{
    public void Validate()
    {
        if (Epochs < 0) throw new ArgumentOutOfRangeException(nameof(Epochs), Epochs, "epochs must be ≥ 0");
        if (CheckpointEvery < 1) throw new ArgumentOutOfRangeException(nameof(CheckpointEvery), CheckpointEvery, "--checkpoint-every must be ≥ 1");
        if (LogEvery < 1) throw new ArgumentOutOfRangeException(nameof(LogEvery), LogEvery, "log interval must be ≥ 1");
        if (KeepCheckpoints < 1) throw new ArgumentOutOfRangeException(nameof(KeepCheckpoints), KeepCheckpoints, "must keep at least one checkpoint");
    }
}

/// <summary>
/// Training was stopped on request (a signal, a cancelled token) after a completed step, and a checkpoint of that
/// point was written: resuming continues exactly there.
/// </summary>
/// <param name="checkpoint">The checkpoint of the point where it stopped; null when the stage had not trained yet.</param>
public sealed class TrainingStoppedException(string stage, int epochsCompleted, int steps, string? checkpoint)
    : OperationCanceledException(checkpoint is null
        ? $"{stage}: stopped before its first step; nothing of this stage was trained"
        : steps == 0
            ? $"{stage}: stopped after {epochsCompleted} epoch(s); checkpoint {checkpoint}"
            : $"{stage}: stopped in epoch {epochsCompleted + 1} after step {steps}; checkpoint {checkpoint}")
{
    public string Stage { get; } = stage;
    public int EpochsCompleted { get; } = epochsCompleted;
    public int Steps { get; } = steps;
    public string? Checkpoint { get; } = checkpoint;
}

/// <summary>Training stopped because a loss became NaN or infinite; the last good checkpoint is kept.</summary>
public sealed class NonFiniteLossException(string message) : Exception(message);

/// <summary>
/// Runs phases over epochs of batches: zero_grad / backward / step per phase, per-epoch seeding,
/// running losses, atomic checkpoints and exact resume. It knows nothing of the model it trains
/// beyond its parameters (through the phases) and its state dict (through <c>model</c>).
/// </summary>
public sealed class Trainer(ITrainingObserver observer)
{
    /// <summary>
    /// Trains from the latest intact checkpoint in <see cref="TrainerOptions.CheckpointDirectory"/> when
    /// <paramref name="resume"/> is set (from scratch otherwise), and returns the full loss history.
    /// </summary>
    /// <remarks>
    /// <para><paramref name="cancellationToken"/> is checked after every step (and before an epoch's first). A
    /// cancelled run with a checkpoint folder finishes the step it is in, writes a checkpoint of exactly that point
    /// (mid-epoch ones hold the epoch's generator states and running losses, so that resuming continues the epoch as
    /// if nothing had happened) and throws <see cref="TrainingStoppedException"/>; without a folder it throws
    /// <see cref="OperationCanceledException"/>.</para>
    /// <para>A damaged newest checkpoint is named through the observer and the previous intact one is used.</para>
    /// </remarks>
    public TrainerState Fit(nn.Module model, IReadOnlyList<TrainingPhase> phases, IBatchSource batches,
        TrainerOptions options, string configurationJson, bool resume, CancellationToken cancellationToken = default)
    {
        options.Validate();
        if (resume && options.CheckpointDirectory is null)
            throw new ArgumentException($"{options.Stage}: resuming needs a checkpoint folder.", nameof(resume));
        using var runner = new StepRunner(phases);
        var state = new TrainerState(options.Stage, 0, 0, []);
        string? latest = resume ? Checkpoint.LatestIntact(options.CheckpointDirectory!, observer.Message) : null;
        if (latest is not null)
        {
            state = Checkpoint.Load(latest, model, runner.Optimizers);
            string where = state.Partial is { } p ? $"{state.EpochsCompleted} epoch(s) and {p.Steps} step(s)" : $"{state.EpochsCompleted} epoch(s)";
            observer.Message($"{options.Stage}: resumed from {latest} after {where}");
        }
        else if (!resume && options.CheckpointDirectory is not null && Checkpoint.Latest(options.CheckpointDirectory) is { } existing)
        {
            throw new InvalidOperationException($"{options.CheckpointDirectory} already holds checkpoint {Path.GetFileName(existing)}: pass --resume to continue it, or choose another --out.");
        }

        var history = new List<EpochRecord>(state.History);
        double elapsed = state.SecondsElapsed;
        var partial = state.Partial;
        observer.StageStarted(options.Stage, state.EpochsCompleted, options.Epochs, batches.StepsPerEpoch);
        for (int epoch = state.EpochsCompleted; epoch < options.Epochs; epoch++)
        {
            if (partial is null && cancellationToken.IsCancellationRequested)
                Stop(model, runner, state, options, configurationJson);
            var record = RunEpoch(model, runner, batches, options, epoch, partial, state, configurationJson, cancellationToken);
            partial = null;
            history.Add(record);
            elapsed += record.Seconds;
            observer.EpochCompleted(options.Stage, record, options.Epochs);
            state = new TrainerState(options.Stage, epoch + 1, elapsed, history.ToList());
            if (options.CheckpointDirectory is null) continue;
            WriteLossTable(Path.Combine(options.CheckpointDirectory, "losses.csv"), history);
            if ((epoch + 1) % options.CheckpointEvery == 0 || epoch + 1 == options.Epochs)
                SaveCheckpoint(model, runner.Optimizers, state, options, options.CheckpointDirectory, configurationJson);
        }
        return state;
    }

    // A stop at an epoch boundary: saves that point unless its checkpoint exists already (or nothing was trained), then throws.
    private void Stop(nn.Module model, StepRunner runner, TrainerState state, TrainerOptions options, string configurationJson)
    {
        if (options.CheckpointDirectory is null) throw new OperationCanceledException($"{options.Stage}: stopped after {state.EpochsCompleted} epoch(s).");
        if (state.EpochsCompleted == 0) throw new TrainingStoppedException(options.Stage, 0, 0, null);
        string path = Path.Combine(options.CheckpointDirectory, Checkpoint.FileName(state.EpochsCompleted));
        if (!File.Exists(path)) SaveCheckpoint(model, runner.Optimizers, state, options, options.CheckpointDirectory, configurationJson);
        throw new TrainingStoppedException(options.Stage, state.EpochsCompleted, 0, path);
    }

    /// <summary>The generator seed of one epoch: a fixed mix of the run seed, the stage and the epoch.</summary>
    public static long EpochSeed(long seed, string stage, int epoch)
    {
        ulong x = unchecked((ulong)seed * 0x9E3779B97F4A7C15UL ^ (ulong)StableHash(stage) ^ ((ulong)epoch + 1) * 0xBF58476D1CE4E5B9UL);
        x ^= x >> 31; x *= 0x94D049BB133111EBUL; x ^= x >> 29;
        return (long)(x & 0x7FFF_FFFF_FFFF_FFFFUL);
    }

    private EpochRecord RunEpoch(nn.Module model, StepRunner runner, IBatchSource batches, TrainerOptions options, int epoch,
        PartialEpoch? partial, TrainerState before, string configurationJson, CancellationToken cancellationToken)
    {
        if (partial is { Threads: > 0 } stoppedAt)
        {
            // A stopped epoch continues at the thread count it ran with, so that it ends as it would have.
            if (get_num_threads() != stoppedAt.Threads) set_num_threads(stoppedAt.Threads);
        }
        else if (options.Threads?.Decide() is { Changed: true } decision)
        {
            observer.Message($"{options.Stage}: {ThreadGovernor.Describe(decision, epoch)}");
        }
        int threads = get_num_threads();
        var clock = Stopwatch.StartNew();
        double earlierSeconds = partial?.Seconds ?? 0;
        long epochSeed = EpochSeed(options.Seed, options.Stage, epoch);
        // Dropout draws from libtorch's global generators: reseeding them per epoch makes resume exact. TorchSharp's
        // manual_seed reaches only the CPU's, so a GPU's is reseeded too (a resumed CUDA run drifted without it).
        var global = ComputeDevice.SeedGlobal(epochSeed);
        using var generator = new Generator((ulong)epochSeed);
        model.train();
        runner.BeginEpoch(epoch);
        runner.Sums.Clear();

        int step = 0;
        foreach (var batch in batches.Epoch(generator))
        {
            try
            {
                if (partial is not null && step < partial.Steps)
                {
                    // Continuing a stopped epoch: the same batches in the same order, the completed ones passed over; the
                    // generators and running sums are then put back as they were after the last completed step.
                    step++;
                    if (step == partial.Steps) Restore(partial, runner, generator, global);
                    continue;
                }
                runner.Step(batch, epoch, generator);
            }
            finally
            {
                batch.X?.Dispose();
                batch.Labels?.Dispose();
            }
            step++;
            var running = step % options.LogEvery == 0 ? ReadMeans(runner.Sums, options, epoch, step) : null;
            observer.StepCompleted(options.Stage, epoch, step, running);
            if (cancellationToken.IsCancellationRequested && step < batches.StepsPerEpoch)
            {
                if (options.CheckpointDirectory is null) throw new OperationCanceledException($"{options.Stage}: stopped in epoch {epoch + 1} after step {step}.");
                var stopped = before with
                {
                    Partial = new PartialEpoch(step, earlierSeconds + clock.Elapsed.TotalSeconds, runner.Sums.Totals(), runner.Sums.Counts(),
                        StateBytes(generator), StateBytes(global), threads),
                };
                string path = Path.Combine(options.CheckpointDirectory, Checkpoint.FileName(epoch, step));
                SaveCheckpoint(model, runner.Optimizers, stopped, options, options.CheckpointDirectory, configurationJson);
                throw new TrainingStoppedException(options.Stage, epoch, step, path);
            }
        }
        runner.AfterEpoch(epoch, generator);
        var means = ReadMeans(runner.Sums, options, epoch, step);
        runner.Sums.Clear();
        return new EpochRecord(epoch, earlierSeconds + clock.Elapsed.TotalSeconds, means, threads);
    }

    private static void Restore(PartialEpoch partial, StepRunner runner, Generator generator, Generator global)
    {
        using (var state = tensor(partial.GeneratorState, dtype: uint8)) generator.set_state(state);
        using (var state = tensor(partial.GlobalGeneratorState, dtype: uint8)) global.set_state(state);
        runner.Sums.Restore(partial.LossSums, partial.LossCounts, runner.Device);
    }

    private static byte[] StateBytes(Generator generator)
    {
        using var state = generator.get_state();
        return state.cpu().data<byte>().ToArray();
    }

    private static Dictionary<string, double> ReadMeans(LossSums sums, TrainerOptions options, int epoch, int step)
    {
        var means = sums.Means();
        foreach (var (key, mean) in means)
        {
            if (!double.IsFinite(mean))
                throw new NonFiniteLossException(
                    $"{options.Stage}: loss term '{key}' became {mean} in epoch {epoch + 1}, by step {step}. Training stopped; " +
                    $"the last good checkpoint (if any) is kept in {options.CheckpointDirectory ?? "(no checkpoint folder)"}. Try a lower learning rate or another seed.");
        }
        return means;
    }

    private void SaveCheckpoint(nn.Module model, IReadOnlyDictionary<string, optim.Optimizer> optimizers,
        TrainerState state, TrainerOptions options, string folder, string configurationJson)
    {
        string path = Path.Combine(folder, Checkpoint.FileName(state.EpochsCompleted, state.Partial?.Steps ?? 0));
        Checkpoint.Save(path, model, optimizers, state, configurationJson);
        var stale = Checkpoint.List(folder).Reverse().Skip(options.KeepCheckpoints);
        foreach (var old in stale) File.Delete(old);
        observer.Message($"{options.Stage}: checkpoint {path}");
    }

    /// <summary>Writes a stage's losses.csv: one row per epoch (its number, seconds and the mean of every loss term).</summary>
    public static void WriteLossTable(string path, IReadOnlyList<EpochRecord> history)
    {
        var columns = history.SelectMany(r => r.Losses.Keys).Distinct().ToList();
        var text = new StringBuilder("epoch,seconds," + string.Join(',', columns) + "\n");
        foreach (var record in history)
        {
            text.Append(CultureInfo.InvariantCulture, $"{record.Epoch + 1},{record.Seconds:F3}");
            foreach (var column in columns)
                text.Append(',').Append(record.Losses.TryGetValue(column, out var v) ? v.ToString("R", CultureInfo.InvariantCulture) : "");
            text.Append('\n');
        }
        AtomicFile.WriteAllText(path, text.ToString());
    }

    private static int StableHash(string text)
    {
        unchecked
        {
            int hash = (int)2166136261;
            foreach (char c in text) hash = (hash ^ c) * 16777619;
            return hash;
        }
    }
}
