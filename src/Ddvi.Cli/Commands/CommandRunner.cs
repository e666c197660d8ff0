using Ddvi.Data;
using Ddvi.Training;

namespace Ddvi.Cli.Commands;

/// <summary>Turns failures into one clear line on stderr and an exit code: 2 for bad input, 1 for a failed run.</summary>
internal static class CommandRunner
{
    public static int Run(Func<int> action)
    {
        try
        {
            return action();
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
    }
}
