using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text.Json;
using Ddvi.Data;

namespace Ddvi.Tests.Semi;

/// <summary>The semi-supervised models run from the real CLI, killed mid-run and resumed.</summary>
public partial class SemiCliTests
{
    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static partial int Kill(int pid, int signal);

    /// <summary>A tiny run of <paramref name="model"/> on the synthetic set with 50 labels.</summary>
    internal static string TinyConfig(string model, int epochs = 3) => $"""
        dataset:
          name: synthetic
          synthetic_train_count: 400
          synthetic_test_count: 200
        model: {model}
        prior: pinwheel
        training:
          epochs: {epochs}
          batch_size: 100
          labels: 50
          seed: 2
          checkpoint_every: 1
        device:
          threads: 1
        semi:
          steps: 8
          sleep_steps: 2
          prior_diffusion_iterations: 60
          prior_diffusion_steps_per_epoch: 20
          warmup_epochs: 2
          hidden: 32
        evaluation:
          prior_samples: 300
          mmd_samples: 100
          knn_neighbours: 5
        """;

    private static string LogOf(string run)
    {
        string path = Path.Combine(run, "train.log");
        if (!File.Exists(path)) return "";
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
        return new StreamReader(stream).ReadToEnd();
    }

    [Theory]
    [InlineData("ddvi-semi", "warmup epoch 1/2")]
    [InlineData("vae-semi", "vae-semi epoch 1/3")]
    [InlineData("iaf-vae-semi", "iaf-vae-semi epoch 1/3")]
    [InlineData("aae-semi", "aae-semi epoch 1/3")]
    public void ATinyRunKilledMidwayResumesAndReportsTheSemiSupervisedMetrics(string model, string killAfter)
    {
        using var folder = new TempFolder();
        string config = folder["run.yaml"], run = folder["run"];
        File.WriteAllText(config, TinyConfig(model));
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var arg in new[] { Path.Combine(AppContext.BaseDirectory, "Ddvi.Cli.dll"), "train", "--config", config, "--out", run })
            start.ArgumentList.Add(arg);
        using (var process = Process.Start(start)!)
        {
            _ = process.StandardOutput.ReadToEndAsync();
            _ = process.StandardError.ReadToEndAsync();
            var clock = Stopwatch.StartNew();
            while (!LogOf(run).Contains(killAfter, StringComparison.Ordinal) && !process.HasExited)
            {
                Assert.True(clock.Elapsed.TotalSeconds < 180, $"timed out waiting for '{killAfter}'");
                Thread.Sleep(20);
            }
            Assert.False(process.HasExited, "the run ended before it could be killed");
            Assert.Equal(0, Kill(process.Id, 9));
            Assert.True(process.WaitForExit(TimeSpan.FromSeconds(30)));
        }
        Assert.False(File.Exists(Path.Combine(run, "metrics.json")));

        var (code, _, error) = DdviProcess.Run("train", "--resume", "--out", run);
        Assert.True(code == 0, error);
        var metrics = JsonDocument.Parse(File.ReadAllText(Path.Combine(run, "metrics.json"))).RootElement;
        var semi = metrics.GetProperty("semi_supervised");
        Assert.Equal(50, semi.GetProperty("labels").GetInt32());
        // The release's aae_semi has no classifier q(c|x): no classification accuracy for it.
        if (model == "aae-semi") Assert.False(semi.TryGetProperty("classification_accuracy", out var none) && none.ValueKind != JsonValueKind.Null);
        else Assert.InRange(semi.GetProperty("classification_accuracy").GetProperty("value").GetDouble(), 0, 1);
        Assert.InRange(semi.GetProperty("knn_labelled_accuracy").GetProperty("value").GetDouble(), 0, 1);
        Assert.True(double.IsFinite(semi.GetProperty("class_latent_nll").GetProperty("value").GetDouble()));

        // Every model with a likelihood reports true bounds on log p(x) of p(z) p(x|z) (true ELBO ≤ IWAE, per image); ddvi-semi's
        // come from its routed chain's change of variables, with the determinant-sign check.
        if (model == "aae-semi")
        {
            Assert.False(metrics.TryGetProperty("likelihood_bounds", out var noBounds) && noBounds.ValueKind != JsonValueKind.Null);
        }
        else
        {
            var bounds = metrics.GetProperty("likelihood_bounds");
            double trueElbo = bounds.GetProperty("true_elbo").GetProperty("nats_per_image").GetDouble();
            Assert.True(double.IsFinite(trueElbo));
            Assert.True(trueElbo <= bounds.GetProperty("log_likelihood").GetProperty("nats_per_image").GetDouble());
            if (model == "ddvi-semi")
            {
                Assert.Contains("predicted class", bounds.GetProperty("posterior_density").GetString());
                var injectivity = bounds.GetProperty("injectivity");
                Assert.Equal(bounds.GetProperty("examples").GetInt64() * bounds.GetProperty("samples").GetInt64(),
                    injectivity.GetProperty("draws").GetInt64());
            }
        }

        // The labelled-index file: exactly 50 examples, 5 of each class, and their labels are the data's.
        var labelled = LabelBudget.Read(Path.Combine(run, LabelBudget.FileName));
        Assert.Equal(50, labelled.Count);
        Assert.All(labelled.GroupBy(l => l.Label), g => Assert.Equal(5, g.Count()));
        Assert.Contains("resuming", LogOf(run));
        Assert.Contains("labels: 50 of 400 training examples labelled (per class 5 5 5 5 5 5 5 5 5 5), listed in labelled-indices.csv; the other 350 unlabelled", LogOf(run));
    }
}
