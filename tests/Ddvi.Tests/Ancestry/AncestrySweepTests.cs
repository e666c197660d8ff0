using Ddvi.Experiments.Ancestry;
using Ddvi.Experiments.Genomics;
using Ddvi.Experiments.Sweeps;
using Ddvi.Tests.Genomics;

namespace Ddvi.Tests.Ancestry;

/// <summary>
/// <c>ddvi ancestry</c> as a sweep: its manifest entries, <c>ddvi run</c> on one of them, <c>ddvi report</c> on the study,
/// <c>--dry-run</c> with the Slurm launcher and local child processes (<c>--jobs 2</c>). The cluster run is in
/// <see cref="Comparison.SlurmClusterTests"/>.
/// </summary>
public class AncestrySweepTests
{
    /// <summary>A generated PLINK file of three populations; returns the .bed and the panel.</summary>
    internal static (string Bed, string Panel) Genotypes(TempFolder folder)
    {
        string prefix = folder["genotypes"];
        string panel = SyntheticGenotypes.WritePlink(prefix, samples: 120, sites: 3000, populations: 3, seed: 5, missingRate: 0.01, fst: 0.2);
        return (prefix + ".bed", panel);
    }

    /// <summary>The tiny study's command line: every budget small, so that a learned run takes seconds.</summary>
    internal static string[] Study(string bed, string panel, string study, string methods, params string[] more) =>
    [
        "ancestry", "--genotypes", bed, "--panel", panel, "--out", study, "--methods", methods, "--seeds", "0",
        "--all-chromosomes", "--every-nth-site", "1", "--components", "20", "--epochs", "2", "--hidden", "32", "--hidden-layers", "2",
        "--passes-per-epoch", "1", "--prior-diffusion-iterations", "60", .. more,
    ];

    /// <summary>results.csv without its seconds column: what two equal studies share.</summary>
    internal static string CsvWithoutSeconds(string study) =>
        string.Join("\n", File.ReadAllLines(Path.Combine(study, AncestryReport.CsvFile))
            .Select(line => line.Split(','))
            .Select(cells => string.Join(',', cells.Where((_, i) => i != 2))));

    [Fact]
    public void TheManifestHasOneAncestryEntryPerMethodAndSeedWithStableIndicesAsTheStudyGrows()
    {
        using var folder = new TempFolder();
        string panel = folder["study.panel"];
        File.WriteAllText(panel, "sample\tpop\tsuper_pop\tgender\n");
        var request = new AncestryRequest(folder["g.bed"], panel, ["pca", "ddvi"], [0], folder["study"],
            new GenotypeFilters { EveryNth = 1 }, new GenotypePcaOptions { Components = 20 }, new AncestrySettings { Epochs = 7, Hidden = 16 });

        var (manifest, planned, path) = AncestrySweep.WriteManifest(request);
        Assert.Equal(SweepManifest.PathIn(request.Out), path);
        Assert.Equal(["pca-seed0", "ddvi-seed0"], manifest.Entries.Select(e => e.Name));
        Assert.All(manifest.Entries, e => Assert.Equal(SweepManifest.AncestryKind, e.Kind));
        Assert.Equal(Path.Combine(request.Out, "runs", "ddvi-seed0"), planned[1].Folder);

        // Everything a task needs is in its entry: it reads back as the study's request for its method and seed alone.
        var read = AncestrySweep.Request(SweepManifest.Load(path).Entries[1], path);
        Assert.Equal(["ddvi"], read.Methods);
        Assert.Equal([0], read.Seeds);
        Assert.Equal(Path.GetFullPath(request.Genotypes), read.Genotypes);
        Assert.Equal(request.Filters, read.Filters);
        Assert.Equal(request.Pca, read.Pca);
        Assert.Equal(7, read.Settings.Epochs);
        Assert.Equal(16, read.Settings.Hidden);
        Assert.Equal(request.Settings.NeighbourCounts, read.Settings.NeighbourCounts);

        // Another method and seed: the old entries keep their indices, the new ones are appended.
        var (grown, grownPlanned, _) = AncestrySweep.WriteManifest(request with { Methods = ["umap", "pca", "ddvi"], Seeds = [0, 1] });
        Assert.Equal(["pca-seed0", "ddvi-seed0", "umap-seed0", "umap-seed1", "pca-seed1", "ddvi-seed1"], grown.Entries.Select(e => e.Name));
        Assert.Equal([2, 3, 0, 4, 1, 5], grownPlanned.Select(e => e.Index));

        // Other settings for the same run folders: the same indices, the new configuration.
        var (changed, _, _) = AncestrySweep.WriteManifest(request with { Settings = request.Settings with { Epochs = 9 } });
        Assert.Equal(grown.Entries.Select(e => e.Name), changed.Entries.Select(e => e.Name));
        Assert.Equal(9, AncestrySweep.Request(changed.Entries[1], path).Settings.Epochs);
        Assert.Equal(7, AncestrySweep.Request(changed.Entries[5], path).Settings.Epochs);
    }

