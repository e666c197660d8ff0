using System.Diagnostics;
using System.Globalization;
using System.Reflection;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;
using Ddvi.Experiments;
using Ddvi.FastPaths;
using Ddvi.IO;
using Ddvi.Models;
using Ddvi.Runtime;
using static TorchSharp.torch;

namespace Ddvi.Benchmarking;

/// <summary>Median, quartiles and extremes of per-step times, in seconds.</summary>
public sealed record TimeStatistics(double Median, double LowerQuartile, double UpperQuartile, double Min, double Max, int Samples)
{
    /// <summary>Interquartile range relative to the median.</summary>
    public double RelativeSpread => Median > 0 ? (UpperQuartile - LowerQuartile) / Median : 0;

    public static TimeStatistics Of(IReadOnlyList<double> samples)
    {
        if (samples.Count == 0) throw new ArgumentException("no timing samples", nameof(samples));
        var sorted = samples.Order().ToArray();
        return new TimeStatistics(Quantile(sorted, 0.5), Quantile(sorted, 0.25), Quantile(sorted, 0.75), sorted[0], sorted[^1], sorted.Length);
    }

    /// <summary>Linear interpolation between order statistics (the usual "type 7" quantile).</summary>
    public static double Quantile(double[] sorted, double p)
    {
        double position = p * (sorted.Length - 1);
        int below = (int)Math.Floor(position);
        int above = Math.Min(below + 1, sorted.Length - 1);
        return sorted[below] + (position - below) * (sorted[above] - sorted[below]);
    }
}

/// <summary>A target of the performance issue for one benchmark: at most this many seconds per epoch (or per evaluation),
/// this multiple of the arithmetic floor and this peak memory, each where given.</summary>
public sealed record BenchmarkTarget(double? MaxSecondsPerEpoch, double? MaxRatioToFloor = null, long? MaxPeakBytes = null);

/// <summary>One benchmark's measurement.</summary>
public sealed record BenchmarkResult
{
    public required string Name { get; init; }
    public required string Description { get; init; }
    public required int Threads { get; init; }

    /// <summary>With the default thread count: the count the <see cref="ThreadGovernor"/> chose for each timed
    /// repetition (null when a count was given).</summary>
    [System.Text.Json.Serialization.JsonIgnore(Condition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull)]
    public IReadOnlyList<int>? ThreadsUsed { get; init; }

    public required TimeStatistics SecondsPerStep { get; init; }
    public required int StepsPerRepetition { get; init; }

    /// <summary>Untimed steps run before the timed repetitions, and their seconds (see <see cref="BenchmarkOptions.JitQuietSeconds"/>).</summary>
    public int WarmupSteps { get; init; }
    public double WarmupSeconds { get; init; }
    public required int StepsPerEpoch { get; init; }
    public required string EpochUnit { get; init; }
    public required double SecondsPerEpoch { get; init; }
    public required int StageEpochs { get; init; }
    public required double SecondsPerStage { get; init; }
    public required double ExamplesPerSecond { get; init; }
    public required long PeakResidentBytes { get; init; }
    public required bool PeakIsPerBenchmark { get; init; }
    public required double GigaflopsPerStep { get; init; }
    public required double FloorSecondsPerEpoch { get; init; }
    public required double RatioToFloor { get; init; }
    public BenchmarkTarget? Target { get; init; }
    public bool? MeetsTarget { get; init; }

    /// <summary>Whether the target's seconds per epoch lie below the floor measured in the same run: then no schedule of
    /// the same arithmetic meets it on this machine.</summary>
    public bool TargetBelowFloor => Target?.MaxSecondsPerEpoch is { } seconds && seconds < FloorSecondsPerEpoch;
}

/// <summary>Where and with what the benchmarks ran.</summary>
public sealed record BenchmarkMachine(string Device, int Threads, int InteropThreads, int ProcessorCount, string? Processor,
    string OperatingSystem, string Runtime, string TorchSharp, string Ddvi, string CpuKernels);

