using System.Diagnostics;

namespace Ddvi.Tests;

/// <summary>Runs the real `ddvi` program (built beside the tests) as a separate process, as a user would.</summary>
internal static class DdviProcess
{
    public static (int ExitCode, string Output, string Error) Run(params string[] args) => RunWith(null, args);

    /// <summary>Runs ddvi with <paramref name="environment"/> set (a null value removes the variable).</summary>
    public static (int ExitCode, string Output, string Error) RunWith(IReadOnlyDictionary<string, string?>? environment, params string[] args)
    {
        using var process = Process.Start(StartInfo(environment, args))!;
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        Assert.True(process.WaitForExit(TimeSpan.FromMinutes(5)), "ddvi did not finish in 5 minutes");
        return (process.ExitCode, output.Result, error.Result);
    }

    /// <summary>How to start ddvi: the dotnet host (by full path, so that a changed PATH does not hide it) and the CLI assembly.</summary>
    public static ProcessStartInfo StartInfo(IReadOnlyDictionary<string, string?>? environment, params string[] args)
    {
        string host = Environment.ProcessPath is { } path && Path.GetFileNameWithoutExtension(path) == "dotnet" ? path : "dotnet";
        var start = new ProcessStartInfo(host) { RedirectStandardOutput = true, RedirectStandardError = true };
        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "Ddvi.Cli.dll"));
        foreach (var arg in args) start.ArgumentList.Add(arg);
        foreach (var (name, value) in environment ?? new Dictionary<string, string?>())
        {
            if (value is null) start.Environment.Remove(name);
            else start.Environment[name] = value;
        }
        return start;
    }
}
