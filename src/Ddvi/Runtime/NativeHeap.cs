using System.Runtime.InteropServices;

namespace Ddvi.Runtime;

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
    /// Call it once, before the heavy allocations start; a no-op off glibc or with <see cref="DisableVariable"/> set off.
    /// </summary>
    /// <returns>Whether the settings are in effect.</returns>
    public static bool KeepFreedBlocks()
    {
        if (_keepingFreedBlocks is bool done) return done;
        if (_unavailable || MathKernelDispatch.IsSwitchedOff(Environment.GetEnvironmentVariable(DisableVariable)))
            return (_keepingFreedBlocks = false).Value;
        try
        {
            const int mmapThreshold = -3, trimThreshold = -1; // glibc's M_MMAP_THRESHOLD and M_TRIM_THRESHOLD
            bool applied = MallocOption(mmapThreshold, MappingThresholdBytes) == 1 && MallocOption(trimThreshold, TrimThresholdBytes) == 1;
            return (_keepingFreedBlocks = applied).Value;
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            return (_keepingFreedBlocks = false).Value;
        }
    }

    /// <summary>One line for logs and benchmark reports: which heap settings apply.</summary>
    public static string Description => KeepFreedBlocks()
        ? $"glibc heap: blocks under {MappingThresholdBytes >> 20} MiB from the heap, up to {TrimThresholdBytes >> 20} MiB of freed memory kept"
        : "glibc heap: default settings";

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
