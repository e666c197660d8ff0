using System.Runtime.InteropServices;

namespace Ddvi.Cli;

/// <summary>
/// Turns the first SIGINT (Ctrl-C) or SIGTERM (what Slurm and most schedulers send before they preempt or kill a job)
/// into a stop request: training finishes the step it is in, writes a checkpoint, logs the stop and the resume
/// command, and the process exits with the signal's conventional code (130 or 143). A second signal stops at once,
/// with the terminal's cursor shown again. Outside training (evaluation), where no step can be finished, the first
/// signal stops at once too: every checkpoint is already written.
/// </summary>
internal sealed class StopSignals : IDisposable
{
    private readonly CancellationTokenSource _stop = new();
    private readonly PosixSignalRegistration[] _registrations;
    private int _signals;

    private StopSignals()
    {
        _registrations = [PosixSignalRegistration.Create(PosixSignal.SIGINT, Handle), PosixSignalRegistration.Create(PosixSignal.SIGTERM, Handle)];
    }

    /// <summary>Installs the handlers until disposed.</summary>
    public static StopSignals Install() => new();

    /// <summary>Cancelled by the first signal.</summary>
    public CancellationToken Token => _stop.Token;

    /// <summary>The first signal received, or null.</summary>
    public PosixSignal? Received { get; private set; }

    /// <summary>Whether a stop request can still be honoured gracefully (training is running).</summary>
    public bool Graceful { get; set; } = true;

    /// <summary>The conventional exit code of a process ended by <paramref name="signal"/>: 128 + its number.</summary>
    public static int ExitCode(PosixSignal signal) => signal switch
    {
        PosixSignal.SIGINT => 130,
        PosixSignal.SIGTERM => 143,
        _ => 1,
    };

    private void Handle(PosixSignalContext context)
    {
        context.Cancel = true; // the process decides when to end
        if (Interlocked.Increment(ref _signals) == 1 && Graceful)
        {
            Received = context.Signal;
            Console.Error.WriteLine($"{Name(context.Signal)} received: finishing the current step and writing a checkpoint (send it again to stop at once)");
            _stop.Cancel();
            return;
        }
        Received ??= context.Signal;
        Console.Error.WriteLine($"{Name(context.Signal)} received: stopping now; the run resumes from its last checkpoint");
        ShowCursor();
        Environment.Exit(ExitCode(context.Signal));
    }

    private static string Name(PosixSignal signal) => signal == PosixSignal.SIGINT ? "SIGINT (Ctrl-C)" : signal.ToString();

    /// <summary>A progress display hides the cursor; a process that ends in the middle of it shows it again.</summary>
    public static void ShowCursor()
    {
        if (!Console.IsOutputRedirected) Console.Out.Write("\u001b[?25h");
    }

    public void Dispose()
    {
        foreach (var registration in _registrations) registration.Dispose();
        _stop.Dispose();
    }
}
