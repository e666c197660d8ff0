using System.Text.Json;

namespace Ddvi.Tests.Cli;

/// <summary>The real `ddvi` program, run as a separate process, as a user would.</summary>
public class CliTests
{
    private static (int ExitCode, string Output, string Error) Ddvi(params string[] args) => DdviProcess.Run(args);

    [Fact]
    public void HelpListsCommandsAndValidValues()
    {
        var (code, output, _) = Ddvi("--help");
        Assert.Equal(0, code);
        foreach (var command in new[] { "train", "evaluate", "datasets" }) Assert.Contains(command, output);

        (code, output, _) = Ddvi("train", "--help");
        Assert.Equal(0, code);
        foreach (var value in new[] { "ddvi", "vae", "iaf-vae", "h-iaf-vae", "aae", "pinwheel", "swiss-roll", "square", "gaussian-mixture", "fashion-mnist", "--resume", "--device", "--prior-diffusion-lr", "--warmup-lr" })
            Assert.Contains(value, output);
    }

    [Theory]
    [InlineData("--model", "gan", "vae")]
    [InlineData("--prior", "banana", "pinwheel")]
    [InlineData("--dataset", "imagenet", "fashion-mnist")]
    [InlineData("--device", "tpu", "cuda")]
    [InlineData("--prior-density", "fancy", "kde")]
    public void InvalidValuesExitWithTwoAndNameTheValidOnes(string option, string value, string valid)
    {
        var (code, _, error) = Ddvi("train", option, value);
        Assert.Equal(2, code);
        Assert.Contains(value, error);
        Assert.Contains(valid, error);
    }

    [Fact]
    public void BadNumbersAndMissingRunsGiveClearErrors()
    {
        var (code, _, error) = Ddvi("train", "--epochs", "0");
        Assert.Equal(2, code);
        Assert.Contains("--epochs", error);

        (code, _, error) = Ddvi("train", "--warmup-lr", "0");
        Assert.Equal(2, code);
        Assert.Contains("--warmup-lr", error);

        (code, _, error) = Ddvi("train", "--prior", "swiss-roll", "--prior-density", "exact");
        Assert.Equal(2, code);
        Assert.Contains("--prior-density exact", error);
        Assert.Contains("swiss-roll", error);

        (code, _, error) = Ddvi("train", "--resume");
        Assert.Equal(2, code);
        Assert.Contains("--out", error);

        using var empty = new TempFolder();
        (code, _, error) = Ddvi("evaluate", empty.Path);
        Assert.Equal(1, code);
        Assert.Contains("config.json", error);

        (code, _, error) = Ddvi("evaluate", empty.Path, "--iwae-samples", "0");
        Assert.Equal(2, code);
        Assert.Contains("--iwae-samples", error);

        (code, _, error) = Ddvi("evaluate", empty.Path, "--iwae-examples", "-3");
        Assert.Equal(2, code);
        Assert.Contains("--iwae-examples", error);
    }

    [Fact]
    public void DatasetsCommandListsEveryDataset()
    {
        using var folder = new TempFolder();
        var (code, output, _) = Ddvi("datasets", "--data-dir", folder.Path);
        Assert.Equal(0, code);
        foreach (var name in new[] { "synthetic", "mnist", "fashion-mnist" }) Assert.Contains(name, output);
    }

    [Fact]
    public void TrainEvaluateAndResumeEndToEndOnTheSyntheticDataset()
    {
        using var folder = new TempFolder();
        string run = folder["run"];
        var (code, output, error) = Ddvi("train", "--model", "vae", "--epochs", "1", "--seed", "4", "--out", run, "--threads", "2");
        Assert.True(code == 0, error);
        Assert.Contains("vae epoch 1/1", output);
        Assert.Contains("knn_accuracy=", output);
        var metrics = JsonDocument.Parse(File.ReadAllText(Path.Combine(run, "metrics.json"))).RootElement;
        Assert.InRange(metrics.GetProperty("knn_accuracy").GetProperty("value").GetDouble(), 0, 1);
        Assert.True(File.Exists(Path.Combine(run, "plots", "prior-vs-latents.png")));

        // The true bounds sit beside the release-formula ELBO: true ELBO ≤ IWAE (Jensen, per image, so also on average).
        var bounds = metrics.GetProperty("likelihood_bounds");
        int defaultSamples = new Ddvi.Experiments.EvaluationSettings().IwaeSamples;
        Assert.Equal(defaultSamples, bounds.GetProperty("samples").GetInt32());
        Assert.True(bounds.GetProperty("true_elbo").GetProperty("nats_per_image").GetDouble()
                    <= bounds.GetProperty("log_likelihood").GetProperty("nats_per_image").GetDouble());
        Assert.Contains("true_elbo=", output);

        (code, output, error) = Ddvi("evaluate", run, "--iwae-samples", "10", "--iwae-examples", "20");
        Assert.True(code == 0, error);
        var again = JsonDocument.Parse(File.ReadAllText(Path.Combine(run, "metrics.json"))).RootElement;
        Assert.Equal(metrics.GetProperty("latent_nll").GetProperty("value").GetDouble(), again.GetProperty("latent_nll").GetProperty("value").GetDouble());
        var rebounded = again.GetProperty("likelihood_bounds");
        Assert.Equal(10, rebounded.GetProperty("samples").GetInt32());
        Assert.Equal(20, rebounded.GetProperty("examples").GetInt32());
        Assert.Equal([1, 10], rebounded.GetProperty("iwae").EnumerateArray().Select(b => b.GetProperty("k").GetInt32()));
        // The options apply to this evaluation only; config.json keeps the run's settings.
        Assert.Contains($"\"iwae_samples\": {defaultSamples},", File.ReadAllText(Path.Combine(run, "config.json")));

        (code, output, error) = Ddvi("train", "--resume", "--out", run);
        Assert.True(code == 0, error);
        Assert.Contains("finished earlier", output);

        (code, _, error) = Ddvi("train", "--model", "vae", "--epochs", "1", "--out", run);
        Assert.Equal(1, code);
        Assert.Contains("--resume", error);
    }
}
