using Ddvi.Likelihoods;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace Ddvi.Tests.Likelihoods;

/// <summary>Decoders with known weights, latents, valid data per likelihood, and reference special functions.</summary>
internal static class LikelihoodFixtures
{
    public const int LatentDim = 3;
    public const int DataDim = 4;

    /// <summary>A float64 <c>nn.Linear(d, D)</c> with fixed weights W_ij = 0.5 sin(1 + i d + j), b_i = 0.3 cos i.</summary>
    public static Linear Decoder(int latentDim = LatentDim, int dataDim = DataDim, double scale = 0.5)
    {
        var linear = Linear(latentDim, dataDim, dtype: float64);
        using var _ = no_grad();
        var w = new double[dataDim * latentDim];
        for (int i = 0; i < dataDim; i++)
            for (int j = 0; j < latentDim; j++)
                w[i * latentDim + j] = scale * Math.Sin(1 + i * latentDim + j);
        var b = Enumerable.Range(0, dataDim).Select(i => 0.3 * Math.Cos(i)).ToArray();
        using var wt = tensor(w, dtype: float64).reshape(dataDim, latentDim);
        using var bt = tensor(b, dtype: float64);
        linear.weight!.copy_(wt);
        linear.bias!.copy_(bt);
        return linear;
    }

    /// <summary>Latents [B, d] spread over roughly [−2, 2], float64.</summary>
    public static Tensor Latents(int batch = 5, int latentDim = LatentDim)
    {
        var v = new double[batch * latentDim];
        for (int k = 0; k < v.Length; k++) v[k] = 2 * Math.Sin(0.7 * k + 0.3);
        return tensor(v, dtype: float64).reshape(batch, latentDim);
    }

    /// <summary>[rows, cols] float64 from a row-major array.</summary>
    public static Tensor Matrix(double[] values, int rows, int cols) => tensor(values, dtype: float64).reshape(rows, cols);

    public static double[,] ToArray(Tensor t)
    {
        var c = t.detach().to(float64).contiguous();
        var flat = c.data<double>().ToArray();
        int rows = (int)c.shape[0], cols = (int)c.shape[1];
        var result = new double[rows, cols];
        for (int i = 0; i < rows; i++)
            for (int j = 0; j < cols; j++)
                result[i, j] = flat[i * cols + j];
        return result;
    }

    public static double[] ToVector(Tensor t) => t.detach().to(float64).contiguous().data<double>().ToArray();

    /// <summary>The five likelihoods by kind, all float64, with a decoder of <see cref="Decoder"/>.</summary>
    public static Likelihood Create(string kind) => kind switch
    {
        "bernoulli" => new BernoulliLikelihood(Decoder(), LatentDim, DataDim),
        "gaussian" => new GaussianLikelihood(Decoder(), LatentDim, DataDim, sigma: 0.7),
        "gaussian-learned" => WithDoubles(new GaussianLikelihood(Decoder(), LatentDim, DataDim, sigma: 0.7, learnScale: true)),
        "binomial" => new BinomialLikelihood(Decoder(), LatentDim, DataDim, trials: 2),
        "poisson" => new PoissonLikelihood(Decoder(), LatentDim, DataDim),
        "negative_binomial" => WithDoubles(new NegativeBinomialLikelihood(Decoder(), LatentDim, DataDim, dispersion: 2.5)),
        "negative_binomial-sized" => WithDoubles(new NegativeBinomialLikelihood(Decoder(), LatentDim, DataDim, dispersion: 2.5, referenceTotal: 6.0)),
        _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, null),
    };

    public static readonly TheoryData<string> Kinds =
        ["bernoulli", "gaussian", "gaussian-learned", "binomial", "poisson", "negative_binomial", "negative_binomial-sized"];

    static T WithDoubles<T>(T module) where T : Module
    {
        module.to(float64);
        return module;
    }

    /// <summary>Valid data [5, 4] for a kind (every value in the support, none degenerate).</summary>
    public static Tensor ValidData(string kind) => kind switch
    {
        "bernoulli" => Matrix([0, 1, 0.25, 1, 1, 0, 0.5, 0, 0.75, 1, 0, 0, 1, 1, 0.1, 0, 0, 0.9, 1, 1], 5, 4),
        "binomial" => Matrix([0, 1, 2, 1, 2, 2, 0, 0, 1, 1, 1, 2, 0, 0, 0, 1, 2, 1, 0, 2], 5, 4),
        "poisson" or "negative_binomial" or "negative_binomial-sized"
            => Matrix([0, 3, 1, 7, 2, 0, 0, 1, 5, 4, 12, 0, 1, 1, 2, 3, 0, 9, 0, 4], 5, 4),
        _ => Matrix([0.3, -1.2, 2.5, 0.0, 1.1, 0.4, -0.7, 3.2, -2.0, 0.9, 0.05, 1.6, 0.8, -0.3, -1.5, 2.2, 0.6, 1.9, -0.4, 0.1], 5, 4),
    };

    /// <summary>A mask [5, 4] with a few missing entries (one row fully observed, one with a single observed entry).</summary>
    public static Tensor Mask() => Matrix([1, 0, 1, 1, 1, 1, 1, 1, 0, 0, 1, 0, 1, 1, 0, 1, 0, 0, 0, 1], 5, 4).to(ScalarType.Bool);

    /// <summary>log Γ(x) for x &gt; 0: Lanczos (g = 7, 9 terms), relative error about 1e-15; written independently of libtorch.</summary>
    public static double LogGamma(double x)
    {
        if (x < 0.5) return Math.Log(Math.PI / Math.Abs(Math.Sin(Math.PI * x))) - LogGamma(1 - x);
        double[] c =
        [
            0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059,
            12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7,
        ];
        x -= 1;
        double a = c[0];
        double t = x + 7.5;
        for (int i = 1; i < 9; i++) a += c[i] / (x + i);
        return 0.5 * Math.Log(2 * Math.PI) + (x + 0.5) * Math.Log(t) - t + Math.Log(a);
    }

    /// <summary>log k! by summing logs (exact up to rounding for integer k).</summary>
    public static double LogFactorial(int k)
    {
        double s = 0;
        for (int i = 2; i <= k; i++) s += Math.Log(i);
        return s;
    }

    public static double Sigmoid(double l) => 1 / (1 + Math.Exp(-l));

    /// <summary>Same shape and bitwise-equal values (no NaN expected).</summary>
    public static bool Identical(Tensor a, Tensor b) => a.shape.SequenceEqual(b.shape) && a.eq(b).all().item<bool>();

    /// <summary>Element by element to <paramref name="precision"/> decimal places.</summary>
    public static void AssertClose(double[] expected, double[] actual, int precision)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int k = 0; k < expected.Length; k++) Assert.Equal(expected[k], actual[k], precision);
    }
}
