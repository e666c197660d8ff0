using System.Text.Json;
using System.Text.Json.Nodes;
using Ddvi.Experiments;
using Ddvi.Experiments.Comparison;
using Ddvi.Runtime;
using Ddvi.Tests.Comparison;
using Ddvi.Training;
using static Ddvi.Tests.Experiments.ExperimentRunnerTests;

namespace Ddvi.Tests.Experiments;

/// <summary>What users do to runs: two processes on one folder, options given with --resume, runs that failed before
/// training, debris of interrupted saves, limits only evaluation would have found, non-finite numbers, bad run folders.</summary>
public class RunReliabilityTests
{
    private static GivenOption Given(string option, string key, JsonNode? value) => new(option, key, value);

    [Fact]
    public void AHeldRunFolderRefusesASecondHolderAndNamesTheFirst()
    {
        using var folder = new TempFolder();
        using (var first = RunLock.Acquire(folder.Path))
        {
            var error = Assert.Throws<RunFolderInUseException>(() => RunLock.Acquire(folder.Path));
            Assert.Contains($"process {Environment.ProcessId}", error.Message);
            Assert.Contains("nothing was written", error.Message);
            // A training run on the held folder writes nothing at all.
            string run = folder["held"];
            using var held = RunLock.Acquire(run);
            Assert.Throws<RunFolderInUseException>(() => new ExperimentRunner(SilentObserver.Instance).Train(Tiny("vae", 1), run, resume: false));
            Assert.Equal([".lock", ".lock.owner"], Directory.GetFileSystemEntries(run).Select(Path.GetFileName).Order());
        }
        using var again = RunLock.Acquire(folder.Path); // released on dispose
    }

    [Fact]
    public void ExecutionOptionsApplyOnResumeAndOthersMustRepeatTheRunsValues()
    {
        var saved = Tiny("ddvi") with { Device = DeviceChoice.Cuda };
        var request = new ResumeRequest([
            Given("--device", "device", JsonValue.Create("Cpu")), Given("--threads", "threads", JsonValue.Create(1)),
            Given("--checkpoint-every", "checkpoint_every", JsonValue.Create(3)), Given("--model", "model", JsonValue.Create("ddvi")),
            Given("--seed", "seed", JsonValue.Create(3L)),
        ]);
        var (config, changes) = request.ApplyTo(saved);
        Assert.Equal((DeviceChoice.Cpu, 1, 3), (config.Device, config.Threads, config.CheckpointEvery));
        Assert.Equal(["device", "threads", "checkpoint_every"], changes.Select(c => c.Key));
        Assert.Equal((saved with { Device = DeviceChoice.Cpu, Threads = 1, CheckpointEvery = 3 }).ToJson(), config.ToJson());

        var conflicting = new ResumeRequest([
            Given("--seed", "seed", JsonValue.Create(4L)), Given("--model", "model", JsonValue.Create("vae")),
            Given("--kl-weight", "ddvi.kl_weight", JsonValue.Create(0.5)), Given("--device", "device", JsonValue.Create("Cpu")),
        ]);
        var error = Assert.Throws<ArgumentException>(() => conflicting.ApplyTo(saved));
        Assert.Contains("--seed: the run has 3, the command line gives 4", error.Message);
        Assert.Contains("--model: the run has ddvi, the command line gives vae", error.Message);
        Assert.Contains("--kl-weight: the run has 0.003, the command line gives 0.5", error.Message);
        Assert.DoesNotContain("--device", error.Message.Split("Leave them out")[0]);
    }

    [Theory]
    [InlineData("ddvi")]
    [InlineData("vae")]
    [InlineData("aae")]
    public void LongerEpochsKeepEverySchedulesEpochs(string model)
    {
        var saved = Tiny(model, 10) with { Ddvi = Tiny(model).Ddvi with { FrozenDecoderEpochs = null } };
        var (config, changes) = new ResumeRequest([Given("--epochs", ResumeRequest.EpochsKey, JsonValue.Create(25))]).ApplyTo(saved);
        Assert.Equal(25, config.ResolvedEpochs);
        Assert.Contains(changes, c => c.Key == "epochs" && c.Reason.Contains("--epochs 25", StringComparison.Ordinal));
        switch (model)
        {
            case "ddvi":
                Assert.Equal(saved.ResolvedFrozenDecoderEpochs, config.ResolvedFrozenDecoderEpochs);
                break;
            case "vae":
                // The KL weight of every epoch already trained is what it was.
                for (int epoch = 0; epoch < 10; epoch++)
                    Assert.Equal(saved.Vae.KlWeightAt(epoch, 10), config.Vae.KlWeightAt(epoch, 25), 12);
                break;
            case "aae":
                Assert.Equal(saved.Aae.DecayEpochFor(10), config.Aae.DecayEpochFor(25));
                break;
        }
    }

