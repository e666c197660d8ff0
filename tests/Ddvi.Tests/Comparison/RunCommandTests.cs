using Ddvi.Experiments;
using Ddvi.Experiments.Comparison;
using Ddvi.Experiments.Sweeps;
using Ddvi.Training;

namespace Ddvi.Tests.Comparison;

/// <summary>`ddvi compare --dry-run`, `ddvi run --manifest --index` and `ddvi report` on a sweep folder, as separate processes.</summary>
public class RunCommandTests
{
    /// <summary>A sweep file of tiny VAE runs on the synthetic dataset (seconds each), with a checkpoint every epoch.</summary>
    internal static string TinySweepFile(TempFolder folder, int epochs = 1, int train = 256)
    {
        string path = folder["sweep.yaml"];
        File.WriteAllText(path, $"""
            models: [vae]
            priors: [pinwheel, square]
            seeds: [0, 1]
            overrides:
              dataset: synthetic
              synthetic_train_count: {train}
              synthetic_test_count: 128
              training:
                epochs: {epochs}
                checkpoint_every: 1
            """);
        return path;
    }

    [Fact]
    public void DryRunWritesOnlyTheManifestAndRunTrainsOneEntryOnceAndThenLeavesItAlone()
    {
        using var folder = new TempFolder();
        string sweep = folder["sweep"];
        var (code, output, error) = DdviProcess.Run("compare", "--sweep", TinySweepFile(folder), "--out", sweep, "--dry-run");
        Assert.True(code == 0, error);
        string manifest = SweepManifest.PathIn(sweep);
        Assert.Contains($"manifest: {manifest} (4 runs", output);
        Assert.False(Directory.Exists(Path.Combine(sweep, "runs")));
        var entries = SweepManifest.Load(manifest).Entries;
        Assert.Equal(["vae-pinwheel-s0", "vae-pinwheel-s1", "vae-square-s0", "vae-square-s1"], entries.Select(e => e.Name));

        (code, output, error) = DdviProcess.Run("run", "--manifest", manifest, "--index", "2");
        Assert.True(code == 0, error);
        Assert.Contains("trained: vae-square-s0", output);
        var run = new RunDirectory(entries[2].Folder);
        Assert.True(File.Exists(run.Metrics));
        Assert.Equal(entries[2].TrainConfig(manifest).ToJson(), File.ReadAllText(run.Config));
        var written = File.GetLastWriteTimeUtc(run.Metrics);
        string log = File.ReadAllText(run.Log);

        // Again: reported as finished, nothing trained or rewritten.
        (code, output, error) = DdviProcess.Run("run", "--manifest", manifest, "--index", "2");
        Assert.True(code == 0, error);
        Assert.Contains($"finished earlier: vae-square-s0 in {entries[2].Folder} has its metrics.json; nothing to do", output);
        Assert.DoesNotContain("epoch", output);
        Assert.Equal(written, File.GetLastWriteTimeUtc(run.Metrics));
        Assert.Equal(log, File.ReadAllText(run.Log));

        // The report of the sweep folder names the three runs not done, and says how to run them.
        (code, output, error) = DdviProcess.Run("report", sweep);
        Assert.Equal(1, code);
        Assert.Contains("1 of 4 runs finished; results:", output);
        Assert.Contains($"missing     [0] vae-pinwheel-s0: not started; run it with: ddvi run --manifest {manifest} --index 0", error);
        Assert.Contains("missing     [3] vae-square-s1", error);
        Assert.Contains("error: 1 finished, 0 failed, 0 unfinished, 3 not started (of 4); the tables hold the finished runs only.", error);
        Assert.Contains("| vae | 1 | 1 |", File.ReadAllText(Path.Combine(sweep, "results.md")));
    }

    /// <summary>Requests a stop once the first epoch has been checkpointed.</summary>
    private sealed class StopAfterFirstEpoch(CancellationTokenSource source) : ITrainingObserver
    {
        public void StageStarted(string stage, int firstEpoch, int epochs, int stepsPerEpoch) { }
        public void StepCompleted(string stage, int epoch, int s, IReadOnlyDictionary<string, double>? runningLosses)
        {
            if (epoch >= 1) source.Cancel();
        }
        public void EpochCompleted(string stage, EpochRecord record, int epochs) { }
        public void Message(string text) { }
    }