/// <summary>
/// A pipeline at the paper's lengths (DDVI's or DDVI-semi's, <paramref name="Model"/>), added up from its stage benchmarks,
/// beside its arithmetic floor (each stage's floor times its length: no schedule of the same matrix products finishes sooner
/// at the run's product rate) and the issue's target for the whole pipeline where there is one.
/// </summary>
public sealed record PipelineEstimate(string Model, double PriorDiffusionSeconds, double WarmupSeconds, double FrozenDecoderSeconds, double DdviSeconds,
    double EvaluationSeconds, double TotalSeconds, string Composition, double FloorSeconds, double? TargetSeconds)
{
    public bool? MeetsTarget => TargetSeconds is { } target ? TotalSeconds <= target : null;

    /// <summary>Whether the target lies below the floor: then no implementation of the same arithmetic meets it here.</summary>
    public bool TargetBelowFloor => TargetSeconds is { } target && target < FloorSeconds;
}

public sealed record BenchmarkReport(DateTimeOffset Started, BenchmarkOptions Options, IReadOnlyList<BenchmarkRun> Runs,
    IReadOnlyList<LoadSlowdown> Slowdowns);

/// <summary>All benchmarks at one thread count, with <paramref name="BackgroundProcesses"/> of the bench's own busy processes
/// running meanwhile (0: idle, as far as the bench is concerned). <paramref name="OtherCpuLoad"/> is the cores' worth of CPU
/// time that something else on the machine took meanwhile, on average (<see cref="CpuActivity.OtherCores"/>; null off Linux):
/// well above 0, and the run was not what its load says.</summary>
public sealed record BenchmarkRun(BenchmarkMachine Machine, int BackgroundProcesses, double? OtherCpuLoad, IReadOnlyList<MatrixProductRate> MatrixProductRates,
    double FloorGigaflopsPerSecond, IReadOnlyList<BenchmarkResult> Results, PipelineEstimate? Pipeline, PipelineEstimate? SemiPipeline);

/// <summary>
/// One benchmark's median time per step under background load against the same benchmark's in the idle run at the same
/// thread count, in the same invocation. <see cref="MaxRatio"/> is the target for that load on the 2-core reference machine,
/// where one busy process leaves half the machine as the fair share.
/// </summary>
public sealed record LoadSlowdown(string Name, int Threads, int BackgroundProcesses, double IdleSecondsPerStep, double LoadedSecondsPerStep,
    double Ratio, double? MaxRatio, bool? MeetsTarget, double? IdleOtherCpuLoad, double? LoadedOtherCpuLoad);

/// <summary>
/// <c>ddvi bench</c>: times every benchmark of <see cref="BenchmarkCases"/> in steady state (after warm-up steps, several
/// timed repetitions, median and spread), with examples per second, the operating system's peak resident memory, and the
/// arithmetic floor (matrix-product FLOPs per step over the best measured matrix-product rate).
/// </summary>
public static class BenchmarkSuite
{
    public const double SecondsPerHour = 3600;

    /// <summary>The targets of the performance issues, on a 2-core CPU at the paper's hyperparameters: for MNIST-shaped
    /// data the first performance issue's; for CIFAR-10 every training step within 2× its floor (issue 18).</summary>
    public static BenchmarkTarget? TargetOf(string name, BenchmarkDataset dataset = BenchmarkDataset.Mnist) => dataset switch
    {
        BenchmarkDataset.Cifar10 => BenchmarkCases.IsEvaluation(name) ? null : new BenchmarkTarget(null, MaxRatioToFloor: 2.0),
        _ => MnistTargetOf(name),
    };

