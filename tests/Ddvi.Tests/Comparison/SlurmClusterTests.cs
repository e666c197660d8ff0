using System.Diagnostics;
using System.Text.Json.Nodes;
using Ddvi.Experiments;
using Ddvi.Experiments.Sweeps;

namespace Ddvi.Tests.Comparison;

/// <summary>
/// The single-node Slurm cluster of tests/slurm (start-cluster.sh; .ci/run starts it): where its slurm.conf is, and
/// why a test cannot use it. DDVI_REQUIRE_SLURM=1 (set by .ci/run) turns a missing cluster into a failure.
/// </summary>
internal static class TestCluster
{
    public const string Packages = "install Slurm and MUNGE (Debian: apt-get install slurm-wlm munge) and start the test cluster with tests/slurm/start-cluster.sh";

    public static string Folder => Environment.GetEnvironmentVariable("DDVI_SLURM_DIR") is { Length: > 0 } dir ? dir : "/tmp/ddvi-slurm";

    public static string Conf => Environment.GetEnvironmentVariable("SLURM_CONF") is { Length: > 0 } conf ? conf : Path.Combine(Folder, "slurm.conf");

    public static bool Required => Environment.GetEnvironmentVariable("DDVI_REQUIRE_SLURM") == "1";

    /// <summary>Null when sbatch is on PATH and the cluster's slurm.conf exists; otherwise what is missing.</summary>
    public static string? Missing()
    {
        try
        {
            new SlurmCommands().Require("sbatch");
        }
        catch (InvalidOperationException)
        {
            return $"sbatch is not on PATH: {Packages}";
        }
        if (!File.Exists(Conf)) return $"no test cluster: {Conf} does not exist; {Packages}";
        return Answers() ? null : $"the test cluster of {Conf} does not answer (stopped?): start it with tests/slurm/start-cluster.sh";
    }

    /// <summary>Whether the cluster's controller answers <c>sinfo</c> within a few seconds.</summary>
    static bool Answers()
    {
        try
        {
            var start = new System.Diagnostics.ProcessStartInfo("sinfo", "-h -o %T") { RedirectStandardOutput = true, RedirectStandardError = true };
            start.Environment["SLURM_CONF"] = Conf;
            using var process = System.Diagnostics.Process.Start(start)!;
            if (!process.WaitForExit(10_000))
            {
                process.Kill(entireProcessTree: true);
                return false;
            }
            return process.ExitCode == 0 && process.StandardOutput.ReadToEnd().Trim().Length > 0;
        }
        catch (System.ComponentModel.Win32Exception)
        {
            return false;
        }
    }

    /// <summary>What start-cluster.sh said (.ci/run keeps its output there), for a failure's message.</summary>
    public static string StartLog()
    {
        string log = Path.Combine(Path.GetTempPath(), "ddvi-slurm-start.log");
        return File.Exists(log) ? $"\n--- {log}:\n{File.ReadAllText(log)}" : "";
    }
}

/// <summary>A fact that needs the test cluster: skipped with the packages to install, unless DDVI_REQUIRE_SLURM=1 (then it runs and fails).</summary>
public sealed class SlurmFactAttribute : FactAttribute
{
    public SlurmFactAttribute()
    {
        if (!TestCluster.Required && TestCluster.Missing() is { } missing)
            Skip = missing + " (set DDVI_REQUIRE_SLURM=1 to make this a failure)";
    }
}

/// <summary>A sweep as a job array on a real (single-node) Slurm cluster, with one task killed and requeued midway.</summary>
public class SlurmClusterTests
{
    /// <summary>metrics.json without its timings (training_seconds, evaluation_seconds, each bound's seconds): what two equal runs share.</summary>
    internal static string MetricsWithoutTimes(string path)
    {
        var root = JsonNode.Parse(File.ReadAllText(path))!;
        Strip(root);
        return root.ToJsonString();

        static void Strip(JsonNode? node)
        {
            if (node is JsonObject obj)
            {
                foreach (var key in obj.Select(p => p.Key).Where(k => k == "seconds" || k.EndsWith("_seconds", StringComparison.Ordinal)).ToList()) obj.Remove(key);
                foreach (var (_, child) in obj) Strip(child);
            }
            else if (node is JsonArray array)
            {
                foreach (var child in array) Strip(child);
            }
        }
    }

