using Ddvi.Models;
using Ddvi.Objectives;
using Ddvi.Priors;
using TorchSharp;
using static TorchSharp.torch;

namespace Ddvi.Tests.Semi;

public class SemiBaselineObjectiveTests
{
    [Fact]
    public void TheVaeBaselineWeighsClassesByQAndSubtractsTheEntropyAsTheReleaseDoes()
    {
        manual_seed(2);
        using var model = new GaussianVae(12, 2, hidden: 16, dropoutRate: 0.0, classes: 10);
        model.to(float64);
        model.eval();
        var prior = new PinwheelPrior(CPU);
        using var density = new ClassConditionalDensity(prior, 3, CPU, samplesPerClass: 200);
        using var scope = NewDisposeScope();
        using var dataGenerator = new Generator(1);
        var x = rand([1, 12], dtype: float64, generator: dataGenerator);
        double Loss(long label, SemiVaeWeights weights, string term = "")
        {
            using var generator = new Generator(4);
            var terms = SemiVaeObjective.Loss(model, x, tensor(new[] { label }), density, weights, generator);
            return term.Length == 0 ? terms.Total.item<double>() : terms.Terms.Single(t => t.Name == term).Value.item<double>();
        }
        // Σ_c q_c log p(z|c) for an unlabelled example equals the q-weighted labelled values, class by class.
        var noExtras = new SemiVaeWeights(KlWeight: 1, PriorWeight: 5, EntropyWeight: 0, ClassifierWeight: 0);
        var q = nn.functional.softmax(model.ClassLogits(x), 1)[0].data<double>().ToArray();
        double weighted = Enumerable.Range(0, 10).Sum(c => q[c] * Loss(c, noExtras, "log_p_c"));
        Assert.Equal(weighted, Loss(-1, noExtras, "log_p_c"), 9);
        // The entropy enters as −β·p_w·0.001·H (inside the prior term, as the release's VAE_semi has it).
        double h = -q.Sum(v => v * Math.Log(v));
        var withEntropy = noExtras with { EntropyWeight = 0.001 };
        Assert.Equal(-1 * 5 * 0.001 * h, Loss(-1, withEntropy) - Loss(-1, noExtras), 9);
        // The cross-entropy reads labelled examples only, weighted cls·β.
        var withCe = noExtras with { ClassifierWeight = 1 };
        Assert.Equal(0, Loss(-1, withCe) - Loss(-1, noExtras), 12);
        Assert.Equal(-Math.Log(q[3]), Loss(3, withCe) - Loss(3, noExtras), 9);
    }

    [Fact]
    public void TheSemiElboSumsEachExamplesClassTermsOverItsOwnClasses()
    {
        // Per example b: log p(x_b|z_b) + Σ_c q(c|x_b) log p(z_b|c) − log q(z_b|x_b), for several examples at once (a sum over
        // the class axis written `.sum(0)` binds to TorchSharp's sum(ScalarType) and adds everything into one byte).
        var prior = new PinwheelPrior(CPU);
        using var density = new ClassConditionalDensity(prior, 3, CPU, samplesPerClass: 200);
        using var scope = NewDisposeScope();
        using var generator = new Generator(5);
        const int b = 6, pixels = 784;
        var logLikelihood = -100 * rand([b], dtype: float64, generator: generator) - 300;
        var logQ = randn([b], dtype: float64, generator: generator);
        var z = 0.8 * randn([b, 2], dtype: float64, generator: generator);
        var logits = 2 * randn([b, 10], dtype: float64, generator: generator);
        var estimate = SemiVaeObjective.Elbo(logLikelihood, logQ, z, logits, density, pixels);
        Assert.Equal([b], estimate.NatsPerImage.shape);
        Assert.Equal(ScalarType.Float64, estimate.NatsPerImage.dtype);
        var q = nn.functional.softmax(logits, 1);
        for (int row = 0; row < b; row++)
        {
            var point = z.narrow(0, row, 1);
            double priorTerm = Enumerable.Range(0, 10).Sum(c => q[row, c].item<double>() * density.LogDensity(c, point)[0].item<double>());
            double latent = priorTerm - logQ[row].item<double>();
            Assert.Equal(logLikelihood[row].item<double>() + latent, estimate.NatsPerImage[row].item<double>(), 9);
            Assert.Equal(logLikelihood[row].item<double>() / pixels + latent, estimate.ReleasePerPixelScale[row].item<double>(), 9);
        }
    }
}
