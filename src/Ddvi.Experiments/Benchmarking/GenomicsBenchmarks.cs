using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using Ddvi.Embeddings;
using Ddvi.Experiments.Ancestry;
using Ddvi.Experiments.Genomics;
using Ddvi.FastPaths;
using Ddvi.Inference;
using Ddvi.IO;
using Ddvi.Models;
using Ddvi.Objectives;
using Ddvi.Runtime;
using Ddvi.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace Ddvi.Benchmarking;

/// <summary>What <c>ddvi bench --dataset genotypes</c> measures: the genomics issue's targets at 1000 Genomes scale.</summary>
public sealed record GenomicsBenchmarkOptions
{
    public static readonly IReadOnlyList<string> AllCases =
        [GenomicsBenchmarks.GenotypePca, GenomicsBenchmarks.ClusteringDdvi, GenomicsBenchmarks.ClusteringDdviBf16, GenomicsBenchmarks.Tsne, GenomicsBenchmarks.Umap];

    public IReadOnlyList<string> Cases { get; init; } = [];

    /// <summary>Samples and sites of the generated PLINK file (3,500 × 1,000,000: about the 1000 Genomes Affymetrix set).</summary>
    public int Samples { get; init; } = 3500;
    public long Sites { get; init; } = 1_000_000;

    /// <summary>The generated file's prefix; made once and reused (about 875 MB at the default size).</summary>
    public string GenotypePrefix { get; init; } = Path.Combine(Path.GetTempPath(), "ddvi-bench-genotypes", "genotypes-3500x1000000");

    /// <summary>Wake steps timed for the clustering DDVI's estimate.</summary>
    public int Steps { get; init; } = 40;

    public long Seed { get; init; }
    public DeviceChoice Device { get; init; } = DeviceChoice.Auto;

    public GenomicsBenchmarkOptions Validate()
    {
        foreach (string name in Cases)
            if (!AllCases.Contains(name))
                throw new ArgumentException($"--cases: '{name}' is not a genotype benchmark; valid: {string.Join(", ", AllCases)}");
        if (Samples < 20) throw new ArgumentException($"--samples must be ≥ 20, got {Samples}");
        if (Sites < 10) throw new ArgumentException($"--sites must be ≥ 10, got {Sites}");
        if (Steps < 2) throw new ArgumentException($"--repetitions (timed steps) must be ≥ 2, got {Steps}");
        return this;
    }
}

/// <summary>One genotype benchmark: the measured (or, for the clustering DDVI, estimated) seconds of the whole task
/// against its target, and the task's peak resident memory.</summary>
/// <remarks><see cref="FloorSeconds"/>, where given, is the task's arithmetic floor: its matrix-product FLOPs at the best
/// matrix-product rate measured in the same run (<see cref="FloorGigaflopsPerSecond"/>); no schedule of the same arithmetic
/// on this machine can take less. A target below it cannot be met here by any implementation of the same method.</remarks>
public sealed record GenomicsBenchmarkResult(string Name, string Description, double Seconds, bool Estimated, double TargetSeconds,
    long PeakResidentBytes, long? TargetPeakBytes, string Details, double? FloorSeconds = null, double? FloorGigaflopsPerSecond = null)
{
    public bool MeetsTarget => Seconds <= TargetSeconds && (TargetPeakBytes is null || PeakResidentBytes <= TargetPeakBytes);

    /// <summary>Whether the target lies below the arithmetic floor measured here.</summary>
    public bool TargetBelowFloor => FloorSeconds is { } floor && floor > TargetSeconds;
}

