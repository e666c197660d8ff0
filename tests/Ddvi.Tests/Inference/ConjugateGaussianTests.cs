using Ddvi.FastPaths;
using Ddvi.Inference;
using Ddvi.Likelihoods;
using Ddvi.Models;
using Ddvi.Priors;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace Ddvi.Tests.Inference;

/// <summary>
/// DDVI against a posterior known in closed form: z ~ N(0, I_4), x | z ~ N(Wz + b, σ² I_16) with a fixed, known decoder.
/// The exact posterior is N(Σ Wᵀ(x − b)/σ², Σ), Σ = (I + WᵀW/σ²)⁻¹. W's columns come in two pairs that share a direction,
/// so the posterior correlates z_1 with z_2 and z_3 with z_4 (ρ ≈ −0.76): a mean-field Gaussian cannot show that, a
/// diffusion posterior can.
/// </summary>
[Trait("Category", "Learning")]
public sealed class ConjugateGaussianTests(ITestOutputHelper output)
{
    private const int LatentDim = 4, DataDim = 16, TrainRows = 4000, HeldOutRows = 64, Draws = 400;
    private const double Sigma = 1.0;

    [Fact]
    public void DdviRecoversTheExactPosteriorAndItsCorrelationsBetterThanMeanField()
    {
        var (w, b) = Decoder();
        var exactCovariance = linalg.inv(eye(LatentDim, dtype: float64) + w.t().matmul(w) / (Sigma * Sigma)); // [4, 4]
        var exactSd = exactCovariance.diagonal().sqrt();
        var exactCorrelation = exactCovariance / exactSd.outer(exactSd);
        Assert.True(exactCorrelation[0, 1].item<double>() < -0.5 && exactCorrelation[2, 3].item<double>() < -0.5,
            "the test model must have posterior correlations of magnitude at least 0.5");

        var generator = new Generator(11);
        var train = Simulate(w, b, TrainRows, generator);
        var heldOut = Simulate(w, b, HeldOutRows, generator);
        var exactMeans = (heldOut.to(float64) - b).matmul(w).matmul(exactCovariance) / (Sigma * Sigma); // [N, 4]

        var options = new DdviOptions { Epochs = 40, BatchSize = 128, Seed = 3, TrainLikelihood = false, LearningRate = 1e-3 };
        using var likelihood = new GaussianLikelihood(LinearDecoder(w, b), LatentDim, DataDim, sigma: Sigma);
        using var fitted = DdviFit.Fit(train, likelihood, new StandardNormalPrior(LatentDim, CPU), options);
        var ddvi = PosteriorSummary(fitted.PosteriorSamples(heldOut, Draws, seed: 5).to(float64));

        var meanField = PosteriorSummary(MeanFieldSamples(train, heldOut, w, b, options));

        var ddviScores = Scores(ddvi, exactMeans, exactSd, exactCorrelation);
        var meanFieldScores = Scores(meanField, exactMeans, exactSd, exactCorrelation);
        output.WriteLine($"exact posterior: sd {Format(exactSd)}, ρ12 {exactCorrelation[0, 1].item<double>():F3}, ρ34 {exactCorrelation[2, 3].item<double>():F3}");
        output.WriteLine($"DDVI:       mean error {ddviScores.MeanError:F3} sd, sd ratio {ddviScores.SdRatio:F3}, correlation error {ddviScores.CorrelationError:F3}, ρ12 {ddviScores.Rho12:F3}, ρ34 {ddviScores.Rho34:F3}");
        output.WriteLine($"mean field: mean error {meanFieldScores.MeanError:F3} sd, sd ratio {meanFieldScores.SdRatio:F3}, correlation error {meanFieldScores.CorrelationError:F3}, ρ12 {meanFieldScores.Rho12:F3}, ρ34 {meanFieldScores.Rho34:F3}");

        Assert.True(ddviScores.MeanError < 0.2, $"DDVI's posterior means are {ddviScores.MeanError:F3} posterior sds from the exact ones (limit 0.2)");
        Assert.True(ddviScores.CorrelationError < meanFieldScores.CorrelationError,
            $"DDVI's correlation error {ddviScores.CorrelationError:F3} is not below the mean-field posterior's {meanFieldScores.CorrelationError:F3}");
    }

