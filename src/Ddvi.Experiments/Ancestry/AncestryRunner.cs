using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Ddvi.Data;
using Ddvi.Embeddings;
using Ddvi.Evaluation.Clustering;
using Ddvi.Experiments.Genomics;
using Ddvi.IO;
using Ddvi.Models;
using Ddvi.Plotting;
using Ddvi.Training;
using static TorchSharp.torch;

namespace Ddvi.Experiments.Ancestry;

/// <summary>What <c>ddvi ancestry</c> is asked to do.</summary>
/// <param name="Genotypes">A VCF (plain or gzip/BGZF) or a PLINK 1 file set.</param>
/// <param name="Panel">The population panel (1000 Genomes layout: <c>sample pop super_pop gender</c>).</param>
/// <param name="Methods">Methods to run, from <see cref="AncestryRunner.AllMethods"/>.</param>
/// <param name="Seeds">Seeds; every method runs once per seed.</param>
/// <param name="Out">The study folder.</param>
public sealed record AncestryRequest(string Genotypes, string Panel, IReadOnlyList<string> Methods, IReadOnlyList<int> Seeds, string Out,
    GenotypeFilters Filters, GenotypePcaOptions Pca, AncestrySettings Settings);

/// <summary>One run's scores: the cluster scores against both labellings, the KNN accuracies, and timing.</summary>
public sealed record AncestryRunScores(string Method, int Seed, IReadOnlyDictionary<string, double> Values, double Seconds, bool Reused);

/// <summary>
/// <c>ddvi ancestry</c>: genotypes and a population panel in, a 2-D ancestry map per method and seed out, each scored as
/// the authors' release scores its 1000 Genomes runs (arXiv:2401.02739; team reference notes §8), then tabulated.
/// </summary>
/// <remarks>
/// <para>Layout of the study folder: <c>pca/</c> (the cached principal components, <see cref="GenotypePcaCache"/>),
/// <c>runs/METHOD-seedS/</c> (config.json, checkpoints of learned methods, latents.npy, centres.npy where a prior is
/// learned, scores.json, the figures), <c>results.csv</c> and <c>results.md</c>. A run whose scores.json exists with the
/// same configuration is reused; a learned run with checkpoints resumes from them; so the same command continues an
/// interrupted study and adds methods or seeds to a finished one.</para>
/// <para>Samples of the genotype file that the panel does not list are left out of every method after the PCA (named
/// in a warning).</para>
/// </remarks>
public static class AncestryRunner
{
    /// <summary>The study's subfolder that caches the principal components (<see cref="GenotypePcaCache"/>).</summary>
    public const string PcaFolder = "pca";

    public static readonly IReadOnlyList<string> AllMethods = ["ddvi", "vae", "aae", "pca", "tsne", "umap"];

    static readonly JsonSerializerOptions Json = new() { WriteIndented = true };

    /// <summary>
    /// The whole study in this process: the PCs, the manifest, every method × seed one after another, the tables
    /// (<see cref="AncestrySweep.Run"/> with one job). Throws when a run failed (the others are tabulated).
    /// </summary>
    public static IReadOnlyList<AncestryRunScores> Run(AncestryRequest request, Action<string> log, ITrainingObserver observer,
        CancellationToken cancellationToken = default) =>
        AncestrySweep.Run(request, jobs: 1, log, observer, cancellationToken: cancellationToken);

