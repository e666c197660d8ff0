using System.Runtime.InteropServices;

namespace Ddvi.FastPaths;

/// <summary>What <see cref="OpenMpWaiting.Apply"/> found and did.</summary>
public enum OpenMpWaitingStatus
{
    /// <summary><see cref="OpenMpWaiting.SpinCountVariable"/> was set in the native environment before libgomp started.</summary>
    Shortened,
    /// <summary>The environment already held <c>GOMP_SPINCOUNT</c> or <c>OMP_WAIT_POLICY</c>; libgomp reads those.</summary>
    SetByUser,
    /// <summary>Switched off by <see cref="OpenMpWaiting.DisableVariable"/>; libgomp's default spin applies.</summary>
    Disabled,
    /// <summary>libgomp was already loaded, so it had read its settings; nothing was changed.</summary>
    TooLate,
    /// <summary>Not Linux, or no libc <c>setenv</c>; nothing was changed.</summary>
    NotApplicable,
}

/// <summary>The outcome of <see cref="OpenMpWaiting.Apply"/>, with a sentence for logs and benchmark reports.</summary>
public sealed record OpenMpWaitingState(OpenMpWaitingStatus Status, string Description);

/// <summary>
/// How long libtorch's OpenMP threads (GNU libgomp) spin before they sleep, waiting for the next parallel region or for
/// the rest of their team at a barrier. libgomp's default is <c>GOMP_SPINCOUNT</c> = 300,000 pause instructions, which on
/// the reference machine (AMD EPYC, Zen 5) take ≈ 11 ms, longer than the operating system's time slice: between two
/// libtorch operations the idle worker keeps its core busy, and a thread that waits at a barrier for a teammate that the
/// scheduler has put aside burns its own slice spinning. Alone on the machine that costs nothing; with one other busy process
/// on two cores, three threads want two cores and training slows several-fold instead of at most twofold. Ddvi sets
/// <see cref="SpinCount"/> (≈ 0.4 ms of spinning there) instead, which keeps the worker spinning through the short gaps
/// between the operations of a step.
/// </summary>
/// <remarks>
/// <para>libgomp reads its settings from the native environment once, when it is loaded with libtorch, so this must run
/// before the first TorchSharp call, and it goes through libc's <c>setenv</c>: .NET's
/// <c>Environment.SetEnvironmentVariable</c> changes only the runtime's own copy on Linux, which libgomp never sees.
/// <see cref="CpuRuntime.Configure"/> calls it first. A <c>GOMP_SPINCOUNT</c> or <c>OMP_WAIT_POLICY</c> already in the
/// environment is left alone (<c>OMP_WAIT_POLICY=PASSIVE</c> sleeps at once, <c>ACTIVE</c> spins for ever), and
/// <c>DDVI_OPENMP_SPIN=off</c> keeps libgomp's default. <c>OMP_DISPLAY_ENV=VERBOSE</c> makes libgomp print the value it
/// read. Speed only: which thread computes what does not change, so results are identical.</para>
/// </remarks>
public static class OpenMpWaiting
{
    /// <summary>Set to off (or 0, false, no) to keep libgomp's default spin.</summary>
    public const string DisableVariable = "DDVI_OPENMP_SPIN";

    /// <summary>libgomp's variable for the number of spins before a waiting thread sleeps.</summary>
    public const string SpinCountVariable = "GOMP_SPINCOUNT";

    /// <summary>libgomp's variable for its waiting policy, which overrides the spin count when set.</summary>
    public const string WaitPolicyVariable = "OMP_WAIT_POLICY";

    /// <summary>Spins before a waiting OpenMP thread sleeps: 1/30 of libgomp's default 300,000.</summary>
    public const long SpinCount = 10_000;

    private static readonly Lock Gate = new();
    private static OpenMpWaitingState? _state;

    /// <summary>The outcome of the first <see cref="Apply"/> call, or null before it.</summary>
    public static OpenMpWaitingState? State => _state;

    /// <summary>Sets <see cref="SpinCountVariable"/> for libgomp where nothing else decides it (see the class remarks).
    /// Idempotent; the first call decides.</summary>
    public static OpenMpWaitingState Apply()
    {
        lock (Gate)
            return _state ??= Decide();
    }

    /// <summary>A variable of the process's native environment (libc <c>getenv</c>, which libgomp reads), or null.</summary>
    public static string? NativeVariable(string name)
    {
        if (!OperatingSystem.IsLinux()) return Environment.GetEnvironmentVariable(name);
        try
        {
            return Marshal.PtrToStringUTF8(GetEnv(name));
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            return Environment.GetEnvironmentVariable(name);
        }
    }

    private static OpenMpWaitingState Decide()
    {
        string? off = Environment.GetEnvironmentVariable(DisableVariable);
        if (MathKernelDispatch.IsSwitchedOff(off))
            return new(OpenMpWaitingStatus.Disabled, $"OpenMP threads spin libgomp's default before sleeping ({DisableVariable}={off})");
        if (!OperatingSystem.IsLinux())
            return new(OpenMpWaitingStatus.NotApplicable, "OpenMP waiting left to the runtime (not Linux)");
        foreach (string name in (string[])[WaitPolicyVariable, SpinCountVariable])
            if (NativeVariable(name) is { } value)
                return new(OpenMpWaitingStatus.SetByUser, $"OpenMP waiting as the environment sets it ({name}={value})");
        if (LoadedLibraries.FindStartingWith("libgomp") is not null)
            return new(OpenMpWaitingStatus.TooLate, "OpenMP threads spin libgomp's default before sleeping (libgomp was loaded before Ddvi could set it)");
        try
        {
            if (SetEnv(SpinCountVariable, SpinCount.ToString(System.Globalization.CultureInfo.InvariantCulture), 0) != 0)
                return new(OpenMpWaitingStatus.NotApplicable, "OpenMP threads spin libgomp's default before sleeping (setenv failed)");
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            return new(OpenMpWaitingStatus.NotApplicable, "OpenMP threads spin libgomp's default before sleeping (no libc setenv)");
        }
        return new(OpenMpWaitingStatus.Shortened, $"OpenMP threads spin {SpinCount:N0} times before sleeping ({SpinCountVariable})");
    }

    [DllImport("libc", EntryPoint = "setenv")]
    private static extern int SetEnv([MarshalAs(UnmanagedType.LPUTF8Str)] string name, [MarshalAs(UnmanagedType.LPUTF8Str)] string value, int overwrite);

    [DllImport("libc", EntryPoint = "getenv")]
    private static extern nint GetEnv([MarshalAs(UnmanagedType.LPUTF8Str)] string name);
}
