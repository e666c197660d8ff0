using System.Diagnostics;
using System.Runtime;

namespace Ddvi.Benchmarking;

/// <summary>
/// How long .NET's JIT has compiled nothing, on any thread (tiered compilation's background recompilations included:
/// <see cref="JitInfo.GetCompiledMethodCount"/> counts every compilation). The benchmarks time steps only after it has
/// been quiet for a while (<see cref="BenchmarkOptions.JitQuietSeconds"/>).
/// </summary>
internal sealed class JitActivity
{
    private readonly Stopwatch _sinceChange = Stopwatch.StartNew();
    private long _compiled = JitInfo.GetCompiledMethodCount(currentThread: false);

    /// <summary>Seconds since the count of compiled methods last changed (as seen by the calls to this method).</summary>
    public double SecondsQuiet()
    {
        long compiled = JitInfo.GetCompiledMethodCount(currentThread: false);
        if (compiled != _compiled)
        {
            _compiled = compiled;
            _sinceChange.Restart();
        }
        return _sinceChange.Elapsed.TotalSeconds;
    }
}
