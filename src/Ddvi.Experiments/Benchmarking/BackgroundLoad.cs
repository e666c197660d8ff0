using System.Diagnostics;
using Ddvi.Runtime;

namespace Ddvi.Benchmarking;

/// <summary>
/// Busy processes of the benchmark's own, running for the duration of a measurement (<c>ddvi bench --background-load</c>),
/// so that the bench can show how training slows down when something else wants the machine's cores.
/// </summary>
/// <remarks>
/// Each process is a POSIX shell counting in a loop: always runnable, at the default priority, working in user mode like
/// a compiler or a second training run. Every few tens of milliseconds it checks that the process that started it is still
/// its parent and exits when it is not, so a bench that is killed (even by SIGKILL, which runs no clean-up) leaves nothing
/// spinning behind. <see cref="Dispose"/> kills them at once and waits for them; so does the end of the process, for a
/// bench stopped by Ctrl-C.
/// </remarks>
public sealed class BackgroundLoad : IDisposable
{
    /// <summary>The shell that runs the loop.</summary>
    public const string Shell = "/bin/sh";

    /// <summary>
    /// The loop, given its parent's process id as <c>$1</c>: rounds of 20,000 additions (≈ 20 ms with dash), each after
    /// reading its own parent's id from <c>/proc/$$/stat</c> (a shell built-in, no new process). Once the parent has exited
    /// the loop is re-parented and the ids differ, even while the dead parent waits to be reaped (where <c>kill -0</c> would
    /// still succeed) and even if the parent died before the shell started (where <c>$PPID</c> would already be the new one).
    /// </summary>
    public const string Script =
        "while read -r _ _ _ q _ < /proc/$$/stat && [ \"$q\" = \"$1\" ]; do i=0; while [ \"$i\" -lt 20000 ]; do i=$((i + 1)); done; done";

    private readonly List<Process> _processes = [];
    private readonly EventHandler _onExit;
    private bool _disposed;

    private BackgroundLoad(int count)
    {
        _onExit = (_, _) => Stop();
        AppDomain.CurrentDomain.ProcessExit += _onExit;
        try
        {
            for (int i = 0; i < count; i++)
            {
                var start = new ProcessStartInfo(Shell) { UseShellExecute = false, RedirectStandardInput = false };
                start.ArgumentList.Add("-c");
                start.ArgumentList.Add(Script);
                start.ArgumentList.Add("ddvi-busy");                                          // $0
                start.ArgumentList.Add(Environment.ProcessId.ToString(System.Globalization.CultureInfo.InvariantCulture)); // $1
                _processes.Add(Process.Start(start) ?? throw new InvalidOperationException($"--background-load: could not start {Shell}"));
            }
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    /// <summary>Starts <paramref name="count"/> busy processes (0 starts none).</summary>
    /// <exception cref="ArgumentOutOfRangeException">A negative count.</exception>
    /// <exception cref="InvalidOperationException">No <see cref="Shell"/> or no <c>/proc</c> (Linux's) on this system, or a
    /// process would not start.</exception>
    public static BackgroundLoad Start(int count)
    {
        if (count < 0) throw new ArgumentOutOfRangeException(nameof(count), count, "--background-load: expected a count of busy processes ≥ 0");
        if (count > 0 && (!File.Exists(Shell) || !File.Exists("/proc/self/stat")))
            throw new InvalidOperationException($"--background-load needs {Shell} and Linux's /proc for its busy processes, and this system lacks them");
        return new BackgroundLoad(count);
    }

    /// <summary>Operating-system ids of the busy processes.</summary>
    public IReadOnlyList<int> ProcessIds => _processes.Select(p => p.Id).ToArray();

    /// <summary>CPU time the busy processes have used so far (Linux; 0 elsewhere).</summary>
    public double CpuSeconds => _processes.Sum(p => CpuActivity.ProcessCpuSeconds(p.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)) ?? 0);

    /// <summary>Kills the busy processes and waits until they have exited.</summary>
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        Stop();
        AppDomain.CurrentDomain.ProcessExit -= _onExit;
        foreach (var process in _processes) process.Dispose();
    }

    private void Stop()
    {
        foreach (var process in _processes)
        {
            try
            {
                if (!process.HasExited) process.Kill();
                process.WaitForExit(5_000);
            }
            catch (InvalidOperationException)
            {
                // never started or already reaped
            }
        }
    }
}
