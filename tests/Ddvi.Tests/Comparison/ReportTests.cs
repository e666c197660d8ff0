using Ddvi.Experiments;
using Ddvi.Experiments.Comparison;
using static Ddvi.Tests.Comparison.ComparisonFixtures;

namespace Ddvi.Tests.Comparison;

public class ReportTests
{
    /// <summary>A comparison folder with vae and ddvi on two priors, seeds 0 and 1, except ddvi on square (seed 1 only), plus one unfinished run.</summary>
    private static void WriteComparison(string folder)
    {
        foreach (var prior in new[] { "pinwheel", "square" })
        foreach (var model in new[] { "vae", "ddvi" })
        foreach (long seed in new long[] { 0, 1 })
        {
            if (model == "ddvi" && prior == "square" && seed == 0) continue;
            var config = new ExperimentConfig { Model = model, Prior = prior, Seed = seed, Epochs = 1 };
            WriteFinishedRun(Path.Combine(folder, "runs", ComparisonOptions.RunName(model, prior, seed)), config,
                Metrics(model, prior, seed, -100 - seed, 1 + seed, 0.5, 0.1, 3));
        }
        var unfinished = new RunDirectory(Path.Combine(folder, "runs", "vae-pinwheel-s2"));
        Directory.CreateDirectory(unfinished.Root);
        File.WriteAllText(unfinished.Config, new ExperimentConfig { Model = "vae", Seed = 2 }.ToJson());
    }

    [Fact]
    public void AComparisonFolderAndItsRunFoldersGiveTheSameFiles()
    {
        using var folder = new TempFolder();
        WriteComparison(folder.Path);
        var fromComparison = RunResult.Discover([folder.Path]);
        Assert.Equal(7, fromComparison.Runs.Count);
        Assert.Equal([Path.Combine(folder.Path, "runs", "vae-pinwheel-s2")], fromComparison.Unfinished);

        var runFolders = Directory.GetDirectories(Path.Combine(folder.Path, "runs")).Where(d => !d.EndsWith("-s2", StringComparison.Ordinal)).Reverse();
        var fromRuns = RunResult.Discover(runFolders);
        using var a = new TempFolder();
        using var b = new TempFolder();
        var filesA = ComparisonReport.Write(fromComparison.Runs, a.Path);
        var filesB = ComparisonReport.Write(fromRuns.Runs, b.Path);
        Assert.Equal(File.ReadAllText(filesA.Markdown), File.ReadAllText(filesB.Markdown));
        Assert.Equal(File.ReadAllText(filesA.Csv), File.ReadAllText(filesB.Csv));
        Assert.Contains("| ddvi | 1 | 1 | -101.00 |", File.ReadAllText(filesA.Markdown));

        // Panel: rows = 2 priors; columns = the prior and 2 models.
        Assert.Equal((3 * 360, 2 * 360), PngSize(filesA.Panel));
        Assert.Empty(Directory.GetFiles(a.Path, "*.tmp"));
    }

    [Fact]
    public void RunsAreReadWithTheirConfigurationAndMetrics()
    {
        using var folder = new TempFolder();
        var config = new ExperimentConfig { Model = "vae", Prior = "less_noisy_swiss_roll", Seed = 5 };
        WriteFinishedRun(folder.Path, config, Metrics("vae", "swiss-roll", 5, null, 1.5, 0.75, 0.2, 42));
        var run = RunResult.Load(folder.Path);
        Assert.Equal(("vae", "synthetic", 5L, "swiss-roll (noise 0.1)"), (run.Model, run.Dataset, run.Seed, run.PriorLabel));
        Assert.False(run.Metrics.Elbo.Available);
        Assert.Equal(42, run.Metrics.TrainingSeconds);
        var (x, y, labels) = ComparisonReport.ReadLatents(new RunDirectory(folder.Path).TestLatents);
        Assert.Equal(40, x.Length);
        Assert.Equal(6, x[0]);
        Assert.Equal(0, y[0]);
        Assert.Equal(4, labels[4]);
    }

    [Fact]
    public void BadFoldersAndFilesGiveClearErrors()
    {
        using var folder = new TempFolder();
        Assert.Contains("is not a folder", Assert.Throws<DirectoryNotFoundException>(() => RunResult.Discover([folder["missing"]])).Message);
        Assert.Contains("neither a run folder", Assert.Throws<InvalidDataException>(() => RunResult.Discover([folder.Path])).Message);

        var unfinished = new RunDirectory(folder["unfinished"]);
        Directory.CreateDirectory(unfinished.Root);
        File.WriteAllText(unfinished.Config, new ExperimentConfig().ToJson());
        Assert.Contains("--resume", Assert.Throws<FileNotFoundException>(() => RunResult.Discover([unfinished.Root])).Message);

        var config = new ExperimentConfig { Model = "vae", Seed = 1 };
        var metrics = Metrics("vae", "pinwheel", 1, -1, 1, 0.5, 0.1, 1);
        WriteFinishedRun(folder["a"], config, metrics);
        WriteFinishedRun(folder["b"], config, metrics);
        var duplicate = Assert.Throws<InvalidDataException>(() => RunResult.Discover([folder["a"], folder["b"]])).Message;
        Assert.Contains("two runs of vae with prior pinwheel, seed 1", duplicate);
        Assert.Contains(folder["b"], duplicate);

        File.WriteAllText(new RunDirectory(folder["a"]).Metrics, "{\"model\": 3}");
        Assert.Contains("metrics.json", Assert.Throws<InvalidDataException>(() => RunResult.Load(folder["a"])).Message);

        File.WriteAllText(new RunDirectory(folder["b"]).TestLatents, "z1,z2,label\n0.5,1,2\n0.5,oops,1\n");
        var latents = Assert.Throws<InvalidDataException>(() => ComparisonReport.ReadLatents(new RunDirectory(folder["b"]).TestLatents)).Message;
        Assert.Contains("latents-test.csv, line 3", latents);

        // DDVI's latents carry the chain start y_T after the label: the z columns and labels are read.
        File.WriteAllText(new RunDirectory(folder["b"]).TestLatents, "z1,z2,label,yT1,yT2\n0.5,1,2,0.1,0.2\n-1,0.25,7,0.3,0.4\n");
        var (x, y, labels) = ComparisonReport.ReadLatents(new RunDirectory(folder["b"]).TestLatents);
        Assert.Equal(new[] { 0.5f, -1f }, x);
        Assert.Equal(new[] { 1f, 0.25f }, y);
        Assert.Equal(new[] { 2, 7 }, labels);

        Assert.Contains("no finished runs", Assert.Throws<InvalidOperationException>(() => ComparisonReport.Write([], folder.Path)).Message);
    }