    [Fact]
    public void RunRunsOneEntryOnceThenReusesItAndReportNamesTheMissingOnes()
    {
        using var folder = new TempFolder();
        var (bed, panel) = Genotypes(folder);
        string study = folder["study"];
        var (code, output, error) = DdviProcess.Run(Study(bed, panel, study, "pca,ddvi", "--dry-run"));
        Assert.True(code == 0, error);
        string manifest = SweepManifest.PathIn(study);
        Assert.Contains($"manifest: {manifest} (2 runs", output);
        Assert.False(Directory.Exists(Path.Combine(study, "pca")), "a dry run computes no PCs");
        Assert.False(Directory.Exists(Path.Combine(study, "runs")), "a dry run runs nothing");

        // The learned entry: its PCs are computed by the task (no cache yet), then it trains and is scored.
        (code, output, error) = DdviProcess.Run("run", "--manifest", manifest, "--index", "1");
        Assert.True(code == 0, error);
        Assert.Contains("trained: ddvi-seed0", output);
        string scores = Path.Combine(study, "runs", "ddvi-seed0", AncestrySweep.ScoresFile);
        Assert.True(File.Exists(scores));
        Assert.True(File.Exists(Path.Combine(study, "pca", GenotypePcaCache.ScoresFile)));
        string written = File.ReadAllText(scores);

        (code, output, error) = DdviProcess.Run("run", "--manifest", manifest, "--index", "1");
        Assert.True(code == 0, error);
        Assert.Contains($"finished earlier: ddvi-seed0 in {Path.Combine(study, "runs", "ddvi-seed0")} has its scores.json; nothing to do", output);
        Assert.Equal(written, File.ReadAllText(scores));

        // The report tabulates the finished run and names the one not started: exit code 1 until all finished.
        (code, output, error) = DdviProcess.Run("report", study);
        Assert.Equal(1, code);
        Assert.Contains("1 of 2 runs finished; results: ", output);
        Assert.Contains($"missing     [0] pca-seed0: not started; run it with: ddvi run --manifest {manifest} --index 0", error);
        Assert.Contains("1 finished, 0 failed, 0 unfinished, 1 not started (of 2)", error);
        string table = File.ReadAllText(Path.Combine(study, AncestryReport.MarkdownFile));
        Assert.Contains("| ddvi |", table);
        Assert.DoesNotContain("| pca |", table);
        Assert.Contains("pca seed 0: missing", table);

        (code, _, error) = DdviProcess.Run("run", "--manifest", manifest, "--index", "0");
        Assert.True(code == 0, error);
        (code, output, error) = DdviProcess.Run("report", study);
        Assert.True(code == 0, error);
        Assert.Contains("2 of 2 runs finished", output);
        Assert.Equal(3, File.ReadAllLines(Path.Combine(study, AncestryReport.CsvFile)).Length);
    }

