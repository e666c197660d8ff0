using Ddvi.FastPaths;
using Ddvi.Models;
using Ddvi.Objectives;
using Ddvi.Priors;
using TorchSharp;
using static TorchSharp.torch;

namespace Ddvi.Tests.Semi;

public class SemiLearningTests
{
    /// <summary>Ten well-separated clusters of 12-pixel images in [0, 1]: rows <c>[10·perClass, 12]</c> and their class.</summary>
    private static (Tensor X, Tensor Labels) Clusters(int perClass, Generator generator, Tensor centres)
    {
        var labels = arange(10, dtype: int64).repeat_interleave(perClass);
        var x = sigmoid(3 * centres.index_select(0, labels) + 0.5 * randn([labels.shape[0], 12], generator: generator));
        return (x, labels);
    }

    [Fact]
    [Trait("Category", "Learning")]
    public void WithTenLabelsPerClassTheClassifierIsFarAboveChance()
    {
        manual_seed(3);
        using var generator = new Generator(3);
        using var scope = NewDisposeScope();
        var centres = randn([10, 12], generator: generator);
        var (train, trainLabels) = Clusters(50, generator, centres);
        var (test, testLabels) = Clusters(20, generator, centres);
        // 10 labels per class: the first 10 of each class's 50 keep their label.
        var budget = where(arange(500).remainder(50).lt(10), trainLabels, full(500, -1L, dtype: int64));

        using var model = SemiDdviModel.Paper(12, 2, 10, hidden: 32, steps: 6, dropout: 0.0, auxiliaryDropout: 0.0, denoiserHidden: 16);
        var prior = new PinwheelPrior(CPU);
        using var density = new ClassConditionalDensity(prior, 1, CPU, samplesPerClass: 200);
        var weights = new SemiDdviWeights();
        using var optimiser = new FusedAdam(model.WakeParameters(), 3e-3);
        model.train();
        // The pipeline's order: the warm-up objective (stage 2), then the wake objective (stage 3).
        for (int step = 0; step < 250; step++)
        {
            using var stepScope = NewDisposeScope();
            var rows = randperm(500, generator: generator).narrow(0, 0, 100);
            optimiser.zero_grad();
            var (x, labels) = (train.index_select(0, rows), budget.index_select(0, rows));
            var loss = step < 150
                ? SemiDdviObjectives.WarmupLoss(model, x, labels, weights, generator)
                : SemiDdviObjectives.WakeLoss(model, x, labels, density, weights, generator);
            loss.Total.backward();
            optimiser.step();
        }
        model.eval();
        using var noGrad = no_grad();
        double accuracy = model.ClassLogits(test).argmax(1).eq(testLabels).to(float64).mean().item<double>();
        Assert.True(accuracy > 0.6, $"test accuracy {accuracy:F3} with 10 labels per class; chance is 0.1");
    }
}
