using System.Text.Json;
using Ddvi.Tests.Data;
using SkiaSharp;

namespace Ddvi.Tests.Cli;

/// <summary>`ddvi train` of every model on real CIFAR-10 images (a slice of the shared subset), as a user runs it.</summary>
public class CifarCliTests
{
    [SharedCifarTheory]
    [InlineData("vae")]
    [InlineData("iaf-vae")]
    [InlineData("h-iaf-vae")]
    [InlineData("aae")]
    [InlineData("ddvi")]
    public void EveryModelTrainsAndEvaluatesOnCifarImages(string model)
    {
        using var folder = new TempFolder();
        string data = CifarTestFiles.SharedSubsetSlice(folder["cifar"], train: 260, test: 100);
        string run = folder["run"];
        var (code, output, error) = DdviProcess.Run("train", "--dataset", data, "--model", model, "--prior", "pinwheel", "--epochs", "1",
            "--prior-diffusion-iterations", "20", "--warmup-epochs", "1", "--out", run, "--threads", "1");
        Assert.True(code == 0, error + output);
        Assert.Contains("conv networks", output);
        Assert.Contains("Gaussian likelihood", output);
        Assert.Contains("1 of the 5 CIFAR-10 training batches", output);

        var metrics = JsonDocument.Parse(File.ReadAllText(Path.Combine(run, "metrics.json"))).RootElement;
        Assert.InRange(metrics.GetProperty("knn_accuracy").GetProperty("value").GetDouble(), 0, 1);
        Assert.True(double.IsFinite(metrics.GetProperty("latent_nll").GetProperty("value").GetDouble()));
        Assert.True(metrics.GetProperty("mmd").GetProperty("value").GetDouble() > 0);
        var elbo = metrics.GetProperty("elbo");
        if (model == "aae")
        {
            Assert.False(elbo.GetProperty("available").GetBoolean());
        }
        else
        {
            // Nats per image over 3,072 Gaussian pixels with σ = 1/√2: at most −(3072/2)·log π ≈ −1758 plus the latent terms.
            Assert.True(elbo.GetProperty("nats_per_image").GetDouble() < -1000);
        }

        // The sample grid is in colour: its pixels are not all grey.
        using var samples = SKBitmap.Decode(Path.Combine(run, "plots", "samples.png"));
        Assert.Equal(10 * (32 * 2 + 2) + 2, samples.Width);
        Assert.Contains(samples.Pixels, pixel => pixel.Red != pixel.Green || pixel.Green != pixel.Blue);
        Assert.True(File.Exists(Path.Combine(run, "plots", "prior-vs-latents.png")));
    }

    [SharedCifarFact]
    public void ABfloat16RunTrainsItsConvNetworksInMixedPrecision()
    {
        using var folder = new TempFolder();
        string data = CifarTestFiles.SharedSubsetSlice(folder["cifar"], train: 260, test: 100);
        string run = folder["run"];
        var (code, output, error) = DdviProcess.Run("train", "--dataset", data, "--model", "vae", "--epochs", "2", "--out", run,
            "--threads", "1", "--precision", "bf16");
        Assert.True(code == 0, error + output);
        Assert.Contains("conv networks", output);
        Assert.Contains("bfloat16 products (mixed precision)", output);
        var metrics = JsonDocument.Parse(File.ReadAllText(Path.Combine(run, "metrics.json"))).RootElement;
        Assert.True(metrics.GetProperty("elbo").GetProperty("nats_per_image").GetDouble() < -1000);
        (code, output, error) = DdviProcess.Run("show", run);
        Assert.True(code == 0, error + output);
        Assert.Contains("networks in bfloat16", output);
    }

    [SharedCifarFact]
    public void CompareAndReportRunOverCifarRuns()
    {
        using var folder = new TempFolder();
        string data = CifarTestFiles.SharedSubsetSlice(folder["cifar"], train: 260, test: 100);
        string comparison = folder["comparison"];
        var (code, output, error) = DdviProcess.Run("compare", "--dataset", data, "--models", "vae,aae", "--priors", "pinwheel",
            "--seeds", "0", "--epochs", "1", "--out", comparison, "--threads", "1");
        Assert.True(code == 0, error + output);
        string table = File.ReadAllText(Path.Combine(comparison, "results.md"));
        Assert.Contains("| vae |", table);
        Assert.Contains("| aae |", table);
        var (width, height) = Ddvi.Tests.Comparison.ComparisonFixtures.PngSize(Path.Combine(comparison, "panel.png"));
        Assert.True(width > height, $"panel {width}×{height}: one row (the prior) of three columns (prior, vae, aae)");

        // report rebuilds the same table from the run folders.
        string rebuilt = folder["rebuilt"];
        (code, output, error) = DdviProcess.Run("report", Path.Combine(comparison, "runs", "vae-pinwheel-s0"), Path.Combine(comparison, "runs", "aae-pinwheel-s0"), "--out", rebuilt);
        Assert.True(code == 0, error + output);
        Assert.Equal(table, File.ReadAllText(Path.Combine(rebuilt, "results.md")));
    }
}
