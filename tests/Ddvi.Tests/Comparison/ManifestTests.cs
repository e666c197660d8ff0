using System.Text.Json.Nodes;
using Ddvi.Experiments;
using Ddvi.Experiments.Comparison;
using Ddvi.Experiments.Sweeps;
using Ddvi.Tests.Experiments;
using Ddvi.Training;
using static Ddvi.Tests.Comparison.ComparisonFixtures;

namespace Ddvi.Tests.Comparison;

/// <summary>The sweep manifest: what compare writes, what `ddvi run` and the Slurm array read, and the state of its entries.</summary>
public class ManifestTests
{
    private static ComparisonOptions Sweep(string folder, IReadOnlyList<string> models, params long[] seeds) => new()
    {
        BaseConfig = ExperimentRunnerTests.Tiny("vae", epochs: 1),
        Models = models,
        Priors = ["pinwheel"],
        Seeds = seeds,
        OutputFolder = folder,
        Jobs = 2,
        Threads = 2,
    };

    [Fact]
    public void TheManifestHoldsEveryRunWithItsKindResolvedConfigAndFolderAndReadsBackTheSame()
    {
        using var folder = new TempFolder();
        var options = Sweep(folder.Path, ["vae", "ddvi"], 0, 1);
        var (manifest, planned, path) = SweepManifest.WriteFor(options);

        Assert.Equal(SweepManifest.PathIn(folder.Path), path);
        var plan = options.Plan();
        Assert.Equal(plan.Count, manifest.Entries.Count);
        for (int i = 0; i < plan.Count; i++)
        {
            var entry = manifest.Entries[i];
            Assert.Equal(i, entry.Index);
            Assert.Same(entry, planned[i]);
            Assert.Equal(SweepManifest.TrainKind, entry.Kind);
            Assert.Equal(plan[i].Name, entry.Name);
            Assert.Equal(plan[i].Folder, entry.Folder);
            Assert.Equal(plan[i].Config.ToJson(), entry.TrainConfig(path).ToJson());
            Assert.Equal(1, entry.TrainConfig(path).Threads); // 2 threads divided among 2 jobs
        }

        var read = SweepManifest.Load(path);
        Assert.Equal(manifest.ToJson(), read.ToJson());
        Assert.Equal(Path.GetFullPath(folder.Path), read.Folder);
    }

    [Fact]
    public void IndicesAreStableWhenTheSweepGrowsOrIsWrittenAgain()
    {
        using var folder = new TempFolder();
        var (first, _, path) = SweepManifest.WriteFor(Sweep(folder.Path, ["vae", "ddvi"], 0));
        Assert.Equal(["vae-pinwheel-s0", "ddvi-pinwheel-s0"], first.Entries.Select(e => e.Name));

        // Another seed: the plan is now vae-s0, vae-s1, ddvi-s0, ddvi-s1; the old entries keep 0 and 1, the new ones follow.
        var (grown, planned, _) = SweepManifest.WriteFor(Sweep(folder.Path, ["vae", "ddvi"], 0, 1));
        Assert.Equal(["vae-pinwheel-s0", "ddvi-pinwheel-s0", "vae-pinwheel-s1", "ddvi-pinwheel-s1"], grown.Entries.Select(e => e.Name));
        Assert.Equal([0, 2, 1, 3], planned.Select(e => e.Index));

        // The same sweep again, or a smaller one, changes nothing.
        var (again, smaller, _) = SweepManifest.WriteFor(Sweep(folder.Path, ["ddvi"], 1));
        Assert.Equal(grown.ToJson(), again.ToJson());
        Assert.Equal([3], smaller.Select(e => e.Index));
        Assert.Equal(grown.ToJson(), File.ReadAllText(path));
    }

    [Fact]
    public void AnEntryOfAnotherKindKeepsItsOwnConfigurationAndIndex()
    {
        using var folder = new TempFolder();
        var (manifest, _, path) = SweepManifest.WriteFor(Sweep(folder.Path, ["vae"], 0));
        var other = new ManifestEntry(1, "future", "future-vae", Path.Combine(folder.Path, "future"), new JsonObject { ["depth"] = 3 });
        (manifest with { Entries = [.. manifest.Entries, other] }).Save(path);

        var (grown, _, _) = SweepManifest.WriteFor(Sweep(folder.Path, ["vae"], 0, 1));
        Assert.Equal(["vae-pinwheel-s0", "future-vae", "vae-pinwheel-s1"], grown.Entries.Select(e => e.Name));
        var read = SweepManifest.Load(path).Entries[1];
        Assert.Equal("future", read.Kind);
        Assert.Equal(3, read.Config["depth"]!.GetValue<int>());

        var outcome = Assert.Throws<InvalidDataException>(() => new SweepTasks(SilentObserver.Instance).Run(read, path));
        Assert.Contains("kind 'future' is not known", outcome.Message);
        Assert.Contains("(known: train, ancestry)", outcome.Message);

        // A known kind whose configuration is not its own: an error naming the entry, nothing run.
        var broken = read with { Kind = SweepManifest.AncestryKind };
        outcome = Assert.Throws<InvalidDataException>(() => new SweepTasks(SilentObserver.Instance).Run(broken, path));
        Assert.Contains($"{path}, entry 1 (future-vae): not a valid ancestry entry", outcome.Message);
        Assert.False(Directory.Exists(broken.Folder));
    }