    [Fact]
    public void RunResumesAnUnfinishedEntryFromItsLastCheckpointAndEndsWhereAnUninterruptedRunEnds()
    {
        using var folder = new TempFolder();
        string sweep = folder["sweep"];
        var (code, _, error) = DdviProcess.Run("compare", "--sweep", TinySweepFile(folder, epochs: 2), "--out", sweep, "--dry-run");
        Assert.True(code == 0, error);
        string manifest = SweepManifest.PathIn(sweep);
        var entry = SweepManifest.Load(manifest).Entries[0];

        // Stopped in its second epoch, as a preempted task is: a checkpoint of epoch 1, no metrics.
        using var stop = new CancellationTokenSource();
        var stopped = new SweepTasks(new StopAfterFirstEpoch(stop)).Run(entry, manifest, stop.Token);
        Assert.Equal(RunStatus.Stopped, stopped.Status);
        var run = new RunDirectory(entry.Folder);
        Assert.False(File.Exists(run.Metrics));
        Assert.Equal(EntryState.Unfinished, SweepStatus.Of(entry).State);

        (code, var output, error) = DdviProcess.Run("run", "--manifest", manifest, "--index", "0");
        Assert.True(code == 0, error);
        Assert.Contains("resuming vae", output);
        Assert.Contains("resumed: vae-pinwheel-s0", output);

        // The same entry trained without a stop gives the same metrics.
        (code, _, error) = DdviProcess.Run("train", "--config", run.Config, "--out", folder["uninterrupted"]);
        Assert.True(code == 0, error);
        Assert.Equal(SlurmClusterTests.MetricsWithoutTimes(run.Metrics), SlurmClusterTests.MetricsWithoutTimes(Path.Combine(folder["uninterrupted"], "metrics.json")));
    }

    [Fact]
    public void ASecondTaskGivenTheSameRunFolderSaysSoAndWritesNothing()
    {
        using var folder = new TempFolder();
        string sweep = folder["sweep"];
        var (code, _, error) = DdviProcess.Run("compare", "--sweep", TinySweepFile(folder), "--out", sweep, "--dry-run");
        Assert.True(code == 0, error);
        string manifest = SweepManifest.PathIn(sweep);
        var entry = SweepManifest.Load(manifest).Entries[1];

        using (RunLock.Acquire(entry.Folder))
        {
            (code, _, error) = DdviProcess.Run("run", "--manifest", manifest, "--index", "1");
            Assert.Equal(1, code);
            Assert.Contains($"{entry.Folder} is in use by another Ddvi process", error);
            Assert.Contains("nothing was written", error);
        }
        Assert.Equal([".lock"], Directory.GetFileSystemEntries(entry.Folder).Select(Path.GetFileName));
    }

    [Theory]
    [InlineData("7", "--index 7 is out of range")]
    [InlineData("-1", "--index -1 is out of range")]
    public void AnIndexOutOfRangeExitsWithTwoNamingTheValidIndices(string index, string expected)
    {
        using var folder = new TempFolder();
        var (code, _, error) = DdviProcess.Run("compare", "--sweep", TinySweepFile(folder), "--out", folder["sweep"], "--dry-run");
        Assert.True(code == 0, error);
        (code, _, error) = DdviProcess.Run("run", "--manifest", SweepManifest.PathIn(folder["sweep"]), "--index", index);
        Assert.Equal(2, code);
        Assert.Contains(expected, error);
        Assert.Contains("has 4 entries, indices 0 to 3", error);
    }

    [Fact]
    public void AMissingManifestOrIndexIsAUsageError()
    {
        using var folder = new TempFolder();
        var (code, _, error) = DdviProcess.Run("run", "--manifest", folder["nothing.json"], "--index", "0");
        Assert.Equal(2, code);
        Assert.Contains($"--manifest {folder["nothing.json"]} not found", error);

        (code, _, error) = DdviProcess.Run("run", "--manifest", folder["nothing.json"]);
        Assert.Equal(2, code);
        Assert.Contains("--index", error);
    }
}