    static BenchmarkTarget? MnistTargetOf(string name) => name switch
    {
        BenchmarkCases.Ddvi or BenchmarkCases.DdviFrozenDecoder => new BenchmarkTarget(40, MaxRatioToFloor: 1.5),
        BenchmarkCases.Warmup => new BenchmarkTarget(12),
        BenchmarkCases.PriorDiffusion => new BenchmarkTarget(60.0 / 100), // 60 s for the 100 epochs of 1000 iterations
        BenchmarkCases.Vae => new BenchmarkTarget(10),
        BenchmarkCases.EvaluateDdvi or BenchmarkCases.EvaluateVae => new BenchmarkTarget(10, MaxPeakBytes: 2L << 30),
        // Issue 19: DDVI-semi at most 150 s per 60,000-image epoch and 3 GB of resident memory (the release: ~2,000 s, > 23 GB).
        BenchmarkCases.SemiDdvi => new BenchmarkTarget(150, MaxPeakBytes: 3_000_000_000),
        _ => null,
    };

    public static BenchmarkReport Run(BenchmarkOptions options, Action<string> log)
    {
        CpuRuntime.Configure(); // before the first matrix product: the settings the CLI runs with
        options.Validate();
        var started = DateTimeOffset.Now;
        var device = ComputeDevice.Resolve(options.Device);
        var names = options.Cases.Count == 0 ? BenchmarkCases.Names : options.Cases;
        int defaultThreads = get_num_threads();
        var runs = new List<BenchmarkRun>();
        foreach (int threads in options.Threads)
        {
            set_num_threads(threads == 0 ? defaultThreads : threads);
            runs.Add(RunAtThreadCount(options, names, device, 0, threads == 0, log));
            foreach (int processes in options.BackgroundLoads)
                runs.Add(RunAtThreadCount(options, names, device, processes, threads == 0, log));
        }
        set_num_threads(defaultThreads);
        var slowdowns = Slowdowns(runs);
        foreach (var slowdown in slowdowns) log(Line(slowdown));
        return new BenchmarkReport(started, options, runs, slowdowns);
    }

    /// <summary>The target slowdown under <paramref name="backgroundProcesses"/> busy processes on the 2-core reference
    /// machine: 2.2× with one (half the machine is the fair share), 3.5× with two; none for other counts.</summary>
    public static double? SlowdownTarget(int backgroundProcesses) => backgroundProcesses switch
    {
        1 => 2.2,
        2 => 3.5,
        _ => null,
    };

    /// <summary>Every loaded run's benchmarks against the idle run at the same thread count (the one before it in
    /// <paramref name="runs"/>); benchmarks missing from either side are left out.</summary>
    public static IReadOnlyList<LoadSlowdown> Slowdowns(IReadOnlyList<BenchmarkRun> runs)
    {
        var slowdowns = new List<LoadSlowdown>();
        BenchmarkRun? idle = null;
        foreach (var run in runs)
        {
            if (run.BackgroundProcesses == 0)
            {
                idle = run;
                continue;
            }
            if (idle is null || idle.Machine.Threads != run.Machine.Threads) continue;
            var idleByName = idle.Results.ToDictionary(r => r.Name);
            double? target = SlowdownTarget(run.BackgroundProcesses);
            foreach (var loaded in run.Results)
            {
                if (!idleByName.TryGetValue(loaded.Name, out var reference)) continue;
                double ratio = loaded.SecondsPerStep.Median / reference.SecondsPerStep.Median;
                slowdowns.Add(new LoadSlowdown(loaded.Name, run.Machine.Threads, run.BackgroundProcesses, reference.SecondsPerStep.Median,
                    loaded.SecondsPerStep.Median, ratio, target, target is { } max ? ratio <= max : null, idle.OtherCpuLoad, run.OtherCpuLoad));
            }
        }
        return slowdowns;
    }

