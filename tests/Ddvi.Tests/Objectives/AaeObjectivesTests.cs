using Ddvi.FastPaths;
using Ddvi.Models;
using Ddvi.Objectives;
using static TorchSharp.torch;

namespace Ddvi.Tests.Objectives;

public class AaeObjectivesTests
{
    private static double Scalar(Tensor t) => t.to(float64).item<double>();

    /// <summary>
    /// One libtorch thread for the duration of a test: these networks are tiny, and on a shared machine a second
    /// OpenMP thread mostly waits at every operation's barrier (seconds instead of milliseconds).
    /// </summary>
    private sealed class SingleThread : IDisposable
    {
        private readonly int _previous = get_num_threads();
        public SingleThread() => set_num_threads(1);
        public void Dispose() => set_num_threads(_previous);
    }

    [Fact]
    public void ReconstructionIsHalfTheMeanSquaredErrorOfTheSigmoidOutput()
    {
        using var scope = NewDisposeScope();
        using var aae = new AdversarialAutoencoder(64, hidden: 32, discriminatorHidden: 16);
        aae.eval();
        using var generator = new Generator(2);
        var x = rand([10, 64], generator: generator);
        var terms = AaeObjectives.ReconstructionLoss(aae, x);
        var byHand = (aae.DecodeMeans(aae.Encode(x)) - x).square().mean();
        Assert.Equal(0.5 * Scalar(byHand), Scalar(terms.Total), 6);
        Assert.Equal(Scalar(byHand), Scalar(terms.Terms.Single(t => t.Name == "mse").Value), 6);
    }

    [Fact]
    public void AdversarialLossesMatchTheReleasesFormulaWhereItIsFinite()
    {
        using var scope = NewDisposeScope();
        // The weights draw from the global generator: seed it, so the result does not depend on the tests run before.
        manual_seed(11);
        using var discriminator = new AaeDiscriminator(2, 32);
        discriminator.eval();
        using var generator = new Generator(4);
        var zPrior = randn([50, 2], generator: generator);
        var zEncoded = randn([40, 2], generator: generator) + 1;
        const double eps = 1e-15;
        var dPrior = sigmoid(discriminator.call(zPrior));
        var dEncoded = sigmoid(discriminator.call(zEncoded));

        var d = AaeObjectives.DiscriminatorLoss(discriminator, zPrior, zEncoded, 0.2, 6, generator);
        double release = -6 * Scalar((dPrior + eps).log().mean() + (1 - dEncoded + eps).log().mean());
        Assert.Equal(release, Scalar(d.Total), 5);

        var g = AaeObjectives.GeneratorLoss(discriminator, zEncoded, 6);
        Assert.Equal(-6 * Scalar((dEncoded + eps).log().mean()), Scalar(g.Total), 5);
    }

    [Fact]
    public void AdversarialLossesStayFiniteWithGradientWhenTheDiscriminatorSaturates()
    {
        using var scope = NewDisposeScope();
        using var discriminator = new AaeDiscriminator(2, 8, dropoutRate: 0);
        discriminator.eval();
        using (no_grad())
            foreach (var p in discriminator.parameters()) p.mul_(1e4); // logits of order 1e8: sigmoid is exactly 0 or 1
        using var generator = new Generator(6);
        var z = randn([16, 2], generator: generator).requires_grad_();
        var g = AaeObjectives.GeneratorLoss(discriminator, z, 6);
        var d = AaeObjectives.DiscriminatorLoss(discriminator, z, z, 0, 6, generator);
        Assert.True(double.IsFinite(Scalar(g.Total)) && double.IsFinite(Scalar(d.Total)));
        g.Total.backward();
        Assert.True(z.grad is { } grad && grad.isfinite().all().item<bool>());
    }

    [Fact]
    public void DiscriminatorLearnsToTellPriorSamplesFromShiftedOnes()
    {
        using var threads = new SingleThread();
        using var scope = NewDisposeScope();
        manual_seed(11);
        var prior = new QuadrantNormalPrior();
        using var discriminator = new AaeDiscriminator(2, 32);
        using var optimizer = new FusedAdam(discriminator.parameters(), lr: 1e-3);
        using var generator = new Generator(12);
        discriminator.train();
        for (int step = 0; step < 200; step++)
        {
            using var stepScope = NewDisposeScope();
            var (zPrior, _) = prior.SampleLabelled(128, generator);
            var (shifted, _) = prior.SampleLabelled(128, generator);
            optimizer.zero_grad();
            AaeObjectives.DiscriminatorLoss(discriminator, zPrior, shifted + 3, 0.2, 6, generator).Total.backward();
            optimizer.step();
        }

        discriminator.eval();
        using var noGrad = no_grad();
        var (testPrior, _) = prior.SampleLabelled(2000, generator);
        var (testShifted, _) = prior.SampleLabelled(2000, generator);
        var terms = AaeObjectives.DiscriminatorLoss(discriminator, testPrior, testShifted + 3, 0, 6, generator);
        double accuracy = Scalar(terms.Terms.Single(t => t.Name == "accuracy").Value);
        Assert.True(accuracy > 0.9, $"accuracy {accuracy}");
        // N(0, I) against N(3·1, I): the Bayes classifier is right with probability Φ(3/√2) ≈ 0.983.
        Assert.True(accuracy < 0.995, $"accuracy {accuracy} beats the Bayes rate: the test data leaked");
    }

