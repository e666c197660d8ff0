using System.Globalization;

namespace Ddvi.Training;

/// <summary>Appends one timestamped line per epoch and message to a run's log file.</summary>
public sealed class LogFileObserver(string path) : ITrainingObserver
{
    public void StageStarted(string stage, int firstEpoch, int epochs, int stepsPerEpoch) =>
        Append($"{stage}: epochs {firstEpoch + 1}..{epochs}, {stepsPerEpoch} steps per epoch");

    public void StepCompleted(string stage, int epoch, int step, IReadOnlyDictionary<string, double>? runningLosses) { }

    public void EpochCompleted(string stage, EpochRecord record, int epochs) => Append(EpochLine.Format(stage, record, epochs));

    public void Message(string text) => Append(text);

    private void Append(string line)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        File.AppendAllText(path, DateTime.UtcNow.ToString("yyyy-MM-ddTHH:mm:ssZ", CultureInfo.InvariantCulture) + " " + line + "\n");
    }
}