    [Fact]
    public void RunsOfOneModelWithDifferentSettingsAreLabelledByThemAndPooledApart()
    {
        // An ablation: DDVI with the release's 3 sleep steps and with 10, two seeds each, and one 10-step run extended to 300
        // epochs (as --resume writes it: the frozen-decoder epochs it had resolved, 30% of the synthetic default 15, set
        // explicitly); the VAE's two seeds share their settings. One 10-step run sets the default epochs explicitly.
        using var folder = new TempFolder();
        var paths = new List<string>();
        void Add(string name, ExperimentConfig config, MetricsReport metrics)
        {
            WriteFinishedRun(folder[name], config, metrics);
            paths.Add(folder[name]);
        }
        foreach (long seed in new long[] { 0, 1 })
        {
            Add($"k3-s{seed}", new ExperimentConfig { Model = "ddvi", Seed = seed, Threads = 2 }, Metrics("ddvi", "pinwheel", seed, -100, 2 + seed, 0.6, 0.3, 5));
            Add($"k10-s{seed}", new ExperimentConfig { Model = "ddvi", Seed = seed, Threads = 1, Epochs = seed == 0 ? 15 : null, Ddvi = new DdviSettings { SleepSteps = 10 } },
                Metrics("ddvi", "pinwheel", seed, -99, 1 + seed, 0.7, 0.3, 7));
            Add($"vae-s{seed}", new ExperimentConfig { Model = "vae", Seed = seed, Threads = 1 + (int)seed }, Metrics("vae", "pinwheel", seed, -110, 4, 0.5, 0.4, 1));
        }
        Add("k10-e300", new ExperimentConfig { Model = "ddvi", Seed = 0, Epochs = 300, Ddvi = new DdviSettings { SleepSteps = 10, FrozenDecoderEpochs = 4 } },
            Metrics("ddvi", "pinwheel", 0, -98, 0.5, 0.8, 0.3, 20, epochs: 300));

        // Discovery no longer calls them duplicates; the seed, the threads and an option set to its default do not make a
        // variant, and an unset option is labelled by the value it resolved to.
        var runs = RunResult.Discover(paths).Runs;
        var labels = runs.ToDictionary(r => Path.GetFileName(r.Folder), r => r.ModelLabel);
        Assert.Equal("ddvi [ddvi.sleep_steps 3, epochs 15]", labels["k3-s0"]);
        Assert.Equal("ddvi [ddvi.sleep_steps 10, epochs 15]", labels["k10-s1"]);
        Assert.Equal("ddvi [ddvi.sleep_steps 10, epochs 300]", labels["k10-e300"]);
        Assert.Equal("vae", labels["vae-s1"]);

        var table = ResultsTable.Build(runs);
        Assert.Equal(["ddvi [ddvi.sleep_steps 10, epochs 15]", "ddvi [ddvi.sleep_steps 10, epochs 300]", "ddvi [ddvi.sleep_steps 3, epochs 15]", "vae"],
            table.Rows.Select(r => r.Model).Order(StringComparer.Ordinal).ToArray());
        var k10 = table.Rows.Single(r => r.Model == "ddvi [ddvi.sleep_steps 10, epochs 15]");
        Assert.Equal(new long[] { 0, 1 }, k10.Seeds);
        int nll = table.TableColumns.ToList().FindIndex(c => c.Key == "latent_nll");
        Assert.Equal(1.5, k10.Cells[nll].Interval!.Value.Mean, 12);   // the mean of its own seeds only (1 and 2)

        // The report's panel has a column per label, titled with it; the same runs given as one list give the same table.
        var files = ComparisonReport.Write(runs, folder["report"]);
        string markdown = File.ReadAllText(files.Markdown);
        Assert.Contains("| ddvi [ddvi.sleep_steps 3, epochs 15] | 2 |", markdown);
        Assert.Equal(File.ReadAllText(files.Markdown), ResultsTable.Build(RunResult.LabelVariants(runs)).ToMarkdown());
        Assert.Contains("\"ddvi [ddvi.sleep_steps 10, epochs 300]\"", File.ReadAllText(files.Csv)); // a label with a comma is quoted

        // Two runs that share every setting and the seed are still duplicates.
        WriteFinishedRun(folder["k10-s1-again"], new ExperimentConfig { Model = "ddvi", Seed = 1, Ddvi = new DdviSettings { SleepSteps = 10 } },
            Metrics("ddvi", "pinwheel", 1, -99, 1, 0.7, 0.3, 7));
        var duplicate = Assert.Throws<InvalidDataException>(() => RunResult.Discover([.. paths, folder["k10-s1-again"]])).Message;
        Assert.Contains("two runs of ddvi [ddvi.sleep_steps 10, epochs 15] with prior pinwheel, seed 1", duplicate);
    }
}
