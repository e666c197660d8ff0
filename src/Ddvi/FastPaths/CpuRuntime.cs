namespace Ddvi.FastPaths;

/// <summary>What <see cref="CpuRuntime.Configure"/> set for this process.</summary>
/// <param name="MathKernels">MKL's kernel choice (<see cref="MathKernelDispatch.Ensure"/>).</param>
/// <param name="HeapTuned">Whether glibc's heap settings are in effect (<see cref="NativeHeap.KeepFreedBlocks"/>).</param>
/// <param name="OpenMpWaiting">How long libtorch's OpenMP threads spin before sleeping (<see cref="FastPaths.OpenMpWaiting"/>).</param>
/// <param name="DefaultThreads">libtorch's default thread count after the call: its own, or <see cref="CpuRuntime.AvailableCores"/>
/// where its own was more.</param>
/// <param name="ThreadsCapped">Whether libtorch's own default was above the cores available and was lowered to them.</param>
public sealed record CpuRuntimeState(MathKernelDispatchState MathKernels, bool HeapTuned, OpenMpWaitingState OpenMpWaiting, int DefaultThreads,
    bool ThreadsCapped)
{
    /// <summary>One line for logs and benchmark reports.</summary>
    public string Description => $"{MathKernels.Description}; {NativeHeap.Description}; {OpenMpWaiting.Description}"
        + (ThreadsCapped ? $"; libtorch's default threads lowered to the {DefaultThreads} cores available" : "");
}

/// <summary>
/// The process-wide CPU settings Ddvi runs fastest with, applied by one explicit call at start-up. The <c>ddvi</c>
/// command, <c>ddvi bench</c>, the test assembly and <see cref="Inference.DdviFit.Fit"/> call it first; a program that
/// uses the rest of the library directly should call it itself, before its first tensor operation.
/// </summary>
/// <remarks>
/// <para>It sets three things, each switched off by an environment variable set to <c>off</c> (or <c>0</c>, <c>false</c>,
/// <c>no</c>) before the process starts:</para>
/// <list type="number">
/// <item><b>libgomp's spin before sleeping</b>, shortened (<see cref="FastPaths.OpenMpWaiting"/>) so that libtorch's OpenMP
/// threads do not hold both cores when another process wants one. libgomp reads it when libtorch loads, so this comes
/// first of all. Off: <c>DDVI_OPENMP_SPIN</c>; a <c>GOMP_SPINCOUNT</c> or <c>OMP_WAIT_POLICY</c> of your own wins.</item>
/// <item><b>MKL's AVX-512 kernels</b> on non-Intel x86-64 CPUs that have AVX-512 (<see cref="MathKernelDispatch"/>):
/// libtorch's MKL otherwise runs its AVX2 kernels there, at about half the matrix-product rate. MKL fixes its choice at
/// its first matrix product, so this must come before any. Off: <c>DDVI_MKL_AVX512</c>.</item>
/// <item><b>glibc's heap</b> keeps freed blocks below 32 MiB mapped (<see cref="NativeHeap.KeepFreedBlocks"/>), so
/// the buffers each training step frees and allocates again are not unmapped and faulted in page by page. Off:
/// <c>DDVI_HEAP_TUNING</c>.</item>
/// </list>
/// <para>It also lowers libtorch's default thread count to <see cref="AvailableCores"/> where libtorch's own (one per
/// core the process may run on, ignoring a container's CPU quota) is more: threads beyond the cores a process gets only
/// wait for each other. An explicit <c>--threads</c> is applied later and wins.</para>
/// <para>Another switch needs no call: Ddvi's own parallel loops and chain kernel run on libtorch's OpenMP threads,
/// decided at their first use; <c>DDVI_OPENMP_LOOPS=off</c> runs them on .NET's thread pool instead.</para>
/// <para>The settings change speed only; results differ at most by float32 rounding. Idempotent and thread-safe: the
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
            var waiting = OpenMpWaiting.Apply();      // before libtorch, and with it libgomp, is loaded: libgomp reads it then
            var kernels = MathKernelDispatch.Ensure(); // before any matrix product, or MKL keeps its first kernel choice
            bool heap = NativeHeap.KeepFreedBlocks(); // before training allocates its first large tensors
            int threads = TorchSharp.torch.get_num_threads();
            bool capped = threads > AvailableCores;
            if (capped) TorchSharp.torch.set_num_threads(threads = AvailableCores);
            return _state = new CpuRuntimeState(kernels, heap, waiting, threads, capped);
        }
    }

    /// <summary>
    /// The cores this process can actually use: .NET's <see cref="Environment.ProcessorCount"/>, which counts the CPUs in
    /// the process's affinity mask and, in a container with a CPU quota (cgroup <c>cpu.max</c>), the quota rounded up.
    /// </summary>
    public static int AvailableCores => Math.Max(1, Environment.ProcessorCount);
}
