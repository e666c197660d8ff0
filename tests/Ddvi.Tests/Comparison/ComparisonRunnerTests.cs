using System.Text.Json;
using Ddvi.Experiments;
using Ddvi.Experiments.Comparison;
using Ddvi.Experiments.Sweeps;
using Ddvi.Runtime;
using Ddvi.Tests.Experiments;
using Ddvi.Training;
using static Ddvi.Tests.Comparison.ComparisonFixtures;

namespace Ddvi.Tests.Comparison;

public class ComparisonRunnerTests
{
    private static ComparisonOptions TinyVaes(string folder, params long[] seeds) => new()
    {
        BaseConfig = ExperimentRunnerTests.Tiny("vae", epochs: 1),
        Models = ["vae"],
        Priors = ["pinwheel"],
        Seeds = seeds,
        OutputFolder = folder,
        Threads = 2,
    };

    /// <summary>Stands in for child <c>ddvi train</c> processes: writes a finished run's files, or fails for one seed.</summary>
    private sealed class FakeLauncher(long failingSeed) : ITrainProcessLauncher
    {
        private int _running;
        public int MostAtOnce;
        public List<IReadOnlyList<string>> Calls { get; } = [];

        public async Task<TrainProcessResult> RunAsync(IReadOnlyList<string> arguments, Action<string> output, CancellationToken stop = default)
        {
            lock (Calls) Calls.Add(arguments);
            int now = Interlocked.Increment(ref _running);
            lock (Calls) MostAtOnce = Math.Max(MostAtOnce, now);
            try
            {
                await Task.Delay(150);
                // ddvi run --manifest M --index N: the entry's folder and configuration, as the real child reads them.
                var entry = SweepManifest.Load(arguments[2]).Entry(int.Parse(arguments[4], System.Globalization.CultureInfo.InvariantCulture), arguments[2]);
                string folder = entry.Folder;
                var config = entry.TrainConfig(arguments[2]);
                if (config.Seed == failingSeed)
                {
                    // The real child writes config.json before training fails.
                    Directory.CreateDirectory(folder);
                    File.WriteAllText(new RunDirectory(folder).Config, config.ToJson());
                    return new TrainProcessResult(1, ["error: boom: the loss is not finite"]);
                }
                output($"{config.Model} epoch 1/1");
                double offset = config.Model == "ddvi" ? 10 : 0;
                WriteFinishedRun(folder, config, Metrics(config.Model, config.Prior, config.Seed, -100 + offset + config.Seed, 2 - config.Seed, 0.8, 0.2, 5));
                return new TrainProcessResult(0, []);
            }
            finally
            {
                Interlocked.Decrement(ref _running);
            }
        }
    }

    [Fact]
    public void SecondCompareReusesFinishedRunsAndAReportOfTheRunFoldersRebuildsTheSameTables()
    {
        using var folder = new TempFolder();
        var options = TinyVaes(folder.Path, 0, 1);
        var firstObserver = new RecordingObserver();
        var first = new ComparisonRunner(firstObserver).Run(options);
        Assert.True(first.Succeeded);
        Assert.All(first.Runs, r => Assert.Equal(RunStatus.Trained, r.Status));
        Assert.Equal(2, firstObserver.Lines.Count(l => l == "start vae 0"));

        var metricFiles = options.Plan().Select(r => new RunDirectory(r.Folder).Metrics).ToList();
        var written = metricFiles.Select(File.GetLastWriteTimeUtc).ToList();
        string markdown = File.ReadAllText(first.Files!.Markdown);
        string csv = File.ReadAllText(first.Files.Csv);
        Assert.Contains("| vae | 2 | 1 |", markdown);
        Assert.Equal((2 * 360, 360), PngSize(first.Files.Panel));

        var secondObserver = new RecordingObserver();
        var second = new ComparisonRunner(secondObserver).Run(options);
        Assert.True(second.Succeeded);
        Assert.All(second.Runs, r => Assert.Equal(RunStatus.Reused, r.Status));
        Assert.DoesNotContain(secondObserver.Lines, l => l.StartsWith("start ", StringComparison.Ordinal) || l.StartsWith("epoch ", StringComparison.Ordinal));
        Assert.Contains(secondObserver.Lines, l => l.Contains("2 finished earlier (reused), 0 to resume, 0 to train", StringComparison.Ordinal));
        Assert.Equal(written, metricFiles.Select(File.GetLastWriteTimeUtc));
        Assert.Equal(markdown, File.ReadAllText(second.Files!.Markdown));

        // `ddvi report` on the run folders: the same tables.
        using var reportFolder = new TempFolder();
        var discovered = RunResult.Discover(options.Plan().Select(r => r.Folder));
        var report = ComparisonReport.Write(discovered.Runs, reportFolder.Path);
        Assert.Equal(markdown, File.ReadAllText(report.Markdown));
        Assert.Equal(csv, File.ReadAllText(report.Csv));
        Assert.Empty(Directory.GetFiles(folder.Path, "*.tmp", SearchOption.AllDirectories));
    }

