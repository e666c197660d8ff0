using System.Diagnostics;
using Ddvi.Runtime;
using System.Text.Json;
using Ddvi.Benchmarking;

namespace Ddvi.Tests.Benchmarking;

public class BackgroundLoadTests
{
    static bool Alive(int id) => File.Exists($"/proc/{id}/stat");

    static string Stat(int id)
    {
        try { return File.ReadAllText($"/proc/{id}/stat"); }
        catch (IOException) { return "gone"; }
    }

    static void WaitUntil(Func<bool> condition, string what)
    {
        var clock = Stopwatch.StartNew();
        while (!condition())
        {
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(20), $"{what} within 20 s");
            Thread.Sleep(50);
        }
    }

    [Fact]
    public void StartsBusyProcessesThatWorkAndKillsThemOnDispose()
    {
        if (!OperatingSystem.IsLinux()) return;
        IReadOnlyList<int> ids;
        using (var load = BackgroundLoad.Start(2))
        {
            ids = load.ProcessIds;
            Assert.Equal(2, ids.Distinct().Count());
            Assert.All(ids, id => Assert.True(Alive(id), $"busy process {id} running"));
            // They are busy: both accumulate CPU time (a tick is 10 ms).
            WaitUntil(() => ids.All(id => CpuActivity.ProcessCpuSeconds(id.ToString()) > 0), "both busy processes used CPU time");
            Assert.True(load.CpuSeconds > 0);
        }
        Assert.All(ids, id => Assert.False(Alive(id), $"busy process {id} still exists after Dispose"));
    }

    [Fact]
    public void NoProcessesForZeroAndAClearErrorForANegativeCount()
    {
        using (var none = BackgroundLoad.Start(0))
            Assert.Empty(none.ProcessIds);
        var error = Assert.Throws<ArgumentOutOfRangeException>(() => BackgroundLoad.Start(-1));
        Assert.Contains("--background-load", error.Message);
    }

    [Fact]
    public void ABusyProcessWhoseParentDiedExitsByItself()
    {
        if (!OperatingSystem.IsLinux()) return;
        // A parent that starts the loop in the background, prints its id and exits at once: the loop's parent is gone, as
        // when a bench is killed by SIGKILL and runs no clean-up.
        var start = new ProcessStartInfo(BackgroundLoad.Shell) { RedirectStandardOutput = true };
        start.ArgumentList.Add("-c");
        start.ArgumentList.Add($"{BackgroundLoad.Shell} -c \"$DDVI_BUSY_LOOP\" ddvi-busy $$ & echo $!");
        start.Environment["DDVI_BUSY_LOOP"] = BackgroundLoad.Script;
        using var parent = Process.Start(start)!;
        int loop = int.Parse(parent.StandardOutput.ReadLine()!.Trim());
        parent.WaitForExit();
        try
        {
            WaitUntil(() => !Alive(loop) || Stat(loop).Contains(") Z", StringComparison.Ordinal), $"the orphaned busy process {loop} exited");
        }
        finally
        {
            if (Alive(loop)) try { Process.GetProcessById(loop).Kill(); } catch (Exception e) when (e is ArgumentException or InvalidOperationException) { }
        }
    }

    [Fact]
    public void OtherCoresIsTheMachinesBusyTimeNotTakenByThisProcessOrItsLoad()
    {
        long t0 = Stopwatch.GetTimestamp();
        var before = new CpuActivity(100.0, 10.0, t0);
        var after = new CpuActivity(103.0, 11.0, t0 + 2 * Stopwatch.Frequency); // 2 s later: 3 s busy, 1 s of them ours
        Assert.Equal(1.0, CpuActivity.OtherCores(before, after)!.Value, 9);              // (3 − 1) / 2
        Assert.Equal(0.25, CpuActivity.OtherCores(before, after, ownBusySeconds: 1.5)!.Value, 9); // (3 − 1 − 1.5) / 2
        Assert.Equal(0.0, CpuActivity.OtherCores(before, after, ownBusySeconds: 5)!.Value);       // never negative (tick rounding)
        Assert.Null(CpuActivity.OtherCores(null, after));
        if (OperatingSystem.IsLinux())
        {
            var now = Assert.NotNull(CpuActivity.Now());
            Assert.True(now.ProcessSeconds > 0 && now.MachineBusySeconds >= now.ProcessSeconds);
        }
    }

    static BenchmarkResult Result(string name, int threads, double secondsPerStep) => new()
    {
        Name = name, Description = name, Threads = threads,
        SecondsPerStep = TimeStatistics.Of([secondsPerStep, secondsPerStep]),
        StepsPerRepetition = 1, StepsPerEpoch = 1, EpochUnit = "step", SecondsPerEpoch = secondsPerStep, StageEpochs = 1,
        SecondsPerStage = secondsPerStep, ExamplesPerSecond = 1, PeakResidentBytes = 1, PeakIsPerBenchmark = true,
        GigaflopsPerStep = 1, FloorSecondsPerEpoch = 1, RatioToFloor = 1,
    };

    static BenchmarkRun Run(int threads, int busy, double? otherLoad, params BenchmarkResult[] results) => new(
        new BenchmarkMachine("cpu", threads, 1, 2, null, "os", "runtime", "ts", "ddvi", "notes"), busy, otherLoad, [], 1, results, null, null);

    [Fact]
    public void SlowdownsCompareEachLoadedRunWithTheIdleRunAtItsThreadCount()
    {
        var runs = new[]
        {
            Run(2, 0, 0.1, Result("a", 2, 0.010), Result("b", 2, 0.100)),
            Run(2, 1, 0.2, Result("a", 2, 0.020), Result("b", 2, 0.250)),
            Run(2, 2, null, Result("a", 2, 0.030), Result("b", 2, 0.300)),
            Run(2, 3, null, Result("a", 2, 0.050)),
            Run(1, 0, null, Result("a", 1, 0.015)),
            Run(1, 1, null, Result("a", 1, 0.018), Result("c", 1, 0.5)), // c has no idle figure: left out
        };
        var slowdowns = BenchmarkSuite.Slowdowns(runs);
        Assert.Equal(6, slowdowns.Count);

        var a1 = slowdowns[0];
        Assert.Equal(("a", 2, 1), (a1.Name, a1.Threads, a1.BackgroundProcesses));
        Assert.Equal(2.0, a1.Ratio, 12);
        Assert.Equal((0.010, 0.020), (a1.IdleSecondsPerStep, a1.LoadedSecondsPerStep));
        Assert.Equal((2.2, true), (a1.MaxRatio, a1.MeetsTarget));
        Assert.Equal((0.1, 0.2), (a1.IdleOtherCpuLoad, a1.LoadedOtherCpuLoad));

        var b1 = slowdowns[1];
        Assert.Equal(2.5, b1.Ratio, 12);
        Assert.Equal(false, b1.MeetsTarget);                                       // over 2.2× with one busy process
        Assert.Equal((3.5, true), (slowdowns[3].MaxRatio, slowdowns[3].MeetsTarget)); // b, 2 busy: 3.0×
        Assert.Equal((5.0, (double?)null, (bool?)null), (slowdowns[4].Ratio, slowdowns[4].MaxRatio, slowdowns[4].MeetsTarget)); // no target for 3
        var oneThread = slowdowns[5];
        Assert.Equal(("a", 1), (oneThread.Name, oneThread.Threads));
        Assert.Equal(1.2, oneThread.Ratio, 12);                                    // against the 1-thread idle run, not the 2-thread one
    }

    [Theory]
    [InlineData(0)]
    [InlineData(-2)]
    [InlineData(BenchmarkOptions.MaxBackgroundLoad + 1)]
    public void BadBackgroundLoadsNameTheOption(int count)
    {
        var error = Assert.Throws<ArgumentException>(() => new BenchmarkOptions { BackgroundLoads = [1, count] }.Validate());
        Assert.Contains("--background-load", error.Message);
        var duplicate = Assert.Throws<ArgumentException>(() => new BenchmarkOptions { BackgroundLoads = [1, 1] }.Validate());
        Assert.Contains("--background-load", duplicate.Message);
    }

    [Fact]
    public void ABenchUnderBackgroundLoadReportsSlowdownsAndLeavesNoProcessBehind()
    {
        if (!OperatingSystem.IsLinux()) return;
        using var folder = new TempFolder();
        var options = new BenchmarkOptions
        {
            Cases = [BenchmarkCases.Vae],
            Device = Ddvi.Runtime.DeviceChoice.Cpu,
            BackgroundLoads = [1],
            Hidden = 16, PosteriorSteps = 4, PriorSteps = 3, TrainImages = 300, TestImages = 100,
            WarmupSteps = 1, MinWarmupSeconds = 0, JitQuietSeconds = 0, Repetitions = 2, MinRepetitionSeconds = 0.01,
        };
        var lines = new List<string>();
        var report = BenchmarkSuite.Run(options, lines.Add);
        var (json, table) = BenchmarkSuite.Write(report, folder.Path);

        Assert.Equal([0, 1], report.Runs.Select(r => r.BackgroundProcesses));
        var slowdown = Assert.Single(report.Slowdowns);
        Assert.Equal(report.Runs[1].Results[0].SecondsPerStep.Median / report.Runs[0].Results[0].SecondsPerStep.Median, slowdown.Ratio, 12);
        Assert.All(report.Runs, r => Assert.NotNull(r.OtherCpuLoad));

        // The busy process it logged is gone once the run is over.
        string started = Assert.Single(lines, l => l.StartsWith("background load: 1 busy process", StringComparison.Ordinal));
        int id = int.Parse(started[(started.IndexOf("ids ", StringComparison.Ordinal) + 4)..].TrimEnd(')'));
        Assert.False(Alive(id), $"busy process {id} outlived the run");

        using var document = JsonDocument.Parse(File.ReadAllText(json));
        Assert.Equal(1, document.RootElement.GetProperty("runs")[1].GetProperty("background_processes").GetInt32());
        Assert.Equal(slowdown.Ratio, document.RootElement.GetProperty("slowdowns")[0].GetProperty("ratio").GetDouble(), 12);
        string markdown = File.ReadAllText(table);
        Assert.Contains("## Under background load", markdown);
        Assert.Contains("1 busy process of the bench's own", markdown);
    }
}
