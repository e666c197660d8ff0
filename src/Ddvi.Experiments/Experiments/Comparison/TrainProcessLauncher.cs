using System.Diagnostics;
using System.Reflection;

namespace Ddvi.Experiments.Comparison;

/// <summary>How a child <c>ddvi</c> process ended: its exit code and what it wrote to stderr.</summary>
public sealed record TrainProcessResult(int ExitCode, IReadOnlyList<string> ErrorLines);

/// <summary>
/// Starts <c>ddvi ARGUMENTS</c> as a child process and waits for it. Parallel comparison runs go through this
/// (libtorch's thread count and generators are process-wide, so concurrent runs need processes of their own);
/// tests substitute a fake.
/// </summary>
public interface ITrainProcessLauncher
{
    /// <summary>Runs <c>ddvi</c> with <paramref name="arguments"/> to its end, passing each output line (stdout and stderr) to <paramref name="output"/> as it arrives.</summary>
    /// <param name="stop">When cancelled, the child is asked to stop (SIGTERM: it finishes its step and writes a
    /// checkpoint) and waited for.</param>
    Task<TrainProcessResult> RunAsync(IReadOnlyList<string> arguments, Action<string> output, CancellationToken stop = default);
}

/// <summary>Runs the <c>ddvi</c> program as a child process: an executable, or <c>dotnet Ddvi.Cli.dll</c>.</summary>
/// <param name="fileName">The executable to start.</param>
/// <param name="leadingArguments">Arguments before the command's own (the assembly path when <paramref name="fileName"/> is the dotnet host).</param>
public sealed class DdviProcessLauncher(string fileName, IReadOnlyList<string> leadingArguments) : ITrainProcessLauncher
{
    public string FileName { get; } = fileName;
    public IReadOnlyList<string> LeadingArguments { get; } = leadingArguments;

    /// <summary>
    /// The program this process runs: its own executable (an apphost or single-file <c>ddvi</c>), or, under the
    /// <c>dotnet</c> host, the host with the entry assembly's path.
    /// </summary>
    public static DdviProcessLauncher ForCurrentProcess()
    {
        string process = Environment.ProcessPath
            ?? throw new InvalidOperationException("--jobs: cannot find this program's executable to start parallel runs; use --jobs 1.");
        if (!string.Equals(Path.GetFileNameWithoutExtension(process), "dotnet", StringComparison.OrdinalIgnoreCase))
            return new DdviProcessLauncher(process, []);
        string assembly = Assembly.GetEntryAssembly()?.Location is { Length: > 0 } location
            ? location
            : throw new InvalidOperationException("--jobs: cannot find the ddvi assembly to start parallel runs; use --jobs 1.");
        return new DdviProcessLauncher(process, [assembly]);
    }

    public async Task<TrainProcessResult> RunAsync(IReadOnlyList<string> arguments, Action<string> output, CancellationToken stop = default)
    {
        var start = new ProcessStartInfo(FileName)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var argument in LeadingArguments.Concat(arguments)) start.ArgumentList.Add(argument);

        var errors = new List<string>();
        using var process = new Process { StartInfo = start };
        process.OutputDataReceived += (_, e) =>
        {
            if (e.Data is not null) output(e.Data);
        };
        process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is null) return;
            lock (errors) errors.Add(e.Data);
            output(e.Data);
        };
        if (!process.Start())
            throw new InvalidOperationException($"could not start {FileName}");
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        using (stop.Register(() => AskToStop(process)))
            await process.WaitForExitAsync().ConfigureAwait(false);
        lock (errors) return new TrainProcessResult(process.ExitCode, [.. errors]);
    }

    /// <summary>SIGTERM on Linux and macOS (the child stops at a step with a checkpoint); elsewhere the process is ended.</summary>
    private static void AskToStop(Process process)
    {
        try
        {
            if (process.HasExited) return;
            if (OperatingSystem.IsWindows()) process.Kill(entireProcessTree: true);
            else SignalInterop.Terminate(process.Id);
        }
        catch (InvalidOperationException)
        {
            // Already gone.
        }
    }
}

internal static partial class SignalInterop
{
    private const int SigTerm = 15;

    [System.Runtime.InteropServices.LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static partial int Kill(int pid, int signal);

    public static void Terminate(int pid) => Kill(pid, SigTerm);
}
