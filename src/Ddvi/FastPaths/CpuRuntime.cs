namespace Ddvi.FastPaths;

/// <summary>What <see cref="CpuRuntime.Configure"/> set for this process.</summary>
/// <param name="MathKernels">MKL's kernel choice (<see cref="MathKernelDispatch.Ensure"/>).</param>
/// <param name="HeapTuned">Whether glibc's heap settings are in effect (<see cref="NativeHeap.KeepFreedBlocks"/>).</param>
public sealed record CpuRuntimeState(MathKernelDispatchState MathKernels, bool HeapTuned)
{
    /// <summary>One line for logs and benchmark reports.</summary>
    public string Description => $"{MathKernels.Description}; {NativeHeap.Description}";
}

/// <summary>
/// The process-wide CPU settings Ddvi runs fastest with, applied by one explicit call at start-up. The <c>ddvi</c>
/// command, <c>ddvi bench</c>, the test assembly and <see cref="Inference.DdviFit.Fit"/> call it first; a program that
/// uses the rest of the library directly should call it itself, before its first tensor operation.
/// </summary>
/// <remarks>
/// <para>It sets two things, each switched off by an environment variable set to <c>off</c> (or <c>0</c>, <c>false</c>,
/// <c>no</c>) before the process starts:</para>
/// <list type="number">
/// <item><b>MKL's AVX-512 kernels</b> on non-Intel x86-64 CPUs that have AVX-512 (<see cref="MathKernelDispatch"/>):
/// libtorch's MKL otherwise runs its AVX2 kernels there, at about half the matrix-product rate. MKL fixes its choice at
/// its first matrix product, so this must come before any. Off: <c>DDVI_MKL_AVX512</c>.</item>
/// <item><b>glibc's heap</b> keeps freed blocks below 32 MiB mapped (<see cref="NativeHeap.KeepFreedBlocks"/>), so
/// the buffers each training step frees and allocates again are not unmapped and faulted in page by page. Off:
/// <c>DDVI_HEAP_TUNING</c>.</item>
/// </list>
/// <para>A third switch needs no call: Ddvi's own parallel loops and chain kernel run on libtorch's OpenMP threads,
/// decided at their first use; <c>DDVI_OPENMP_LOOPS=off</c> runs them on .NET's thread pool instead.</para>
/// <para>Both settings change speed only; results differ at most by float32 rounding. Idempotent and thread-safe: the
/// first call decides for the process and later calls return its outcome. Resolving a device
/// (<see cref="Runtime.ComputeDevice.Resolve"/>) no longer applies them.</para>
/// </remarks>
public static class CpuRuntime
{
    private static readonly Lock Gate = new();
    private static CpuRuntimeState? _state;

    /// <summary>The outcome of the first <see cref="Configure"/> call, or null before it.</summary>
    public static CpuRuntimeState? State => _state;

    /// <summary>Applies the settings (once per process) and says what applies; see the class remarks.</summary>
    public static CpuRuntimeState Configure()
    {
        lock (Gate)
        {
            if (_state is { } done) return done;
            var kernels = MathKernelDispatch.Ensure(); // before any matrix product, or MKL keeps its first kernel choice
            bool heap = NativeHeap.KeepFreedBlocks(); // before training allocates its first large tensors
            return _state = new CpuRuntimeState(kernels, heap);
        }
    }
}
