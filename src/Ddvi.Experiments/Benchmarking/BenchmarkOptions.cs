using Ddvi.Models;
using Ddvi.Runtime;

namespace Ddvi.Benchmarking;

/// <summary>The data shape <c>ddvi bench</c> measures on (<c>--dataset</c>): seeded random images of that shape and range,
/// so it runs anywhere without the data.</summary>
public enum BenchmarkDataset
{
    /// <summary>MNIST-shaped: 1×28×28 in [0, 1], the Bernoulli likelihood and the paper's MLPs; 60,000 training images.</summary>
    Mnist,

    /// <summary>CIFAR-10-shaped: 3×32×32 in [−1, 1], the Gaussian likelihood and the release's conv networks, flips in
    /// training; 50,000 training images.</summary>
    Cifar10,
}

public static class BenchmarkDatasets
{
    /// <summary>Images of the dataset's training set: the default length of a benchmark epoch.</summary>
    public static int TrainingImages(this BenchmarkDataset dataset) => dataset == BenchmarkDataset.Cifar10 ? 50_000 : 60_000;

    /// <summary>The name <c>--dataset</c> takes.</summary>
    public static string Name(this BenchmarkDataset dataset) => dataset == BenchmarkDataset.Cifar10 ? "cifar10" : "mnist";

    /// <summary>Parses <c>--dataset</c>; an unknown name is an error listing the valid ones.</summary>
    public static BenchmarkDataset Parse(string name) => name.ToLowerInvariant() switch
    {
        "mnist" => BenchmarkDataset.Mnist,
        "cifar10" => BenchmarkDataset.Cifar10,
        _ => throw new ArgumentException($"--dataset: '{name}' is not a benchmark dataset; valid: mnist, cifar10"),
    };
}

/// <summary>What <c>ddvi bench</c> measures and how: the paper's hyperparameters by default (batch 128, hidden 1000,
/// T = 40 posterior steps, K = 3 sleep steps) on seeded random data of <see cref="Dataset"/>'s shape, so it runs anywhere.</summary>
public sealed record BenchmarkOptions
{
    /// <summary>The data shape, and with it the networks and likelihood the models use (MNIST by default).</summary>
    public BenchmarkDataset Dataset { get; init; } = BenchmarkDataset.Mnist;

    /// <summary>Benchmark names (see <see cref="BenchmarkCases.Names"/>); empty = all.</summary>
    public IReadOnlyList<string> Cases { get; init; } = [];

    public DeviceChoice Device { get; init; } = DeviceChoice.Auto;

    /// <summary>libtorch intra-op thread counts to measure, one full run each; 0 = libtorch's default.</summary>
    public IReadOnlyList<int> Threads { get; init; } = [0];

    /// <summary>
    /// Counts of busy processes to measure under (<see cref="BackgroundLoad"/>): after the idle run at each thread count,
    /// one more run per count with that many of the bench's own busy processes, each case's time compared with the idle
    /// run's (<see cref="BenchmarkSuite.Slowdowns"/>). Empty (the default) measures idle only.
    /// </summary>
    public IReadOnlyList<int> BackgroundLoads { get; init; } = [];

    /// <summary>The most busy processes one run may start.</summary>
    public const int MaxBackgroundLoad = 64;

    public int BatchSize { get; init; } = PaperSettings.BatchSize;
    public int Hidden { get; init; } = PaperSettings.Hidden;
    public int PosteriorSteps { get; init; } = PaperSettings.PosteriorSteps;
    public int PriorSteps { get; init; } = PaperSettings.PriorSteps;
    public int SleepSteps { get; init; } = PaperSettings.SleepSteps;

    /// <summary>Training images of an epoch; null = the dataset's training set (<see cref="BenchmarkDatasets.TrainingImages"/>).</summary>
    public int? TrainImages { get; init; }

    /// <summary><see cref="TrainImages"/> as given, else the dataset's training set.</summary>
    public int ResolvedTrainImages => TrainImages ?? Dataset.TrainingImages();

    /// <summary>Test images evaluated.</summary>
    public int TestImages { get; init; } = 10_000;

    /// <summary>Untimed steps before measuring (caches, allocator and thread pools warm up).</summary>
    public int WarmupSteps { get; init; } = 50;