    [Fact]
    public void AnUnfinishedRunIsResumedFromItsCheckpoints()
    {
        using var folder = new TempFolder();
        var options = TinyVaes(folder.Path, 0, 1);
        new ComparisonRunner(SilentObserver.Instance).Run(options);
        File.Delete(new RunDirectory(options.Plan()[1].Folder).Metrics);

        var observer = new RecordingObserver();
        var outcome = new ComparisonRunner(observer).Run(options with { Threads = 1 });
        Assert.Equal([RunStatus.Reused, RunStatus.Resumed], outcome.Runs.Select(r => r.Status));
        Assert.Contains(observer.Lines, l => l.StartsWith("vae: finished earlier", StringComparison.Ordinal));
        Assert.DoesNotContain(observer.Lines, l => l.StartsWith("epoch ", StringComparison.Ordinal));
        Assert.True(File.Exists(new RunDirectory(options.Plan()[1].Folder).Metrics));
        // The resumed run ran with this comparison's thread count.
        var run = new RunDirectory(options.Plan()[1].Folder);
        var config = ExperimentConfig.FromJson(File.ReadAllText(run.Config), "config.json");
        Assert.Equal(1, config.Threads);
        // ... and its history says so: the new run's entry, then the threads changed by the sweep.
        var history = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(run.ConfigHistory))!.AsArray();
        Assert.Equal(2, history.Count);
        var change = Assert.Single(history[1]!["changes"]!.AsArray());
        Assert.Equal("threads", (string?)change!["key"]);
        Assert.NotEqual(1, (int?)change["from"]);
        Assert.Equal(1, (int?)change["to"]);
        Assert.Contains("sweep", (string?)change["reason"]);
    }

    [Fact]
    public void AFailedRunIsReportedAndTheOthersStillTrain()
    {
        using var folder = new TempFolder();
        var options = TinyVaes(folder.Path, 0, 1);
        // Seed 0 has a matching config.json, but a file where its checkpoints folder should be: resuming it fails.
        var broken = new RunDirectory(options.Plan()[0].Folder);
        Directory.CreateDirectory(broken.Root);
        File.WriteAllText(broken.Config, options.Plan()[0].Config.ToJson());
        File.WriteAllText(Path.Combine(broken.Root, "checkpoints"), "not a folder");

        var outcome = new ComparisonRunner(SilentObserver.Instance).Run(options);
        Assert.False(outcome.Succeeded);
        Assert.Equal(RunStatus.Failed, outcome.Runs[0].Status);
        Assert.Contains("checkpoints", outcome.Runs[0].Error);
        Assert.Equal(RunStatus.Trained, outcome.Runs[1].Status);
        Assert.Contains("| vae | 1 | 1 |", File.ReadAllText(outcome.Files!.Markdown));
    }

    [Fact]
    public void AFolderHoldingAnotherExperimentIsLeftAloneButExecutionSettingsDoNotCount()
    {
        using var folder = new TempFolder();
        var options = TinyVaes(folder.Path, 0, 1);
        var plan = options.Plan();
        // Seed 0: same experiment, other threads and device: reused without training.
        var sameExperiment = plan[0].Config with { Threads = 7, Device = DeviceChoice.Cpu, CheckpointEvery = 3 };
        WriteFinishedRun(plan[0].Folder, sameExperiment, Metrics("vae", "pinwheel", 0, -1, 1, 0.5, 0.1, 1));
        // Seed 1: another number of epochs: a different experiment.
        var other = plan[1].Config with { Epochs = 2 };
        WriteFinishedRun(plan[1].Folder, other, Metrics("vae", "pinwheel", 1, -1, 1, 0.5, 0.1, 1));
        string before = File.ReadAllText(new RunDirectory(plan[1].Folder).Config);

        var observer = new RecordingObserver();
        var outcome = new ComparisonRunner(observer).Run(options);
        Assert.Equal([RunStatus.Reused, RunStatus.Failed], outcome.Runs.Select(r => r.Status));
        Assert.Contains("differs in epochs", outcome.Runs[1].Error);
        Assert.Contains("another --out", outcome.Runs[1].Error);
        Assert.Equal(before, File.ReadAllText(new RunDirectory(plan[1].Folder).Config));
        Assert.DoesNotContain(observer.Lines, l => l.StartsWith("start ", StringComparison.Ordinal));
        Assert.Equal(["epochs"], ComparisonRunner.Differences(plan[1].Config, other));
        Assert.Empty(ComparisonRunner.Differences(plan[0].Config, sameExperiment));
    }

    [Fact]
    public void ParallelRunsAreChildProcessesWithDividedThreadsAndAFailedOneDoesNotStopTheOthers()
    {
        using var folder = new TempFolder();
        var launcher = new FakeLauncher(failingSeed: 1);
        var options = new ComparisonOptions
        {
            BaseConfig = ExperimentRunnerTests.Tiny("vae", epochs: 1),
            Models = ["vae", "ddvi"],
            Priors = ["pinwheel"],
            Seeds = [0, 1, 2],
            OutputFolder = folder.Path,
            Jobs = 2,
            Threads = 4,
        };
        var observer = new RecordingObserver();
        var outcome = new ComparisonRunner(observer, launcher).Run(options);

        Assert.Equal(6, launcher.Calls.Count);
        Assert.Equal(2, launcher.MostAtOnce);
        string manifest = SweepManifest.PathIn(folder.Path);
        Assert.All(launcher.Calls, call => Assert.Equal(["run", "--manifest", manifest, "--index"], call.Take(4)));
        Assert.Equal(["0", "1", "2", "3", "4", "5"], launcher.Calls.Select(c => c[4]).Order());
        foreach (var run in options.Plan())
        {
            var config = ExperimentConfig.FromJson(File.ReadAllText(new RunDirectory(run.Folder).Config), "config.json");
            Assert.Equal(2, config.Threads);
            Assert.Equal(run.Config.ToJson(), config.ToJson());
        }
        Assert.False(outcome.Succeeded);
        foreach (var run in outcome.Runs)
        {
            bool failing = run.Run.Config.Seed == 1;
            Assert.Equal(failing ? RunStatus.Failed : RunStatus.Trained, run.Status);
            if (failing) Assert.Contains("boom: the loss is not finite (exit code 1", run.Error);
        }
        Assert.Contains("[vae-pinwheel-s0] vae epoch 1/1", observer.Lines);
        string markdown = File.ReadAllText(outcome.Files!.Markdown);
        Assert.Contains("| ddvi | 2 | 1 | **-89.00 ± 12.71** |", markdown);
        Assert.Contains("| vae | 2 | 1 | -99.00 ± 12.71 |", markdown);
        Assert.Equal((3 * 360, 360), PngSize(outcome.Files.Panel));

        // Run again: the finished runs are reused, only the failed ones are launched.
        var again = new FakeLauncher(failingSeed: -1);
        var second = new ComparisonRunner(SilentObserver.Instance, again).Run(options);
        Assert.True(second.Succeeded);
        Assert.Equal(2, again.Calls.Count);
        // Stable indices: the failed runs (seed 1 of each model) keep theirs, 1 and 4 (prior, then model, then seed).
        Assert.Equal(["1", "4"], again.Calls.Select(c => c[4]).Order());
        Assert.Equal(4, second.Runs.Count(r => r.Status == RunStatus.Reused));
    }

    [Fact]
    public void RealChildProcessesTrainRunsInParallel()
    {
        using var folder = new TempFolder();
        var launcher = new DdviProcessLauncher("dotnet", [Path.Combine(AppContext.BaseDirectory, "Ddvi.Cli.dll")]);
        var options = TinyVaes(folder.Path, 0, 1) with { Jobs = 2 };
        var observer = new RecordingObserver();
        var outcome = new ComparisonRunner(observer, launcher).Run(options);

        Assert.True(outcome.Succeeded, string.Join("\n", outcome.Runs.Select(r => r.Error)));
        Assert.All(outcome.Runs, r => Assert.Equal(RunStatus.Trained, r.Status));
        Assert.Contains(observer.Lines, l => l.StartsWith("[vae-pinwheel-s1] vae epoch 1/1", StringComparison.Ordinal));
        foreach (var run in options.Plan())
        {
            var metrics = JsonDocument.Parse(File.ReadAllText(new RunDirectory(run.Folder).Metrics)).RootElement;
            Assert.Equal(run.Config.Seed, metrics.GetProperty("seed").GetInt64());
        }
        Assert.Contains("| vae | 2 | 1 |", File.ReadAllText(outcome.Files!.Markdown));
    }

    /// <summary>Requests a stop at the given step of the first epoch it sees.</summary>
    private sealed class StopAtStep(CancellationTokenSource source, int step) : ITrainingObserver
    {
        public void StageStarted(string stage, int firstEpoch, int epochs, int stepsPerEpoch) { }
        public void StepCompleted(string stage, int epoch, int s, IReadOnlyDictionary<string, double>? runningLosses)
        {
            if (s == step) source.Cancel();
        }
        public void EpochCompleted(string stage, EpochRecord record, int epochs) { }
        public void Message(string text) { }
    }

    [Fact]
    public void AStoppedComparisonKeepsACheckpointStartsNothingNewAndTheSameCommandFinishesIt()
    {
        using var folder = new TempFolder();
        var options = TinyVaes(folder.Path, 0, 1) with { BaseConfig = ExperimentRunnerTests.Tiny("vae", epochs: 2) };
        using var stop = new CancellationTokenSource();
        var stopped = new ComparisonRunner(new StopAtStep(stop, 2)).Run(options, stop.Token);
        Assert.True(stopped.Stopped);
        Assert.False(stopped.Succeeded);
        Assert.Equal([RunStatus.Stopped, RunStatus.Stopped], stopped.Runs.Select(r => r.Status));
        Assert.Contains("after step 2", stopped.Runs[0].Error);
        Assert.Contains("not started", stopped.Runs[1].Error);
        Assert.EndsWith(Checkpoint.FileName(0, 2), Checkpoint.Latest(new RunDirectory(options.Plan()[0].Folder).Checkpoints("vae")));

        var finished = new ComparisonRunner(SilentObserver.Instance).Run(options);
        Assert.True(finished.Succeeded);
        Assert.Equal([RunStatus.Resumed, RunStatus.Trained], finished.Runs.Select(r => r.Status));
    }
}