    /// <summary>The labelled samples: their PCs <c>[n, K]</c> (float32) and labels.</summary>
    public static (Tensor Pcs, AncestryLabels Labels) PrincipalComponents(AncestryRequest request, Action<string> log)
    {
        var panel = PopulationPanel.Read(request.Panel);
        string folder = Path.Combine(request.Out, PcaFolder);
        var inputs = GenotypePcaInputs.Of(request.Genotypes, request.Filters, request.Pca);
        var result = GenotypePcaCache.TryLoad(folder, inputs);
        if (result is not null)
        {
            log(string.Create(CultureInfo.InvariantCulture, $"ancestry: principal components from the cache in {folder} ({result.SampleCount} samples × {result.Components} components, divided by {result.Divisor:G4})"));
        }
        else
        {
            var clock = Stopwatch.StartNew();
            using var source = GenotypeFiles.Open(request.Genotypes, request.Filters);
            log($"ancestry: reading {request.Genotypes} ({source.SampleIds.Count} samples) and computing up to {request.Pca.Components} principal components");
            result = GenotypePca.Fit(source, request.Pca, log);
            Directory.CreateDirectory(folder);
            GenotypePcaCache.Save(folder, result, inputs, panel.Match(result.SampleIds));
            log(string.Create(CultureInfo.InvariantCulture,
                $"ancestry: {result.Summary}; {result.ColumnsUsed} columns used; {result.Components} components in {clock.Elapsed.TotalSeconds:F1} s"));
        }
        var match = panel.Match(result.SampleIds);
        foreach (var warning in match.Warnings) log($"ancestry: warning: {warning}");
        if (match.KeptIndices.Count < 2)
            throw new DataFormatException(request.Panel, $"only {match.KeptIndices.Count} of the {result.SampleCount} samples of {request.Genotypes} are in the panel; at least 2 are needed.");
        using var all = result.ScoresTensor();
        using var keep = tensor(match.KeptIndices.Select(i => (long)i).ToArray());
        var pcs = all.index_select(0, keep).contiguous().DetachFromDisposeScope();
        var kept = match.KeptIndices;
        var labels = new AncestryLabels(
            kept.Select(i => result.SampleIds[i]).ToArray(),
            kept.Select(i => match.PopulationCode[i]).ToArray(),
            kept.Select(i => match.SuperPopulationCode[i]).ToArray(),
            match.PopulationNames, match.SuperPopulationNames);
        return (pcs, labels);
    }

    internal static AncestryRunScores RunOne(AncestryRequest request, string method, int seed, Tensor pcs, AncestryLabels labels,
        Action<string> log, ITrainingObserver observer, CancellationToken cancellationToken)
    {
        string folder = AncestrySweep.RunFolder(request.Out, method, seed);
        Directory.CreateDirectory(folder);
        var config = RunConfig(request, method, seed, pcs);
        string configPath = Path.Combine(folder, "config.json");
        string scoresPath = Path.Combine(folder, AncestrySweep.ScoresFile);
        if (File.Exists(configPath))
        {
            var existing = JsonNode.Parse(File.ReadAllText(configPath));
            // Runs made before --precision existed computed in float32.
            if (existing?["settings"] is JsonObject written && !written.ContainsKey(nameof(AncestrySettings.Precision)))
                written[nameof(AncestrySettings.Precision)] = NetworkPrecision.Float32.ToString();
            if (!JsonNode.DeepEquals(existing, config))
                throw new InvalidOperationException(
                    $"{folder} holds a run made with other settings ({configPath}); choose another --out, or delete that folder to run it again with these.");
            if (File.Exists(scoresPath))
            {
                log($"ancestry: {method} seed {seed}: finished earlier, reusing {scoresPath}");
                return LoadScores(scoresPath, reused: true);
            }
        }
        else
        {
            AtomicFile.WriteAllText(configPath, config.ToJsonString(Json));
        }

        log($"ancestry: {method} seed {seed}: embedding {pcs.shape[0]} samples");
        var clock = Stopwatch.StartNew();
        var (latents, centres, noiseShare) = Embed(request, method, seed, pcs, folder, log, observer, cancellationToken);
        if (CollapseWarning(method, seed, noiseShare) is { } warning) log(warning);
        using (latents)
        using (centres)
        {
            double embedSeconds = clock.Elapsed.TotalSeconds;
            using var latentsCpu = latents.cpu().to(float32).contiguous();
            NpyFile.WriteFloat32(Path.Combine(folder, "latents.npy"), latentsCpu.data<float>().ToArray(), latentsCpu.shape);
            if (centres is not null)
            {
                using var centresCpu = centres.cpu().to(float32).contiguous();
                NpyFile.WriteFloat32(Path.Combine(folder, "centres.npy"), centresCpu.data<float>().ToArray(), centresCpu.shape);
            }
            var (values, clusters) = Score(latentsCpu, labels, request.Settings, seed, log);
            if (double.IsFinite(noiseShare)) values[AncestryReport.NoiseShareKey] = noiseShare;
            Figures(folder, method, seed, latentsCpu, centres, labels, clusters);
            var saved = new JsonObject
            {
                ["method"] = method,
                ["seed"] = seed,
                ["seconds"] = embedSeconds,
                // A score that cannot be computed (k above the samples) is NaN here and null in the file.
                ["scores"] = new JsonObject(values.Select(kv => KeyValuePair.Create(kv.Key, double.IsFinite(kv.Value) ? (JsonNode?)JsonValue.Create(kv.Value) : null))),
            };
            AtomicFile.WriteAllText(scoresPath, saved.ToJsonString(Json));
            log(string.Create(CultureInfo.InvariantCulture,
                $"ancestry: {method} seed {seed}: NMI {values["population_nmi"]:F3}, purity {values["population_purity"]:F3}, V {values["population_v_measure"]:F3} (populations); KNN@{request.Settings.NeighbourCounts[0]} {values[$"knn{request.Settings.NeighbourCounts[0]}"]:F3}; {embedSeconds:F1} s"));
            return new AncestryRunScores(method, seed, values, embedSeconds, Reused: false);
        }
    }

