using Ddvi.FastPaths;
using System.Text.Json;
using Ddvi.Experiments;
using Ddvi.Experiments.Methods;
using Ddvi.Models;
using Ddvi.Tests.Models;
using Ddvi.Training;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Ddvi.Tests.Experiments;

public class AaeMethodTests
{
    private static readonly AaeSettings Small = new() { Hidden = 32, DiscriminatorHidden = 32 };

    private static AaeMethod Create(ExperimentConfig config, int examples = 64) =>
        new(new MethodContext(config, GaussianVaeTests.TwoHalves(examples, 7), new QuadrantNormalPrior(), CPU));

    private static ExperimentConfig Config(int? epochs = 4, string dataset = "synthetic") =>
        new() { Model = "aae", Dataset = dataset, Epochs = epochs, BatchSize = 64, Aae = Small };

    [Fact]
    public void OneStageOfThreePhasesInTheReleasesOrderWithItsHyperparameters()
    {
        using var method = new DisposableMethod(Create(Config(epochs: null, dataset: "mnist")));
        var stage = Assert.Single(method.Value.Stages);
        Assert.Equal(AaeMethod.StageName, stage.Name);
        Assert.Equal(200, stage.Epochs);
        Assert.Equal(["reconstruction", "discriminator", "generator"], stage.Phases.Select(p => p.Name));
        var aae = method.Value.Autoencoder;
        Assert.Equal(aae.AutoencoderParameters(), stage.Phases[0].Parameters);
        Assert.Equal(aae.DiscriminatorParameters(), stage.Phases[1].Parameters);
        Assert.Equal(aae.EncoderParameters(), stage.Phases[2].Parameters);
        Assert.Equal(aae.DiscriminatorParameters(), stage.Phases[2].FrozenParameters(0));
        Assert.All(stage.Phases, p =>
        {
            Assert.Equal(2e-4, p.LearningRate);
            Assert.Equal(1.0, p.LearningRateFactor(0));
            Assert.Equal(1.0, p.LearningRateFactor(149));
            Assert.Equal(0.1, p.LearningRateFactor(150), 12);
            Assert.Equal(0.1, p.LearningRateFactor(199), 12);
            Assert.True(p.IsActive(0) && p.IsActive(199));
        });
        Assert.False(method.Value.HasElbo);
        Assert.Contains("no likelihood", method.Value.ElboDefinition);
        Assert.Throws<NotSupportedException>(() => method.Value.EstimateElbo(zeros(1, 64), new Generator(1)));
    }

    [Theory]
    [InlineData("reconstruction", true, true, false)]
    [InlineData("discriminator", false, false, true)]
    [InlineData("generator", true, false, false)]
    public void EachPhaseSendsGradientOnlyToItsOwnModules(string phaseName, bool encoder, bool decoder, bool discriminator)
    {
        using var folder = new TempFolder();
        using var method = new DisposableMethod(Create(Config(epochs: 1)));
        var stage = method.Value.Stages.Single();
        var phase = stage.Phases.Single(p => p.Name == phaseName);
        // One epoch of one batch through the real trainer, so the phase's frozen parameters are honoured as in a run.
        new Trainer(SilentObserver.Instance).Fit(method.Value.Module, [phase], stage.Batches,
            new TrainerOptions("aae", 1, 5, folder.Path), "{}", false);

        var aae = method.Value.Autoencoder;
        AssertGradients(aae.Encoder.parameters(), encoder, "encoder");
        AssertGradients(aae.Decoder.parameters(), decoder, "decoder");
        AssertGradients(aae.Discriminator.parameters(), discriminator, "discriminator");
        Assert.All(aae.parameters(), p => Assert.True(p.requires_grad)); // frozen parameters are released after the phase
    }

    [Fact]
    public void StepsLeaveNoTensorsBehind()
    {
        using var method = new DisposableMethod(Create(Config(epochs: 1)));
        var stage = method.Value.Stages.Single();
        var optimizers = stage.Phases.Select(p => new FusedAdam(p.Parameters, lr: p.LearningRate)).ToList();
        using var generator = new Generator(4);
        using var x = rand([64, 64], generator: generator);
        var batch = new TrainingBatch(x, null);
        method.Value.Module.train();

        void Step()
        {
            for (int i = 0; i < stage.Phases.Count; i++)
            {
                var phase = stage.Phases[i];
                var frozen = phase.FrozenParameters(0);
                foreach (var p in frozen) p.requires_grad_(false);
                using (NewDisposeScope())
                {
                    optimizers[i].zero_grad();
                    phase.Loss(new PhaseStep(batch, 0, 0, generator)).Total.backward();
                    optimizers[i].step();
                }
                foreach (var p in frozen) p.requires_grad_(true);
            }
        }

        Step(); // the first step creates gradients and Adam's state, which live on
        long before = TorchSharp.DisposeScopeManager.Statistics.ThreadTotalLiveCount;
        Step();
        Step();
        Assert.Equal(before, TorchSharp.DisposeScopeManager.Statistics.ThreadTotalLiveCount);
        foreach (var optimizer in optimizers) optimizer.Dispose();
    }