    /// <summary>W = [2u₁ + ½v₁, 2u₁ + ½v₂, 2u₂ + ½v₃, 2u₂ + ½v₄] with u₁, u₂ unit vectors on rows 0–7 and 8–15 and the v's
    /// orthonormal differences of rows inside those blocks; b = (0.5·(i mod 3) − 0.5)_i, so x spreads well outside [0, 1].</summary>
    internal static (Tensor W, Tensor B) Decoder()
    {
        var w = zeros(DataDim, LatentDim, dtype: float64);
        for (int i = 0; i < 8; i++)
        {
            w[i, 0] = w[i, 1] = tensor(2 / Math.Sqrt(8));
            w[i + 8, 2] = w[i + 8, 3] = tensor(2 / Math.Sqrt(8));
        }
        double v = 0.5 / Math.Sqrt(2);
        (int Row, int Column)[] pairs = [(0, 0), (2, 1), (8, 2), (10, 3)];
        foreach (var (row, column) in pairs)
        {
            w[row, column] += v;
            w[row + 1, column] -= v;
        }
        var b = tensor(Enumerable.Range(0, DataDim).Select(i => 0.5 * (i % 3) - 0.5).ToArray(), dtype: float64);
        return (w, b);
    }

    internal static nn.Module<Tensor, Tensor> LinearDecoder(Tensor w, Tensor b)
    {
        var linear = nn.Linear(LatentDim, DataDim);
        using (no_grad())
        {
            linear.weight!.copy_(w.to(float32));
            linear.bias!.copy_(b.to(float32));
        }
        return linear;
    }

    internal static Tensor Simulate(Tensor w, Tensor b, long n, Generator generator)
    {
        var z = randn(new long[] { n, LatentDim }, dtype: float64, generator: generator);
        var noise = randn(new long[] { n, DataDim }, dtype: float64, generator: generator);
        return (z.matmul(w.t()) + b + Sigma * noise).to(float32);
    }

    // Per held-out row: the sample mean [N, 4], sd [N, 4] and correlation [N, 4, 4] of draws [S, N, 4].
    private static (Tensor Mean, Tensor Sd, Tensor Correlation) PosteriorSummary(Tensor draws)
    {
        var mean = draws.mean([0]);
        var centred = draws - mean;
        var covariance = einsum("sni,snj->nij", centred, centred) / (draws.shape[0] - 1);
        var sd = covariance.diagonal(0, 1, 2).sqrt();
        return (mean, sd, covariance / (sd.unsqueeze(2) * sd.unsqueeze(1)));
    }

    private static (double MeanError, double SdRatio, double CorrelationError, double Rho12, double Rho34) Scores(
        (Tensor Mean, Tensor Sd, Tensor Correlation) q, Tensor exactMeans, Tensor exactSd, Tensor exactCorrelation)
    {
        double meanError = ((q.Mean - exactMeans).abs() / exactSd).mean().item<double>();
        double sdRatio = (q.Sd / exactSd).mean().item<double>();
        var offDiagonal = ones(LatentDim, LatentDim, dtype: float64).triu(1).to(ScalarType.Bool);
        double correlationError = (q.Correlation - exactCorrelation).abs().masked_select(offDiagonal.expand_as(q.Correlation)).mean().item<double>();
        return (meanError, sdRatio, correlationError, q.Correlation[.., 0, 1].mean().item<double>(), q.Correlation[.., 2, 3].mean().item<double>());
    }

    /// <summary>A mean-field Gaussian posterior (VAE encoder, decoder fixed) trained on the same data, epochs, batches and learning rate.</summary>
    private static Tensor MeanFieldSamples(Tensor train, Tensor heldOut, Tensor w, Tensor b, DdviOptions options)
    {
        manual_seed(options.Seed);
        using var encoder = new Mlp(DataDim, options.HiddenWidths, [LatentDim, LatentDim]);
        using var likelihood = new GaussianLikelihood(LinearDecoder(w, b), LatentDim, DataDim, sigma: Sigma);
        var optimizer = new FusedAdam(encoder.parameters(), options.LearningRate);
        var generator = new Generator((ulong)options.Seed);
        for (int epoch = 0; epoch < options.Epochs; epoch++)
        {
            var order = randperm(train.shape[0], generator: generator);
            for (long start = 0; start < train.shape[0]; start += options.BatchSize)
            {
                using var scope = NewDisposeScope();
                var x = train.index_select(0, order.narrow(0, start, Math.Min(options.BatchSize, train.shape[0] - start)));
                var heads = encoder.Heads(x);
                var eps = randn(heads[0].shape, generator: generator);
                var z = heads[0] + (0.5 * heads[1]).exp() * eps;
                var kl = 0.5 * (heads[0].square() + heads[1].exp() - heads[1] - 1).sum(1);
                var loss = (kl - likelihood.LogProb(x, z)).mean();
                optimizer.zero_grad();
                loss.backward();
                optimizer.step();
            }
        }
        encoder.eval();
        using var _ = no_grad();
        var outputs = encoder.Heads(heldOut);
        var draws = randn(new long[] { Draws, heldOut.shape[0], LatentDim }, generator: generator);
        return (outputs[0] + (0.5 * outputs[1]).exp() * draws).to(float64);
    }

    private static string Format(Tensor t) => string.Join(", ", t.data<double>().Select(v => v.ToString("F3")));
}
