using System.Diagnostics;

namespace Ddvi.Benchmarking;

/// <summary>
/// The process's resident memory as the operating system counts it (native libtorch buffers included, which the .NET
/// GC does not see). On Linux the peak (VmHWM) can be reset, so each benchmark reports its own peak.
/// </summary>
public static class ProcessMemory
{
    const string StatusFile = "/proc/self/status";
    const string ClearRefsFile = "/proc/self/clear_refs";

    /// <summary>Peak resident set size in bytes since the process started or the last successful <see cref="ResetPeak"/>.</summary>
    public static long PeakResidentBytes()
    {
        long? fromProc = ReadStatusField("VmHWM:");
        if (fromProc is { } bytes) return bytes;
        using var process = Process.GetCurrentProcess();
        return process.PeakWorkingSet64;
    }

    /// <summary>Current resident set size in bytes.</summary>
    public static long ResidentBytes()
    {
        long? fromProc = ReadStatusField("VmRSS:");
        if (fromProc is { } bytes) return bytes;
        using var process = Process.GetCurrentProcess();
        return process.WorkingSet64;
    }

    /// <summary>
    /// Resets the peak to the current resident size (Linux: writing 5 to /proc/self/clear_refs). Returns false where the
    /// system does not allow it, in which case <see cref="PeakResidentBytes"/> keeps the peak since the process started.
    /// </summary>
    public static bool ResetPeak()
    {
        try
        {
            if (!File.Exists(ClearRefsFile)) return false;
            File.WriteAllText(ClearRefsFile, "5");
            return true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }

    static long? ReadStatusField(string field)
    {
        if (!File.Exists(StatusFile)) return null;
        foreach (var line in File.ReadLines(StatusFile))
        {
            if (!line.StartsWith(field, StringComparison.Ordinal)) continue;
            var parts = line[field.Length..].Trim().Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (parts.Length >= 1 && long.TryParse(parts[0], out long kib)) return kib * 1024;
        }
        return null;
    }
}
