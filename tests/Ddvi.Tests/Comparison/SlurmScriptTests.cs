using Ddvi.Experiments.Sweeps;

namespace Ddvi.Tests.Comparison;

/// <summary>The batch script of `ddvi compare --launcher slurm`, its options and errors; no cluster needed.</summary>
public class SlurmScriptTests
{
    [Fact]
    public void TheScriptRequestsARequeueableThrottledArrayWithTheGivenResourcesAndRunsOneEntryPerTask()
    {
        var options = new SlurmOptions
        {
            Throttle = 3,
            Partition = "gpu",
            TimeLimit = "4:00:00",
            CpusPerTask = 8,
            Memory = "16G",
            GpusPerTask = 1,
            ExtraDirectives = ["--qos=low", "#SBATCH --account=proj"],
        }.Validate();
        string script = SlurmScript.Build("/shared/sweep/manifest.json", "/shared/sweep", [0, 1, 2, 3, 4], options, ["/opt/ddvi/ddvi"]);
        string[] lines = script.Split('\n');

        Assert.Equal("#!/bin/bash", lines[0]);
        string[] directives =
        [
            "#SBATCH --job-name=ddvi-sweep",
            "#SBATCH --array=0-4%3",
            "#SBATCH --output=/shared/sweep/slurm/%A_%a.out",
            "#SBATCH --open-mode=append",
            "#SBATCH --requeue",
            "#SBATCH --partition=gpu",
            "#SBATCH --time=4:00:00",
            "#SBATCH --ntasks=1",
            "#SBATCH --cpus-per-task=8",
            "#SBATCH --mem=16G",
            "#SBATCH --gpus-per-task=1",
            "#SBATCH --qos=low",
            "#SBATCH --account=proj",
        ];
        Assert.Equal(directives, lines.Where(l => l.StartsWith("#SBATCH", StringComparison.Ordinal)));
        // sbatch reads directives only before the first command.
        int firstCommand = Array.FindIndex(lines, l => l.Length > 0 && !l.StartsWith('#'));
        Assert.True(Array.FindLastIndex(lines, l => l.StartsWith("#SBATCH", StringComparison.Ordinal)) < firstCommand);
        Assert.Contains("exec /opt/ddvi/ddvi run --manifest /shared/sweep/manifest.json --index \"$SLURM_ARRAY_TASK_ID\"", lines);
    }

    [Fact]
    public void DefaultsLeaveSlurmsOwnAndWordsWithSpacesAreQuoted()
    {
        string script = SlurmScript.Build("/my sweep/manifest.json", "/my sweep", [0, 1], new SlurmOptions { Throttle = 2 }, ["/usr/bin/dotnet", "/opt/it's/Ddvi.Cli.dll"]);
        Assert.DoesNotContain("--partition", script);
        Assert.DoesNotContain("--time", script);
        Assert.DoesNotContain("--mem", script);
        Assert.DoesNotContain("--gpus", script);
        Assert.DoesNotContain("--cpus-per-task", script);
        Assert.Contains("#SBATCH --array=0-1%2\n", script);
        Assert.Contains("exec /usr/bin/dotnet '/opt/it'\\''s/Ddvi.Cli.dll' run --manifest '/my sweep/manifest.json' --index \"$SLURM_ARRAY_TASK_ID\"\n", script);
    }

    [Theory]
    [InlineData(new[] { 0, 1, 2, 3 }, "0-3")]
    [InlineData(new[] { 3, 0, 1, 5, 6, 7, 9 }, "0-1,3,5-7,9")]
    [InlineData(new[] { 4 }, "4")]
    public void ArrayIndicesAreRangesOfTheEntries(int[] indices, string expected) =>
        Assert.Equal(expected, SlurmScript.ArrayIndices(indices));