    [Fact]
    public void DryRunWithSlurmWritesTheManifestAndAScriptThatRunsEachEntry()
    {
        using var folder = new TempFolder();
        var (bed, panel) = Genotypes(folder);
        string study = folder["study"];
        var (code, output, error) = DdviProcess.Run(Study(bed, panel, study, "pca,ddvi",
            "--launcher", "slurm", "--dry-run", "--partition", "short", "--time", "0:30:00", "--cpus-per-task", "2", "--mem", "4G"));
        Assert.True(code == 0, error);
        string manifest = SweepManifest.PathIn(study);
        string script = Path.Combine(study, SlurmScript.FileName);
        Assert.Contains($"script:   {script}", output);
        Assert.Contains($"dry run: nothing submitted; submit with: sbatch {script}", output);
        var entries = SweepManifest.Load(manifest).Entries;
        Assert.Equal(2, entries.Count(e => e.Kind == SweepManifest.AncestryKind));
        // Each task runs with its CPUs as libtorch threads.
        Assert.All(entries, e => Assert.Equal(2, e.Config["threads"]!.GetValue<int>()));
        Assert.False(Directory.Exists(Path.Combine(study, "pca")), "a dry run computes no PCs");

        string text = File.ReadAllText(script);
        Assert.Contains("# Written by 'ddvi ancestry --launcher slurm'", text);
        Assert.Contains("#SBATCH --array=0-1%2\n", text);
        Assert.Contains("#SBATCH --partition=short\n", text);
        Assert.Contains("#SBATCH --cpus-per-task=2\n", text);
        Assert.Matches($@"\nexec .* run --manifest '?{System.Text.RegularExpressions.Regex.Escape(manifest)}'? --index ""\$SLURM_ARRAY_TASK_ID""\n", text);

        // The Slurm options belong to the Slurm launcher, and are checked like compare's.
        (code, _, error) = DdviProcess.Run(Study(bed, panel, folder["s2"], "pca", "--partition", "short"));
        Assert.Equal(2, code);
        Assert.Contains("--partition applies to --launcher slurm only", error);
        (code, _, error) = DdviProcess.Run(Study(bed, panel, folder["s3"], "pca", "--launcher", "slurm", "--dry-run", "--mem", "lots"));
        Assert.Equal(2, code);
        Assert.Contains("--mem 'lots' is not a Slurm memory size", error);
        (code, _, error) = DdviProcess.Run(Study(bed, panel, folder["s4"], "pca", "--jobs", "0"));
        Assert.Equal(2, code);
        Assert.Contains("--jobs must be ≥ 1", error);
    }

    [Fact]
    public void TwoLocalJobsGiveTheResultsOfOne()
    {
        using var folder = new TempFolder();
        var (bed, panel) = Genotypes(folder);
        var (code, _, error) = DdviProcess.Run(Study(bed, panel, folder["one"], "pca,ddvi"));
        Assert.True(code == 0, error);
        (code, var output, error) = DdviProcess.Run(Study(bed, panel, folder["two"], "pca,ddvi", "--jobs", "2"));
        Assert.True(code == 0, error);
        Assert.Contains("[ddvi-seed0]", output + error);
        // Without --threads the children share the cores instead of each taking all of them.
        int each = AncestrySweep.ThreadsEachOf(2);
        Assert.Equal(Math.Max(1, Environment.ProcessorCount / 2), each);
        Assert.All(SweepManifest.Load(SweepManifest.PathIn(folder["two"])).Entries, e => Assert.Equal(each, e.Config["threads"]!.GetValue<int>()));
        Assert.Contains($"2 jobs at a time, {each} libtorch thread(s) each", output + error);
        Assert.Equal(CsvWithoutSeconds(folder["one"]), CsvWithoutSeconds(folder["two"]));
        Assert.Equal(3, File.ReadAllLines(Path.Combine(folder["two"], AncestryReport.CsvFile)).Length);
        Assert.Equal(File.ReadAllBytes(Path.Combine(folder["one"], "runs", "ddvi-seed0", "latents.npy")),
            File.ReadAllBytes(Path.Combine(folder["two"], "runs", "ddvi-seed0", "latents.npy")));
    }
}
