// DDVI on the conjugate linear-Gaussian model z ~ N(0, I_4), x | z ~ N(W z + b, σ² I_16), whose posterior is known
// exactly: Σ = (I + WᵀW/σ²)⁻¹, mean Σ Wᵀ(x − b)/σ². W makes the latents pairwise strongly correlated a posteriori
// (ρ₁₂ = ρ₃₄ ≈ −0.76). The decoder is fixed at the true W and b, so DDVI only learns the posterior; its draws for held-out
// x are compared with the exact posterior. Exit code 0 means the figures are finite and DDVI's correlations are within
// 0.2 of the exact ones on average.
using System.Diagnostics;
using Ddvi.Inference;
using Ddvi.Likelihoods;
using Ddvi.Priors;
using TorchSharp;
using static TorchSharp.torch;

const int d = 4, D = 16, nTrain = 4000, nTest = 64, draws = 400;
const double sigma = 1.0;
var clock = Stopwatch.StartNew();
using var W = Model.Weight();                                     // [D, d]
using var b = Model.Bias();                                       // [D]

// p(x | z): a Gaussian around a linear decoder set to the true W and b (not trained); p(z) = N(0, I).
var decoder = nn.Linear(d, D);
using (no_grad())
{
    decoder.weight!.copy_(W);
    decoder.bias!.copy_(b);
}
using var likelihood = new GaussianLikelihood(decoder, d, D, sigma);
var prior = new StandardNormalPrior(d, CPU);

// Data from the model itself, then DDVI with the decoder held fixed.
using var x = Model.Simulate(W, b, sigma, nTrain + nTest, seed: 1);
using var xTrain = x[..nTrain];
using var xTest = x[nTrain..];
var options = new DdviOptions { TrainLikelihood = false, SleepSteps = 8, Epochs = 40, BatchSize = 128, Seed = 3 };
using var fitted = DdviFit.Fit(xTrain, likelihood, prior, options, new Progress<FitProgress>(p =>
{
    if (p.Epoch % 10 == 0) Console.WriteLine($"epoch {p.Epoch}/{p.Epochs}: wake loss {p.Losses["wake/loss"]:F2} nats per row");
}));
double fitSeconds = clock.Elapsed.TotalSeconds;

// DDVI's posterior draws for the held-out x, against the exact posterior.
using var samples = fitted.PosteriorSamples(xTest, samples: draws, seed: 5);    // [S, nTest, d]
var (exactMean, exactCovariance) = Model.ExactPosterior(W, b, sigma, xTest);    // [nTest, d], [d, d]
return Report.Print(samples, exactMean, exactCovariance, fitSeconds, clock.Elapsed.TotalSeconds);

/// <summary>The linear-Gaussian model: its W and b, simulated data and the exact posterior.</summary>
static class Model
{
    /// <summary>
    /// W = [2u₁ + ½v₁, 2u₁ + ½v₂, 2u₂ + ½v₃, 2u₂ + ½v₄] [16, 4] (float64): u₁ the unit vector uniform over rows 0–7,
    /// u₂ over rows 8–15, v₁ = (e₀ − e₁)/√2, v₂ = (e₂ − e₃)/√2, v₃ = (e₈ − e₉)/√2, v₄ = (e₁₀ − e₁₁)/√2.
    /// </summary>
    public static Tensor Weight()
    {
        var w = new double[16, 4];
        double u = 1 / Math.Sqrt(8), v = 0.5 / Math.Sqrt(2);
        for (int i = 0; i < 8; i++)
        {
            w[i, 0] = w[i, 1] = 2 * u;
            w[i + 8, 2] = w[i + 8, 3] = 2 * u;
        }
        foreach (var (row, column) in new[] { (0, 0), (2, 1), (8, 2), (10, 3) })
        {
            w[row, column] += v;
            w[row + 1, column] -= v;
        }
        return tensor(w);
    }

    /// <summary>b_i = 0.5 (i mod 3) − 0.5 [16] (float64).</summary>
    public static Tensor Bias() => tensor(Enumerable.Range(0, 16).Select(i => 0.5 * (i % 3) - 0.5).ToArray());

    /// <summary>n rows x = W z + b + σ ε with z, ε standard normal, as float32 [n, 16].</summary>
    public static Tensor Simulate(Tensor W, Tensor b, double sigma, int n, long seed)
    {
        using var g = new Generator((ulong)seed);
        using var scope = NewDisposeScope();
        var z = randn([n, W.shape[1]], float64, generator: g);
        var x = z.matmul(W.t()) + b + sigma * randn([n, W.shape[0]], float64, generator: g);
        return x.to(float32).MoveToOuterDisposeScope();
    }