    /// <param name="governed">The default thread count: as in training, a <see cref="ThreadGovernor"/> chooses it from the
    /// machine's load before each benchmark's warm-up and each timed repetition (the trainer does at every epoch).</param>
    static BenchmarkRun RunAtThreadCount(BenchmarkOptions options, IReadOnlyList<string> names, Device device, int backgroundProcesses,
        bool governed, Action<string> log)
    {
        var machine = Machine(device);
        var governor = governed && device.type == TorchSharp.DeviceType.CPU ? new ThreadGovernor(machine.Threads) : null;
        log($"device {machine.Device}, {machine.Threads} threads, TorchSharp {machine.TorchSharp}; {machine.CpuKernels}");
        // Started before the rate measurement, so that the floor is the loaded machine's; stopped when the run ends, however.
        using var load = BackgroundLoad.Start(backgroundProcesses);
        if (backgroundProcesses > 0)
            log($"background load: {backgroundProcesses} busy process{(backgroundProcesses == 1 ? "" : "es")} (ids {string.Join(", ", load.ProcessIds)})");
        var activityBefore = CpuActivity.Now();
        double loadSecondsBefore = load.CpuSeconds;
        log($"data: seeded random {(options.Dataset == BenchmarkDataset.Cifar10 ? "CIFAR-10-shaped images (3×32×32 in [−1, 1])" : "MNIST-shaped images (1×28×28 in [0, 1])")}, {options.ResolvedTrainImages:N0} per epoch");
        // With bfloat16 networks the floor takes the faster of the two arithmetics' rates: parts of each step (the denoisers,
        // flows) stay float32, so this floor is below what the step could reach, never above.
        ScalarType[] types = options.Precision == NetworkPrecision.Bfloat16 ? [ScalarType.Float32, ScalarType.BFloat16] : [ScalarType.Float32];
        var rates = types.SelectMany(type => new[]
        {
            MatrixProductRate.Measure(device, options.BatchSize, options.Hidden, options.Hidden, dtype: type),
            MatrixProductRate.Measure(device, 1024, 1024, 1024, dtype: type),
        }).ToArray();
        double floorRate = rates.Max(r => r.GigaflopsPerSecond);
        foreach (var rate in rates) log($"matrix product {rate.Shape}: {rate.GigaflopsPerSecond:F1} GFLOP/s");

        var results = new List<BenchmarkResult>();
        using (var inputs = new BenchmarkInputs(options, device))
        {
            foreach (var name in names)
            {
                var result = Measure(name, inputs, floorRate, machine.Threads, device, governor);
                results.Add(result);
                log(Line(result));
            }
        }
        if (governor is not null) set_num_threads(machine.Threads);
        double? otherLoad = CpuActivity.OtherCores(activityBefore, CpuActivity.Now(), load.CpuSeconds - loadSecondsBefore);
        if (otherLoad is { } other) log(string.Create(CultureInfo.InvariantCulture, $"other work on the machine meanwhile: {other:F2} cores on average"));
        return new BenchmarkRun(machine, backgroundProcesses, otherLoad, rates, floorRate, results,
            Pipeline(results, options, semi: false), Pipeline(results, options, semi: true));
    }