    [Theory]
    [InlineData("{", "not a valid sweep manifest")]
    [InlineData("{\"format\": \"something\"}", "not a sweep manifest")]
    [InlineData("{\"format\": \"ddvi-sweep-manifest\", \"version\": 9, \"folder\": \"/x\", \"entries\": []}", "version 9 is not supported")]
    [InlineData("{\"format\": \"ddvi-sweep-manifest\", \"version\": 1, \"folder\": \"/x\", \"entries\": [{\"index\": 1, \"kind\": \"train\", \"name\": \"a\", \"folder\": \"/x/a\", \"config\": {}}]}", "entry 0 has index 1")]
    [InlineData("{\"format\": \"ddvi-sweep-manifest\", \"version\": 1, \"folder\": \"/x\", \"entries\": [{\"index\": 0, \"name\": \"a\", \"folder\": \"/x/a\", \"config\": {}}]}", "\"entry 0: kind\" is missing")]
    public void ABrokenManifestIsAnErrorNamingTheFileAndTheProblem(string text, string expected)
    {
        using var folder = new TempFolder();
        string path = folder["manifest.json"];
        File.WriteAllText(path, text);
        var error = Assert.Throws<InvalidDataException>(() => SweepManifest.Load(path));
        Assert.Contains(path, error.Message);
        Assert.Contains(expected, error.Message);
    }

    [Fact]
    public void AnIndexOutOfRangeNamesTheValidIndices()
    {
        using var folder = new TempFolder();
        var (manifest, _, path) = SweepManifest.WriteFor(Sweep(folder.Path, ["vae"], 0, 1, 2));
        var error = Assert.Throws<ArgumentException>(() => manifest.Entry(3, path));
        Assert.Equal($"--index 3 is out of range: {path} has 3 entries, indices 0 to 2.", error.Message);
        Assert.Throws<ArgumentException>(() => manifest.Entry(-1, path));
        Assert.Contains("not found", Assert.Throws<ArgumentException>(() => SweepManifest.Load(folder["nothing.json"])).Message);
    }

    [Fact]
    public void TheReportCollectsFinishedRunsAndNamesTheFailedUnfinishedAndMissingOnes()
    {
        using var folder = new TempFolder();
        var (manifest, _, path) = SweepManifest.WriteFor(Sweep(folder.Path, ["vae"], 0, 1, 2, 3));
        var entries = manifest.Entries;
        var config = entries[0].TrainConfig(path);
        WriteFinishedRun(entries[0].Folder, config, Metrics("vae", "pinwheel", 0, -100, 2, 0.8, 0.2, 5));
        Directory.CreateDirectory(entries[1].Folder);
        File.WriteAllText(new RunDirectory(entries[1].Folder).Config, entries[1].TrainConfig(path).ToJson());
        File.WriteAllText(SweepTasks.FailureFile(entries[1].Folder), "{\"error\": \"boom: the loss is not finite\"}");
        Directory.CreateDirectory(entries[2].Folder);
        File.WriteAllText(new RunDirectory(entries[2].Folder).Config, entries[2].TrainConfig(path).ToJson());

        var report = SweepReport.Write(manifest, folder.Path);
        Assert.False(report.Complete);
        Assert.Equal([EntryState.Finished, EntryState.Failed, EntryState.Unfinished, EntryState.Missing], report.Entries.Select(e => e.State));
        Assert.Contains("| vae | 1 | 1 |", File.ReadAllText(report.Files!.Markdown));
        var problems = SweepStatus.Problems(report.Entries, path).ToList();
        Assert.Equal(3, problems.Count);
        Assert.StartsWith("failed      [1] vae-pinwheel-s1: boom: the loss is not finite", problems[0]);
        Assert.Contains($"unfinished  [2] vae-pinwheel-s2: started, not finished; continue it with: ddvi run --manifest {path} --index 2", problems[1]);
        Assert.Contains($"missing     [3] vae-pinwheel-s3: not started; run it with: ddvi run --manifest {path} --index 3", problems[2]);
        Assert.Equal("1 finished, 1 failed, 1 unfinished, 1 not started (of 4)", SweepStatus.Summary(report.Entries));

        // A failed run that later finishes counts as finished.
        WriteFinishedRun(entries[1].Folder, entries[1].TrainConfig(path), Metrics("vae", "pinwheel", 1, -101, 2, 0.8, 0.2, 5));
        Assert.Equal(EntryState.Finished, SweepStatus.Of(entries[1]).State);
    }
}
