using System.Runtime.InteropServices;

namespace Ddvi.FastPaths;

/// <summary>
/// glibc heap settings for Ddvi's allocation pattern, and trimming. <see cref="KeepFreedBlocks"/> stops the constant
/// unmapping and refaulting of the large blocks each training step frees and allocates again; <see cref="Trim"/>
/// hands memory that libtorch has freed back to the operating system. glibc keeps freed blocks in its per-thread arenas,
/// so after an evaluation phase that allocates tens of large temporaries (KDE and MMD blocks), the process's resident
/// size stays hundreds of MiB above what is alive; trimming between phases keeps the peak near the live size.
/// A no-op where glibc's <c>malloc_trim</c> does not exist (macOS, Windows, musl).
/// </summary>
public static class NativeHeap
{
    private static readonly Lock Gate = new();
    private static bool _unavailable = !OperatingSystem.IsLinux();
    private static bool? _keepingFreedBlocks;

    /// <summary>Set to off (or 0, false, no) to leave glibc's heap settings alone.</summary>
    public const string DisableVariable = "DDVI_HEAP_TUNING";

    /// <summary>Blocks below this size come from the heap, never from their own mapping (glibc's maximum for the setting).</summary>
    public const int MappingThresholdBytes = 32 << 20;

    /// <summary>Free memory at the top of the heap that glibc keeps instead of returning it.</summary>
    public const int TrimThresholdBytes = 1 << 30;

    /// <summary>
    /// Makes glibc serve blocks below <see cref="MappingThresholdBytes"/> from its heap and keep up to
    /// <see cref="TrimThresholdBytes"/> of freed memory mapped. By default glibc gives each block above an adaptive
    /// threshold (from 128 KiB) a mapping of its own and returns heap tops above twice that threshold; a training step
    /// frees and reallocates megabytes of activations, gradients and chain buffers, and every page of them faulted in
    /// again: a full Fashion-MNIST pipeline took 235 million minor page faults. Measured with <c>ddvi bench</c>: warm-up
    /// steps 20–22 → 16–17 ms, stage-3 steps 52–55 → 48–50 ms, page faults 0.9–1.1 M → 0.15 M, peak memory unchanged.
    /// Call it once, before the heavy allocations start (<see cref="CpuRuntime.Configure"/> does); a no-op off glibc or
    /// with <see cref="DisableVariable"/> set off. Idempotent and thread-safe.
    /// </summary>
    /// <returns>Whether the settings are in effect.</returns>
    public static bool KeepFreedBlocks()
    {
        lock (Gate)
            return _keepingFreedBlocks ??= Apply();
    }

    private static bool Apply()
    {
        if (_unavailable || MathKernelDispatch.IsSwitchedOff(Environment.GetEnvironmentVariable(DisableVariable)))
            return false;
        try
        {
            const int mmapThreshold = -3, trimThreshold = -1; // glibc's M_MMAP_THRESHOLD and M_TRIM_THRESHOLD
            return MallocOption(mmapThreshold, MappingThresholdBytes) == 1 && MallocOption(trimThreshold, TrimThresholdBytes) == 1;
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            return false;
        }
    }

    /// <summary>One line for logs and benchmark reports: which heap settings apply (reports only; applies nothing).</summary>
    public static string Description
    {
        get
        {
            bool? keeping;
            lock (Gate) keeping = _keepingFreedBlocks;
            return keeping switch
            {
                true => $"glibc heap: blocks under {MappingThresholdBytes >> 20} MiB from the heap, up to {TrimThresholdBytes >> 20} MiB of freed memory kept",
                false => "glibc heap: default settings",
                null => "glibc heap: default settings (CpuRuntime.Configure was not called)",
            };
        }
    }

    /// <summary>Returns free heap memory to the system (glibc <c>malloc_trim(0)</c>); true when the call was made.</summary>
    public static bool Trim()
    {
        if (_unavailable) return false;
        try
        {
            MallocTrim(0);
            return true;
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            _unavailable = true;
            return false;
        }
    }

    [DllImport("libc", EntryPoint = "mallopt")]
    private static extern int MallocOption(int parameter, int value);

    [DllImport("libc", EntryPoint = "malloc_trim")]
    private static extern int MallocTrim(nuint pad);
}
