using System.Globalization;
using Ddvi.Evaluation;
using Ddvi.Experiments;
using Ddvi.Priors;
using Ddvi.Training;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace Ddvi.Tests.Experiments;

/// <summary>
/// The toy problem of the DDVI issue, trained once for the class: all three stages on 4,000 synthetic images with small
/// networks, and a VAE on the same data, networks and seed for the same number of passes over the data (1 warm-up and
/// 10 DDVI epochs against 11 VAE epochs).
/// </summary>
public sealed class ToyPipelineRuns : IDisposable
{
    private readonly TempFolder _ddviFolder = new();
    private readonly TempFolder _vaeFolder = new();

    public ToyPipelineRuns()
    {
        DdviConfig = ToyConfig("ddvi", epochs: 10);
        Ddvi = new ExperimentRunner(SilentObserver.Instance).Train(DdviConfig, _ddviFolder.Path, resume: false);
        Vae = new ExperimentRunner(SilentObserver.Instance).Train(ToyConfig("vae", epochs: 11), _vaeFolder.Path, resume: false);
    }

    public ExperimentConfig DdviConfig { get; }
    public MetricsReport Ddvi { get; }
    public MetricsReport Vae { get; }
    public string DdviTestLatents => new RunDirectory(_ddviFolder.Path).TestLatents;

    private static ExperimentConfig ToyConfig(string model, int epochs) => new()
    {
        Model = model,
        Dataset = "synthetic",
        Prior = "pinwheel",
        Epochs = epochs,
        BatchSize = 64,
        LearningRate = 1e-3,
        Seed = 5,
        CheckpointEvery = 100,
        Threads = 2,
        SyntheticTrainCount = 4_000,
        SyntheticTestCount = 512,
        Ddvi = new DdviSettings
        {
            Hidden = 128, PriorDiffusionIterations = 1_000, PriorDiffusionStepsPerEpoch = 500, WarmupEpochs = 1,
            PriorSteps = 10, PosteriorSteps = 10, SleepSteps = 3, FrozenDecoderEpochs = 3,
        },
        Vae = new VaeSettings { Hidden = 128 },
        Evaluation = new EvaluationSettings { PriorSamples = 2_000, MmdSamples = 100, KnnNeighbours = 10 },
    };

    public void Dispose()
    {
        _ddviFolder.Dispose();
        _vaeFolder.Dispose();
    }
}

/// <summary>
/// What the posterior diffusion does on the toy problem (<see cref="ToyPipelineRuns"/>): its latents cover the prior,
/// which a Gaussian posterior trained on the same budget does not, and the x-conditioned chain carries class information
/// that the warm-up model's unconditional chain cannot.
/// <para>
/// The issue asked for a drop of latent NLL against the warm-up stage. That does not happen reliably, and these tests do
/// not pretend it does: the warm-up posterior (the release's <c>diff_vae</c>) ends in the prior's own reverse chain,
/// which maps any start onto the prior whatever the image, so its latent NLL is low by construction. Here, seeds 5–8 gave
/// the warm-up 2.4–3.0 and DDVI 2.7–9.6 (lower in one seed of four, by 0.03); the default synthetic run gives ≈ 1 against
/// ≈ 4, Fashion-MNIST at the paper's lengths −0.55, 4.65 and 1.05 against 0.41, 69.1 and 1.55 for pinwheel, swiss roll and
/// square (README). What is asserted instead: the chain itself lowers the NLL from its start
/// y_T to its output z (seeds 5–8: 13.7 → 9.4, 9.0 → 6.6, 7.0 → 4.5, 4.1 → 2.8; with the previous build's float32
/// rounding 4.6 → 2.3, 10.5 → 8.7, 4.6 → 3.1, 3.86 → 3.77), and DDVI's NLL is far below that of the Gaussian posterior
/// the method replaces, the VAE's.
/// </para>
/// </summary>
public class PosteriorDiffusionPipelineTests(ToyPipelineRuns runs, ITestOutputHelper output) : IClassFixture<ToyPipelineRuns>
{
    [Fact]
    public void PosteriorDiffusionCoversThePriorWhereAGaussianPosteriorDoesNot()
    {
        var warmup = Assert.Single(runs.Ddvi.StageSnapshots);
        double? reference = runs.Ddvi.LatentNll.PriorSampleReference;
        output.WriteLine($"latent NLL: DDVI {runs.Ddvi.LatentNll.Value:F2}, VAE {runs.Vae.LatentNll.Value:F2}, DDVI's warm-up {warmup.LatentNll:F2}, prior samples themselves {reference:F2}");

        // The reference depends only on the prior, the seed, the test count and the bandwidths: both runs share it.
        Assert.NotNull(reference);
        Assert.True(double.IsFinite(reference.Value));
        Assert.Equal(reference, runs.Vae.LatentNll.PriorSampleReference);
        Assert.True(reference < runs.Vae.LatentNll.Value - 50,
            $"prior samples' own NLL {reference:F2} should be far below the VAE's {runs.Vae.LatentNll.Value:F2}");

        // Seeds 5–8 of this configuration gave DDVI 2.7–9.6 against the VAE's 294–312: the VAE's latents, pulled by
        // p_w·log p(z) onto part of the pinwheel, leave most of the prior without latents near it.
        Assert.True(runs.Ddvi.LatentNll.Value < runs.Vae.LatentNll.Value - 50,
            $"DDVI's latent NLL {runs.Ddvi.LatentNll.Value:F2} should be far below the VAE's {runs.Vae.LatentNll.Value:F2}");
    }

