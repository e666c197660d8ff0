using System.Runtime.ExceptionServices;
using System.Runtime.InteropServices;

namespace Ddvi.FastPaths;

/// <summary>
/// Parallel loops run on libtorch's own OpenMP threads (libgomp's <c>GOMP_parallel</c>, the entry point a
/// <c>#pragma omp parallel</c> compiles to) rather than on .NET's thread pool.
/// </summary>
/// <remarks>
/// Between two libtorch operations libgomp's worker keeps spinning on its core, waiting for the next one. A
/// <c>Parallel.For</c> issued then has to win that core from a spinning thread, so in practice the calling thread did
/// nearly all of the loop: profiled over stage-3 steps, <see cref="FusedAdam"/>'s loop took 11% of the main
/// thread's samples and 1% of the pool threads', while the OpenMP worker spun through 40% of its own. Handing the chunks
/// to the same team puts them on that spinning thread at once. Where no libgomp is loaded (another platform or BLAS
/// build), or with <see cref="DisableVariable"/> set off, the loop falls back to <c>Parallel.For</c>.
/// </remarks>
internal static unsafe class OpenMpTeam
{
    private static readonly Lazy<nint> ParallelEntry = new(Resolve);

    /// <summary>Set to off (or 0, false, no) to run these loops on .NET's thread pool instead (for comparisons).</summary>
    public const string DisableVariable = "DDVI_OPENMP_LOOPS";

    /// <summary>Whether libgomp's <c>GOMP_parallel</c> was found in this process (and not switched off).</summary>
    public static bool IsAvailable => ParallelEntry.Value != 0;

    /// <summary>One line for logs and benchmark reports: where Ddvi's own parallel loops run.</summary>
    public static string Description => IsAvailable
        ? "Ddvi's parallel loops and chain kernel on libtorch's OpenMP threads"
        : "Ddvi's parallel loops on .NET's thread pool, chain kernel on one thread";

    /// <summary>
    /// Runs <paramref name="body"/>(chunk) for every chunk in [0, <paramref name="chunks"/>) on at most
    /// <paramref name="threads"/> threads, the calling one included, each taking the next chunk when it finishes one;
    /// returns when all are done and rethrows the first exception a chunk threw (later chunks are then skipped).
    /// </summary>
    public static void For(long chunks, int threads, Action<long> body)
    {
        ArgumentNullException.ThrowIfNull(body);
        if (chunks <= 0) return;
        int team = (int)Math.Clamp(chunks, 1, Math.Max(1, threads));
        if (team == 1)
        {
            for (long chunk = 0; chunk < chunks; chunk++) body(chunk);
            return;
        }
        if (!IsAvailable)
        {
            ForOnThreadPool(chunks, team, body);
            return;
        }
        var work = new Work(chunks, body);
        var handle = GCHandle.Alloc(work);
        try
        {
            var parallel = (delegate* unmanaged<delegate* unmanaged<nint, void>, nint, uint, uint, void>)ParallelEntry.Value;
            parallel(&RunChunks, GCHandle.ToIntPtr(handle), (uint)team, 0);
        }
        finally
        {
            handle.Free();
        }
        work.Failure?.Throw();
    }

    /// <summary>The fallback: the same loop on .NET's thread pool, a chunk's exception rethrown as itself (not wrapped).</summary>
    internal static void ForOnThreadPool(long chunks, int threads, Action<long> body)
    {
        try
        {
            Parallel.For(0L, chunks, new ParallelOptions { MaxDegreeOfParallelism = Math.Max(1, threads) }, chunk => body(chunk));
        }
        catch (AggregateException e) when (e.InnerExceptions.Count > 0)
        {
            ExceptionDispatchInfo.Capture(e.InnerExceptions[0]).Throw();
        }
    }

    // Called by libgomp on every thread of the team; an exception must not cross back into native code.
    [UnmanagedCallersOnly]
    private static void RunChunks(nint data) => ((Work)GCHandle.FromIntPtr(data).Target!).Run();

    private sealed class Work(long chunks, Action<long> body)
    {
        private long _next = -1;
        private ExceptionDispatchInfo? _failure;

        public ExceptionDispatchInfo? Failure => Volatile.Read(ref _failure);

        public void Run()
        {
            try
            {
                for (long chunk = Interlocked.Increment(ref _next); chunk < chunks && Failure is null; chunk = Interlocked.Increment(ref _next))
                    body(chunk);
            }
            catch (Exception e)
            {
                Interlocked.CompareExchange(ref _failure, ExceptionDispatchInfo.Capture(e), null);
            }
        }
    }

    private static nint Resolve()
    {
        if (MathKernelDispatch.IsSwitchedOff(Environment.GetEnvironmentVariable(DisableVariable))) return 0;
        _ = TorchSharp.torch.get_num_threads(); // loads libtorch, and with it the libgomp it runs its threads on
        string? library = LoadedLibraries.FindStartingWith("libgomp");
        if (library is null || !NativeLibrary.TryLoad(library, out var handle)) return 0;
        return NativeLibrary.TryGetExport(handle, "GOMP_parallel", out var entry) ? entry : 0;
    }
}
