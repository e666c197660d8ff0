using Ddvi.Data;
using Ddvi.Experiments;
using Ddvi.Training;

namespace Ddvi.Cli.Commands;

/// <summary>
/// Turns failures into one clear line on stderr and an exit code: 2 for bad input, 1 for a failed run, 130 or 143 for a
/// run stopped by SIGINT or SIGTERM (after its checkpoint was written). Nothing reaches the user as a stack trace: an
/// unexpected exception is named with its type and message.
/// </summary>
internal static class CommandRunner
{
    /// <summary>Runs <paramref name="action"/>; SIGINT and SIGTERM end it at once with their exit codes.</summary>
    public static int Run(Func<int> action) => Run(_ => action(), graceful: false);

    /// <summary>
    /// Runs <paramref name="action"/> with SIGINT and SIGTERM turned into a stop request (<see cref="StopSignals"/>) when
    /// <paramref name="graceful"/>; the action reads <see cref="StopSignals.Token"/>.
    /// </summary>
    public static int Run(Func<StopSignals, int> action, bool graceful = true)
    {
        using var signals = StopSignals.Install();
        signals.Graceful = graceful;
        try
        {
            return action(signals);
        }
        catch (OperationCanceledException e) when (signals.Received is { } signal)
        {
            StopSignals.ShowCursor();
            Console.Error.WriteLine($"stopped: {e.Message}");
            return StopSignals.ExitCode(signal);
        }
        catch (ArgumentException e)
        {
            Console.Error.WriteLine($"error: {e.Message}");
            return 2;
        }
        catch (Exception e) when (e is FileNotFoundException or InvalidDataException or DataFormatException
                                      or DatasetUnavailableException or NonFiniteLossException or InvalidOperationException
                                      or IOException or UnauthorizedAccessException)
        {
            Console.Error.WriteLine($"error: {e.Message}");
            return 1;
        }
        catch (Exception e)
        {
            Console.Error.WriteLine($"error: unexpected {e.GetType().Name}: {e.Message}");
            Console.Error.WriteLine("This is a bug in Ddvi; please report it with the command and its train.log. A run's last checkpoint is kept.");
            return 1;
        }
    }
}