    /// <summary>Least untimed seconds per training benchmark, whatever <see cref="WarmupSteps"/> says.</summary>
    public double MinWarmupSeconds { get; init; } = 3.0;

    /// <summary>
    /// After the warm-up above, training benchmarks keep stepping untimed until .NET's JIT has compiled nothing for this
    /// many seconds (0: do not wait). Tiered compilation recompiles hot methods in the background for the first seconds
    /// of a run, on a thread that competes with the compute threads for the cores, and runs their first calls as
    /// unoptimised code; a training runs for hours past that point, so the steps are timed after it.
    /// </summary>
    public double JitQuietSeconds { get; init; } = 1.0;

    /// <summary>The longest untimed warm-up of one training benchmark while it waits for <see cref="JitQuietSeconds"/>.</summary>
    public double MaxWarmupSeconds { get; init; } = 60.0;

    /// <summary>Timed repetitions; each times enough steps to last at least <see cref="MinRepetitionSeconds"/>.</summary>
    public int Repetitions { get; init; } = 7;
    public double MinRepetitionSeconds { get; init; } = 0.3;

    /// <summary>Repetitions of the (long) evaluation benchmarks, after one untimed run.</summary>
    public int EvaluationRepetitions { get; init; } = 3;

    public long Seed { get; init; }

    /// <summary>The models' network arithmetic (MLPs, conv trunks and decoders; <c>--precision</c>); float32 unless asked.</summary>
    public NetworkPrecision Precision { get; init; } = NetworkPrecisions.Default;

    public BenchmarkOptions Validate()
    {
        foreach (var name in Cases)
            if (!BenchmarkCases.Names.Contains(name))
                throw new ArgumentException($"--cases: '{name}' is not a benchmark; valid: {string.Join(", ", BenchmarkCases.Names)}");
        if (Threads.Count == 0 || Threads.Any(t => t < 0))
            throw new ArgumentException($"--threads: expected thread counts ≥ 0 (0 = libtorch default), got [{string.Join(", ", Threads)}]");
        if (BackgroundLoads.Any(n => n < 1 || n > MaxBackgroundLoad) || BackgroundLoads.Distinct().Count() != BackgroundLoads.Count)
            throw new ArgumentException($"--background-load: expected distinct counts of busy processes from 1 to {MaxBackgroundLoad}, got [{string.Join(", ", BackgroundLoads)}]");
        Require(BatchSize >= 1, $"--batch-size must be ≥ 1, got {BatchSize}");
        Require(Hidden >= 1, $"--hidden must be ≥ 1, got {Hidden}");
        Require(PosteriorSteps >= 1 && PriorSteps >= 1, $"--posterior-steps and --prior-steps must be ≥ 1, got {PosteriorSteps} and {PriorSteps}");
        Require(SleepSteps >= 0, $"--sleep-steps must be ≥ 0, got {SleepSteps}");
        Require(ResolvedTrainImages >= BatchSize, $"--train-images must be ≥ the batch size {BatchSize}, got {ResolvedTrainImages}");
        Require(TestImages >= 1, $"--test-images must be ≥ 1, got {TestImages}");
        Require(WarmupSteps >= 1, $"--warmup-steps must be ≥ 1, got {WarmupSteps}");
        Require(Repetitions >= 2, $"--repetitions must be ≥ 2 (a spread needs two), got {Repetitions}");
        Require(EvaluationRepetitions >= 1, $"--evaluation-repetitions must be ≥ 1, got {EvaluationRepetitions}");
        Require(MinWarmupSeconds >= 0, $"warm-up length must be ≥ 0 s, got {MinWarmupSeconds}");
        Require(JitQuietSeconds >= 0 && MaxWarmupSeconds >= MinWarmupSeconds,
            $"the JIT's quiet time must be ≥ 0 s and the longest warm-up ≥ the shortest, got {JitQuietSeconds} and {MaxWarmupSeconds} (shortest {MinWarmupSeconds})");
        Require(MinRepetitionSeconds > 0, $"repetition length must be > 0 s, got {MinRepetitionSeconds}");
        return this;
    }

    static void Require(bool condition, string message)
    {
        if (!condition) throw new ArgumentException(message);
    }
}