    private static void AssertGradients(IEnumerable<Parameter> parameters, bool expected, string module)
    {
        foreach (var p in parameters)
        {
            if (expected)
            {
                Assert.True(p.grad is not null, $"{module} got no gradient");
            }
            else
            {
                Assert.True(p.grad is null, $"{module} got a gradient");
            }
        }
        if (expected)
            Assert.Contains(parameters, p => p.grad!.abs().sum().item<float>() > 0);
    }

    [Fact]
    public void TinyRunReportsNoElboAndFiniteMetrics()
    {
        using var folder = new TempFolder();
        var config = ExperimentRunnerTests.Tiny("aae") with { Aae = Small };
        var report = new ExperimentRunner(SilentObserver.Instance).Train(config, folder.Path, resume: false);

        Assert.False(report.Elbo.Available);
        Assert.Null(report.Elbo.NatsPerImage);
        Assert.True(double.IsFinite(report.LatentNll.Value) && double.IsFinite(report.Mmd.Value));
        Assert.InRange(report.KnnAccuracy.Value, 0, 1);

        var run = new RunDirectory(folder.Path);
        var metrics = JsonDocument.Parse(File.ReadAllText(run.Metrics)).RootElement;
        Assert.Equal("aae", metrics.GetProperty("model").GetString());
        var elbo = metrics.GetProperty("elbo");
        Assert.False(elbo.GetProperty("available").GetBoolean());
        Assert.False(elbo.TryGetProperty("nats_per_image", out _));
        Assert.Contains("no likelihood", elbo.GetProperty("definition").GetString());
        foreach (var name in new[] { "knn_accuracy", "latent_nll", "mmd" })
            Assert.True(double.IsFinite(metrics.GetProperty(name).GetProperty("value").GetDouble()), name);

        var losses = File.ReadAllLines(Path.Combine(run.Checkpoints(AaeMethod.StageName), "losses.csv"));
        Assert.Equal(3, losses.Length); // header and two epochs
        foreach (var column in new[] { "reconstruction/mse", "discriminator/loss", "discriminator/accuracy", "generator/loss" })
            Assert.Contains(column, losses[0]);
        Assert.NotNull(Checkpoint.Latest(run.Checkpoints(AaeMethod.StageName)));
        Assert.True(File.Exists(run.Plot("latents.png")));

        var again = new ExperimentRunner(SilentObserver.Instance).Evaluate(folder.Path);
        Assert.Equal(report.LatentNll.Value, again.LatentNll.Value);
        Assert.Equal(report.Mmd.Value, again.Mmd.Value);
    }

    [Fact]
    public void CatalogKnowsTheAaeWithThePapersDefaults()
    {
        Assert.Contains("aae", ModelCatalog.Names);
        Assert.Equal(200, ModelCatalog.PaperEpochs("aae"));
        Assert.Equal(2e-4, ModelCatalog.DefaultLearningRate("aae"));
        Assert.Equal(200, new ExperimentConfig { Model = "aae", Dataset = "mnist" }.ResolvedEpochs);
        Assert.Equal(150, new AaeSettings().DecayEpochFor(200));
        Assert.Equal(7, new AaeSettings { LearningRateDecayEpoch = 7 }.DecayEpochFor(200));
        var config = Config() with { Aae = Small with { DiscriminatorNoise = 0.3, LearningRateDecayEpoch = 9 } };
        Assert.Equal(config.ToJson(), ExperimentConfig.FromJson(config.ToJson(), "test").ToJson());
    }

    [Theory]
    [InlineData("adversarial_weight")]
    [InlineData("discriminator_noise")]
    [InlineData("learning_rate_decay_epoch")]
    [InlineData("learning_rate_decay")]
    [InlineData("hidden")]
    [InlineData("dropout")]
    [InlineData("discriminator_hidden")]
    [InlineData("discriminator_dropout")]
    public void BadAaeSettingsNameTheirOption(string option)
    {
        var settings = option switch
        {
            "adversarial_weight" => new AaeSettings { AdversarialWeight = 0 },
            "discriminator_noise" => new AaeSettings { DiscriminatorNoise = -0.1 },
            "learning_rate_decay_epoch" => new AaeSettings { LearningRateDecayEpoch = -1 },
            "learning_rate_decay" => new AaeSettings { LearningRateDecay = 0 },
            "hidden" => new AaeSettings { Hidden = 0 },
            "dropout" => new AaeSettings { Dropout = 1 },
            "discriminator_hidden" => new AaeSettings { DiscriminatorHidden = 0 },
            _ => new AaeSettings { DiscriminatorDropout = -0.5 },
        };
        var error = Assert.Throws<ArgumentException>(() => (Config() with { Aae = settings }).Validate());
        Assert.Contains($"aae.{option} ", error.Message);
    }

    private sealed class DisposableMethod(AaeMethod value) : IDisposable
    {
        public AaeMethod Value { get; } = value;
        public void Dispose() => Value.Module.Dispose();
    }
}
