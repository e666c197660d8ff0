using Ddvi.Likelihoods;
using Ddvi.Models;
using static TorchSharp.torch;

namespace Ddvi.Tests.Evaluation;

/// <summary>
/// p(z) = N(0, I_d), p(x|z) = N(Wz + b, σ²I_D) in float64: log p(x) = log N(x; b, WWᵀ + σ²I) and the posterior
/// q*(z|x) = N(Σ Wᵀ(x − b)/σ², Σ), Σ = (I + WᵀW/σ²)⁻¹, both in closed form.
/// </summary>
internal sealed class LinearGaussianModel : IDisposable
{
    public const int D = 6;
    public const int LatentDim = 2;
    public const double Sigma = 0.5;

    public LinearGaussianModel(int seed)
    {
        using var generator = new Generator((ulong)seed);
        W = (randn([D, LatentDim], dtype: float64, generator: generator) * 0.8).DetachFromDisposeScope();
        B = randn([D], dtype: float64, generator: generator).DetachFromDisposeScope();
        var decoder = nn.Linear(LatentDim, D, dtype: float64);
        using (no_grad())
        {
            decoder.weight!.copy_(W);
            decoder.bias!.copy_(B);
        }
        Likelihood = new GaussianLikelihood(decoder, LatentDim, D, Sigma);
        using var scope = NewDisposeScope();
        var precision = eye(LatentDim, dtype: float64) + W.t().matmul(W) / (Sigma * Sigma);
        PosteriorCovariance = linalg.inv(precision).MoveToOuterDisposeScope();
    }

    public Tensor W { get; }                    // [D, d]
    public Tensor B { get; }                    // [D]
    public Tensor PosteriorCovariance { get; }  // [d, d]
    public GaussianLikelihood Likelihood { get; }

    /// <summary>x ~ p(x): <c>[n, D]</c>.</summary>
    public Tensor Sample(int n, Generator generator)
    {
        using var scope = NewDisposeScope();
        var z = randn([n, LatentDim], dtype: float64, generator: generator);
        var noise = randn([n, D], dtype: float64, generator: generator) * Sigma;
        return (z.matmul(W.t()) + B + noise).MoveToOuterDisposeScope();
    }

    /// <summary>log p(x) = log N(x; b, WWᵀ + σ²I) per row <c>[n]</c>.</summary>
    public Tensor LogMarginal(Tensor x)
    {
        using var scope = NewDisposeScope();
        var covariance = W.matmul(W.t()) + Sigma * Sigma * eye(D, dtype: float64);
        var centred = x - B;                                                                    // [n, D]
        var solved = linalg.solve(covariance, centred.t()).t();                                 // [n, D]
        var (_, logDet) = linalg.slogdet(covariance);
        var quadratic = (centred * solved).sum(1);
        return (-0.5 * (quadratic + logDet + D * Math.Log(2 * Math.PI))).MoveToOuterDisposeScope();
    }

    /// <summary>The exact posterior mean Σ Wᵀ(x − b)/σ² per row <c>[n, d]</c>.</summary>
    public Tensor PosteriorMean(Tensor x)
    {
        using var scope = NewDisposeScope();
        return ((x - B).matmul(W).matmul(PosteriorCovariance) / (Sigma * Sigma)).MoveToOuterDisposeScope();
    }

    public void Dispose()
    {
        Likelihood.Dispose();
        W.Dispose();
        B.Dispose();
        PosteriorCovariance.Dispose();
    }
}

/// <summary>
/// q(z|x) = N(m(x) + shift, L Lᵀ) for the <see cref="LinearGaussianModel"/>: with no shift and L the Cholesky factor of
/// the exact posterior covariance it is the exact posterior; otherwise a deliberately imperfect one.
/// log q = −½‖ε‖² − Σ log L_ii − (d/2) log 2π for z = m + shift + Lε.
/// </summary>
internal sealed class GaussianTestPosterior(LinearGaussianModel model, Tensor choleskyFactor, double shift) : IPosteriorDensity
{
    public int LatentDim => LinearGaussianModel.LatentDim;
    public Likelihood Likelihood => model.Likelihood;
    public string PosteriorDensityDescription => "test: full-covariance Gaussian";

    /// <summary>The exact posterior.</summary>
    public static GaussianTestPosterior Exact(LinearGaussianModel model) => new(model, linalg.cholesky(model.PosteriorCovariance), 0);

    /// <summary>A mean-field posterior with the exact diagonal variances times <paramref name="varianceScale"/> and a mean shifted by <paramref name="shift"/>.</summary>
    public static GaussianTestPosterior MeanField(LinearGaussianModel model, double varianceScale, double shift) =>
        new(model, (model.PosteriorCovariance.diagonal() * varianceScale).sqrt().diag(), shift);

    public PosteriorDraws DrawWithLogDensity(Tensor x, int samples, Generator generator)
    {
        using var scope = NewDisposeScope();
        long batch = x.shape[0];
        var mean = model.PosteriorMean(x) + shift;                                               // [B, d]
        var epsilon = randn([samples, batch, LatentDim], dtype: float64, generator: generator);   // [K, B, d]
        var z = mean.unsqueeze(0) + epsilon.matmul(choleskyFactor.t());
        var logQ = -0.5 * epsilon.square().sum(-1) - choleskyFactor.diagonal().log().sum() - 0.5 * LatentDim * Math.Log(2 * Math.PI);
        return new PosteriorDraws(z.MoveToOuterDisposeScope(), logQ.MoveToOuterDisposeScope());
    }
}
