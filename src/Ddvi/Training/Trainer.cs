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
public sealed record TrainerOptions(
    string Stage,
    int Epochs,
    long Seed,
    string? CheckpointDirectory,
    int CheckpointEvery = 5,
    int LogEvery = 50,
    int KeepCheckpoints = 2)
{
    public void Validate()
    {
        if (Epochs < 0) throw new ArgumentOutOfRangeException(nameof(Epochs), Epochs, "epochs must be ≥ 0");
        if (CheckpointEvery < 1) throw new ArgumentOutOfRangeException(nameof(CheckpointEvery), CheckpointEvery, "--checkpoint-every must be ≥ 1");
        if (LogEvery < 1) throw new ArgumentOutOfRangeException(nameof(LogEvery), LogEvery, "log interval must be ≥ 1");
        if (KeepCheckpoints < 1) throw new ArgumentOutOfRangeException(nameof(KeepCheckpoints), KeepCheckpoints, "must keep at least one checkpoint");
    }
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
    /// Trains from the latest checkpoint in <see cref="TrainerOptions.CheckpointDirectory"/> when
    /// <paramref name="resume"/> is set (from scratch otherwise), and returns the full loss history.
    /// </summary>
    /// <remarks>
    /// <paramref name="cancellationToken"/> is checked before every step; cancelling throws
    /// <see cref="OperationCanceledException"/> and keeps the checkpoints written so far.
    /// </remarks>
    public TrainerState Fit(nn.Module model, IReadOnlyList<TrainingPhase> phases, IBatchSource batches,
        TrainerOptions options, string configurationJson, bool resume, CancellationToken cancellationToken = default)
    {
        options.Validate();
        if (resume && options.CheckpointDirectory is null)
            throw new ArgumentException($"{options.Stage}: resuming needs a checkpoint folder.", nameof(resume));
        using var runner = new StepRunner(phases);
        var state = new TrainerState(options.Stage, 0, 0, []);
        string? latest = resume ? Checkpoint.Latest(options.CheckpointDirectory!) : null;
        if (latest is not null)
        {
            state = Checkpoint.Load(latest, model, runner.Optimizers);
            observer.Message($"{options.Stage}: resumed from {latest} after {state.EpochsCompleted} epoch(s)");
        }
        else if (!resume && options.CheckpointDirectory is not null && Checkpoint.Latest(options.CheckpointDirectory) is { } existing)
        {
            throw new InvalidOperationException($"{options.CheckpointDirectory} already holds checkpoint {Path.GetFileName(existing)}: pass --resume to continue it, or choose another --out.");
        }

        var history = new List<EpochRecord>(state.History);
        double elapsed = state.SecondsElapsed;
        observer.StageStarted(options.Stage, state.EpochsCompleted, options.Epochs, batches.StepsPerEpoch);
        for (int epoch = state.EpochsCompleted; epoch < options.Epochs; epoch++)
        {
            var record = RunEpoch(model, runner, batches, options, epoch, cancellationToken);
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

    /// <summary>The generator seed of one epoch: a fixed mix of the run seed, the stage and the epoch.</summary>
    public static long EpochSeed(long seed, string stage, int epoch)
    {
        ulong x = unchecked((ulong)seed * 0x9E3779B97F4A7C15UL ^ (ulong)StableHash(stage) ^ ((ulong)epoch + 1) * 0xBF58476D1CE4E5B9UL);
        x ^= x >> 31; x *= 0x94D049BB133111EBUL; x ^= x >> 29;
        return (long)(x & 0x7FFF_FFFF_FFFF_FFFFUL);
    }

    private EpochRecord RunEpoch(nn.Module model, StepRunner runner, IBatchSource batches, TrainerOptions options, int epoch,
        CancellationToken cancellationToken)
    {
        var clock = Stopwatch.StartNew();
        long epochSeed = EpochSeed(options.Seed, options.Stage, epoch);
        // Dropout draws from libtorch's global generators: reseeding them per epoch makes resume exact. TorchSharp's
        // manual_seed reaches only the CPU's, so a GPU's is reseeded too (a resumed CUDA run drifted without it).
        ComputeDevice.SeedGlobal(epochSeed);
        using var generator = new Generator((ulong)epochSeed);
        model.train();
        runner.BeginEpoch(epoch);
        runner.Sums.Clear();

        int step = 0;
        foreach (var batch in batches.Epoch(generator))
        {
            try
            {
                cancellationToken.ThrowIfCancellationRequested();
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
        }
        var means = ReadMeans(runner.Sums, options, epoch, step);
        runner.Sums.Clear();
        return new EpochRecord(epoch, clock.Elapsed.TotalSeconds, means);
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
        string path = Path.Combine(folder, Checkpoint.FileName(state.EpochsCompleted));
        Checkpoint.Save(path, model, optimizers, state, configurationJson);
        var stale = Directory.EnumerateFiles(folder, "epoch-*.ckpt")
            .OrderByDescending(Path.GetFileName, StringComparer.Ordinal).Skip(options.KeepCheckpoints);
        foreach (var old in stale) File.Delete(old);
        observer.Message($"{options.Stage}: checkpoint {path}");
    }

    private static void WriteLossTable(string path, IReadOnlyList<EpochRecord> history)
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