/// <summary>
/// Matrix-product FLOPs of the clustering DDVI's three kinds of step, counted from the model's layer shapes as the
/// training benchmarks count theirs (<see cref="NetworkCost"/>): a wake step on a batch of B rows trains the encoder on
/// the data (its first layer needs no input gradient), runs the prior denoiser T times with gradients and trains the
/// decoder; a centre step and a re-fit step (one pair after each epoch per epoch index) each train the prior denoiser on
/// B prior draws, the centre step back through its input to the draws; a prior-diffusion step is a re-fit step.
/// </summary>
public readonly record struct ClusteringDdviFlops(double Wake, double CentreAndRefitPair, double PriorDiffusion)
{
    public static ClusteringDdviFlops Of(Ddvi.Models.ClusteringDdvi model, long batchSize)
    {
        ArgumentNullException.ThrowIfNull(model);
        // The encoder's hidden layers may be as wide as its input: only its first layer reads the data.
        var encoderMacs = NetworkCost.Of(model.Encoder).Macs;
        double firstLayer = model.Encoder is Mlp mlp
            ? (double)mlp.InputDim * (mlp.HiddenWidths.Count > 0 ? mlp.HiddenWidths[0] : mlp.OutputDim)
            : 0;
        var encoder = new NetworkCost(encoderMacs, firstLayer);
        var decoder = NetworkCost.Of(model.Likelihood.Decoder);
        var denoiser = NetworkCost.Of(model.PriorDenoiser);
        double wake = encoder.TrainedOnData(batchSize) + model.Schedule.Steps * denoiser.TrainedOnLatents(batchSize) + decoder.TrainedOnLatents(batchSize);
        double refit = denoiser.TrainedOnLatents(batchSize);
        return new ClusteringDdviFlops(wake, 2 * refit, refit);
    }
}

/// <summary>
/// The genomics issue's speed and memory targets on the 2-core reference machine: reading a generated PLINK file of
/// 3,500 samples × 1,000,000 sites plus the PCA (K = 1000, every 10th site) in at most 5 minutes and 2 GB; the clustering
/// DDVI's 200 epochs on 3,500 × 1000 PCs in at most 10 minutes (estimated from timed steps: the prior diffusion's first
/// fit, 200 × ⌈5·3500/128⌉ wake steps and Σ(e + 1) = 20,100 centre and re-fit steps); t-SNE and UMAP on the 3,500 samples'
/// PCs in at most a minute each.
/// </summary>
public static class GenomicsBenchmarks
{
    public const string GenotypePca = "genotype-pca", ClusteringDdvi = "clustering-ddvi", ClusteringDdviBf16 = "clustering-ddvi-bf16", Tsne = "tsne", Umap = "umap";

    public static IReadOnlyList<GenomicsBenchmarkResult> Run(GenomicsBenchmarkOptions options, Action<string> log)
    {
        CpuRuntime.Configure();
        options.Validate();
        var names = options.Cases.Count == 0 ? GenomicsBenchmarkOptions.AllCases : options.Cases;
        var results = new List<GenomicsBenchmarkResult>();
        Tensor? pcs = null;
        try
        {
            foreach (string name in names)
            {
                switch (name)
                {
                    case GenotypePca:
                        var (result, scores) = MeasurePca(options, log);
                        results.Add(result);
                        pcs?.Dispose();
                        pcs = scores;
                        break;
                    case ClusteringDdvi:
                    case ClusteringDdviBf16:
                        pcs ??= RandomPcs(options);
                        results.Add(MeasureClusteringDdvi(options, pcs, log, name == ClusteringDdviBf16 ? NetworkPrecision.Bfloat16 : NetworkPrecision.Float32));
                        break;
                    case Tsne:
                    case Umap:
                        pcs ??= RandomPcs(options);
                        results.Add(MeasureEmbedding(name, pcs, options, log));
                        break;
                }
                log(Line(results[^1]));
            }
        }
        finally
        {
            pcs?.Dispose();
        }
        return results;
    }