    /// <summary>The exact posterior of z given each row of x: means [n, d] and the covariance Σ [d, d] (float64).</summary>
    public static (Tensor Mean, Tensor Covariance) ExactPosterior(Tensor W, Tensor b, double sigma, Tensor x)
    {
        using var scope = NewDisposeScope();
        var covariance = linalg.inv(eye(W.shape[1], dtype: float64) + W.t().matmul(W) / (sigma * sigma));
        var mean = (x.to(float64) - b).matmul(W).matmul(covariance) / (sigma * sigma);   // rows of Σ Wᵀ(x − b)/σ² (Σ symmetric)
        return (mean.MoveToOuterDisposeScope(), covariance.MoveToOuterDisposeScope());
    }
}

/// <summary>DDVI's posterior against the exact one, printed as a table.</summary>
static class Report
{
    public static int Print(Tensor samples, Tensor exactMean, Tensor exactCovariance, double fitSeconds, double totalSeconds)
    {
        using var scope = NewDisposeScope();
        var z = samples.to(float64);                                         // [S, n, d]
        long n = z.shape[1], d = z.shape[2];
        var mean = z.mean([0]);                                              // [n, d]
        var centred = z - mean;
        var covariance = torch.einsum("sni,snj->nij", centred, centred) / (z.shape[0] - 1);   // [n, d, d] per x
        var sd = covariance.diagonal(dim1: 1, dim2: 2).sqrt();               // [n, d]
        var correlation = covariance / (sd.unsqueeze(2) * sd.unsqueeze(1));  // [n, d, d]

        var exactSd = exactCovariance.diagonal().sqrt();                     // [d]
        var exactCorrelation = exactCovariance / exactSd.outer(exactSd);     // [d, d]
        var offDiagonal = ones(d, d, dtype: ScalarType.Bool).triu(1);
        var meanError = ((mean - exactMean).abs() / exactSd).mean();          // |E_DDVI − E_exact| in exact posterior sds
        var sdRatio = (sd / exactSd).mean([0]);                               // [d], averaged over x
        var rho = correlation.mean([0]);                                      // [d, d], averaged over x
        var correlationError = (correlation - exactCorrelation).abs().masked_select(offDiagonal.expand_as(correlation)).mean();

        // The best mean-field Gaussian (the optimum of mean-field VI here): the exact means, sd_i = 1/√Λ_ii with
        // Λ = Σ⁻¹, no correlation. For scale, not fitted.
        var meanFieldSd = linalg.inv(exactCovariance).diagonal().rsqrt();    // [d]
        var meanFieldError = exactCorrelation.abs().masked_select(offDiagonal).mean();

        double Item(Tensor t) => t.item<double>();
        static string Cell(double value) => value.ToString("F3").PadLeft(6);
        void Row(string quantity, string exact, string ddvi, string meanField) =>
            Console.WriteLine($"| {quantity,-32} | {exact,6} | {ddvi,-14} | {meanField,-14} |");
        Console.WriteLine($"fitted in {fitSeconds:F1} s; {z.shape[0]} posterior draws for each of {n} held-out x; means over those x");
        Console.WriteLine();
        Row("quantity", "exact", "DDVI", "mean-field opt");
        Console.WriteLine($"| {new string('-', 32)} | ------ | {new string('-', 14)} | {new string('-', 14)} |");
        Row("mean error, in exact sds", Cell(0), Cell(Item(meanError)), Cell(0));
        for (int i = 0; i < d; i++)
            Row($"sd of z{i + 1} (× exact sd)", Cell(Item(exactSd[i])), $"{Cell(Item(sd[.., i].mean()))} (×{Item(sdRatio[i]):F2})",
                $"{Cell(Item(meanFieldSd[i]))} (×{Item(meanFieldSd[i] / exactSd[i]):F2})");
        foreach (var (i, j) in new[] { (0, 1), (2, 3), (0, 2) })
            Row($"ρ{i + 1}{j + 1}" + (i == 0 && j == 2 ? " (and the other 3 pairs)" : ""), Cell(Item(exactCorrelation[i, j])),
                Cell(Item(rho[i, j])), Cell(0));
        Row("mean |ρ − ρ exact|, 6 pairs", Cell(0), Cell(Item(correlationError)), Cell(Item(meanFieldError)));
        Console.WriteLine();
        Console.WriteLine($"total {totalSeconds:F1} s");

        bool finite = z.isfinite().all().item<bool>();
        double error = Item(correlationError);
        string verdict = !finite || !double.IsFinite(error) ? "non-finite values"
            : error >= 0.2 ? $"mean correlation error {error:F3} is not below 0.2" : "ok";
        Console.WriteLine($"Conjugate: {verdict}");
        return verdict == "ok" ? 0 : 1;
    }
}
