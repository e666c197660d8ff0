using System.Globalization;
using Ddvi.Experiments.Ancestry;
using Ddvi.Experiments.Genomics;
using Ddvi.Models;
using Ddvi.Tests.Genomics;
using static TorchSharp.torch;

namespace Ddvi.Tests.Ancestry;

/// <summary><c>ddvi ancestry</c> end to end: PCA, every method, scores, tables, figures, reuse, and its errors.</summary>
public class AncestryTests
{
    /// <summary>Budgets that keep a study of every method to seconds: the networks and schedules are the paper's in shape only.</summary>
    static readonly AncestrySettings Short = new()
    {
        Epochs = 2, PassesPerEpoch = 1, Hidden = 32, HiddenLayers = 2, PriorDiffusionIterations = 60, BatchSize = 64, ScoreInitialisations = 2,
    };

    static AncestryRequest Synthetic(TempFolder folder, IReadOnlyList<string> methods, AncestrySettings? settings = null)
    {
        string prefix = folder["genotypes"];
        string panel = SyntheticGenotypes.WritePlink(prefix, samples: 120, sites: 3000, populations: 3, seed: 5, missingRate: 0.01, fst: 0.2);
        return new AncestryRequest(prefix + ".bed", panel, methods, [0], folder["study"],
            new GenotypeFilters { EveryNth = 1, AutosomesOnly = false }, new GenotypePcaOptions { Components = 20 }, settings ?? Short);
    }

    [Fact]
    public void AStudyOnSeparatedSyntheticPopulationsScoresPcaPerfectlyAndReusesItsRuns()
    {
        using var folder = new TempFolder();
        var request = Synthetic(folder, ["pca", "ddvi"]);
        var lines = new List<string>();
        var first = AncestryRunner.Run(request, lines.Add, new RecordingObserver());
        Assert.Equal(2, first.Count);
        var pca = first.Single(r => r.Method == "pca").Values;
        // Three populations at F_ST 0.2 are far apart on the first two PCs: the 20-component mixture splits them, never mixes them.
        Assert.Equal(1.0, pca["population_purity"], 3);
        Assert.True(pca["population_homogeneity"] > 0.99, $"homogeneity {pca["population_homogeneity"]}");
        Assert.Equal(1.0, pca["knn20"], 3);
        Assert.Equal(1.0, pca["heldout_knn20"], 3);
        foreach (var run in first)
            foreach (var (key, value) in run.Values.Where(kv => kv.Key != "mixture_log_likelihood"))
                Assert.True(double.IsNaN(value) || value is >= 0 and <= 1, $"{run.Method} {key} = {value}");

        string study = request.Out;
        foreach (string file in new[] { "results.md", "results.csv", "pca/pcs.npy", "runs/ddvi-seed0/latents.npy", "runs/ddvi-seed0/centres.npy",
                     "runs/ddvi-seed0/latents-super-population.png", "runs/ddvi-seed0/latents-population.png", "runs/ddvi-seed0/latents-clusters.png",
                     "runs/ddvi-seed0/checkpoints/clustering-ddvi/losses.csv", "runs/pca-seed0/scores.json" })
            Assert.True(File.Exists(Path.Combine(study, file)), $"{file} was not written");
        string table = File.ReadAllText(Path.Combine(study, "results.md"));
        Assert.Contains("| pca |", table);
        Assert.Contains("| ddvi |", table);
        Assert.Contains("Input: the top 20 principal components of ", table);
        Assert.Contains("(chosen from the data: the components' mean variance is 10).", table);
        // A learned run records how much of its latents' variance is posterior noise; PCA has none to record.
        double share = first.Single(r => r.Method == "ddvi").Values[AncestryReport.NoiseShareKey];
        Assert.InRange(share, 0, 1.5);
        Assert.False(pca.ContainsKey(AncestryReport.NoiseShareKey));
        string noiseSection = table[table.IndexOf("## Posterior noise", StringComparison.Ordinal)..];
        Assert.Contains(string.Create(System.Globalization.CultureInfo.InvariantCulture, $"| ddvi | {share:F3} |"), noiseSection);
        Assert.DoesNotContain("| pca |", noiseSection);
        string csv = File.ReadAllText(Path.Combine(study, "results.csv"));
        Assert.Equal(3, csv.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length);

        // The same command again: the PCs come from the cache and both runs are reused, with the same scores.
        lines.Clear();
        var again = AncestryRunner.Run(request, lines.Add, new RecordingObserver());
        Assert.Contains(lines, l => l.Contains("from the cache"));
        Assert.Equal(2, lines.Count(l => l.Contains("finished earlier, reusing")));
        Assert.All(again, r => Assert.True(r.Reused));
        Assert.Equal(csv, File.ReadAllText(Path.Combine(study, "results.csv")));

        // Other settings on the same study folder are refused, naming the run folder.
        var changed = request with { Settings = Short with { Epochs = 3 } };
        var error = Assert.Throws<InvalidOperationException>(() => AncestryRunner.Run(changed, _ => { }, new RecordingObserver()));
        Assert.Contains("ddvi-seed0", error.Message);
        Assert.Contains("other settings", error.Message);
    }