    [Fact]
    public void GeneratorStepsMoveEncodingsToWhereTheDiscriminatorSaysPrior()
    {
        using var threads = new SingleThread();
        using var scope = NewDisposeScope();
        manual_seed(21);
        using var generator = new Generator(22);
        using var aae = new AdversarialAutoencoder(64, hidden: 32, discriminatorHidden: 32);
        var x = rand([128, 64], generator: generator);

        // A discriminator whose "prior" is N((3, 3), I) and whose "encoded" class is N(0, I), where the
        // freshly initialised encoder's codes lie: the generator must carry them towards (3, 3).
        var target = tensor(new float[] { 3f, 3f });
        using (var dOptimizer = new FusedAdam(aae.DiscriminatorParameters(), lr: 1e-3))
            for (int step = 0; step < 200; step++)
            {
                using var stepScope = NewDisposeScope();
                dOptimizer.zero_grad();
                AaeObjectives.DiscriminatorLoss(aae.Discriminator, randn([128, 2], generator: generator) + target,
                    randn([128, 2], generator: generator), 0, 6, generator).Total.backward();
                dOptimizer.step();
            }

        aae.eval();
        Tensor before;
        using (no_grad())
            before = aae.Encode(x).mean([0]);
        var dBefore = DiscriminatorSnapshot(aae);
        double logDBefore = Scalar(AaeObjectives.GeneratorLoss(aae, x, 6).Terms[0].Value.detach());

        aae.train();
        using var gOptimizer = new FusedAdam(aae.EncoderParameters(), lr: 1e-3);
        for (int step = 0; step < 60; step++)
        {
            using var stepScope = NewDisposeScope();
            gOptimizer.zero_grad();
            AaeObjectives.GeneratorLoss(aae, x, 6).Total.backward();
            gOptimizer.step();
        }

        aae.eval();
        using var noGrad = no_grad();
        var after = aae.Encode(x).mean([0]);
        double logDAfter = Scalar(AaeObjectives.GeneratorLoss(aae, x, 6).Terms[0].Value);
        double distanceBefore = Scalar((before - target).norm());
        double distanceAfter = Scalar((after - target).norm());
        Assert.True(logDBefore < Math.Log(0.2), $"log D before {logDBefore}: the discriminator should call the initial codes fake");
        Assert.True(logDAfter > Math.Log(0.5), $"log D {logDBefore} → {logDAfter}");
        Assert.True(distanceAfter < 0.5 * distanceBefore, $"distance to the prior's mean {distanceBefore} → {distanceAfter}");
        // Only the optimiser decides what changes; the loss itself did not touch D's weights.
        Assert.True(dBefore.Zip(DiscriminatorSnapshot(aae)).All(pair => pair.First.eq(pair.Second).all().item<bool>()));
    }

    [Fact]
    public void ObjectivesRestoreTheModesTheyChange()
    {
        using var scope = NewDisposeScope();
        using var aae = new AdversarialAutoencoder(64, hidden: 16, discriminatorHidden: 16);
        using var generator = new Generator(1);
        var x = rand([4, 64], generator: generator);
        aae.train();
        AaeObjectives.DiscriminatorLoss(aae, x, new QuadrantNormalPrior(), 0.2, 6, generator);
        AaeObjectives.GeneratorLoss(aae, x, 6);
        Assert.True(aae.Encoder.training && aae.Discriminator.training && aae.Decoder.training);
        aae.eval();
        AaeObjectives.DiscriminatorLoss(aae, x, new QuadrantNormalPrior(), 0.2, 6, generator);
        AaeObjectives.GeneratorLoss(aae, x, 6);
        Assert.False(aae.Encoder.training || aae.Discriminator.training);
    }

    [Fact]
    public void DiscriminatorStepSendsNoGradientToTheEncoderThroughItsCodes()
    {
        using var scope = NewDisposeScope();
        using var aae = new AdversarialAutoencoder(64, hidden: 16, discriminatorHidden: 16);
        using var generator = new Generator(3);
        var x = rand([8, 64], generator: generator);
        aae.train();
        AaeObjectives.DiscriminatorLoss(aae, x, new QuadrantNormalPrior(), 0.2, 6, generator).Total.backward();
        Assert.All(aae.EncoderParameters(), p => Assert.Null(p.grad));
        Assert.All(aae.Decoder.parameters(), p => Assert.Null(p.grad));
        Assert.All(aae.DiscriminatorParameters(), p => Assert.NotNull(p.grad));
    }

    private static List<Tensor> DiscriminatorSnapshot(AdversarialAutoencoder aae) =>
        aae.DiscriminatorParameters().Select(p => p.detach().clone()).ToList();
}
