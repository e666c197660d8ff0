using Ddvi.Training;

namespace Ddvi.Tests;

/// <summary>Keeps what a trainer or runner reports, one line each: "start STAGE FIRST_EPOCH", "epoch STAGE EPOCH" (0-based), messages as they are.</summary>
internal sealed class RecordingObserver : ITrainingObserver
{
    public List<string> Lines { get; } = [];
    public void StageStarted(string stage, int firstEpoch, int epochs, int stepsPerEpoch) => Lines.Add($"start {stage} {firstEpoch}");
    public void StepCompleted(string stage, int epoch, int step, IReadOnlyDictionary<string, double>? runningLosses) { }
    public void EpochCompleted(string stage, EpochRecord record, int epochs) => Lines.Add($"epoch {stage} {record.Epoch}");
    public void Message(string text) => Lines.Add(text);
}