    [Fact]
    public void ABFloat16StudyTrainsItsNetworksInMixedPrecisionAsADifferentRun()
    {
        using var folder = new TempFolder();
        var request = Synthetic(folder, ["pca", "ddvi"]);
        AncestryRunner.Run(request, _ => { }, new RecordingObserver());

        // The same study folder with --precision bf16: PCA (no networks) is reused, the DDVI run is another computation.
        var mixed = request with { Settings = Short with { Precision = NetworkPrecision.Bfloat16 } };
        var error = Assert.Throws<InvalidOperationException>(() => AncestryRunner.Run(mixed, _ => { }, new RecordingObserver()));
        Assert.Contains("ddvi-seed0", error.Message);
        Assert.Contains("other settings", error.Message);

        var own = mixed with { Out = folder["bf16-study"] };
        var runs = AncestryRunner.Run(own, _ => { }, new RecordingObserver());
        var ddvi = runs.Single(r => r.Method == "ddvi").Values;
        Assert.True(double.IsFinite(ddvi["population_nmi"]), "bf16 DDVI scores");
        string config = File.ReadAllText(Path.Combine(own.Out, "runs", "ddvi-seed0", "config.json"));
        Assert.Contains("\"Precision\": \"Bfloat16\"", config);
        Assert.Contains("\"Precision\": \"Float32\"", File.ReadAllText(Path.Combine(own.Out, "runs", "pca-seed0", "config.json")));
        var (latents, shape) = Ddvi.Data.NpyFile.ReadFloat32(Path.Combine(own.Out, "runs", "ddvi-seed0", "latents.npy"));
        Assert.Equal([120L, 2L], shape);
        Assert.All(latents, v => Assert.True(float.IsFinite(v)));
        var (floatLatents, _) = Ddvi.Data.NpyFile.ReadFloat32(Path.Combine(request.Out, "runs", "ddvi-seed0", "latents.npy"));
        Assert.NotEqual(floatLatents, latents); // another arithmetic, other latents

        // A run folder written before --precision existed (no Precision key) is a float32 run.
        string oldConfigPath = Path.Combine(request.Out, "runs", "ddvi-seed0", "config.json");
        var node = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(oldConfigPath))!;
        node["settings"]!.AsObject().Remove("Precision");
        File.WriteAllText(oldConfigPath, node.ToJsonString());
        var again = AncestryRunner.Run(request, _ => { }, new RecordingObserver());
        Assert.All(again, r => Assert.True(r.Reused));
    }

    [Fact]
    public void AnInterruptedLearnedRunResumesFromItsCheckpoints()
    {
        using var folder = new TempFolder();
        var request = Synthetic(folder, ["vae"]);
        using (var stop = new CancellationTokenSource())
        {
            var observer = new CancelAfterEpochs(stop, epochs: 1);
            Assert.ThrowsAny<OperationCanceledException>(() => AncestryRunner.Run(request, _ => { }, observer, stop.Token));
        }
        Assert.False(File.Exists(Path.Combine(request.Out, "runs", "vae-seed0", "scores.json")));
        var lines = new List<string>();
        var observerLines = new RecordingObserver();
        AncestryRunner.Run(request, lines.Add, observerLines);
        Assert.Contains(observerLines.Lines, l => l.Contains("resumed from"));
        Assert.True(File.Exists(Path.Combine(request.Out, "runs", "vae-seed0", "scores.json")));
    }

    [Fact]
    public void TheTablesGiveMeanAndStudentTHalfWidthOverSeedsAndSayWhenAMethodLacksSome()
    {
        using var folder = new TempFolder();
        var request = new AncestryRequest("g.bed", "g.panel", ["ddvi", "pca"], [0, 1, 2], folder["study"],
            new GenotypeFilters(), new GenotypePcaOptions(), new AncestrySettings());
        Directory.CreateDirectory(request.Out);
        var labels = new AncestryLabels(["a", "b"], [0, 1], [0, 0], ["P", "Q"], ["S"]);
        static AncestryRunScores Run(string method, int seed, double nmi) =>
            new(method, seed, new Dictionary<string, double> { ["population_nmi"] = nmi, ["knn20"] = 0.5 }, 10, Reused: false);
        // ddvi: all three seeds (NMI 0.4, 0.5, 0.6: mean 0.5, sd 0.1, half width t(0.975, 2) · 0.1 / √3 = 4.303 · 0.0577 = 0.248);
        // pca: two of three (a study stopped early, or a failed run).
        AncestryReport.Write(request, [Run("ddvi", 0, 0.4), Run("ddvi", 1, 0.5), Run("ddvi", 2, 0.6), Run("pca", 0, 0.3), Run("pca", 1, 0.3)],
            ["pca seed 2: missing"], labels);
        string table = File.ReadAllText(Path.Combine(request.Out, AncestryReport.MarkdownFile));
        Assert.Contains("| ddvi | – | – | – | – | 0.500 ± 0.248 |", table);
        Assert.Contains("| pca (2 of 3 seeds) | – | – | – | – | 0.300 ± 0.000 |", table);
        Assert.Contains("| pca (2 of 3 seeds) | 0.500 ± 0.000 |", table);
        Assert.Contains("- pca seed 2: missing", table);
        Assert.DoesNotContain("ddvi (", table);
    }

    [Fact]
    public void ScoresOfLatentsThatAreTheLabelsArePerfect()
    {
        // Three tight groups at the corners of a triangle, each one population of its own super-population.
        var rows = new List<float>();
        var population = new List<int>();
        for (int i = 0; i < 90; i++)
        {
            int c = i % 3;
            rows.Add(10f * c + 0.01f * (i % 7));
            rows.Add(c == 1 ? 10f : 0.01f * (i % 5));
            population.Add(c);
        }
        using var latents = tensor(rows.ToArray(), [90, 2]);
        var labels = new AncestryLabels(population.Select(p => p.ToString(CultureInfo.InvariantCulture)).ToArray(), population, population,
            ["A", "B", "C"], ["a", "b", "c"]);
        var (values, clusters) = AncestryRunner.Score(latents, labels, new AncestrySettings { ScoreComponents = 3, ScoreInitialisations = 2 }, seed: 1);
        Assert.Equal(90, clusters.Length);
        foreach (string key in new[] { "population_purity", "population_homogeneity", "population_completeness", "population_v_measure", "population_nmi",
                     "super_population_nmi", "knn20", "heldout_knn20" })
            Assert.Equal(1.0, values[key], 6);
    }

    [SharedGenotypesFact]
    public void TheSharedHgdpMicrosatellitesGiveAStudyOfEveryMethod()
    {
        using var folder = new TempFolder();
        // CHROM 0, symbolic alleles and FILTER '.': the release's SNP filters would drop every locus, so they are relaxed.
        var request = new AncestryRequest(GenotypeTestFiles.Shared("hgdp-microsatellites/hgdp.vcf.gz"), GenotypeTestFiles.Shared("hgdp-microsatellites/hgdp.panel"),
            AncestryRunner.AllMethods, [0], folder["study"],
            new GenotypeFilters { AutosomesOnly = false, SingleBaseAllelesOnly = false, EveryNth = 1 }, new GenotypePcaOptions { Components = 50 }, Short);
        var runs = AncestryRunner.Run(request, _ => { }, new RecordingObserver());
        Assert.Equal(AncestryRunner.AllMethods.Count, runs.Count);
        string table = File.ReadAllText(Path.Combine(request.Out, "results.md"));
        Assert.Contains("1350 labelled samples, 79 populations, 7 super-populations", table);
        // The seven regions are far from random on the first two PCs of 8,170 allele counts (random clusters: NMI ≈ 0.01).
        var pca = runs.Single(r => r.Method == "pca").Values;
        Assert.True(pca["super_population_nmi"] > 0.2, $"PCA's super-population NMI {pca["super_population_nmi"]}");
        Assert.True(pca["knn20"] > 0.1, $"PCA's KNN accuracy over 79 populations {pca["knn20"]}");
    }

    [Fact]
    public void BadRequestsAreRefusedBeforeAnyWork()
    {
        using var folder = new TempFolder();
        var request = Synthetic(folder, ["pca"]);
        var error = Assert.Throws<ArgumentException>(() => AncestryRunner.Run(request with { Methods = ["pca", "kmeans"] }, _ => { }, new RecordingObserver()));
        Assert.Contains("'kmeans'", error.Message);
        error = Assert.Throws<ArgumentException>(() => AncestryRunner.Run(request with { Seeds = [0, 0] }, _ => { }, new RecordingObserver()));
        Assert.Contains("--seeds", error.Message);
        var missing = Assert.Throws<FileNotFoundException>(() => AncestryRunner.Run(request with { Panel = folder["none.panel"] }, _ => { }, new RecordingObserver()));
        Assert.Contains("--panel", missing.Message);
        Assert.False(Directory.Exists(request.Out));
    }

    [Fact]
    public void TheCliRunsAStudyAndNamesBadOptions()
    {
        using var folder = new TempFolder();
        string prefix = folder["g"];
        string panel = SyntheticGenotypes.WritePlink(prefix, samples: 60, sites: 500, populations: 2, seed: 3, missingRate: 0, fst: 0.2);
        var (code, output, error) = DdviProcess.Run("ancestry", "--genotypes", prefix + ".bed", "--panel", panel, "--out", folder["study"],
            "--methods", "pca,umap", "--seeds", "0", "--all-chromosomes", "--every-nth-site", "1", "--components", "10");
        Assert.True(code == 0, $"exit {code}: {error}\n{output}");
        Assert.True(File.Exists(Path.Combine(folder["study"], "results.md")));

        (code, _, error) = DdviProcess.Run("ancestry", "--genotypes", prefix + ".bed", "--panel", panel, "--out", folder["s2"], "--methods", "pca,magic");
        Assert.Equal(2, code);
        Assert.Contains("'magic'", error);
        (code, _, error) = DdviProcess.Run("ancestry", "--genotypes", prefix + ".bed", "--panel", panel, "--out", folder["s3"], "--seeds", "0,x");
        Assert.Equal(2, code);
        Assert.Contains("--seeds", error);
        (code, _, error) = DdviProcess.Run("ancestry", "--genotypes", prefix + ".bed", "--panel", panel, "--out", folder["s4"], "--precision", "fp8");
        Assert.Equal(2, code);
        Assert.Contains("--precision: 'fp8' is not a precision; expected float32 (or fp32) or bfloat16 (or bf16).", error);
    }

    /// <summary>Cancels the token once a stage has finished the given number of epochs.</summary>
    private sealed class CancelAfterEpochs(CancellationTokenSource stop, int epochs) : Ddvi.Training.ITrainingObserver
    {
        public void StageStarted(string stage, int firstEpoch, int total, int stepsPerEpoch) { }
        public void StepCompleted(string stage, int epoch, int step, IReadOnlyDictionary<string, double>? runningLosses) { }
        public void EpochCompleted(string stage, Ddvi.Training.EpochRecord record, int total)
        {
            if (record.Epoch + 1 >= epochs) stop.Cancel();
        }
        public void Message(string text) { }
    }
}
