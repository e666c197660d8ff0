using Ddvi.Data;
using Ddvi.Experiments;
using Ddvi.Priors;
using Ddvi.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace Ddvi.Tests.Semi;

public class SemiConvNetworksTests
{
    /// <summary>On CIFAR-shaped colour images every semi-supervised model takes the conv networks and steps through every
    /// stage with its budgeted labels; ddvi-semi's β is the release's CIFAR-10 value.</summary>
    [Theory]
    [InlineData("ddvi-semi")]
    [InlineData("vae-semi")]
    [InlineData("iaf-vae-semi")]
    [InlineData("aae-semi")]
    public void EveryStageStepsOnColourImages(string model)
    {
        manual_seed(1);
        using var generator = new Generator(2);
        var shape = new ImageShape(3, 32, 32);
        using var train = new ImageDataset("t/train", rand([40, shape.Size], generator: generator).mul_(2).sub_(1),
            arange(40, dtype: int64).remainder(10), shape, 10, PixelRange.Symmetric, flipInTraining: true);
        var config = new ExperimentConfig
        {
            Model = model, Dataset = "cifar10", BatchSize = 20, Labels = 20,
            Semi = new SemiSettings { Hidden = 16, Steps = 3, SleepSteps = 1, PriorDiffusionPerClass = 4 },
            Vae = new VaeSettings { Hidden = 16 }, Iaf = new IafSettings { Hidden = 16, MadeHidden = 8 },
            Aae = new AaeSettings { Hidden = 16, DiscriminatorHidden = 16 },
        };
        var prior = new PinwheelPrior(CPU);
        using var labels = LabelBudget.Choose(train.Labels, 10, 20, 3).MaskLabels(train.Labels);
        var method = ModelCatalog.Create(new MethodContext(config, train, prior, CPU, labels));
        using var module = method.Module;
        if (method is global::Ddvi.Experiments.Methods.SemiDdviMethod semi) Assert.Equal(0.5, semi.Weights.KlWeight);
        module.train();
        foreach (var stage in method.Stages)
        {
            using var runner = new StepRunner(stage.Phases);
            runner.BeginEpoch(0);
            var batch = stage.Batches.Epoch(generator).First();
            runner.Step(batch, 0, generator);
        }
        // Evaluation: latents (routed by predicted class for ddvi-semi), the ELBO where there is one, q(c|x) where there is one.
        module.eval();
        using var noGrad = no_grad();
        var x = train.Images.narrow(0, 0, 8);
        Assert.Equal(new long[] { 8, 2 }, method.Model.EncodeLatents(x, generator).shape);
        if (method.HasElbo) Assert.True(method.EstimateElbo(x, generator).NatsPerImage.isfinite().all().item<bool>());
        if (method.Model is global::Ddvi.Models.IClassifyingModel { ClassCount: > 0 } classifier)
            Assert.Equal(new long[] { 8, 10 }, classifier.ClassLogits(x).shape);
    }
}