    static (GenomicsBenchmarkResult, Tensor) MeasurePca(GenomicsBenchmarkOptions options, Action<string> log)
    {
        string bed = options.GenotypePrefix + ".bed";
        if (!File.Exists(bed) || !File.Exists(options.GenotypePrefix + ".fam"))
        {
            Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(bed))!);
            log($"{GenotypePca}: generating {options.Samples:N0} samples × {options.Sites:N0} sites at {options.GenotypePrefix}.bed (once; reused by later runs)");
            var generation = Stopwatch.StartNew();
            SyntheticGenotypes.WritePlink(options.GenotypePrefix, options.Samples, options.Sites, populations: 5, (ulong)options.Seed, missingRate: 0.01);
            log(string.Create(CultureInfo.InvariantCulture, $"{GenotypePca}: generated in {generation.Elapsed.TotalSeconds:F0} s"));
        }
        GC.Collect();
        ProcessMemory.ResetPeak();
        var clock = Stopwatch.StartNew();
        using var source = GenotypeFiles.Open(bed, new GenotypeFilters());
        var result = Ddvi.Experiments.Genomics.GenotypePca.Fit(source, new GenotypePcaOptions(), log);
        double seconds = clock.Elapsed.TotalSeconds;
        long peak = ProcessMemory.PeakResidentBytes();
        var scores = result.ScoresTensor().DetachFromDisposeScope();
        return (new GenomicsBenchmarkResult(GenotypePca,
            $"read a PLINK file of {result.SampleCount:N0} samples × {source.Summary.SitesRead:N0} sites (every 10th kept) and compute {result.Components} PCs",
            seconds, Estimated: false, TargetSeconds: 300, peak, TargetPeakBytes: 2L << 30,
            $"{result.ColumnsUsed:N0} columns in the Gram matrix"), scores);
    }

    static GenomicsBenchmarkResult MeasureClusteringDdvi(GenomicsBenchmarkOptions options, Tensor pcs, Action<string> log, NetworkPrecision precision)
    {
        var settings = new AncestrySettings { Precision = precision };
        var device = ComputeDevice.Resolve(options.Device);
        ComputeDevice.SeedGlobal(options.Seed);
        using var init = new Generator((ulong)options.Seed);
        int inputDim = (int)pcs.shape[1];
        using var model = Ddvi.Models.ClusteringDdvi.Paper(inputDim, init, settings.LatentDim, settings.Hidden, settings.HiddenLayers, settings.ChainSteps,
            settings.Components, settings.ComponentStd, settings.Dropout);
        model.SetNetworkPrecision(settings.Precision);
        model.to(device);
        using var data = pcs.to(float32, device);
        var weights = new ClusteringWeights(KlWeight: settings.DdviKlWeight);
        var phases = ClusteringPhases.ForDdvi(model, weights, settings.LearningRate, priorBatchSize: settings.BatchSize);
        var priorFit = new TrainingPhase
        {
            Name = "prior-diffusion", Parameters = model.DenoiserParameters(), LearningRate = 1e-3,
            Loss = step => ClusteringObjectives.RefitLoss(model, settings.BatchSize, weights, step.Generator),
        };
        GC.Collect();
        ProcessMemory.ResetPeak();
        model.train();
        using var generator = new Generator((ulong)options.Seed + 1);
        var batches = new TensorBatches(data.repeat(settings.PassesPerEpoch, 1), null, settings.BatchSize);
        double wake = TimeSteps(new StepRunner(phases), runner => runner.Step(Next(batches, generator), 0, generator), options.Steps);
        // The after-epoch steps of one epoch e run e + 1 centre and e + 1 re-fit steps: time epoch 0's pair.
        double afterPair = TimeSteps(new StepRunner(phases), runner => runner.AfterEpoch(0, generator), options.Steps);
        double priorStep = TimeSteps(new StepRunner([priorFit]), runner => runner.Step(TrainingBatch.Empty, 0, generator), 5 * options.Steps);
        int stepsPerEpoch = batches.StepsPerEpoch;
        long afterPairs = (long)settings.Epochs * (settings.Epochs + 1) / 2;
        double total = settings.PriorDiffusionIterations * priorStep + (double)settings.Epochs * stepsPerEpoch * wake + afterPairs * afterPair;
        var flops = ClusteringDdviFlops.Of(model, settings.BatchSize);
        // The floor's rate is that of the arithmetic the networks use: bfloat16 products for --precision bf16's MLPs (the
        // chain's small denoiser stays float32 and is counted at the bfloat16 rate too, which only lowers the floor).
        var productType = precision == NetworkPrecision.Bfloat16 ? ScalarType.BFloat16 : ScalarType.Float32;
        double rate = new[]
        {
            MatrixProductRate.Measure(device, settings.BatchSize, settings.Hidden, settings.Hidden, dtype: productType),
            MatrixProductRate.Measure(device, 1024, 1024, 1024, dtype: productType),
        }.Max(r => r.GigaflopsPerSecond);
        double floor = (settings.PriorDiffusionIterations * flops.PriorDiffusion + (double)settings.Epochs * stepsPerEpoch * flops.Wake
                        + afterPairs * flops.CentreAndRefitPair) / (rate * 1e9);
        return new GenomicsBenchmarkResult(precision == NetworkPrecision.Bfloat16 ? ClusteringDdviBf16 : ClusteringDdvi,
            $"clustering DDVI's {settings.Epochs} epochs on {pcs.shape[0]:N0} × {inputDim} PCs ({settings.PassesPerEpoch} passes per epoch, batch {settings.BatchSize}), with its first prior-diffusion fit{(precision == NetworkPrecision.Bfloat16 ? "; --precision bf16 (bfloat16 MLP products)" : "")}",
            total, Estimated: true, TargetSeconds: 600, ProcessMemory.PeakResidentBytes(), TargetPeakBytes: null,
            string.Create(CultureInfo.InvariantCulture,
                $"wake step {1e3 * wake:F1} ms × {stepsPerEpoch} × {settings.Epochs} ({flops.Wake / 1e9:F2} GFLOP, {wake * rate * 1e9 / flops.Wake:F2}× its floor); centre + re-fit pair {1e3 * afterPair:F2} ms × {afterPairs:N0}; prior-diffusion step {1e3 * priorStep:F2} ms × {settings.PriorDiffusionIterations:N0}"),
            floor, rate);
    }

    static TrainingBatch Next(TensorBatches batches, Generator generator)
    {
        // Any batch of the right shape times the same work: the first of a fresh shuffle.
        using var enumerator = batches.Epoch(generator).GetEnumerator();
        enumerator.MoveNext();
        return enumerator.Current;
    }

    static double TimeSteps(StepRunner runner, Action<StepRunner> step, int count)
    {
        using (runner)
        {
            runner.BeginEpoch(0);
            for (int i = 0; i < Math.Max(3, count / 5); i++) step(runner);
            var clock = Stopwatch.StartNew();
            for (int i = 0; i < count; i++) step(runner);
            _ = runner.Sums.Means(); // the device's queue drained before the clock stops
            return clock.Elapsed.TotalSeconds / count;
        }
    }

    static GenomicsBenchmarkResult MeasureEmbedding(string name, Tensor pcs, GenomicsBenchmarkOptions options, Action<string> log)
    {
        var settings = new AncestrySettings();
        GC.Collect();
        ProcessMemory.ResetPeak();
        var clock = Stopwatch.StartNew();
        using var embedding = name == Tsne
            ? Embeddings.Tsne.Embed(pcs, new TsneOptions { Perplexity = settings.TsnePerplexity, Seed = (int)options.Seed }).Embedding
            : Embeddings.Umap.Embed(pcs, new UmapOptions { Neighbours = settings.UmapNeighbours, MinDist = settings.UmapMinDist, Seed = (int)options.Seed }).Embedding;
        double seconds = clock.Elapsed.TotalSeconds;
        return new GenomicsBenchmarkResult(name, $"{(name == Tsne ? "t-SNE (perplexity 30, 1000 iterations, Barnes–Hut)" : "UMAP (15 neighbours, min-dist 0.5)")} on {pcs.shape[0]:N0} × {pcs.shape[1]} PCs",
            seconds, Estimated: false, TargetSeconds: 60, ProcessMemory.PeakResidentBytes(), TargetPeakBytes: null, "");
    }

    /// <summary>Stand-in PCs when the PCA case is not run: 20 Gaussian clusters in 1000 dimensions, scaled like PCs / 30.</summary>
    static Tensor RandomPcs(GenomicsBenchmarkOptions options)
    {
        using var generator = new Generator((ulong)options.Seed + 7);
        using var centres = randn([20, 1000], generator: generator) * Scalars.Of(0.3);
        using var which = randint(0, 20, [options.Samples], generator: generator);
        using var noise = randn([options.Samples, 1000], generator: generator) * Scalars.Of(0.1);
        return centres.index_select(0, which).add(noise, Scalars.One).DetachFromDisposeScope();
    }

    public static string Line(GenomicsBenchmarkResult r) => string.Create(CultureInfo.InvariantCulture,
        $"{r.Name}: {(r.Estimated ? "estimated " : "")}{r.Seconds:F1} s (target ≤ {r.TargetSeconds:F0} s), peak {r.PeakResidentBytes / (1024.0 * 1024 * 1024):F2} GiB{(r.TargetPeakBytes is { } t ? $" (target ≤ {t / (1024.0 * 1024 * 1024):F0} GiB)" : "")}: {(r.MeetsTarget ? "meets" : "MISSES")} the target.{FloorText(r)} {r.Details}");

    static string FloorText(GenomicsBenchmarkResult r) => r.FloorSeconds is not { } floor ? "" : string.Create(CultureInfo.InvariantCulture,
        $" Arithmetic floor {floor:F1} s (matrix products alone at {r.FloorGigaflopsPerSecond:F1} GFLOP/s; this run {r.Seconds / floor:F2}× it){(r.TargetBelowFloor ? ": the target is below this machine's floor, out of reach of any implementation of the same arithmetic" : "")}.");

    /// <summary>Writes <c>bench-genotypes.json</c> and <c>bench-genotypes.md</c> in <paramref name="folder"/>; returns their paths.</summary>
    public static (string Json, string Markdown) Write(IReadOnlyList<GenomicsBenchmarkResult> results, GenomicsBenchmarkOptions options, string folder)
    {
        Directory.CreateDirectory(folder);
        string json = Path.Combine(folder, "bench-genotypes.json"), markdown = Path.Combine(folder, "bench-genotypes.md");
        AtomicFile.WriteAllText(json, JsonSerializer.Serialize(new { started = DateTimeOffset.Now, options, results }, new JsonSerializerOptions { WriteIndented = true }));
        var text = new StringBuilder("| benchmark | what | seconds | arithmetic floor (s) | target | peak memory | meets |\n| --- | --- | --- | --- | --- | --- | --- |\n");
        foreach (var r in results)
            text.Append(CultureInfo.InvariantCulture,
                $"| {r.Name} | {r.Description} | {(r.Estimated ? "≈ " : "")}{r.Seconds:F1} | {(r.FloorSeconds is { } f ? string.Create(CultureInfo.InvariantCulture, $"{f:F1} at {r.FloorGigaflopsPerSecond:F1} GFLOP/s") : "—")} | ≤ {r.TargetSeconds:F0} s{(r.TargetBelowFloor ? " (below the floor)" : "")} | {r.PeakResidentBytes / (1024.0 * 1024 * 1024):F2} GiB | {(r.MeetsTarget ? "yes" : "no")} |\n");
        if (results.Any(r => r.FloorSeconds is not null))
            text.Append("\nThe arithmetic floor counts only the task's matrix products (forward, weight and input gradients) at the best matrix-product rate measured in this run (of bfloat16 products for a bf16 case).\n");
        AtomicFile.WriteAllText(markdown, text.ToString());
        return (json, markdown);
    }
}
