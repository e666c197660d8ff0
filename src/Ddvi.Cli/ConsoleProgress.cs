using Ddvi.Training;
using Spectre.Console;

namespace Ddvi.Cli;

/// <summary>
/// Shows training on the console: a live progress bar (losses, ETA) on an interactive terminal, and
/// always one plain line per epoch and message, so logs and CI output stay readable.
/// </summary>
internal sealed class ConsoleProgress : ITrainingObserver
{
    private readonly ProgressContext? _context;
    private ProgressTask? _task;
    private int _stepsPerEpoch;
    private int _epochs;

    private ConsoleProgress(ProgressContext? context) => _context = context;

    /// <summary>Runs <paramref name="work"/> with a progress display when the console is interactive.</summary>
    public static T Run<T>(Func<ITrainingObserver, T> work)
    {
        bool interactive = AnsiConsole.Profile.Capabilities.Interactive && !Console.IsOutputRedirected;
        if (!interactive) return work(new ConsoleProgress(null));
        T result = default!;
        AnsiConsole.Progress()
            .AutoClear(false)
            .HideCompleted(false)
            .Columns(new TaskDescriptionColumn { Alignment = Justify.Left }, new ProgressBarColumn(), new PercentageColumn(),
                new ElapsedTimeColumn(), new RemainingTimeColumn(), new SpinnerColumn())
            .Start(context => result = work(new ConsoleProgress(context)));
        return result;
    }

    public void StageStarted(string stage, int firstEpoch, int epochs, int stepsPerEpoch)
    {
        _stepsPerEpoch = stepsPerEpoch;
        _epochs = epochs;
        if (_context is null) return;
        _task = _context.AddTask(Markup.Escape(stage), maxValue: Math.Max(1, (double)(epochs - firstEpoch) * stepsPerEpoch));
    }

    public void StepCompleted(string stage, int epoch, int step, IReadOnlyDictionary<string, double>? runningLosses)
    {
        if (_task is null) return;
        _task.Increment(1);
        if (runningLosses is not null)
        {
            var losses = string.Join(' ', runningLosses.Where(kv => kv.Key.EndsWith("/loss", StringComparison.Ordinal))
                .Select(kv => $"{kv.Key}={kv.Value:G4}"));
            _task.Description = Markup.Escape($"{stage} {epoch + 1}/{_epochs} {losses}");
        }
    }

    public void EpochCompleted(string stage, EpochRecord record, int epochs) => WriteLine(EpochLine.Format(stage, record, epochs));

    public void Message(string text) => WriteLine(text);

    private void WriteLine(string text)
    {
        if (_context is null) Console.WriteLine(text);
        else AnsiConsole.MarkupLine(Markup.Escape(text));
    }
}
