namespace Ddvi.Training;

/// <summary>Loss means of one finished epoch, keyed "phase/term".</summary>
/// <param name="Threads">libtorch's CPU thread count during the epoch (0 in checkpoints written before it was recorded).</param>
public sealed record EpochRecord(int Epoch, double Seconds, IReadOnlyDictionary<string, double> Losses, int Threads = 0);

/// <summary>Receives a trainer's progress; the CLI draws it, a log file records it. Must not throw.</summary>
public interface ITrainingObserver
{
    void StageStarted(string stage, int firstEpoch, int epochs, int stepsPerEpoch);

    /// <summary>After every step; <paramref name="runningLosses"/> is given only at log intervals (reading losses syncs the device).</summary>
    void StepCompleted(string stage, int epoch, int step, IReadOnlyDictionary<string, double>? runningLosses);

    void EpochCompleted(string stage, EpochRecord record, int epochs);

    void Message(string text);
}

/// <summary>Forwards every event to several observers.</summary>
public sealed class CompositeObserver(params ITrainingObserver[] observers) : ITrainingObserver
{
    public void StageStarted(string stage, int firstEpoch, int epochs, int stepsPerEpoch)
    {
        foreach (var o in observers) o.StageStarted(stage, firstEpoch, epochs, stepsPerEpoch);
    }

    public void StepCompleted(string stage, int epoch, int step, IReadOnlyDictionary<string, double>? runningLosses)
    {
        foreach (var o in observers) o.StepCompleted(stage, epoch, step, runningLosses);
    }

    public void EpochCompleted(string stage, EpochRecord record, int epochs)
    {
        foreach (var o in observers) o.EpochCompleted(stage, record, epochs);
    }

    public void Message(string text)
    {
        foreach (var o in observers) o.Message(text);
    }
}

/// <summary>Ignores everything (tests, library callers that want silence).</summary>
public sealed class SilentObserver : ITrainingObserver
{
    public static SilentObserver Instance { get; } = new();
    public void StageStarted(string stage, int firstEpoch, int epochs, int stepsPerEpoch) { }
    public void StepCompleted(string stage, int epoch, int step, IReadOnlyDictionary<string, double>? runningLosses) { }
    public void EpochCompleted(string stage, EpochRecord record, int epochs) { }
    public void Message(string text) { }
}

/// <summary>Formats an epoch as one plain log line: "stage epoch 3/10 12.3s phase/term=… …".</summary>
public static class EpochLine
{
    public static string Format(string stage, EpochRecord record, int epochs) =>
        $"{stage} epoch {record.Epoch + 1}/{epochs} {record.Seconds:F1}s " +
        string.Join(' ', record.Losses.Select(kv => $"{kv.Key}={kv.Value:G5}"));
}
