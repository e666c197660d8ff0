using TorchSharp;
using Ddvi.Models;
using Ddvi.Objectives;
using Ddvi.Training;
using static TorchSharp.torch;

namespace Ddvi.Tests.Models;

public class IafVaeTests
{
    private static IafVae Small(int hidden = 32) => new(64, hidden: hidden, contextSize: 4, madeHidden: 8);

    [Fact]
    public void ShapesRangesAndTheFlowSample()
    {
        using var scope = NewDisposeScope();
        using var model = Small();
        model.eval(); // dropout off, so the encoder's context can be recomputed below
        using var generator = new Generator(1);
        var x = rand(5, 64, generator: generator);
        var sample = model.SamplePosterior(x, generator);
        foreach (var t in new[] { sample.Z0, sample.Epsilon, sample.LogVariance, sample.Z })
            Assert.Equal(new long[] { 5, 2 }, t.shape);
        Assert.Equal(new long[] { 5 }, sample.LogDet.shape);
        Assert.True((sample.LogVariance < 0).all().item<bool>()); // σ² = sigmoid(·) < 1
        Assert.True((sample.LogDet < 0).all().item<bool>());      // every gate σ < 1 contracts
        Assert.False(sample.Z.eq(sample.Z0).all().item<bool>());
        var (z, logDet) = model.Flow.call(sample.Z0, EncoderContext(model, x));
        Assert.True(z.allclose(sample.Z, rtol: 1e-5, atol: 1e-6) && logDet.allclose(sample.LogDet, rtol: 1e-5, atol: 1e-5));
        var images = model.DecodeMeans(model.EncodeLatents(x, generator));
        Assert.Equal(new long[] { 5, 64 }, images.shape);
        Assert.True((images >= 0).all().item<bool>() && (images <= 1).all().item<bool>());
    }

    private static Tensor EncoderContext(IafVae model, Tensor x)
    {
        var encoder = (Mlp)model.named_children().Single(c => c.name == "encoder").module;
        return encoder.Heads(x)[2];
    }

    [Fact]
    public void EncodingIsRepeatableInEvalMode()
    {
        using var scope = NewDisposeScope();
        using var model = Small();
        model.eval();
        var x = rand(4, 64);
        using var g1 = new Generator(9);
        using var g2 = new Generator(9);
        Assert.True(model.EncodeLatents(x, g1).eq(model.EncodeLatents(x, g2)).all().item<bool>());
    }

    [Fact]
    public void LossIsReconstructionPlusWeightedLatentTerms()
    {
        using var scope = NewDisposeScope();
        using var data = GaussianVaeTests.TwoHalves(16, 2);
        using var model = Small();
        model.eval();
        var prior = new QuadrantNormalPrior();
        using var g1 = new Generator(3);
        using var g2 = new Generator(3);
        var terms = IafVaeObjective.Loss(model, data.Images, prior, new VaeWeights(0.3, 2), g1);
        var t = terms.Terms.ToDictionary(p => p.Name, p => p.Value.item<float>());
        Assert.Equal(["bce", "log_q0", "log_det", "log_p"], terms.Terms.Select(p => p.Name));
        Assert.Equal(t["bce"] + 0.3 * (t["log_q0"] - t["log_det"] - 2 * t["log_p"]), terms.Total.item<float>(), 4);

        // The same noise gives the same sample, and each term is the batch mean of its per-example value.
        var sample = model.SamplePosterior(data.Images, g2);
        Assert.Equal(prior.LogDensity(sample.Z).mean().item<float>(), t["log_p"], 4);
        Assert.Equal(sample.LogDet.mean().item<float>(), t["log_det"], 4);
        Assert.Equal(GaussianMath.LogDensity(sample.Z0, sample.Z0 - (0.5 * sample.LogVariance).exp() * sample.Epsilon,
            sample.LogVariance.exp()).mean().item<float>(), t["log_q0"], 3);
    }

