using System.Globalization;
using System.Text;
using System.Text.Json;
using Ddvi.Experiments;
using Ddvi.Experiments.Comparison;

namespace Ddvi.Tests.Comparison;

/// <summary>Hand-made metrics and run folders, so tables and reports can be checked without training.</summary>
internal static class ComparisonFixtures
{
    public static MetricsReport Metrics(string model, string prior, long seed, double? elbo, double nll, double knn, double mmd, double seconds,
        string dataset = "synthetic", int epochs = 1) => new()
    {
        Model = model,
        Dataset = dataset,
        Prior = prior,
        PriorDensity = "exact",
        Seed = seed,
        Epochs = epochs,
        TrainExamples = 256,
        TestExamples = 40,
        KnnAccuracy = new KnnMetric(knn, 5, "knn"),
        LatentNll = new LatentNllMetric(nll, [0.01], 300, "nll"),
        Elbo = elbo is null ? new ElboMetric(false, null, null, "none") : new ElboMetric(true, elbo, elbo / 784, "elbo"),
        // The true bounds, when there is an ELBO: true ELBO = ELBO − 1, IWAE = ELBO + 2, so tables can be checked by hand.
        LikelihoodBounds = elbo is not double release ? null : new LikelihoodBoundsMetric(40, 100,
            new BoundValue(1, release - 1, 0.1), new BoundValue(100, release + 2, 0.1),
            [new BoundValue(1, release - 1, 0.1), new BoundValue(10, release + 1, 0.1), new BoundValue(100, release + 2, 0.1)],
            "exact", "test", null, null, 1.0, "bounds"),
        Mmd = new MmdMetric(mmd, mmd * mmd, [2], 100, "mmd"),
        TrainingSeconds = seconds,
    };

    public static RunResult Run(MetricsReport metrics, string? configPrior = null, double? priorNoise = null) =>
        new($"/runs/{metrics.Model}-{metrics.Prior}-s{metrics.Seed}",
            new ExperimentConfig { Model = metrics.Model, Prior = configPrior ?? metrics.Prior, PriorNoise = priorNoise, Seed = metrics.Seed, Dataset = metrics.Dataset },
            metrics);

    /// <summary>Writes what a finished run leaves behind: config.json, metrics.json and latents-test.csv.</summary>
    public static void WriteFinishedRun(string folder, ExperimentConfig config, MetricsReport metrics)
    {
        var run = new RunDirectory(folder);
        Directory.CreateDirectory(run.Root);
        File.WriteAllText(run.Config, config.ToJson());
        File.WriteAllText(run.Metrics, JsonSerializer.Serialize(metrics, ExperimentConfig.JsonOptions));
        var latents = new StringBuilder("z1,z2,label\n");
        for (int i = 0; i < 40; i++)
            latents.Append(CultureInfo.InvariantCulture, $"{Math.Cos(i) * (1 + metrics.Seed)},{Math.Sin(i)},{i % 5}\n");
        File.WriteAllText(run.TestLatents, latents.ToString());
    }

    /// <summary>Width and height from a PNG's IHDR chunk.</summary>
    public static (int Width, int Height) PngSize(string path)
    {
        var bytes = File.ReadAllBytes(path);
        Assert.Equal([0x89, (byte)'P', (byte)'N', (byte)'G'], bytes[..4]);
        int width = (bytes[16] << 24) | (bytes[17] << 16) | (bytes[18] << 8) | bytes[19];
        int height = (bytes[20] << 24) | (bytes[21] << 16) | (bytes[22] << 8) | bytes[23];
        return (width, height);
    }
}
