using Ddvi.Data;
using Ddvi.Models;
using Ddvi.Objectives;
using Ddvi.Training;
using static TorchSharp.torch;

namespace Ddvi.Tests.Models;

public class GaussianVaeTests
{
    /// <summary>Two classes of 8×8 images: a bright left half or a bright right half, with noise.</summary>
    internal static ImageDataset TwoHalves(int count, long seed)
    {
        using var scope = NewDisposeScope();
        using var generator = new Generator((ulong)seed);
        var labels = randint(0, 2, [count], generator: generator);
        var column = arange(8).repeat(8).view(1, 64);
        var leftHalf = (column < 4).to(float32);
        var bright = where(labels.view(-1, 1) == 0, leftHalf, 1 - leftHalf);
        var images = (0.8f * bright + 0.2f * rand([count, 64], generator: generator)).clamp(0, 1);
        return new ImageDataset("two-halves", images, labels, new ImageShape(1, 8, 8), 2);
    }

    [Fact]
    public void ShapesAndRanges()
    {
        using var scope = NewDisposeScope();
        using var vae = new GaussianVae(64, hidden: 32);
        using var generator = new Generator(1);
        var x = rand(5, 64, generator: generator);
        var (mean, logVariance) = vae.Posterior(x);
        Assert.Equal(new long[] { 5, 2 }, mean.shape);
        Assert.True((logVariance < 0).all().item<bool>()); // σ² = sigmoid(·) < 1
        var images = vae.DecodeMeans(vae.EncodeLatents(x, generator));
        Assert.Equal(new long[] { 5, 64 }, images.shape);
        Assert.True((images >= 0).all().item<bool>() && (images <= 1).all().item<bool>());
    }

    [Fact]
    public void DropoutIsOffInEvalModeSoOutputsAreDeterministic()
    {
        using var scope = NewDisposeScope();
        using var vae = new GaussianVae(64, hidden: 32, dropoutRate: 0.5);
        var z = randn(16, 2);
        vae.train();
        Assert.False(vae.DecodeMeans(z).eq(vae.DecodeMeans(z)).all().item<bool>());
        vae.eval();
        Assert.True(vae.DecodeMeans(z).eq(vae.DecodeMeans(z)).all().item<bool>());
        using var g1 = new Generator(9);
        using var g2 = new Generator(9);
        var x = rand(4, 64);
        Assert.True(vae.EncodeLatents(x, g1).eq(vae.EncodeLatents(x, g2)).all().item<bool>());
    }

    [Fact]
    public void CheckpointRoundTripGivesIdenticalOutputs()
    {
        using var folder = new TempFolder();
        using var scope = NewDisposeScope();
        using var original = new GaussianVae(64, hidden: 32);
        using var restored = new GaussianVae(64, hidden: 32);
        var optimizers = new Dictionary<string, optim.Optimizer> { ["vae"] = optim.Adam(original.parameters()) };
        string path = folder["epoch-0001.ckpt"];
        Checkpoint.Save(path, original, optimizers, new TrainerState("vae", 1, 2.5, []), "{\"seed\":1}");
        Checkpoint.Load(path, restored);
        original.eval();
        restored.eval();
        var z = randn(8, 2);
        Assert.True(original.DecodeMeans(z).eq(restored.DecodeMeans(z)).all().item<bool>());
        var (state, config) = Checkpoint.ReadHeader(path);
        Assert.Equal(1, state.EpochsCompleted);
        Assert.Equal("{\"seed\":1}", config);
    }

    [Fact]
    public void LoadingACheckpointIntoAnotherNetworkSizeSaysSo()
    {
        using var folder = new TempFolder();
        using var small = new GaussianVae(64, hidden: 32);
        using var large = new GaussianVae(64, hidden: 48);
        string path = folder["epoch-0001.ckpt"];
        Checkpoint.Save(path, small, new Dictionary<string, optim.Optimizer>(), new TrainerState("vae", 1, 0, []), "{}");
        var error = Assert.ThrowsAny<Exception>(() => Checkpoint.Load(path, large));
        Assert.Contains(path, error.Message);
    }

    [Fact]
    public void CorruptCheckpointsAreRejectedWithTheirPath()
    {
        using var folder = new TempFolder();
        using var vae = new GaussianVae(64, hidden: 32);
        string garbage = folder["garbage.ckpt"];
        File.WriteAllText(garbage, "not a checkpoint");
        Assert.Contains(garbage, Assert.Throws<InvalidDataException>(() => Checkpoint.Load(garbage, vae)).Message);
        string truncated = folder["truncated.ckpt"];
        Checkpoint.Save(truncated, vae, new Dictionary<string, optim.Optimizer>(), new TrainerState("vae", 1, 0, []), "{}");
        var bytes = File.ReadAllBytes(truncated);
        File.WriteAllBytes(truncated, bytes[..(bytes.Length / 2)]);
        Assert.Contains(truncated, Assert.Throws<InvalidDataException>(() => Checkpoint.Load(truncated, vae)).Message);
    }

    [Fact]
    public void AFewEpochsLowerTheLoss()
    {
        using var folder = new TempFolder();
        using var data = TwoHalves(512, 4);
        var prior = new QuadrantNormalPrior();
        TorchSharp.torch.manual_seed(2);
        using var vae = new GaussianVae(64, hidden: 64);
        var phase = new TrainingPhase
        {
            Name = "vae",
            Parameters = vae.parameters().ToList(),
            LearningRate = 1e-3,
            Loss = step => VaeObjective.Loss(vae, step.Batch.RequireX(), prior, new VaeWeights(0.01, 1), step.Generator),
        };
        var state = new Trainer(SilentObserver.Instance).Fit(vae, [phase], new TensorBatches(data.Images, data.Labels, 64),
            new TrainerOptions("vae", 5, 1, folder.Path), "{}", false);
        Assert.True(state.History[^1].Losses["vae/bce"] < state.History[0].Losses["vae/bce"] - 0.02,
            $"BCE {state.History[0].Losses["vae/bce"]} → {state.History[^1].Losses["vae/bce"]}");
    }

    [Fact]
    public void ElboTermsAddUpAndPerPixelScaleIsConsistent()
    {
        using var scope = NewDisposeScope();
        using var data = TwoHalves(16, 5);
        using var vae = new GaussianVae(64, hidden: 32);
        vae.eval();
        var prior = new QuadrantNormalPrior();
        using var g1 = new Generator(3);
        using var g2 = new Generator(3);
        var elbo = VaeObjective.Elbo(vae, data.Images, prior, g1);
        // Recompute by hand with the same noise.
        var (mean, logVariance) = vae.Posterior(data.Images);
        var (z, _) = GaussianVae.Reparameterise(mean, logVariance, g2);
        var logLikelihood = GaussianMath.BernoulliLogLikelihood(vae.DecodeOutput(z), data.Images);
        var latent = prior.LogDensity(z) - GaussianMath.LogDensity(z, mean, logVariance.exp());
        Assert.True(elbo.NatsPerImage.allclose(logLikelihood + latent, rtol: 1e-5, atol: 1e-4));
        Assert.True(elbo.ReleasePerPixelScale.allclose(logLikelihood / 64 + latent, rtol: 1e-5, atol: 1e-5));
        Assert.True(elbo.NatsPerImage.isfinite().all().item<bool>());
    }
}