    private static Dictionary<string, string?> SlurmEnvironment() => new()
    {
        ["SLURM_CONF"] = TestCluster.Conf,
        ["DDVI_SLURM_POLL_SECONDS"] = "1",
        ["OMP_WAIT_POLICY"] = "PASSIVE",
    };

    private static (int Code, string Output) Slurm(string command, params string[] args)
    {
        var start = new ProcessStartInfo(new SlurmCommands().Require(command)) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var arg in args) start.ArgumentList.Add(arg);
        start.Environment["SLURM_CONF"] = TestCluster.Conf;
        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        Assert.True(process.WaitForExit(TimeSpan.FromSeconds(60)), $"{command} did not answer in 60 s");
        return (process.ExitCode, output.Result + error.Result);
    }

    private static void WaitFor(Func<bool> condition, TimeSpan limit, string what)
    {
        var clock = Stopwatch.StartNew();
        while (!condition())
        {
            Assert.True(clock.Elapsed < limit, $"timed out after {limit.TotalSeconds:F0} s waiting for {what}");
            Thread.Sleep(100);
        }
    }

    [SlurmFact]
    public void AJobArraySweepWithOneTaskKilledAndRequeuedFinishesEveryRunWithTheMetricsOfTheLocalSweep()
    {
        if (TestCluster.Missing() is { } missing) Assert.Fail(missing + TestCluster.StartLog());
        var (code, sinfo) = Slurm("sinfo", "--noheader", "--format=%t");
        Assert.True(code == 0 && sinfo.Trim().Length > 0, $"the test cluster does not answer (sinfo: {sinfo.Trim()}){TestCluster.StartLog()}");

        using var folder = new TempFolder();
        // Four runs long enough (4 epochs of 2,000 images) to be killed after their first checkpoint.
        string sweep = RunCommandTests.TinySweepFile(folder, epochs: 4, train: 2000);

        // The same sweep on this machine, two runs at a time with one thread each (as each array task has).
        var local = DdviProcess.RunWith(new Dictionary<string, string?> { ["OMP_WAIT_POLICY"] = "PASSIVE" },
            "compare", "--sweep", sweep, "--out", folder["local"], "--jobs", "2", "--threads", "2");
        Assert.True(local.ExitCode == 0, local.Error);

        // On the cluster: a job array of four tasks, two at a time, followed with --wait.
        string cluster = folder["cluster"];
        var lines = new List<string>();
        using var compare = Process.Start(DdviProcess.StartInfo(SlurmEnvironment(),
            "compare", "--sweep", sweep, "--out", cluster, "--launcher", "slurm", "--jobs", "2", "--wait"))!;
        compare.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (lines) lines.Add(e.Data); };
        compare.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (lines) lines.Add("stderr: " + e.Data); };
        compare.BeginOutputReadLine();
        compare.BeginErrorReadLine();
        string Log() { lock (lines) return string.Join("\n", lines); }
        try
        {
            var manifest = SweepManifest.Load(SweepManifest.PathIn(WaitForManifest(cluster, Log)));
            string job = "";
            WaitFor(() =>
            {
                lock (lines) job = lines.Select(l => System.Text.RegularExpressions.Regex.Match(l, @"submitted job array (\d+)")).FirstOrDefault(m => m.Success)?.Groups[1].Value ?? "";
                return job.Length > 0;
            }, TimeSpan.FromSeconds(60), "the job id\n" + Log());

            // Task 0 midway: after its first checkpoint, before its metrics. scancel sends SIGTERM; ddvi stops at a step
            // with a checkpoint. Then the task is requeued, as after a preemption, and resumes from that checkpoint.
            var first = new RunDirectory(manifest.Entries[0].Folder);
            WaitFor(() => File.Exists(Path.Combine(first.Checkpoints("vae"), "epoch-0001.ckpt")), TimeSpan.FromSeconds(90), "task 0's first checkpoint\n" + Log());
            Assert.False(File.Exists(first.Metrics), "task 0 finished before it could be killed");
            var cancel = Slurm("scancel", $"{job}_0");
            Assert.True(cancel.Code == 0, cancel.Output);
            WaitFor(() => Slurm("squeue", "--noheader", "--array", "--jobs", $"{job}_0", "--states=RUNNING,COMPLETING", "--format=%i").Output.Trim().Length == 0,
                TimeSpan.FromSeconds(60), "task 0 to end after scancel");
            Assert.False(File.Exists(first.Metrics), "task 0 wrote its metrics although it was cancelled");
            var requeue = Slurm("scontrol", "requeue", $"{job}_0");
            Assert.True(requeue.Code == 0, requeue.Output);
            // Slurm holds a requeued job for two minutes (its begin time) before it may start again; the test does not wait.
            var now = Slurm("scontrol", "update", $"JobId={job}_0", "StartTime=now");
            Assert.True(now.Code == 0, now.Output);

            Assert.True(compare.WaitForExit(TimeSpan.FromMinutes(4)), "the array did not end in 4 minutes\n" + Log());
            compare.WaitForExit();
            Assert.True(compare.ExitCode == 0, Log());
            Assert.Contains("4 of 4 runs finished; results:", Log());
            Assert.Contains($"job {job}: 4 of 4 finished, 0 failed; 0 running, 0 pending", Log());

            // Task 0 ran twice and its second attempt resumed.
            string task0 = File.ReadAllText(Path.Combine(cluster, "slurm", $"{job}_0.out"));
            Assert.Contains("attempt 0", task0);
            Assert.Contains("attempt 1", task0);
            Assert.Contains("resuming vae", task0);
            Assert.Contains("resumed: vae-pinwheel-s0", task0);

            foreach (var entry in manifest.Entries)
            {
                string localMetrics = Path.Combine(folder["local"], "runs", entry.Name, "metrics.json");
                Assert.Equal(MetricsWithoutTimes(localMetrics), MetricsWithoutTimes(new RunDirectory(entry.Folder).Metrics));
            }
            var report = DdviProcess.Run("report", cluster);
            Assert.True(report.ExitCode == 0, report.Error);
        }
        finally
        {
            if (!compare.HasExited)
            {
                compare.Kill();
                if (Log() is var log && System.Text.RegularExpressions.Regex.Match(log, @"submitted job array (\d+)") is { Success: true } m)
                    Slurm("scancel", m.Groups[1].Value);
            }
        }
    }

    [SlurmFact]
    public void AnAncestryStudyRunsAsAJobArrayOverPcsComputedBeforeSubmissionWithTheResultsOfTheLocalStudy()
    {
        if (TestCluster.Missing() is { } missing) Assert.Fail(missing + TestCluster.StartLog());
        using var folder = new TempFolder();
        var (bed, panel) = Ancestry.AncestrySweepTests.Genotypes(folder);

        var local = DdviProcess.RunWith(new Dictionary<string, string?> { ["OMP_WAIT_POLICY"] = "PASSIVE" },
            Ancestry.AncestrySweepTests.Study(bed, panel, folder["local"], "pca,ddvi"));
        Assert.True(local.ExitCode == 0, local.Error);

        // One command: the PCs here, then a two-task array followed to its end, then the tables.
        string cluster = folder["cluster"];
        var run = DdviProcess.RunWith(SlurmEnvironment(),
            Ancestry.AncestrySweepTests.Study(bed, panel, cluster, "pca,ddvi", "--launcher", "slurm", "--wait"));
        string log = run.Output + "\n" + run.Error;
        Assert.True(run.ExitCode == 0, log + TestCluster.StartLog());
        Assert.Contains("2 of 2 runs finished; results:", log);
        var job = System.Text.RegularExpressions.Regex.Match(log, @"submitted job array (\d+): 2 tasks");
        Assert.True(job.Success, log);

        // Each task loaded the PCs that the submitting command had cached, and ran its one entry.
        foreach (var (index, name) in new[] { (0, "pca-seed0"), (1, "ddvi-seed0") })
        {
            string task = File.ReadAllText(Path.Combine(cluster, "slurm", $"{job.Groups[1].Value}_{index}.out"));
            Assert.Contains("principal components from the cache", task);
            Assert.Contains($"trained: {name}", task);
        }
        Assert.Equal(Ancestry.AncestrySweepTests.CsvWithoutSeconds(folder["local"]), Ancestry.AncestrySweepTests.CsvWithoutSeconds(cluster));
        var report = DdviProcess.Run("report", cluster);
        Assert.True(report.ExitCode == 0, report.Error);
    }

    private static string WaitForManifest(string cluster, Func<string> log)
    {
        WaitFor(() => File.Exists(SweepManifest.PathIn(cluster)), TimeSpan.FromSeconds(60), "the manifest\n" + log());
        return cluster;
    }
}
