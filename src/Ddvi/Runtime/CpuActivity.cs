using System.Diagnostics;
using System.Globalization;

namespace Ddvi.Runtime;

/// <summary>
/// CPU time used by the whole machine and by this process, read from Linux's <c>/proc</c>, to tell how much of the machine
/// other work took while a benchmark ran: an "idle" figure is idle only if nothing else was running.
/// </summary>
public readonly record struct CpuActivity(double MachineBusySeconds, double ProcessSeconds, long Timestamp)
{
    private const double TicksPerSecond = 100; // USER_HZ, 100 on every Linux architecture .NET runs on

    /// <summary>The machine's and this process's CPU time now, or null off Linux.</summary>
    public static CpuActivity? Now()
    {
        if (!File.Exists("/proc/stat") || !File.Exists("/proc/self/stat")) return null;
        try
        {
            // cpu  user nice system idle iowait irq softirq steal ...: everything but idle and iowait was taken by someone,
            // steal by other guests of the host.
            var fields = File.ReadLines("/proc/stat").First().Split(' ', StringSplitOptions.RemoveEmptyEntries);
            long busy = 0;
            for (int i = 1; i < Math.Min(fields.Length, 9); i++)
                if (i != 4 && i != 5) busy += long.Parse(fields[i], CultureInfo.InvariantCulture);
            return new CpuActivity(busy / TicksPerSecond, ProcessCpuSeconds("self") ?? 0, Stopwatch.GetTimestamp());
        }
        catch (Exception e) when (e is IOException or FormatException or InvalidOperationException)
        {
            return null;
        }
    }

    /// <summary>User and system time of process <paramref name="id"/> ("self" for this one) so far, or null when it is gone.</summary>
    public static double? ProcessCpuSeconds(string id)
    {
        try
        {
            // Fields after the parenthesised command name (which may hold spaces): state is the 3rd field, utime the 14th, stime the 15th.
            string stat = File.ReadAllText($"/proc/{id}/stat");
            var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
            return (long.Parse(fields[11], CultureInfo.InvariantCulture) + long.Parse(fields[12], CultureInfo.InvariantCulture)) / TicksPerSecond;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException or IndexOutOfRangeException)
        {
            return null;
        }
    }

    /// <summary>
    /// Cores' worth of CPU time that neither this process nor its own busy processes used between <paramref name="before"/>
    /// and <paramref name="after"/>, averaged over the interval: 1.0 means one core was busy with something else throughout.
    /// </summary>
    public static double? OtherCores(CpuActivity? before, CpuActivity? after, double ownBusySeconds = 0)
    {
        if (before is not { } b || after is not { } a) return null;
        double seconds = Stopwatch.GetElapsedTime(b.Timestamp, a.Timestamp).TotalSeconds;
        if (seconds <= 0) return null;
        double other = (a.MachineBusySeconds - b.MachineBusySeconds) - (a.ProcessSeconds - b.ProcessSeconds) - ownBusySeconds;
        return Math.Max(0, other) / seconds;
    }
}
