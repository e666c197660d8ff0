using Ddvi.Runtime;
using System.Globalization;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace Ddvi.Likelihoods;

/// <summary>
/// p(x | z) = Π_j NB(x_j; μ_j, r_j), the negative binomial with mean μ and dispersion r (variance μ + μ²/r), for
/// over-dispersed counts such as sequencing reads. The decoder gives the log-mean per unit size ρ, so
/// μ_ij = s_i exp(ρ_ij), and r_j is learned per feature as the parameter <c>log_r</c> <c>[D]</c>:
/// log p(x | z) = lgamma(x + r) − lgamma(r) − lgamma(x + 1) + r log(r / (r + μ)) + x log(μ / (r + μ)),
/// computed in log space as r log σ(log r − log μ) + x log σ(log μ − log r) with log μ = log s + ρ (log σ = libtorch's
/// log_sigmoid, −softplus(−·)).
/// Support: the integers 0, 1, 2, ….
/// </summary>
/// <remarks>
/// <para>The size factor s_i = (Σ_j x_ij over the observed entries of row i) / <see cref="ReferenceTotal"/> when the
/// likelihood is built with a reference total (e.g. <see cref="MedianTotal"/> of the training data), and 1 otherwise.
/// It is computed from the data inside the log-probability; a row with no counts has s = 0, μ = 0 and p(x = 0) = 1.</para>
/// <para><see cref="MeanFromOutput"/> and <see cref="SampleFromOutput"/> have no data, so they use s = 1.</para>
/// </remarks>
public sealed class NegativeBinomialLikelihood : Likelihood
{
    // Field name = checkpoint key.
    private readonly Parameter log_r;

    /// <param name="decoder">z <c>[B, d]</c> → log-means per unit size ρ <c>[B, D]</c>.</param>
    /// <param name="latentDim">d.</param>
    /// <param name="dataDim">D.</param>
    /// <param name="dispersion">The initial r of every feature; positive and finite (log r is a float32 parameter).</param>
    /// <param name="referenceTotal">The total count of a unit-size row (positive and finite), or null for s = 1.</param>
    public NegativeBinomialLikelihood(Module<Tensor, Tensor> decoder, int latentDim, int dataDim, double dispersion = 1.0, double? referenceTotal = null)
        : base(nameof(NegativeBinomialLikelihood), decoder, latentDim, dataDim)
    {
        if (!(dispersion > 0) || !double.IsFinite(dispersion))
            throw new ArgumentOutOfRangeException(nameof(dispersion), dispersion, "NegativeBinomialLikelihood: the dispersion r must be positive and finite.");
        if (referenceTotal is double total && (!(total > 0) || !double.IsFinite(total)))
            throw new ArgumentOutOfRangeException(nameof(referenceTotal), total, "NegativeBinomialLikelihood: the reference total must be positive and finite.");
        ReferenceTotal = referenceTotal;
        log_r = Parameter(full(dataDim, Scalars.Of(Math.Log(dispersion)), dtype: float32));
        RegisterComponents();
    }

    /// <summary>The total count of a row of size factor 1, or null when there is no size factor (s = 1).</summary>
    public double? ReferenceTotal { get; }

    public override string Kind => "negative_binomial";
    public override string SupportDescription => "integers 0, 1, 2, …";

    public override string Describe() => ReferenceTotal is double total
        ? $"{Kind}(D = {DataDim}, r learned per feature, size factor = row total / {total.ToString("R", CultureInfo.InvariantCulture)})"
        : $"{Kind}(D = {DataDim}, r learned per feature)";

    /// <summary>The current dispersion r <c>[D]</c>, detached (a new tensor the caller owns).</summary>
    public Tensor Dispersion()
    {
        using var _ = no_grad();
        return log_r.detach().exp();
    }

    /// <summary>
    /// The median over rows of the row totals Σ_j x_ij (observed entries only when <paramref name="mask"/> is given),
    /// the mean of the two middle totals for an even number of rows: a reference total for the size factor.
    /// </summary>
    public static double MedianTotal(Tensor x, Tensor? mask = null)
    {
        ArgumentNullException.ThrowIfNull(x);
        if (x.dim() != 2 || x.shape[0] < 1)
            throw new ArgumentException($"NegativeBinomialLikelihood.MedianTotal: data must be [N, D] with N ≥ 1, got [{string.Join(", ", x.shape)}].", nameof(x));
        if (mask is not null && !mask.shape.SequenceEqual(x.shape))
            throw new ArgumentException($"NegativeBinomialLikelihood.MedianTotal: the mask must have the data's shape [{string.Join(", ", x.shape)}], got [{string.Join(", ", mask.shape)}].", nameof(mask));
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var totals = Filled(x, mask, 0).to(float64).sum(1).sort().Values;                        // [N], ascending
        long n = totals.shape[0];
        double lower = totals[(n - 1) / 2].item<double>(), upper = totals[n / 2].item<double>();
        return 0.5 * (lower + upper);
    }

    /// <summary>μ = exp(ρ), the mean of a row of size factor 1.</summary>
    public override Tensor MeanFromOutput(Tensor output) => output.exp();

    /// <summary>
    /// x ~ NB(exp(ρ), r) with s = 1, drawn exactly as the gamma–Poisson mixture λ ~ Gamma(r, scale μ / r), x ~ Poisson(λ)
    /// with <paramref name="generator"/>, as floats.
    /// </summary>
    public override Tensor SampleFromOutput(Tensor output, Generator generator)
    {
        using var scope = NewDisposeScope();
        var r = log_r.detach().exp().to(output.dtype).expand_as(output);                   // [B, D]
        var rate = LikelihoodDraws.StandardGamma(r, generator) * output.exp() / r;           // Gamma(r, μ/r)
        return LikelihoodDraws.Poisson(rate, generator).MoveToOuterDisposeScope();
    }

    protected override Tensor ElementLogProb(Tensor output, Tensor x, Tensor? mask)
    {
        using var scope = NewDisposeScope();
        var xs = Filled(x, mask, 0);                                                        // [B, D]
        var logMu = output;                                                                 // log μ = log s + ρ
        if (ReferenceTotal is double total)
            logMu = output.add(xs.sum(-1, keepdim: true).log() - Scalars.Of(Math.Log(total)), Scalars.One);
        var logR = log_r.to(output.dtype);                                                  // [D]
        var r = logR.exp();
        var logGammaRatio = lgamma(xs.add(r, Scalars.One)) - lgamma(r) - lgamma(xs.add(Scalars.Of(1), Scalars.One));
        var zeroTerm = r * functional.logsigmoid(logR - logMu);                            // r log(r / (r + μ))
        // x log(μ / (r + μ)), taken as 0 where x = 0 (also when μ = 0, where the product would be 0 · (−∞)).
        var countTerm = where(xs.gt(Scalars.Of(0)), xs * functional.logsigmoid(logMu - logR), zeros_like(xs));
        return logGammaRatio.add(zeroTerm, Scalars.One).add(countTerm, Scalars.One).MoveToOuterDisposeScope();
    }

    protected override Tensor InvalidValues(Tensor x) => x.lt(Scalars.Of(0)).logical_or(x.ne(x.floor()));
}