    [Fact]
    public void AFinishedRunIsExtendedByALongerEpochsAndTheDecisionIsRecorded()
    {
        using var folder = new TempFolder();
        var runner = new ExperimentRunner(SilentObserver.Instance);
        runner.Train(Tiny("vae", 1), folder.Path, resume: false);
        using var longer = new TempFolder();
        new ExperimentRunner(SilentObserver.Instance).Train(Tiny("vae", 1).WithEpochs(2), longer.Path, resume: false);

        var lines = new RecordingObserver();
        var report = new ExperimentRunner(lines).Train(new ExperimentConfig(), folder.Path, resume: true,
            new ResumeRequest([Given("--epochs", ResumeRequest.EpochsKey, JsonValue.Create(2))]));
        Assert.Equal(2, report.Epochs);
        Assert.Contains("epoch vae 1", lines.Lines);
        Assert.DoesNotContain("epoch vae 0", lines.Lines);
        var run = new RunDirectory(folder.Path);
        Assert.Equal(2, ExperimentConfig.FromJson(File.ReadAllText(run.Config), run.Config).Epochs);
        var history = JsonNode.Parse(File.ReadAllText(run.ConfigHistory))!.AsArray();
        Assert.Equal(2, history.Count);
        Assert.Contains(history[1]!["changes"]!.AsArray(), c => c!["key"]!.GetValue<string>() == "epochs" && c["to"]!.GetValue<int>() == 2);
        Assert.Contains("config: epochs 1 -> 2", File.ReadAllText(run.Log));
        // One epoch more on the finished run gives what two epochs from the start give (the ramp pinned the same way).
        var straight = JsonDocument.Parse(File.ReadAllText(new RunDirectory(longer.Path).Metrics)).RootElement;
        Assert.Equal(straight.GetProperty("latent_nll").GetProperty("value").GetDouble(), report.LatentNll.Value);

        var shorter = Assert.Throws<ArgumentException>(() => new ExperimentRunner(SilentObserver.Instance).Train(new ExperimentConfig(), folder.Path, resume: true,
            new ResumeRequest([Given("--epochs", ResumeRequest.EpochsKey, JsonValue.Create(1))])));
        Assert.Contains("already trained 2 epochs", shorter.Message);
    }

    [Fact]
    public void ARunThatFailedBeforeItsFirstCheckpointDoesNotBlockTheSameCommandOrAResumeOnAnotherDevice()
    {
        if (TorchSharp.torch.cuda.is_available()) return; // the failure below needs a machine without CUDA
        using var folder = new TempFolder();
        var onCuda = Tiny("vae", 1) with { Device = DeviceChoice.Cuda };
        var runner = new ExperimentRunner(SilentObserver.Instance);
        var failure = Assert.ThrowsAny<Exception>(() => runner.Train(onCuda, folder.Path, resume: false));
        var run = new RunDirectory(folder.Path);
        Assert.Contains("error: ", File.ReadAllText(run.Log)); // the error that ended the run is in its log
        Assert.Contains(failure.Message, File.ReadAllText(run.Log));

        // The same command again is not refused as "already holds a run" (it fails for its own reason again).
        var again = Assert.ThrowsAny<Exception>(() => runner.Train(onCuda, folder.Path, resume: false));
        Assert.DoesNotContain("already holds a run", again.Message);
        // --resume --device cpu runs it.
        var report = runner.Train(new ExperimentConfig(), folder.Path, resume: true,
            new ResumeRequest([Given("--device", "device", JsonValue.Create("Cpu"))]));
        Assert.Equal(1, report.Epochs);
        // And a new configuration may replace the failed one.
        using var other = new TempFolder();
        Assert.ThrowsAny<Exception>(() => runner.Train(onCuda, other.Path, resume: false));
        runner.Train(Tiny("vae", 1) with { Seed = 9 }, other.Path, resume: false);
        Assert.Equal(9, ExperimentConfig.FromJson(File.ReadAllText(new RunDirectory(other.Path).Config), "c").Seed);
    }

    [Fact]
    public void OrphanedTemporaryFilesAreRemovedOnTheNextStart()
    {
        using var folder = new TempFolder();
        var runner = new ExperimentRunner(SilentObserver.Instance);
        runner.Train(Tiny("vae", 1), folder.Path, resume: false);
        var run = new RunDirectory(folder.Path);
        // Left by a save that a kill interrupted (process id 2^22 + 1 is above Linux's largest pid: not running).
        string orphan = Path.Combine(run.Checkpoints("vae"), $".epoch-0002.ckpt.{(1 << 22) + 1}.0123456789abcdef.tmp");
        File.WriteAllBytes(orphan, new byte[100_000]);
        string ours = Path.Combine(run.Root, $".metrics.json.{Environment.ProcessId}.0123456789abcdef.tmp");
        File.WriteAllText(ours, "being written by a live process");
        var lines = new RecordingObserver();
        new ExperimentRunner(lines).Train(new ExperimentConfig(), folder.Path, resume: true);
        Assert.False(File.Exists(orphan));
        Assert.True(File.Exists(ours));
        Assert.Contains(lines.Lines, l => l.StartsWith("removed 1 temporary file(s) (0.1 MB)", StringComparison.Ordinal));
    }