    static BenchmarkResult Measure(string name, BenchmarkInputs inputs, double floorGigaflops, int threads, Device device, ThreadGovernor? governor = null)
    {
        governor?.Decide();
        var o = inputs.Options;
        bool evaluation = BenchmarkCases.IsEvaluation(name);
        using var scope = NewDisposeScope();
        bool perBenchmarkPeak = ProcessMemory.ResetPeak();
        using var prepared = BenchmarkCases.Prepare(name, inputs);

        // Warm up for at least the given steps and, for training steps, at least three seconds and until the JIT's tiered
        // compilation has settled (nothing compiled for JitQuietSeconds, at most MaxWarmupSeconds in all): until then hot
        // methods run unoptimised and the background recompilation takes a core from the compute threads.
        var clock = new Stopwatch();
        var warmupClock = Stopwatch.StartNew();
        int warmup = evaluation ? 1 : o.WarmupSteps;
        var jit = new JitActivity();
        int warmupSteps = 0;
        for (; warmupSteps < warmup || (!evaluation && warmupClock.Elapsed.TotalSeconds < o.MaxWarmupSeconds
                 && (warmupClock.Elapsed.TotalSeconds < o.MinWarmupSeconds || jit.SecondsQuiet() < o.JitQuietSeconds));
             warmupSteps++)
        {
            clock.Restart();
            prepared.Step();
            MatrixProductRate.Synchronize(device);
        }
        warmupClock.Stop();
        int stepsPerRepetition = evaluation ? 1 : (int)Math.Clamp(Math.Ceiling(o.MinRepetitionSeconds / Math.Max(clock.Elapsed.TotalSeconds, 1e-6)), 1, 100_000);
        int repetitions = evaluation ? o.EvaluationRepetitions : o.Repetitions;
        var samples = new List<double>(repetitions);
        var threadsUsed = new List<int>(repetitions);
        for (int r = 0; r < repetitions; r++)
        {
            governor?.Decide();
            threadsUsed.Add(get_num_threads());
            clock.Restart();
            for (int s = 0; s < stepsPerRepetition; s++) prepared.Step();
            MatrixProductRate.Synchronize(device);
            samples.Add(clock.Elapsed.TotalSeconds / stepsPerRepetition);
        }
        long peak = ProcessMemory.PeakResidentBytes();

        var stats = TimeStatistics.Of(samples);
        double perEpoch = stats.Median * prepared.StepsPerEpoch;
        double floorPerStep = prepared.FlopsPerStep / (floorGigaflops * 1e9);
        var target = TargetOf(name, o.Dataset);
        bool? meets = target is null ? null
            : (target.MaxSecondsPerEpoch is not { } seconds || perEpoch <= seconds)
              && (target.MaxRatioToFloor is not { } ratio || stats.Median / floorPerStep <= ratio)
              && (target.MaxPeakBytes is not { } bytes || peak <= bytes);
        return new BenchmarkResult
        {
            Name = name,
            Description = BenchmarkCases.Describe(name),
            Threads = threads,
            ThreadsUsed = governor is null ? null : threadsUsed,
            SecondsPerStep = stats,
            StepsPerRepetition = stepsPerRepetition,
            WarmupSteps = warmupSteps,
            WarmupSeconds = warmupClock.Elapsed.TotalSeconds,
            StepsPerEpoch = prepared.StepsPerEpoch,
            EpochUnit = prepared.EpochUnit,
            SecondsPerEpoch = perEpoch,
            StageEpochs = prepared.StageEpochs,
            SecondsPerStage = perEpoch * prepared.StageEpochs,
            ExamplesPerSecond = prepared.ExamplesPerStep / stats.Median,
            PeakResidentBytes = peak,
            PeakIsPerBenchmark = perBenchmarkPeak,
            GigaflopsPerStep = prepared.FlopsPerStep / 1e9,
            FloorSecondsPerEpoch = floorPerStep * prepared.StepsPerEpoch,
            RatioToFloor = stats.Median / floorPerStep,
            Target = target,
            MeetsTarget = meets,
        };
    }

    /// <summary>
    /// The whole-pipeline targets (MNIST-format data): DDVI's stages and evaluations in 60 minutes, DDVI-semi's in 2.5 hours
    /// (issue 19); none on CIFAR-10.
    /// </summary>
    public static double? PipelineTargetSeconds(bool semi, BenchmarkDataset dataset) =>
        dataset == BenchmarkDataset.Cifar10 ? null : semi ? 2.5 * SecondsPerHour : 60 * 60;