    [Theory]
    [InlineData("--time", "four hours", "HH:MM:SS")]
    [InlineData("--mem", "lots", "e.g. --mem 8G")]
    [InlineData("--partition", "a b", "partition name")]
    [InlineData("--cpus-per-task", "0", "≥ 1")]
    [InlineData("--sbatch", "qos=low", "one sbatch option")]
    public void BadSlurmOptionsExitWithTwoNamingTheOption(string option, string value, string expected)
    {
        using var folder = new TempFolder();
        var (code, _, error) = DdviProcess.Run("compare", "--models", "vae", "--priors", "pinwheel", "--seeds", "0", "--out", folder.Path,
            "--launcher", "slurm", "--dry-run", option, value);
        Assert.Equal(2, code);
        Assert.Contains(option, error);
        Assert.Contains(expected, error);
        Assert.False(File.Exists(SweepManifest.PathIn(folder.Path)));
    }

    [Fact]
    public void SlurmOptionsWithoutTheSlurmLauncherAreAnError()
    {
        using var folder = new TempFolder();
        var (code, _, error) = DdviProcess.Run("compare", "--models", "vae", "--out", folder.Path, "--partition", "gpu");
        Assert.Equal(2, code);
        Assert.Contains("--partition applies to --launcher slurm only", error);
    }

    [Fact]
    public void DryRunWritesTheScriptAndManifestAndSubmitsNothing()
    {
        using var folder = new TempFolder();
        string sweep = folder["sweep"];
        var (code, output, error) = DdviProcess.RunWith(new Dictionary<string, string?> { ["PATH"] = folder.Path },
            "compare", "--sweep", RunCommandTests.TinySweepFile(folder), "--out", sweep, "--launcher", "slurm", "--dry-run",
            "--jobs", "2", "--cpus-per-task", "2", "--time", "10", "--sbatch=--qos=low");
        Assert.True(code == 0, error);
        string script = Path.Combine(sweep, SlurmScript.FileName);
        Assert.Contains($"dry run: nothing submitted; submit with: sbatch {script}", output);
        string text = File.ReadAllText(script);
        Assert.Contains("#SBATCH --array=0-3%2\n", text);
        Assert.Contains("#SBATCH --cpus-per-task=2\n", text);
        Assert.Contains("#SBATCH --time=10\n", text);
        Assert.Contains("#SBATCH --qos=low\n", text);
        Assert.Contains($"Ddvi.Cli.dll run --manifest {SweepManifest.PathIn(sweep)} --index \"$SLURM_ARRAY_TASK_ID\"", text);
        // Each task's run uses the task's CPUs as its threads.
        var manifest = SweepManifest.Load(SweepManifest.PathIn(sweep));
        Assert.All(manifest.Entries, e => Assert.Equal(2, e.TrainConfig("manifest").Threads));
        Assert.False(Directory.Exists(Path.Combine(sweep, "runs")));
    }

    [Fact]
    public void WithoutSbatchOnPathTheErrorNamesTheMissingCommandAndNothingIsWritten()
    {
        using var folder = new TempFolder();
        string sweep = folder["sweep"];
        var (code, _, error) = DdviProcess.RunWith(new Dictionary<string, string?> { ["PATH"] = folder.Path },
            "compare", "--sweep", RunCommandTests.TinySweepFile(folder), "--out", sweep, "--launcher", "slurm", "--wait");
        Assert.Equal(1, code);
        Assert.Contains("error: sbatch not found on PATH: --launcher slurm needs the Slurm client commands", error);
        Assert.Contains("--dry-run", error);
        Assert.False(Directory.Exists(sweep));
    }
}

/// <summary>The Slurm client commands read through stand-ins on PATH: what ddvi makes of their output.</summary>
public class SlurmCommandsTests
{
    private static string Fake(TempFolder folder, string command, string script)
    {
        string path = folder[command];
        File.WriteAllText(path, "#!/bin/sh\n" + script + "\n");
        if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        return folder.Path;
    }