    [Fact]
    public void ATrainingSetSmallerThanTheKnnNeedsIsRefusedBeforeTraining()
    {
        using var folder = new TempFolder();
        var config = Tiny("vae", 1) with { SyntheticTrainCount = 4 };
        var error = Assert.Throws<ArgumentException>(() => new ExperimentRunner(SilentObserver.Instance).Train(config, folder.Path, resume: false));
        Assert.Contains("knn_neighbours", error.Message);
        Assert.Contains("4 training examples", error.Message);
        Assert.Null(Checkpoint.Latest(new RunDirectory(folder.Path).Checkpoints("vae")));
    }

    [Fact]
    public void AMissingWarmupSnapshotIsMeasuredOnResume()
    {
        using var folder = new TempFolder();
        var first = new ExperimentRunner(SilentObserver.Instance).Train(Tiny("ddvi"), folder.Path, resume: false);
        var run = new RunDirectory(folder.Path);
        File.Delete(run.StageSnapshot("warmup"));
        File.Delete(run.Metrics);
        var lines = new RecordingObserver();
        var resumed = new ExperimentRunner(lines).Train(new ExperimentConfig(), folder.Path, resume: true);
        Assert.Contains(lines.Lines, l => l.StartsWith("warmup: its posterior snapshot is missing", StringComparison.Ordinal));
        Assert.True(File.Exists(run.StageSnapshot("warmup")));
        var snapshot = Assert.Single(resumed.StageSnapshots);
        Assert.Equal(Assert.Single(first.StageSnapshots), snapshot);
        Assert.Equal(first.LatentNll.Value, resumed.LatentNll.Value);
    }

    [Fact]
    public void NonFiniteMetricsAreWrittenAsNullWithTheReasonAndReadBack()
    {
        var report = ComparisonFixtures.Metrics("vae", "pinwheel", 0, double.NegativeInfinity, double.NaN, 0.5, 0.1, 1).WithNonFiniteNamed();
        // The fixture derives the ELBO's per-pixel scale and the bounds from the ELBO: they are infinite too.
        Assert.Superset(new HashSet<string> { "elbo.nats_per_image", "elbo.release_per_pixel_scale", "latent_nll.value" }, report.NotComputed!.Keys.ToHashSet());
        Assert.DoesNotContain(report.NotComputed.Keys, k => k.StartsWith("knn_accuracy", StringComparison.Ordinal) || k.StartsWith("mmd", StringComparison.Ordinal));
        Assert.Contains("NaN", report.NotComputed["latent_nll.value"]);
        string json = JsonSerializer.Serialize(report, ExperimentConfig.JsonOptions);
        var node = JsonNode.Parse(json)!;
        Assert.Null(node["latent_nll"]!["value"]);
        Assert.Null(node["elbo"]!["nats_per_image"]);
        var back = JsonSerializer.Deserialize<MetricsReport>(json, ExperimentConfig.JsonOptions)!;
        Assert.True(double.IsNaN(back.LatentNll.Value));
        Assert.Equal(0.5, back.KnnAccuracy.Value);
    }

    [Theory]
    [InlineData("kl", "Infinity")]
    [InlineData("prior", "-Infinity")]
    [InlineData("matching", "NaN")]
    [InlineData("vae", "Infinity")]
    [InlineData("bandwidth", "Infinity")]
    public void NonFiniteOptionValuesAreRejectedUpFront(string which, string text)
    {
        double value = double.Parse(text, System.Globalization.CultureInfo.InvariantCulture);
        var config = which switch
        {
            "kl" => new ExperimentConfig { Ddvi = new DdviSettings { KlWeight = value } },
            "prior" => new ExperimentConfig { Ddvi = new DdviSettings { PriorWeight = value } },
            "matching" => new ExperimentConfig { Ddvi = new DdviSettings { MatchingWeight = value } },
            "vae" => new ExperimentConfig { Vae = new VaeSettings { PriorWeight = value } },
            _ => new ExperimentConfig { Evaluation = new EvaluationSettings { NllBandwidths = [0.01, value] } },
        };
        var error = Assert.Throws<ArgumentException>(() => config.Validate());
        Assert.Contains("finite", error.Message);
    }

    [Fact]
    public void AMalformedRunFolderIsNamedAndTheOthersAreReported()
    {
        using var folder = new TempFolder();
        var config = Tiny("vae", 1);
        ComparisonFixtures.WriteFinishedRun(Path.Combine(folder.Path, "runs", "a"), config with { Seed = 0 }, ComparisonFixtures.Metrics("vae", "pinwheel", 0, -1, 1, 0.5, 0.1, 1));
        ComparisonFixtures.WriteFinishedRun(Path.Combine(folder.Path, "runs", "b"), config with { Seed = 1 }, ComparisonFixtures.Metrics("vae", "pinwheel", 1, -1, 1, 0.5, 0.1, 1));
        File.WriteAllText(Path.Combine(folder.Path, "runs", "b", "metrics.json"), "{ truncated");
        var discovery = RunResult.Discover([folder.Path]);
        Assert.Single(discovery.Runs);
        var (bad, problem) = Assert.Single(discovery.Malformed);
        Assert.EndsWith("b", bad);
        Assert.Contains("metrics.json", problem);
    }
}