    /// <summary>The warning for a run whose latents are mostly posterior noise (<see cref="AncestryModels.NoiseShare"/>
    /// above <see cref="LearnedEmbedding.CollapsedAbove"/>), or null.</summary>
    internal static string? CollapseWarning(string method, int seed, double noiseShare) =>
        noiseShare > LearnedEmbedding.CollapsedAbove
            ? string.Create(CultureInfo.InvariantCulture,
                $"ancestry: warning: {method} seed {seed}: {noiseShare * 100:F0}% of its latents' variance is posterior noise, so they barely depend on the input (a collapsed posterior) and its map and scores say little of the samples. With a KL term in the loss this happens when the PCs are too small for encoding to pay: try a smaller --pc-divisor (docs/genomics.md, \"How large the PCs must be\").")
            : null;

    /// <summary>A finished run's scores.json.</summary>
    internal static AncestryRunScores LoadScores(string scoresPath, bool reused)
    {
        var saved = JsonNode.Parse(File.ReadAllText(scoresPath))!.AsObject();
        var values = saved["scores"]!.AsObject().ToDictionary(kv => kv.Key, kv => kv.Value?.GetValue<double>() ?? double.NaN);
        return new AncestryRunScores(saved["method"]!.GetValue<string>(), saved["seed"]!.GetValue<int>(), values, saved["seconds"]!.GetValue<double>(), reused);
    }

    static (Tensor Latents, Tensor? Centres, double NoiseShare) Embed(AncestryRequest request, string method, int seed, Tensor pcs, string folder,
        Action<string> log, ITrainingObserver observer, CancellationToken cancellationToken)
    {
        var s = request.Settings;
        switch (method)
        {
            case "pca":
                // The samples' PCs are centred, so the first two are the 2-D PCA of the K-dimensional input.
                return (pcs.narrow(1, 0, Math.Min(2, pcs.shape[1])).clone(), null, double.NaN);
            case "tsne":
                return (Tsne.Embed(pcs, new TsneOptions { Perplexity = s.TsnePerplexity, Seed = seed }, log).Embedding, null, double.NaN);
            case "umap":
                return (Umap.Embed(pcs, new UmapOptions { Neighbours = s.UmapNeighbours, MinDist = s.UmapMinDist, Seed = seed }, log).Embedding, null, double.NaN);
            default:
                var learned = AncestryModels.Fit(method, pcs, s, seed, folder, log, observer, cancellationToken);
                return (learned.Latents, learned.Centres, learned.NoiseShare);
        }
    }

    /// <summary>
    /// The release's scores on one set of 2-D latents: a full-covariance Gaussian mixture (seeded by the run's seed) and
    /// its clusters' purity, homogeneity, completeness, V-measure and NMI against the populations and against the
    /// super-populations; KNN accuracy for each k fitted and scored on the same latents (the release's definition) and
    /// on a held-out share (stratified by population, seeded by the run's seed), both against the populations.
    /// </summary>
    public static (Dictionary<string, double> Values, int[] Clusters) Score(Tensor latents, AncestryLabels labels, AncestrySettings settings,
        int seed, Action<string>? log = null)
    {
        var mixture = GaussianMixtureFit.Fit(latents, new GaussianMixtureOptions
        {
            Components = Math.Min(settings.ScoreComponents, (int)latents.shape[0]),
            Initialisations = settings.ScoreInitialisations,
            CovarianceRegularisation = settings.ScoreRegularisation,
            Seed = seed,
        }, log);
        var clusters = mixture.Predict(latents);
        var values = new Dictionary<string, double>();
        foreach (var (prefix, codes) in new[] { ("population", labels.Population), ("super_population", labels.SuperPopulation) })
        {
            var set = ClusterScores.Score(clusters, codes);
            values[$"{prefix}_purity"] = set.Purity;
            values[$"{prefix}_homogeneity"] = set.Homogeneity;
            values[$"{prefix}_completeness"] = set.Completeness;
            values[$"{prefix}_v_measure"] = set.VMeasure;
            values[$"{prefix}_nmi"] = set.NormalisedMutualInformation;
        }
        int n = (int)latents.shape[0];
        foreach (int k in settings.NeighbourCounts)
        {
            values[$"knn{k}"] = k <= n ? NeighbourAccuracy.SameSet(latents, labels.Population, k) : double.NaN;
            int trainCount = n - (int)Math.Round(settings.HeldOutFraction * n);
            values[$"heldout_knn{k}"] = k <= trainCount
                ? NeighbourAccuracy.HeldOut(latents, labels.Population, k, settings.HeldOutFraction, seed)
                : double.NaN;
        }
        values["mixture_log_likelihood"] = mixture.LogLikelihood;
        return (values, clusters);
    }

