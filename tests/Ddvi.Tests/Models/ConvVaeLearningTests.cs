using Ddvi.FastPaths;
using Ddvi.Data;
using Ddvi.Experiments;
using Ddvi.Models;
using Ddvi.Objectives;
using Ddvi.Priors;
using Ddvi.Tests.Data;
using TorchSharp;
using static TorchSharp.torch;

namespace Ddvi.Tests.Models;

public class ConvVaeLearningTests
{
    [SharedCifarFact]
    [Trait("Category", "Learning")]
    public void ATinyConvVaesReconstructionErrorFallsOnRealCifarImages()
    {
        using var folder = new TempFolder();
        using var data = DatasetCatalog.Load(CifarTestFiles.SharedSubsetSlice(folder.Path, train: 320, test: 10),
            new DatasetOptions(null, 0, AllowDownload: false));
        torch.manual_seed(0);
        var networks = ImageNetworks.For(NetworkChoice.Auto, data.Train, 64);
        Assert.True(networks.Convolutional);
        using var model = new GaussianVae(3072, 2, hidden: 64, dropoutRate: 0.0,
            likelihood: networks.Likelihood(2, 64, 0.0), encoder: networks.Encoder([2, 2], 64, 0.0));
        var prior = PriorCatalog.Create("gaussian", null, 0, CPU, PriorDensityChoice.Auto);
        using var optimizer = new FusedAdam(model.parameters(), lr: 2e-3);
        using var generator = new Generator(1);
        var batches = new Ddvi.Training.TensorBatches(data.Train.Images, data.Train.Labels, 64, HorizontalFlip.TrainingTransform(data.Train));
        var losses = new List<double>();
        model.train();
        for (int epoch = 0; epoch < 6; epoch++)
        {
            double sum = 0;
            int steps = 0;
            foreach (var batch in batches.Epoch(generator))
            {
                using var x = batch.X!;
                using var scope = NewDisposeScope();
                optimizer.zero_grad();
                var terms = VaeObjective.Loss(model, x, prior, new VaeWeights(0.01, 1), generator);
                terms.Total.backward();
                optimizer.step();
                sum += terms.Terms.Single(t => t.Name == "nll").Value.item<float>();
                steps++;
            }
            losses.Add(sum / steps);
        }
        // MSE + ½ log π per pixel: the first epoch starts from an untrained decoder; the mean falls clearly.
        Assert.True(losses[^1] < losses[0] - 0.05, $"per-pixel loss by epoch: {string.Join(", ", losses.Select(l => l.ToString("F4")))}");
    }
}
