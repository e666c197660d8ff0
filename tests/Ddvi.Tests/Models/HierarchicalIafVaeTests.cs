using TorchSharp;
using Ddvi.Models;
using Ddvi.Objectives;
using Ddvi.Training;
using static TorchSharp.torch;

namespace Ddvi.Tests.Models;

public class HierarchicalIafVaeTests
{
    private static HierarchicalIafVae Small(int hidden = 32) =>
        new(64, hidden: hidden, contextSize: 4, madeHidden: 8, featureSize: 8, level2Hidden: 6);

    [Fact]
    public void TwoLevelsOfFlowSamplesAndTheLatentIsLevelTwo()
    {
        using var scope = NewDisposeScope();
        using var model = Small();
        model.eval();
        var x = rand(5, 64);
        using var g1 = new Generator(1);
        using var g2 = new Generator(1);
        var (level1, level2) = model.SamplePosterior(x, g1);
        foreach (var sample in new[] { level1, level2 })
        {
            Assert.Equal(new long[] { 5, 2 }, sample.Z.shape);
            Assert.Equal(new long[] { 5 }, sample.LogDet.shape);
            Assert.True((sample.LogVariance < 0).all().item<bool>());
        }
        Assert.False(level1.Z.eq(level2.Z).all().item<bool>());
        Assert.True(model.EncodeLatents(x, g2).eq(level2.Z).all().item<bool>());
        var images = model.DecodeMeans(level2.Z);
        Assert.True((images >= 0).all().item<bool>() && (images <= 1).all().item<bool>());
    }

    [Fact]
    public void LevelTwoVarianceIsClippedAtOneMillionth()
    {
        using var scope = NewDisposeScope();
        using var model = Small();
        model.eval();
        // Push the level-2 variance logit far below log 1e-6.
        var varianceHead = model.named_parameters().Single(p => p.name == "encoder2.heads.1.bias").parameter;
        using (no_grad()) varianceHead.fill_(-100);
        using var generator = new Generator(2);
        var (_, level2) = model.SamplePosterior(rand(4, 64), generator);
        Assert.True(level2.LogVariance.allclose(full_like(level2.LogVariance, Math.Log(1e-6)), rtol: 1e-5, atol: 1e-4));
    }

    [Fact]
    public void LossTermsAreFiniteAndCombineAsTheRelease()
    {
        using var scope = NewDisposeScope();
        using var data = GaussianVaeTests.TwoHalves(16, 2);
        using var model = Small();
        var prior = new QuadrantNormalPrior();
        using var generator = new Generator(3);
        var terms = HierarchicalIafVaeObjective.Loss(model, data.Images, prior, new VaeWeights(0.2, 0.5), generator);
        Assert.Equal(["bce", "log_q0_1", "log_det_1", "log_p_1", "log_q0_2", "log_det_2", "log_p_2"], terms.Terms.Select(p => p.Name));
        var t = terms.Terms.ToDictionary(p => p.Name, p => p.Value.item<float>());
        Assert.All(t.Values, v => Assert.True(float.IsFinite(v)));
        double latent = t["log_q0_1"] - t["log_det_1"] - 0.5 * t["log_p_1"] + t["log_q0_2"] - t["log_det_2"] - 0.5 * t["log_p_2"];
        Assert.Equal(t["bce"] + 0.2 * latent, terms.Total.item<float>(), 4);
        terms.Total.backward();
        Assert.All(model.parameters(), p => Assert.True(p.grad is null || p.grad.isfinite().all().item<bool>()));
    }

    [Fact]
    public void ElboTermsAddUpAcrossBothLevels()
    {
        using var scope = NewDisposeScope();
        using var data = GaussianVaeTests.TwoHalves(16, 5);
        using var model = Small();
        model.eval();
        var prior = new QuadrantNormalPrior();
        using var g1 = new Generator(3);
        using var g2 = new Generator(3);
        var elbo = HierarchicalIafVaeObjective.Elbo(model, data.Images, prior, g1);
        var (level1, level2) = model.SamplePosterior(data.Images, g2);
        Tensor LogQ(FlowPosteriorSample s)
        {
            var mean = s.Z0 - (0.5 * s.LogVariance).exp() * s.Epsilon;
            return GaussianMath.LogDensity(s.Z0, mean, s.LogVariance.exp()) - s.LogDet;
        }
        var logN1 = GaussianMath.LogDensity(level1.Z, zeros_like(level1.Z), ones_like(level1.Z));
        var logLikelihood = GaussianMath.BernoulliLogLikelihood(model.DecodeOutput(level2.Z), data.Images);
        var latent = logN1 - LogQ(level1) + prior.LogDensity(level2.Z) - LogQ(level2);
        Assert.True(elbo.NatsPerImage.allclose(logLikelihood + latent, rtol: 1e-5, atol: 1e-3));
        Assert.True(elbo.ReleasePerPixelScale.allclose(logLikelihood / 64 + latent, rtol: 1e-5, atol: 1e-3));
        Assert.True(elbo.NatsPerImage.isfinite().all().item<bool>());
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
        Checkpoint.Save(path, original, new Dictionary<string, optim.Optimizer>(), new TrainerState("h-iaf-vae", 1, 1.0, []), "{}");
        Checkpoint.Load(path, restored);
        original.eval();
        restored.eval();
        var x = rand(8, 64);
        using var g1 = new Generator(4);
        using var g2 = new Generator(4);
        var a = original.SamplePosterior(x, g1);
        var b = restored.SamplePosterior(x, g2);
        Assert.True(a.Level1.Z.eq(b.Level1.Z).all().item<bool>() && a.Level2.Z.eq(b.Level2.Z).all().item<bool>() && a.Level2.LogDet.eq(b.Level2.LogDet).all().item<bool>());
        Assert.True(original.DecodeMeans(a.Level2.Z).eq(restored.DecodeMeans(b.Level2.Z)).all().item<bool>());
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
        using var model = new HierarchicalIafVae(64, hidden: 64, contextSize: 4, madeHidden: 8, featureSize: 16, level2Hidden: 12);
        var phase = new TrainingPhase
        {
            Name = "h-iaf-vae",
            Parameters = model.parameters().ToList(),
            LearningRate = 1e-3,
            Loss = step => HierarchicalIafVaeObjective.Loss(model, step.Batch.RequireX(), prior, new VaeWeights(0.005, 0.5), step.Generator),
        };
        var state = new Trainer(SilentObserver.Instance).Fit(model, [phase], new TensorBatches(data.Images, data.Labels, 32),
            new TrainerOptions("h-iaf-vae", 6, 1, folder.Path), "{}", false);
        var first = state.History[0].Losses;
        var last = state.History[^1].Losses;
        Assert.All(last.Values, v => Assert.True(double.IsFinite(v)));
        Assert.True(last["h-iaf-vae/loss"] < first["h-iaf-vae/loss"] - 0.15, $"loss {first["h-iaf-vae/loss"]} → {last["h-iaf-vae/loss"]}");
    }
}