    /// <summary>
    /// DDVI's (or with <paramref name="semi"/> DDVI-semi's) pipeline at the paper's lengths, when every part of it was
    /// measured: stage 1 in full, the warm-up's epochs, stage 3's epochs with the decoder frozen and the rest, and two
    /// evaluations (the warm-up snapshot's, counted as a full one, and the final one).
    /// </summary>
    internal static PipelineEstimate? Pipeline(IReadOnlyList<BenchmarkResult> results, BenchmarkOptions options, bool semi)
    {
        var byName = results.ToDictionary(r => r.Name);
        string[] needed = semi
            ? [BenchmarkCases.SemiPriorDiffusion, BenchmarkCases.SemiWarmup, BenchmarkCases.SemiFrozenDecoder, BenchmarkCases.SemiDdvi, BenchmarkCases.EvaluateSemiDdvi]
            : [BenchmarkCases.PriorDiffusion, BenchmarkCases.Warmup, BenchmarkCases.DdviFrozenDecoder, BenchmarkCases.Ddvi, BenchmarkCases.EvaluateDdvi];
        if (needed.Any(n => !byName.ContainsKey(n))) return null;
        var (priorStage, warmupStage, frozenStage, stage3, evaluation) = (byName[needed[0]], byName[needed[1]], byName[needed[2]], byName[needed[3]], byName[needed[4]]);
        int frozenEpochs = Math.Min(BenchmarkCases.FrozenDecoderEpochs(options, semi), stage3.StageEpochs);
        int trainedEpochs = stage3.StageEpochs - frozenEpochs;
        const int Evaluations = 2;
        double prior = priorStage.SecondsPerStage;
        double warmup = warmupStage.SecondsPerStage;
        double frozen = frozenStage.SecondsPerEpoch * frozenEpochs;
        double ddvi = stage3.SecondsPerEpoch * trainedEpochs;
        double evaluations = Evaluations * evaluation.SecondsPerStep.Median;
        double floor = priorStage.FloorSecondsPerEpoch * priorStage.StageEpochs + warmupStage.FloorSecondsPerEpoch * warmupStage.StageEpochs
                       + frozenStage.FloorSecondsPerEpoch * frozenEpochs + stage3.FloorSecondsPerEpoch * trainedEpochs
                       + Evaluations * evaluation.FloorSecondsPerEpoch;
        return new PipelineEstimate(semi ? "DDVI-semi" : "DDVI", prior, warmup, frozen, ddvi, evaluations, prior + warmup + frozen + ddvi + evaluations,
            $"stage 1: {priorStage.StageEpochs} × {priorStage.StepsPerEpoch} iterations; " +
            $"stage 2: {warmupStage.StageEpochs} epochs; stage 3: {frozenEpochs} epochs with the decoder frozen + " +
            $"{trainedEpochs} without; {Evaluations} evaluations",
            floor, PipelineTargetSeconds(semi, options.Dataset));
    }