    static void Figures(string folder, string method, int seed, Tensor latents, Tensor? centres, AncestryLabels labels, int[] clusters)
    {
        var values = latents.data<float>().ToArray();
        var x = Enumerable.Range(0, (int)latents.shape[0]).Select(i => values[2 * i]).ToArray();
        var y = Enumerable.Range(0, (int)latents.shape[0]).Select(i => values[2 * i + 1]).ToArray();
        (float[], float[])? marks = null;
        if (centres is not null)
        {
            var c = centres.cpu().to(float32).contiguous().data<float>().ToArray();
            int k = c.Length / 2;
            marks = (Enumerable.Range(0, k).Select(i => c[2 * i]).ToArray(), Enumerable.Range(0, k).Select(i => c[2 * i + 1]).ToArray());
        }
        string name = $"{method}, seed {seed}";
        AncestryFigures.SaveLatents(Path.Combine(folder, "latents-super-population.png"), x, y, [.. labels.SuperPopulation],
            labels.SuperPopulationNames, $"{name}: super-populations", marks);
        AncestryFigures.SaveLatents(Path.Combine(folder, "latents-population.png"), x, y, [.. labels.Population],
            labels.PopulationNames, $"{name}: populations");
        int clusterCount = clusters.Length == 0 ? 0 : clusters.Max() + 1;
        AncestryFigures.SaveLatents(Path.Combine(folder, "latents-clusters.png"), x, y, clusters,
            Enumerable.Range(0, clusterCount).Select(i => $"cluster {i}").ToArray(), $"{name}: fitted mixture's clusters");
    }

    static JsonNode RunConfig(AncestryRequest request, string method, int seed, Tensor pcs) => new JsonObject
    {
        ["method"] = method,
        ["seed"] = seed,
        ["genotypes"] = Path.GetFullPath(request.Genotypes),
        ["panel"] = Path.GetFullPath(request.Panel),
        ["samples"] = pcs.shape[0],
        ["components"] = pcs.shape[1],
        ["filters"] = JsonSerializer.SerializeToNode(request.Filters),
        ["pca"] = JsonSerializer.SerializeToNode(request.Pca),
        // Where a run computes is not part of what it is; its precision is, for the learned methods (the others have no networks).
        ["settings"] = JsonSerializer.SerializeToNode(request.Settings with
        {
            Device = Runtime.DeviceChoice.Auto,
            Precision = AncestryModels.Names.Contains(method) ? request.Settings.Precision : NetworkPrecisions.Default,
        }),
    };

    internal static void Validate(AncestryRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        if (!File.Exists(request.Panel))
            throw new FileNotFoundException($"--panel {request.Panel}: no such file.", request.Panel);
        if (request.Methods.Count == 0)
            throw new ArgumentException("--methods: name at least one method.");
        foreach (string method in request.Methods)
            if (!AllMethods.Contains(method))
                throw new ArgumentException($"--methods: '{method}' is not a method; expected some of {string.Join(", ", AllMethods)}.");
        if (request.Methods.Distinct().Count() != request.Methods.Count)
            throw new ArgumentException($"--methods: each method once, got {string.Join(",", request.Methods)}.");
        if (request.Seeds.Count == 0 || request.Seeds.Any(s => s < 0) || request.Seeds.Distinct().Count() != request.Seeds.Count)
            throw new ArgumentException($"--seeds: distinct seeds ≥ 0, got {string.Join(",", request.Seeds)}.");
        request.Settings.Validate();
    }
}

/// <summary>The labelled samples of a study: IDs, population and super-population codes, and the codes' names.</summary>
public sealed record AncestryLabels(IReadOnlyList<string> SampleIds, IReadOnlyList<int> Population, IReadOnlyList<int> SuperPopulation,
    IReadOnlyList<string> PopulationNames, IReadOnlyList<string> SuperPopulationNames);
