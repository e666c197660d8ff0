using System.Diagnostics;
using Ddvi.FastPaths;

namespace Ddvi.Tests.Runtime;

public class OpenMpWaitingTests
{
    /// <summary>Runs <c>ddvi --help</c> with libgomp asked to print the settings it read, without any OpenMP variable of
    /// the test run's own environment, and returns libgomp's line for <c>GOMP_SPINCOUNT</c>.</summary>
    static string SpinCountLibgompRead(params (string Name, string Value)[] environment)
    {
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "Ddvi.Cli.dll"));
        start.ArgumentList.Add("--help");
        foreach (var name in new[] { OpenMpWaiting.SpinCountVariable, OpenMpWaiting.WaitPolicyVariable, OpenMpWaiting.DisableVariable })
            start.Environment.Remove(name);
        start.Environment["OMP_DISPLAY_ENV"] = "VERBOSE";
        foreach (var (name, value) in environment) start.Environment[name] = value;
        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        Assert.True(process.WaitForExit(TimeSpan.FromMinutes(2)), "ddvi --help did not finish");
        Assert.Equal(0, process.ExitCode);
        string all = output.Result + error.Result;
        return Assert.Single(all.Split('\n'), l => l.Contains("GOMP_SPINCOUNT =", StringComparison.Ordinal)).Trim();
    }

    [Fact]
    public void LibgompReadsTheShortenedSpinCount()
    {
        if (!OperatingSystem.IsLinux()) return;
        Assert.Equal($"GOMP_SPINCOUNT = '{OpenMpWaiting.SpinCount}'", SpinCountLibgompRead());
    }

    [Fact]
    public void AUsersSettingOrTheSwitchLeavesLibgompAlone()
    {
        if (!OperatingSystem.IsLinux()) return;
        Assert.Equal("GOMP_SPINCOUNT = '1234'", SpinCountLibgompRead((OpenMpWaiting.SpinCountVariable, "1234")));
        Assert.Equal("GOMP_SPINCOUNT = '0'", SpinCountLibgompRead((OpenMpWaiting.WaitPolicyVariable, "PASSIVE")));
        Assert.Equal("GOMP_SPINCOUNT = '300000'", SpinCountLibgompRead((OpenMpWaiting.DisableVariable, "off"))); // libgomp's default
    }

    [Fact]
    public void ThisProcessesStateMatchesItsNativeEnvironment()
    {
        // The test assembly's start-up called CpuRuntime.Configure, which applied it before libtorch loaded.
        var state = Assert.IsType<OpenMpWaitingState>(OpenMpWaiting.State);
        Assert.Same(state, CpuRuntime.State!.OpenMpWaiting);
        Assert.Same(state, OpenMpWaiting.Apply());
        Assert.NotEqual(OpenMpWaitingStatus.TooLate, state.Status);
        if (state.Status == OpenMpWaitingStatus.Shortened)
            Assert.Equal(OpenMpWaiting.SpinCount.ToString(), OpenMpWaiting.NativeVariable(OpenMpWaiting.SpinCountVariable));
        if (state.Status == OpenMpWaitingStatus.SetByUser)
            Assert.True(OpenMpWaiting.NativeVariable(OpenMpWaiting.SpinCountVariable) is not null
                        || OpenMpWaiting.NativeVariable(OpenMpWaiting.WaitPolicyVariable) is not null);
        Assert.Contains(state.Description, CpuRuntime.State.Description);
    }
}
