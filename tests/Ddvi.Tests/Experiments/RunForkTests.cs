using System.Text.Json.Nodes;
using Ddvi.Experiments;
using Ddvi.Training;

namespace Ddvi.Tests.Experiments;

/// <summary><c>ddvi train --fork-from</c>: a new run that reuses another run's stages before the last.</summary>
public class RunForkTests
{
    private static GivenOption Given(string option, string key, JsonNode? value) => new(option, key, value);

    /// <summary>Every setting DDVI's fork point allows, changed from <see cref="ExperimentRunnerTests.Tiny"/>'s values.</summary>
    private static readonly GivenOption[] DdviStageThreeChanges =
    [
        Given("--kl-weight", "ddvi.kl_weight", 0.01),
        Given("--prior-weight", "ddvi.prior_weight", 0.5),
        Given("--matching-weight", "ddvi.matching_weight", 2.0),
        Given("--sleep-steps", "ddvi.sleep_steps", 3),
        Given("--frozen-decoder-epochs", "ddvi.frozen_decoder_epochs", 0),
        Given("--start-term", "ddvi.start", "ForwardMarginal"),
        Given("--aggregate-weight", "ddvi.aggregate_weight", 0.3),
        Given("--lr", "learning_rate", 3e-4),
        Given("--epochs", "epochs", 3),
    ];

    private static ExperimentConfig TinyDdviWithStageThreeChanges() => ExperimentRunnerTests.Tiny("ddvi") with
    {
        LearningRate = 3e-4,
        Epochs = 3,
        Ddvi = ExperimentRunnerTests.Tiny("ddvi").Ddvi with
        {
            KlWeight = 0.01, PriorWeight = 0.5, MatchingWeight = 2.0, SleepSteps = 3, FrozenDecoderEpochs = 0,
            Start = Ddvi.Objectives.StartTarget.ForwardMarginal, AggregateWeight = 0.3,
        },
    };

    private static TrainerState Final(string run, string stage) =>
        Checkpoint.ReadHeader(Checkpoint.Latest(new RunDirectory(run).Checkpoints(stage))!).State;

    private static void AssertSameLosses(TrainerState expected, TrainerState actual)
    {
        Assert.Equal(expected.EpochsCompleted, actual.EpochsCompleted);
        for (int epoch = 0; epoch < expected.History.Count; epoch++)
            Assert.Equal(expected.History[epoch].Losses, actual.History[epoch].Losses);
    }

    [Fact]
    public void AForkedDdviRunTrainsExactlyWhatANewRunWithItsSettingsWould()
    {
        using var folder = new TempFolder();
        string source = folder["source"], fork = folder["fork"], fresh = folder["fresh"];
        new ExperimentRunner(SilentObserver.Instance).Train(ExperimentRunnerTests.Tiny("ddvi"), source, resume: false);
        var observer = new RecordingObserver();
        var forked = new ExperimentRunner(observer).Fork(new ForkRequest(source, DdviStageThreeChanges), fork);
        var direct = new ExperimentRunner(SilentObserver.Instance).Train(TinyDdviWithStageThreeChanges(), fresh, resume: false);

        // No setting of the fork point is read before stage 3: a new run with all of them changed trains the same stages 1 and 2.
        foreach (var stage in new[] { "prior-diffusion", "warmup" })
            AssertSameLosses(Final(source, stage), Final(fresh, stage));
        // The fork did not train them again, and its stage 3 and evaluation are the new run's.
        Assert.DoesNotContain(observer.Lines, l => l.StartsWith("start prior-diffusion", StringComparison.Ordinal) || l.StartsWith("start warmup", StringComparison.Ordinal));
        Assert.Contains(observer.Lines, l => l.StartsWith("forking ", StringComparison.Ordinal) && l.Contains("reusing prior-diffusion (2 epochs", StringComparison.Ordinal));
        Assert.Contains("start ddvi 0", observer.Lines);
        AssertSameLosses(Final(fresh, "ddvi"), Final(fork, "ddvi"));
        ExperimentRunnerTests.AssertSameMetrics(direct, forked);
        Assert.Equal(direct.StageSnapshots, forked.StageSnapshots);
        Assert.Equal(File.ReadAllText(new RunDirectory(fresh).Config), File.ReadAllText(new RunDirectory(fork).Config));

        // The history names the source and every change; the source is untouched and each stage's losses.csv is there.
        var history = File.ReadAllText(new RunDirectory(fork).ConfigHistory);
        Assert.Contains($"forked from {new RunDirectory(source).Root}", history);
        Assert.Contains("--aggregate-weight given with --fork-from", history);
        Assert.True(File.Exists(Path.Combine(new RunDirectory(fork).Checkpoints("warmup"), "losses.csv")));
        Assert.Equal(2, Final(source, "ddvi").EpochsCompleted);
        Assert.Contains($"origin    forked from {new RunDirectory(source).Root}: reused prior-diffusion", RunSummary.Describe(fork).Text);
        Assert.DoesNotContain("origin", RunSummary.Describe(fresh).Text);
    }

