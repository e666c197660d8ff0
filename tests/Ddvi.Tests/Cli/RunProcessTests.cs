using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text.Json;
using Ddvi.Cli.Commands;
using Ddvi.Experiments;

namespace Ddvi.Tests.Cli;

/// <summary>
/// The published command as users meet it: two real processes on one run folder, SIGTERM and SIGINT to a real
/// training process followed by --resume (compared with an uninterrupted run), options given with --resume.
/// </summary>
public partial class RunProcessTests
{
    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static partial int Kill(int pid, int signal);

    private const int SigInt = 2, SigTerm = 15;

    /// <summary>A `ddvi` process running in the background, its output collected.</summary>
    private sealed class Background : IDisposable
    {
        private readonly Process _process;
        private readonly Task<string> _output, _error;

        public Background(params string[] args)
        {
            var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
            start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "Ddvi.Cli.dll"));
            foreach (var arg in args) start.ArgumentList.Add(arg);
            _process = Process.Start(start)!;
            _output = _process.StandardOutput.ReadToEndAsync();
            _error = _process.StandardError.ReadToEndAsync();
        }

        public int Id => _process.Id;

        public (int ExitCode, string Output, string Error) Wait(TimeSpan limit)
        {
            Assert.True(_process.WaitForExit(limit), $"ddvi did not end within {limit}");
            return (_process.ExitCode, _output.Result, _error.Result);
        }

        public void Dispose()
        {
            if (!_process.HasExited) _process.Kill(entireProcessTree: true);
            _process.Dispose();
        }
    }

    private static void WaitFor(Func<bool> condition, string what, int seconds = 180)
    {
        var clock = Stopwatch.StartNew();
        while (!condition())
        {
            Assert.True(clock.Elapsed.TotalSeconds < seconds, $"timed out waiting for {what}");
            Thread.Sleep(50);
        }
    }

    private static string LogOf(string run) => File.Exists(Path.Combine(run, "train.log")) ? ReadShared(Path.Combine(run, "train.log")) : "";

    private static string ReadShared(string path)
    {
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
        return new StreamReader(stream).ReadToEnd();
    }

    private static string[] Train(string run, params string[] more) =>
        ["train", "--model", "vae", "--epochs", "3", "--seed", "5", "--threads", "1", "--checkpoint-every", "5", "--out", run, .. more];

    /// <summary>The loss columns of losses.csv (the seconds column differs between runs by nature).</summary>
    private static string[] Losses(string run) =>
        [.. File.ReadAllLines(Path.Combine(run, "checkpoints", "vae", "losses.csv")).Select(line => { var f = line.Split(','); return string.Join(',', f[..1].Concat(f[2..])); })];

    [Fact]
    public void ASecondProcessOnARunFolderIsRefusedWithTheHoldersProcessIdAndWritesNothing()
    {
        using var folder = new TempFolder();
        string run = folder["run"];
        using var first = new Background("train", "--model", "vae", "--epochs", "50", "--seed", "1", "--threads", "1", "--out", run);
        WaitFor(() => LogOf(run).Contains("vae epoch 1/50", StringComparison.Ordinal), "the first run's first epoch");
        string config = File.ReadAllText(Path.Combine(run, "config.json"));
        string log = LogOf(run);

        var (code, _, error) = DdviProcess.Run("train", "--model", "vae", "--epochs", "1", "--seed", "2", "--out", run);
        Assert.Equal(1, code);
        Assert.Contains("in use by another Ddvi process", error);
        Assert.Contains($"process {first.Id}", error);
        (code, _, error) = DdviProcess.Run("train", "--resume", "--out", run);
        Assert.Equal(1, code);
        Assert.Contains($"process {first.Id}", error);
        (code, _, error) = DdviProcess.Run("evaluate", run);
        Assert.Equal(1, code);
        Assert.Contains($"process {first.Id}", error);
        Assert.Equal(config, File.ReadAllText(Path.Combine(run, "config.json")));
        Assert.StartsWith(log, LogOf(run)); // only the first run appended

        // A killed holder leaves no stale lock behind.
        Assert.Equal(0, Kill(first.Id, 9));
        first.Wait(TimeSpan.FromSeconds(30));
        using var taken = RunLock.Acquire(run);
    }

    [Theory]
    [InlineData(SigTerm, 143)]
    [InlineData(SigInt, 130)]
    public void ASignalStopsAtAStepWithACheckpointAndTheResumedRunEqualsAnUninterruptedOne(int signal, int exitCode)
    {
        using var folder = new TempFolder();
        string straight = folder["straight"], stopped = folder["stopped"];
        var (code, _, error) = DdviProcess.Run(Train(straight));
        Assert.True(code == 0, error);

        using (var running = new Background(Train(stopped)))
        {
            WaitFor(() => LogOf(stopped).Contains("vae epoch 1/3", StringComparison.Ordinal), "the first epoch");
            Assert.Equal(0, Kill(running.Id, signal));
            var (stopCode, _, stopError) = running.Wait(TimeSpan.FromSeconds(60));
            Assert.True(stopCode == exitCode, $"exit code {stopCode}: {stopError}");
            Assert.Contains($"resume with: ddvi train --resume --out {stopped}", stopError);
        }
        string log = LogOf(stopped);
        Assert.Contains("stopped on request", log);
        Assert.NotNull(Ddvi.Training.Checkpoint.Latest(Path.Combine(stopped, "checkpoints", "vae")));
        Assert.False(File.Exists(Path.Combine(stopped, "metrics.json")));

        (code, _, error) = DdviProcess.Run("train", "--resume", "--out", stopped);
        Assert.True(code == 0, error);
        Assert.Equal(Losses(straight), Losses(stopped));
        Assert.Equal(File.ReadAllText(Path.Combine(straight, "latents-test.csv")), File.ReadAllText(Path.Combine(stopped, "latents-test.csv")));
    }

    [Fact]
    public void ResumeAppliesExecutionOptionsAndNamesEveryConflictingOne()
    {
        using var folder = new TempFolder();
        string run = folder["run"];
        var (code, _, error) = DdviProcess.Run("train", "--model", "vae", "--epochs", "1", "--seed", "4", "--threads", "1", "--out", run);
        Assert.True(code == 0, error);

        (code, _, error) = DdviProcess.Run("train", "--resume", "--out", run, "--seed", "6", "--model", "aae", "--device", "cpu");
        Assert.Equal(2, code);
        Assert.Contains("--seed: the run has 4, the command line gives 6", error);
        Assert.Contains("--model: the run has vae, the command line gives aae", error);

        (code, var output, error) = DdviProcess.Run("train", "--resume", "--out", run, "--device", "cpu", "--threads", "2", "--seed", "4");
        Assert.True(code == 0, error);
        Assert.Contains("finished earlier", output);
        var config = JsonDocument.Parse(File.ReadAllText(Path.Combine(run, "config.json"))).RootElement;
        Assert.Equal("Cpu", config.GetProperty("device").GetString());
        Assert.Equal(2, config.GetProperty("threads").GetInt32());
        Assert.Contains("config: device \"Auto\" -> \"Cpu\" (--device given with --resume)", LogOf(run));
    }

    [Fact]
    public void ABfloat16RunTrainsAndKeepsItsPrecisionOnResume()
    {
        using var folder = new TempFolder();
        string run = folder["run"];
        var (code, _, error) = DdviProcess.Run("train", "--model", "vae", "--epochs", "1", "--threads", "1", "--precision", "bf16", "--out", run);
        Assert.True(code == 0, error);
        var config = JsonDocument.Parse(File.ReadAllText(Path.Combine(run, "config.json"))).RootElement;
        Assert.Equal("Bfloat16", config.GetProperty("precision").GetString());
        var metrics = JsonDocument.Parse(File.ReadAllText(Path.Combine(run, "metrics.json"))).RootElement;
        Assert.InRange(metrics.GetProperty("knn_accuracy").GetProperty("value").GetDouble(), 0, 1);

        (code, _, error) = DdviProcess.Run("train", "--resume", "--out", run, "--precision", "float32");
        Assert.Equal(2, code);
        Assert.Contains("--precision: the run has Bfloat16, the command line gives Float32", error);
        (code, _, error) = DdviProcess.Run("train", "--out", folder["other"], "--precision", "half");
        Assert.Equal(2, code);
        Assert.Contains("--precision: 'half' is not a precision", error);
    }

    [Fact]
    public void EveryTrainOptionIsCheckedOnResume()
    {
        var (all, keyed) = TrainCommand.OptionNames();
        var unkeyed = all.Except(keyed.Select(k => k.Option)).Where(name => !name.StartsWith("--help", StringComparison.Ordinal) && name is not "-h" and not "-?" and not "/?" and not "/h").Order();
        // --config is not a key itself: the keys its file sets count as options given (ExperimentFileTests).
        Assert.Equal(["--config", "--fork-from", "--out", "--resume"], unkeyed);
    }

    [Fact]
    public void BadOutPathsAndNonNumbersSayWhatIsExpected()
    {
        using var folder = new TempFolder();
        File.WriteAllText(folder["file"], "");
        var (code, _, error) = DdviProcess.Run("train", "--out", folder["file"]);
        Assert.Equal(2, code);
        Assert.Contains("is a file: --out must name a folder", error);
        (code, _, error) = DdviProcess.Run("train", "--out", Path.Combine(folder["file"], "run"));
        Assert.Equal(2, code);
        Assert.Contains("cannot create this folder", error);
        (code, _, error) = DdviProcess.Run("train", "--lr", "abc");
        Assert.Equal(2, code);
        Assert.Contains("--lr expects a number", error);
        Assert.DoesNotContain("System.", error);
        (code, _, error) = DdviProcess.Run("train", "--kl-weight", "Infinity");
        Assert.Equal(2, code);
        Assert.Contains("--kl-weight must be a finite number", error);
        (code, _, error) = DdviProcess.Run("train", "--seed", "-1");
        Assert.Equal(2, code);
        Assert.Contains("--seed must be an integer ≥ 0", error);
    }
}
