using System.Runtime.InteropServices;

namespace Ddvi.Runtime;

/// <summary>
/// Hands memory that libtorch has freed back to the operating system. glibc keeps freed blocks in its per-thread arenas,
/// so after an evaluation phase that allocates tens of large temporaries (KDE and MMD blocks), the process's resident
/// size stays hundreds of MiB above what is alive; trimming between phases keeps the peak near the live size.
/// A no-op where glibc's <c>malloc_trim</c> does not exist (macOS, Windows, musl).
/// </summary>
public static class NativeHeap
{
    private static bool _unavailable = !OperatingSystem.IsLinux();

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

    [DllImport("libc", EntryPoint = "malloc_trim")]
    private static extern int MallocTrim(nuint pad);
}