    static BenchmarkMachine Machine(Device device)
    {
        string? processor = null;
        if (File.Exists("/proc/cpuinfo"))
            processor = File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal))?.Split(':', 2)[1].Trim();
        return new BenchmarkMachine(device.ToString(), get_num_threads(), get_num_interop_threads(), Environment.ProcessorCount, processor,
            RuntimeInformation.OSDescription, RuntimeInformation.FrameworkDescription,
            InformationalVersion(typeof(TorchSharp.torch).Assembly), InformationalVersion(typeof(BenchmarkSuite).Assembly),
            ComputeDevice.HostKernelNotes(device));
    }

    static string InformationalVersion(Assembly assembly)
    {
        var version = assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion
                      ?? assembly.GetName().Version?.ToString() ?? "unknown";
        int plus = version.IndexOf('+');
        return plus > 0 ? version[..plus] : version;
    }

    public static string Line(BenchmarkResult r)
    {
        string verdict = r.MeetsTarget is { } met
            ? (met ? " [target met]" : r.TargetBelowFloor ? " [target missed: its time is below the floor]" : " [target missed]")
            : "";
        string governed = r.ThreadsUsed is { Count: > 0 } used && used.Any(t => t != r.Threads) ? $" (threads by load: {string.Join(",", used)})" : "";
        return string.Create(CultureInfo.InvariantCulture,
            $"{r.Name}: {r.SecondsPerStep.Median * 1e3:F2} ms/step (IQR ±{r.SecondsPerStep.RelativeSpread * 50:F1}%), {r.SecondsPerEpoch:F2} s per {r.EpochUnit}, " +
            $"{r.ExamplesPerSecond:F0} examples/s, peak {r.PeakResidentBytes / 1048576.0:F0} MiB, {r.RatioToFloor:F2}× the floor{verdict}{governed}");
    }

    public static string Line(LoadSlowdown s)
    {
        string verdict = s.MeetsTarget is { } met ? string.Create(CultureInfo.InvariantCulture, $" [target ≤ {s.MaxRatio}× {(met ? "met" : "missed")}]") : "";
        return string.Create(CultureInfo.InvariantCulture,
            $"{s.Name}, {s.Threads} threads, {s.BackgroundProcesses} busy: {s.IdleSecondsPerStep * 1e3:F2} → {s.LoadedSecondsPerStep * 1e3:F2} ms/step, {s.Ratio:F2}× idle{verdict}");
    }

    // ---- output files ----

    public static readonly JsonSerializerOptions JsonOptions = new()
    {
        WriteIndented = true,
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals,
    };

    /// <summary>Writes bench.json and bench.md into <paramref name="folder"/> (atomically) and returns their paths.</summary>
    public static (string Json, string Table) Write(BenchmarkReport report, string folder)
    {
        Directory.CreateDirectory(folder);
        string json = Path.Combine(folder, "bench.json");
        string table = Path.Combine(folder, "bench.md");
        AtomicFile.WriteAllText(json, JsonSerializer.Serialize(report, JsonOptions));
        AtomicFile.WriteAllText(table, Markdown(report));
        return (json, table);
    }

    static string Cores(double? load) => load is { } l ? l.ToString("F2", CultureInfo.InvariantCulture) : "?";

    public static string Markdown(BenchmarkReport report)
    {
        var text = new StringBuilder();
        var inv = CultureInfo.InvariantCulture;
        text.Append(inv, $"# ddvi bench, {report.Started:yyyy-MM-dd HH:mm zzz}\n\n");
        foreach (var run in report.Runs)
        {
            var m = run.Machine;
            string load = run.BackgroundProcesses == 0 ? "" : $", {run.BackgroundProcesses} busy process{(run.BackgroundProcesses == 1 ? "" : "es")} of the bench's own";
            text.Append(inv, $"## {m.Device}, {m.Threads} threads{load} ({m.ProcessorCount} logical processors{(m.Processor is null ? "" : ", " + m.Processor)})\n\n");
            text.Append(inv, $"{m.OperatingSystem}; {m.Runtime}; TorchSharp {m.TorchSharp}; Ddvi {m.Ddvi}; {m.CpuKernels}. ");
            text.Append(inv, $"Batch {report.Options.BatchSize}, hidden {report.Options.Hidden}, T = {report.Options.PosteriorSteps} (prior chain {report.Options.PriorSteps}), K = {report.Options.SleepSteps}; ")
                .Append(report.Options.Dataset == BenchmarkDataset.Cifar10
                    ? "seeded random CIFAR-10-shaped images (3×32×32 in [−1, 1]), conv networks, Gaussian likelihood"
                    : "seeded random MNIST-shaped images (1×28×28 in [0, 1]), MLPs, Bernoulli likelihood")
                .Append(inv, $", {report.Options.ResolvedTrainImages:N0} images per epoch.\n\n");
            if (run.OtherCpuLoad is { } other)
                text.Append(inv, $"Other work on the machine took {other:F2} cores on average during this run.\n\n");
            text.Append("Matrix-product rate: ")
                .Append(string.Join("; ", run.MatrixProductRates.Select(r => string.Create(inv, $"{r.Shape} {r.GigaflopsPerSecond:F1} GFLOP/s"))))
                .Append(inv, $". The floor uses the best, {run.FloorGigaflopsPerSecond:F1} GFLOP/s.\n\n");
            text.Append("| benchmark | ms per step (median) | IQR | seconds per epoch | epoch | examples/s | peak RSS (MiB) | GFLOP per step | floor s/epoch | × floor | target | met |\n");
            text.Append("|---|---|---|---|---|---|---|---|---|---|---|---|\n");
            foreach (var r in run.Results)
            {
                string target = r.Target is null ? "" : string.Join(", ", new[]
                {
                    r.Target.MaxSecondsPerEpoch is { } s ? string.Create(inv, $"≤ {s:G4} s{(r.TargetBelowFloor ? " (below the floor)" : "")}") : null,
                    r.Target.MaxRatioToFloor is { } q ? string.Create(inv, $"≤ {q}× floor") : null,
                    r.Target.MaxPeakBytes is { } b ? string.Create(inv, $"≤ {b / 1073741824.0:G3} GiB") : null,
                }.OfType<string>());
                text.Append(inv, $"| {r.Name} | {r.SecondsPerStep.Median * 1e3:F2} | ±{r.SecondsPerStep.RelativeSpread * 50:F1}% | {r.SecondsPerEpoch:F2} | {r.EpochUnit} | ")
                    .Append(inv, $"{r.ExamplesPerSecond:F0} | {r.PeakResidentBytes / 1048576.0:F0} | {r.GigaflopsPerStep:F3} | {r.FloorSecondsPerEpoch:F2} | {r.RatioToFloor:F2} | ")
                    .Append(inv, $"{target} | {(r.MeetsTarget is { } met ? (met ? "yes" : "**no**") : "")} |\n");
            }
            foreach (var p in new[] { run.Pipeline, run.SemiPipeline }.OfType<PipelineEstimate>())
            {
                // Hours on CIFAR-10 and for the long semi-supervised pipeline, minutes otherwise.
                bool hours = report.Options.Dataset == BenchmarkDataset.Cifar10 || p.Model != "DDVI";
                string Time(double seconds) => hours ? string.Create(inv, $"{seconds / SecondsPerHour:F2} h") : string.Create(inv, $"{seconds / 60:F1} min");
                text.Append(inv, $"\n{p.Model} pipeline at the paper's lengths on {report.Options.ResolvedTrainImages:N0} images ({p.Composition}): **{Time(p.TotalSeconds)}** ")
                    .Append(inv, $"(stage 1 {p.PriorDiffusionSeconds:F0} s, stage 2 {p.WarmupSeconds:F0} s, stage 3 {p.FrozenDecoderSeconds + p.DdviSeconds:F0} s, evaluation {p.EvaluationSeconds:F0} s); ")
                    .Append(inv, $"its arithmetic floor {Time(p.FloorSeconds)} ({p.TotalSeconds / p.FloorSeconds:F2}× it)");
                if (p.TargetSeconds is { } target)
                    text.Append(inv, $"; target under {Time(target)}{(p.TargetBelowFloor ? ", below the floor" : "")}: {(p.MeetsTarget == true ? "met" : "**not met**")}");
                text.Append(".\n");
            }
            text.Append('\n');
        }
        if (report.Slowdowns.Count > 0)
        {
            text.Append("## Under background load\n\n");
            text.Append("Median time per step with the bench's own busy processes running, against the idle run at the same thread count in this invocation.\n\n");
            text.Append("Other load is the cores' worth of CPU time something else on the machine took meanwhile (idle run / loaded run).\n\n");
            text.Append("| benchmark | threads | busy processes | idle ms per step | loaded ms per step | × idle | other load (cores) | target | met |\n");
            text.Append("|---|---|---|---|---|---|---|---|---|\n");
            foreach (var s in report.Slowdowns)
                text.Append(inv, $"| {s.Name} | {s.Threads} | {s.BackgroundProcesses} | {s.IdleSecondsPerStep * 1e3:F2} | {s.LoadedSecondsPerStep * 1e3:F2} | {s.Ratio:F2} | ")
                    .Append(inv, $"{Cores(s.IdleOtherCpuLoad)} / {Cores(s.LoadedOtherCpuLoad)} | ")
                    .Append(inv, $"{(s.MaxRatio is { } max ? $"≤ {max}×" : "")} | {(s.MeetsTarget is { } met ? (met ? "yes" : "**no**") : "")} |\n");
            text.Append('\n');
        }
        text.Append("Peak RSS is the operating system's peak resident memory of the process during each benchmark (Linux VmHWM, reset before each). ");
        text.Append("The floor counts only the matrix products of one step (forward, weight and input gradients) at the best measured rate.\n");
        return text.ToString();
    }
}