    [Fact]
    public void AForkContinuesASourceStageThatHasNotFinishedAndSkipsADamagedCheckpoint()
    {
        using var folder = new TempFolder();
        string source = folder["source"], fork = folder["fork"], fresh = folder["fresh"];
        new ExperimentRunner(SilentObserver.Instance).Train(ExperimentRunnerTests.Tiny("ddvi"), source, resume: false);
        // The source as if stopped in its warm-up: stage 3 and the warm-up's snapshot gone, its last checkpoint damaged.
        var run = new RunDirectory(source);
        Directory.Delete(run.Checkpoints("ddvi"), recursive: true);
        File.Delete(run.StageSnapshot("warmup"));
        string damaged = Checkpoint.Latest(run.Checkpoints("warmup"))!;
        var bytes = File.ReadAllBytes(damaged);
        bytes[^10] ^= 0xFF;
        File.WriteAllBytes(damaged, bytes);

        var observer = new RecordingObserver();
        var forked = new ExperimentRunner(observer).Fork(new ForkRequest(source, [Given("--aggregate-weight", "ddvi.aggregate_weight", 0.3)]), fork);
        var direct = new ExperimentRunner(SilentObserver.Instance).Train(
            ExperimentRunnerTests.Tiny("ddvi") with { Ddvi = ExperimentRunnerTests.Tiny("ddvi").Ddvi with { AggregateWeight = 0.3 } }, fresh, resume: false);

        Assert.Contains(observer.Lines, l => l.StartsWith("warning:", StringComparison.Ordinal) && l.Contains("The fork uses the previous checkpoint", StringComparison.Ordinal));
        Assert.Contains("start warmup 1", observer.Lines);
        Assert.True(File.Exists(damaged), "the fork only reads its source");
        ExperimentRunnerTests.AssertSameMetrics(direct, forked);
        Assert.Equal(direct.StageSnapshots, forked.StageSnapshots);
    }

    [Fact]
    public void AForkedSemiSupervisedRunTrainsExactlyWhatANewRunWouldAndItsWarmupIsTheSources()
    {
        using var folder = new TempFolder();
        string source = folder["source"], fork = folder["fork"], fresh = folder["fresh"];
        var tiny = ExperimentRunnerTests.Tiny("ddvi-semi") with
        {
            Labels = 40, BatchSize = 64,
            Semi = new SemiSettings { Steps = 6, SleepSteps = 2, PriorDiffusionIterations = 40, PriorDiffusionStepsPerEpoch = 20, WarmupEpochs = 2, Hidden = 32 },
        };
        new ExperimentRunner(SilentObserver.Instance).Train(tiny, source, resume: false);
        GivenOption[] changes =
        [
            Given("--prior-weight", "semi.prior_weight", 0.5), Given("--matching-weight", "semi.matching_weight", 2.0),
            Given("--sleep-steps", "semi.sleep_steps", 3), Given("--frozen-decoder-epochs", "semi.frozen_decoder_epochs", 1),
            Given("--lr", "learning_rate", 3e-4), Given("--epochs", "epochs", 3),
        ];
        var forked = new ExperimentRunner(SilentObserver.Instance).Fork(new ForkRequest(source, changes), fork);
        var direct = new ExperimentRunner(SilentObserver.Instance).Train(tiny with
        {
            LearningRate = 3e-4, Epochs = 3,
            Semi = tiny.Semi with { PriorWeight = 0.5, MatchingWeight = 2.0, SleepSteps = 3, FrozenDecoderEpochs = 1 },
        }, fresh, resume: false);

        foreach (var stage in new[] { "prior-diffusion", "warmup" })
            AssertSameLosses(Final(source, stage), Final(fresh, stage));
        AssertSameLosses(Final(fresh, "ddvi-semi"), Final(fork, "ddvi-semi"));
        ExperimentRunnerTests.AssertSameMetrics(direct, forked);
        Assert.Equal(File.ReadAllText(Path.Combine(fresh, Ddvi.Data.LabelBudget.FileName)), File.ReadAllText(Path.Combine(fork, Ddvi.Data.LabelBudget.FileName)));
    }

    [Theory]
    [InlineData("--prior-steps", "ddvi.prior_steps", 4)]
    [InlineData("--posterior-steps", "ddvi.posterior_steps", 8)]
    [InlineData("--batch-size", "batch_size", 32)]
    [InlineData("--seed", "seed", 4)]
    [InlineData("--warmup-epochs", "ddvi.warmup_epochs", 3)]
    [InlineData("--noise-loss", "ddvi.noise_loss", "L2")]
    public void AForkMayNotChangeWhatTheReusedStagesRead(string option, string key, object value)
    {
        JsonNode node = value is int i ? JsonValue.Create(i) : JsonValue.Create((string)value);
        var request = new ForkRequest("SRC", [Given("--aggregate-weight", "ddvi.aggregate_weight", 0.3), Given(option, key, node)]);
        var error = Assert.Throws<ArgumentException>(() => request.ApplyTo(ExperimentRunnerTests.Tiny("ddvi")));
        Assert.Contains($"--fork-from SRC", error.Message);
        Assert.Contains($"{option} ({key}:", error.Message);
        Assert.Contains("'prior-diffusion' and 'warmup'", error.Message);
        Assert.DoesNotContain("--aggregate-weight (", error.Message);
    }

