using System.Diagnostics;

namespace Ddvi.Tests;

/// <summary>Runs the real `ddvi` program (built beside the tests) as a separate process, as a user would.</summary>
internal static class DdviProcess
{
    public static (int ExitCode, string Output, string Error) Run(params string[] args)
    {
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "Ddvi.Cli.dll"));
        foreach (var arg in args) start.ArgumentList.Add(arg);
        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        Assert.True(process.WaitForExit(TimeSpan.FromMinutes(5)), "ddvi did not finish in 5 minutes");
        return (process.ExitCode, output.Result, error.Result);
    }
}
