using Ddvi.Experiments.Files;
using Ddvi.Experiments.Genomics;
using Ddvi.Experiments.Sweeps;
using Ddvi.Tests.Genomics;

namespace Ddvi.Tests.Ancestry;

/// <summary><c>ddvi ancestry --sweep FILE</c>: the study file's keys, its errors, precedence of the command line, and the shipped files.</summary>
public class AncestryFileTests
{
    static string RepositoryFile(string relative)
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "Ddvi.slnx")))
                return Path.Combine(dir.FullName, relative);
        throw new InvalidOperationException("the repository root (Ddvi.slnx) is not above the test binaries");
    }

    [Fact]
    public void AStudyFileGivesEveryOptionAndTheCommandLineOverridesIt()
    {
        using var folder = new TempFolder();
        string prefix = folder["g"];
        string panel = SyntheticGenotypes.WritePlink(prefix, samples: 60, sites: 400, populations: 2, seed: 3, missingRate: 0, fst: 0.2);
        string study = folder["study"];
        File.WriteAllText(folder["study.yaml"], $"""
            genotypes: {prefix}.bed
            panel: {panel}
            out: {study}
            methods: [pca, ddvi]
            seeds: [0, 1]
            all_chromosomes: true
            every-nth-site: 1
            components: 10
            epochs: 7
            pc-divisor: auto
            """);
        var (code, output, error) = DdviProcess.Run("ancestry", "--sweep", folder["study.yaml"], "--seeds", "3", "--dry-run");
        Assert.True(code == 0, $"exit {code}: {error}\n{output}");
        var manifest = SweepManifest.Load(SweepManifest.PathIn(study));
        // Methods from the file, seeds from the command line; the file's epochs and components in every entry.
        Assert.Equal(["pca-seed3", "ddvi-seed3"], manifest.Entries.Select(e => e.Name).ToArray());
        foreach (var entry in manifest.Entries)
        {
            Assert.Equal(7, entry.Config["settings"]!["Epochs"]!.GetValue<int>());
            Assert.Equal(10, entry.Config["pca"]!["Components"]!.GetValue<int>());
            Assert.False(entry.Config["filters"]!["AutosomesOnly"]!.GetValue<bool>());
            Assert.Null(entry.Config["pca"]!["Divisor"]); // auto: chosen from the data
        }
        (code, output, error) = DdviProcess.Run("ancestry", "--sweep", folder["study.yaml"], "--pc-divisor", "30", "--out", folder["fixed"], "--dry-run");
        Assert.True(code == 0, $"exit {code}: {error}\n{output}");
        Assert.All(SweepManifest.Load(SweepManifest.PathIn(folder["fixed"])).Entries, e => Assert.Equal(30.0, e.Config["pca"]!["Divisor"]!.GetValue<double>()));
    }

    [Fact]
    public void StudyFileErrorsNameTheFileTheLineAndTheKey()
    {
        using var folder = new TempFolder();
        File.WriteAllText(folder["bad.yaml"], "out: x\nepoch: 3\n");
        var error = Assert.Throws<ArgumentException>(() => AncestryFile.Load(folder["bad.yaml"]));
        Assert.Contains("line 2", error.Message);
        Assert.Contains("'epoch'", error.Message);
        File.WriteAllText(folder["type.yaml"], "out: x\nepochs: many\n");
        error = Assert.Throws<ArgumentException>(() => AncestryFile.Load(folder["type.yaml"]));
        Assert.Contains("line 2", error.Message);
        Assert.Contains("epochs must be an integer", error.Message);
        File.WriteAllText(folder["switch.yaml"], "any_alleles: 1\n");
        error = Assert.Throws<ArgumentException>(() => AncestryFile.Load(folder["switch.yaml"]));
        Assert.Contains("true or false", error.Message);
        File.WriteAllText(folder["divisor.yaml"], "out: x\npc-divisor: half\n");
        error = Assert.Throws<ArgumentException>(() => AncestryFile.Load(folder["divisor.yaml"]));
        Assert.Contains("line 2: pc-divisor must be a finite number or auto, got 'half'", error.Message);

        var (code, _, stderr) = DdviProcess.Run("ancestry", "--sweep", folder["bad.yaml"]);
        Assert.Equal(2, code);
        Assert.Contains("'epoch'", stderr);
        File.WriteAllText(folder["partial.yaml"], "methods: [pca]\n");
        (code, _, stderr) = DdviProcess.Run("ancestry", "--sweep", folder["partial.yaml"]);
        Assert.Equal(2, code);
        Assert.Contains("--genotypes is required", stderr);
        foreach (string bad in new[] { "0", "-3", "abc" })
        {
            (code, _, stderr) = DdviProcess.Run("ancestry", "--genotypes", "g.bed", "--panel", "p", "--out", folder["o"], "--pc-divisor", bad, "--dry-run");
            Assert.Equal(2, code);
            Assert.Contains($"--pc-divisor: expected 'auto' or a positive number, got '{bad}'", stderr);
        }
    }

    [Theory]
    [InlineData("configs/ancestry/1000-genomes.yaml")]
    [InlineData("configs/ancestry/hgdp.yaml")]
    [InlineData("configs/ancestry/hapmap-chr10.yaml")]
    public void EveryShippedStudyFileReadsAndNamesItsData(string relative)
    {
        var file = AncestryFile.Load(RepositoryFile(relative));
        foreach (string key in new[] { "genotypes", "panel", "out", "methods", "seeds" })
            Assert.True(file.Values.ContainsKey(key), $"{relative} has no {key}");
        Assert.Equal("ddvi,vae,aae,pca,tsne,umap", file.Values["methods"].Text);
        Assert.Equal("0,1,2,3,4", file.Values["seeds"].Text);
    }

    [SharedGenotypesFact]
    public void TheShippedHapMapStudyRunsFromItsFileWithShortBudgets()
    {
        using var folder = new TempFolder();
        // The file's data paths are relative to the repository root, where the shared data sit beside it on the project's
        // machines; here they are given as found, with the budgets overridden.
        var (code, output, error) = DdviProcess.Run("ancestry", "--sweep", RepositoryFile("configs/ancestry/hapmap-chr10.yaml"),
            "--genotypes", GenotypeTestFiles.Shared("hapmap-sim-chr10/chr10.bed"), "--panel", GenotypeTestFiles.Shared("hapmap-sim-chr10/chr10.panel"),
            "--out", folder["study"], "--methods", "pca", "--seeds", "0", "--components", "20");
        Assert.True(code == 0, $"exit {code}: {error}\n{output}");
        string table = File.ReadAllText(Path.Combine(folder["study"], "results.md"));
        Assert.Contains("1000 labelled samples, 2 populations", table);
    }
}