    [Fact]
    public void HowToRunAndTheEvaluationMayChangeInAFork()
    {
        var request = new ForkRequest("SRC",
        [
            Given("--threads", "threads", 1), Given("--checkpoint-every", "checkpoint_every", 3), Given("--device", "device", "Cpu"),
        ]);
        var (config, point, changes) = request.ApplyTo(ExperimentRunnerTests.Tiny("ddvi"));
        Assert.Equal("ddvi", point.Stage);
        Assert.Equal(1, config.Threads);
        Assert.Equal(["checkpoint_every", "device", "threads"], changes.Select(c => c.Key).Order());
        Assert.All(changes, c => Assert.EndsWith("given with --fork-from", c.Reason, StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("vae")]
    [InlineData("aae")]
    [InlineData("iaf-vae-semi")]
    public void OneStageModelsHaveNothingToFork(string model)
    {
        var error = Assert.Throws<ArgumentException>(() => new ForkRequest("SRC", []).ApplyTo(ExperimentRunnerTests.Tiny(model)));
        Assert.Contains($"the model '{model}' trains in one stage", error.Message);
        Assert.Contains("models that can be forked: ddvi, ddvi-semi", error.Message);
    }

    [Fact]
    public void ASourceWithoutARunOrCheckpointsAndABusyOutAreErrors()
    {
        using var folder = new TempFolder();
        var runner = new ExperimentRunner(SilentObserver.Instance);
        var noRun = Assert.Throws<FileNotFoundException>(() => runner.Fork(new ForkRequest(folder["none"], []), folder["fork"]));
        Assert.Contains("config.json not found", noRun.Message);

        Directory.CreateDirectory(folder["source"]);
        File.WriteAllText(new RunDirectory(folder["source"]).Config, ExperimentRunnerTests.Tiny("ddvi").ToJson());
        var nothing = Assert.Throws<InvalidOperationException>(() => runner.Fork(new ForkRequest(folder["source"], []), folder["fork"]));
        Assert.Contains("no intact checkpoint of its first stage 'prior-diffusion'", nothing.Message);
        Assert.Contains("nothing to reuse", nothing.Message);

        var itself = Assert.Throws<ArgumentException>(() => runner.Fork(new ForkRequest(folder["source"], []), folder["source"]));
        Assert.Contains("--out names the source run itself", itself.Message);

        runner.Train(ExperimentRunnerTests.Tiny("vae", 1), folder["busy"], resume: false);
        Directory.CreateDirectory(new RunDirectory(folder["source"]).Checkpoints("prior-diffusion"));
        var busy = Assert.Throws<InvalidOperationException>(() => runner.Fork(new ForkRequest(folder["source"], []), folder["busy"]));
        Assert.Contains("already holds a run", busy.Message);
    }

    [Fact]
    public void TheCommandLineAsksForOutAndRefusesResumeWithAFork()
    {
        var (code, _, error) = DdviProcess.Run("train", "--fork-from", "/nonexistent/run", "--aggregate-weight", "0.3");
        Assert.Equal(2, code);
        Assert.Contains("--fork-from needs --out", error);
        (code, _, error) = DdviProcess.Run("train", "--fork-from", "/nonexistent/run", "--resume", "--out", "/tmp/x");
        Assert.Equal(2, code);
        Assert.Contains("--fork-from starts a new run and --resume continues one", error);
    }

    [Fact]
    public void ASemiSupervisedForkTakesItsSettingsFromAnExperimentFile()
    {
        // ddvi-semi's stage-3 settings have no flags of their own: a --config file's keys count as options given.
        using var folder = new TempFolder();
        Directory.CreateDirectory(folder["source"]);
        File.WriteAllText(new RunDirectory(folder["source"]).Config, ExperimentRunnerTests.Tiny("ddvi-semi").ToJson());
        File.WriteAllText(folder["stage3.yaml"], "semi:\n  sleep_steps: 3\n  prior_weight: 0.5\n");
        File.WriteAllText(folder["warmup.yaml"], "semi:\n  entropy_weight: 0.01\n");

        // The allowed keys pass the check and the fork goes on to the source's checkpoints (here none).
        var (code, _, error) = DdviProcess.Run("train", "--fork-from", folder["source"], "--config", folder["stage3.yaml"], "--out", folder["fork"]);
        Assert.Equal(1, code);
        Assert.Contains("no intact checkpoint of its first stage 'prior-diffusion'", error);
        // A key the warm-up reads is refused, named with its file and line.
        (code, _, error) = DdviProcess.Run("train", "--fork-from", folder["source"], "--config", folder["warmup.yaml"], "--out", folder["fork2"]);
        Assert.Equal(2, code);
        Assert.Contains($"semi.entropy_weight (line 2 of {folder["warmup.yaml"]}) (semi.entropy_weight: 0.001 in the source, 0.01 here)", error);
    }
}