    [Fact]
    public void PosteriorChainMovesLatentsTowardsThePriorAndAddsClassInformation()
    {
        var report = runs.Ddvi;
        var config = runs.DdviConfig;
        var warmup = Assert.Single(report.StageSnapshots);
        var (chainStarts, latents) = ReadTestLatents(runs.DdviTestLatents);
        using var scope = NewDisposeScope();
        using var prior = (IDisposable)PriorCatalog.Create(config.Prior, null, config.Seed, CPU);
        using var generator = new Generator(11);
        var priorSamples = ((ILabelledPrior)prior).SampleLabelled(config.Evaluation.PriorSamples, generator).Z;
        double startNll = LatentNll.Compute(chainStarts, priorSamples, config.Evaluation.NllBandwidths).Value;
        double outputNll = LatentNll.Compute(latents, priorSamples, config.Evaluation.NllBandwidths).Value;
        output.WriteLine($"latent NLL: chain start y_T {startNll:F3}, chain output z {outputNll:F3} (run's metric {report.LatentNll.Value:F3}), " +
                         $"warm-up {warmup.LatentNll:F3}; KNN: warm-up {warmup.KnnAccuracy:F3}, DDVI {report.KnnAccuracy.Value:F3}, VAE {runs.Vae.KnnAccuracy.Value:F3}");

        Assert.True(double.IsFinite(startNll) && double.IsFinite(outputNll) && double.IsFinite(warmup.LatentNll));
        Assert.True(outputNll < startNll,
            $"the posterior chain should move the latents towards the prior: NLL of its output z {outputNll:F3} against its start y_T {startNll:F3}");
        Assert.True(report.KnnAccuracy.Value > warmup.KnnAccuracy + 0.05,
            $"KNN accuracy after DDVI {report.KnnAccuracy.Value:F3} should be clearly above the warm-up model's {warmup.KnnAccuracy:F3}");
    }

    /// <summary>The y_T and z columns of latents-test.csv (header z1,z2,label,yT1,yT2) as [n, 2] tensors.</summary>
    private static (Tensor ChainStarts, Tensor Latents) ReadTestLatents(string path)
    {
        var rows = File.ReadAllLines(path).Skip(1).Select(line => line.Split(',').Select(v => float.Parse(v, CultureInfo.InvariantCulture)).ToArray()).ToArray();
        var latents = tensor(rows.SelectMany(r => new[] { r[0], r[1] }).ToArray(), [rows.Length, 2]);
        var starts = tensor(rows.SelectMany(r => new[] { r[3], r[4] }).ToArray(), [rows.Length, 2]);
        return (starts, latents);
    }
}