    [Fact]
    public void SqueueStatesAreCountedAndAJobThatLeftTheQueueHasNoTasks()
    {
        using var folder = new TempFolder();
        Fake(folder, "squeue", "printf '12_0 RUNNING\\n12_1 PENDING\\n12_2 REQUEUED\\n12_3 COMPLETING\\n12_4 SUSPENDED\\n'");
        Assert.Equal(new QueueState(2, 2, 1), new SlurmCommands(folder.Path).Queue("12"));

        Fake(folder, "squeue", "echo 'slurm_load_jobs error: Invalid job id specified' >&2; exit 1");
        Assert.Equal(0, new SlurmCommands(folder.Path).Queue("12").InQueue);
    }

    [Fact]
    public void SbatchsJobIdIsReadAndItsErrorIsPassedOn()
    {
        using var folder = new TempFolder();
        Fake(folder, "sbatch", "echo '812;cluster'");
        Assert.Equal("812", new SlurmCommands(folder.Path).Submit("/x/sweep.sbatch"));

        Fake(folder, "sbatch", "echo 'sbatch: error: invalid partition specified: gpu' >&2; exit 1");
        var error = Assert.Throws<InvalidOperationException>(() => new SlurmCommands(folder.Path).Submit("/x/sweep.sbatch"));
        Assert.Contains("sbatch /x/sweep.sbatch failed (exit code 1): sbatch: error: invalid partition specified: gpu", error.Message);
    }

    [Fact]
    public void SacctSaysHowTasksEndedOrNothingWhereAccountingIsOff()
    {
        using var folder = new TempFolder();
        Assert.Null(new SlurmCommands(folder.Path).Accounting("12"));
        Fake(folder, "sacct", "echo 'Slurm accounting storage is disabled' >&2; exit 1");
        Assert.Null(new SlurmCommands(folder.Path).Accounting("12"));
        Fake(folder, "sacct", "printf '12_0|COMPLETED\\n12_1|CANCELLED by 0\\n12_2|TIMEOUT\\n12_[3-4]|PENDING\\n'");
        var states = new SlurmCommands(folder.Path).Accounting("12")!;
        Assert.Equal(new Dictionary<int, string> { [0] = "COMPLETED", [1] = "CANCELLED", [2] = "TIMEOUT" }, states);
    }

    [Fact]
    public void WaitFollowsTheArrayUntilItLeavesTheQueueAndRidesOutASqueueHiccup()
    {
        using var folder = new TempFolder();
        string count = folder["count"];
        Fake(folder, "squeue", $$"""
            n=$(cat {{count}} 2>/dev/null || echo 0); echo $((n+1)) > {{count}}
            case $n in
              0) echo '5_0 RUNNING'; echo '5_1 PENDING' ;;
              1) echo 'squeue: error: Socket timed out on send/recv operation' >&2; exit 1 ;;
              2) echo '5_1 RUNNING' ;;
              *) echo 'slurm_load_jobs error: Invalid job id specified' >&2; exit 1 ;;
            esac
            """);
        var entries = new[] { 0, 1 }.Select(i => new ManifestEntry(i, SweepManifest.TrainKind, $"run{i}", folder[$"run{i}"], [])).ToList();
        Directory.CreateDirectory(entries[0].Folder);
        File.WriteAllText(Path.Combine(entries[0].Folder, "metrics.json"), "{}");
        var lines = new List<string>();
        SlurmWait.Until(new SlurmCommands(folder.Path), "5", entries, TimeSpan.FromMilliseconds(10), lines.Add);
        Assert.Equal(4, lines.Count);
        Assert.Equal("job 5: 1 of 2 finished, 0 failed; 1 running, 1 pending", lines[0]);
        Assert.StartsWith("squeue did not answer (squeue --jobs 5 failed (exit code 1): squeue: error: Socket timed out", lines[1]);
        Assert.Equal("job 5: 1 of 2 finished, 0 failed; 1 running, 0 pending", lines[2]);
        Assert.Equal("job 5: 1 of 2 finished, 0 failed; 0 running, 0 pending", lines[3]);
    }
}