    [Fact]
    public void ElboTermsAddUpAndPerPixelScaleIsConsistent()
    {
        using var scope = NewDisposeScope();
        using var data = GaussianVaeTests.TwoHalves(16, 5);
        using var model = Small();
        model.eval();
        var prior = new QuadrantNormalPrior();
        using var g1 = new Generator(3);
        using var g2 = new Generator(3);
        var elbo = IafVaeObjective.Elbo(model, data.Images, prior, g1);
        var sample = model.SamplePosterior(data.Images, g2);
        var mean = sample.Z0 - (0.5 * sample.LogVariance).exp() * sample.Epsilon;
        var logQ = GaussianMath.LogDensity(sample.Z0, mean, sample.LogVariance.exp()) - sample.LogDet;
        var logLikelihood = GaussianMath.BernoulliLogLikelihood(model.DecodeOutput(sample.Z), data.Images);
        var latent = prior.LogDensity(sample.Z) - logQ;
        Assert.True(elbo.NatsPerImage.allclose(logLikelihood + latent, rtol: 1e-5, atol: 1e-3));
        Assert.True(elbo.ReleasePerPixelScale.allclose(logLikelihood / 64 + latent, rtol: 1e-5, atol: 1e-3));
        Assert.True(elbo.NatsPerImage.isfinite().all().item<bool>());
        Assert.True(FlowObjective.LogQ(sample).allclose(logQ, rtol: 1e-5, atol: 1e-3));
    }

    [Fact]
    public void CheckpointRoundTripGivesIdenticalOutputs()
    {
        using var folder = new TempFolder();
        using var scope = NewDisposeScope();
        TorchSharp.torch.manual_seed(1);
        using var original = Small();
        TorchSharp.torch.manual_seed(2);
        using var restored = Small();
        string path = folder["epoch-0001.ckpt"];
        Checkpoint.Save(path, original, new Dictionary<string, optim.Optimizer> { ["iaf-vae"] = optim.Adam(original.parameters()) },
            new TrainerState("iaf-vae", 1, 1.0, []), "{}");
        Checkpoint.Load(path, restored);
        original.eval();
        restored.eval();
        var x = rand(8, 64);
        using var g1 = new Generator(4);
        using var g2 = new Generator(4);
        var a = original.SamplePosterior(x, g1);
        var b = restored.SamplePosterior(x, g2);
        Assert.True(a.Z.eq(b.Z).all().item<bool>() && a.LogDet.eq(b.LogDet).all().item<bool>());
        Assert.True(original.DecodeMeans(a.Z).eq(restored.DecodeMeans(b.Z)).all().item<bool>());
    }

    [Fact]
    public void AFewEpochsLowerTheLoss()
    {
        // The release's gates start near σ = ½, so four layers shrink z₀ about 16-fold and the decoder first sees
        // nearly constant latents: the loss stays flat until the gates open, hence about two hundred steps here.
        using var folder = new TempFolder();
        using var data = GaussianVaeTests.TwoHalves(1024, 4);
        var prior = new QuadrantNormalPrior();
        TorchSharp.torch.manual_seed(2);
        using var model = new IafVae(64, hidden: 64, contextSize: 4, madeHidden: 16);
        var phase = new TrainingPhase
        {
            Name = "iaf-vae",
            Parameters = model.parameters().ToList(),
            LearningRate = 1e-3,
            Loss = step => IafVaeObjective.Loss(model, step.Batch.RequireX(), prior, new VaeWeights(0.01, 1), step.Generator),
        };
        var state = new Trainer(SilentObserver.Instance).Fit(model, [phase], new TensorBatches(data.Images, data.Labels, 32),
            new TrainerOptions("iaf-vae", 5, 1, folder.Path), "{}", false);
        Assert.True(state.History[^1].Losses["iaf-vae/loss"] < state.History[0].Losses["iaf-vae/loss"] - 0.15,
            $"loss {state.History[0].Losses["iaf-vae/loss"]} → {state.History[^1].Losses["iaf-vae/loss"]}");
    }
}
