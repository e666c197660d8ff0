using Ddvi.Runtime;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace Ddvi.Likelihoods;

/// <summary>
/// p(x | z) = Π_j Binomial(x_j; n, p_j) with a known number of trials n and success probabilities p = sigmoid(ℓ) from
/// the decoder's logits ℓ (e.g. n = 2 for genotype dosages 0/1/2):
/// log p(x_j | z) = log C(n, x_j) + x_j log σ(ℓ_j) + (n − x_j) log σ(−ℓ_j), with log σ(ℓ) = −softplus(−ℓ) (libtorch's log_sigmoid) and
/// log C(n, x) = lgamma(n + 1) − lgamma(x + 1) − lgamma(n − x + 1). Support: the integers 0, 1, …, n.
/// </summary>
public sealed class BinomialLikelihood : Likelihood
{
    /// <param name="decoder">z <c>[B, d]</c> → logits ℓ <c>[B, D]</c>.</param>
    /// <param name="latentDim">d.</param>
    /// <param name="dataDim">D.</param>
    /// <param name="trials">n, the number of trials of every feature; at least 1.</param>
    public BinomialLikelihood(Module<Tensor, Tensor> decoder, int latentDim, int dataDim, int trials)
        : base(nameof(BinomialLikelihood), decoder, latentDim, dataDim)
    {
        if (trials < 1)
            throw new ArgumentOutOfRangeException(nameof(trials), trials, "BinomialLikelihood: the number of trials n must be at least 1.");
        Trials = trials;
        RegisterComponents();
    }

    /// <summary>n, the number of trials.</summary>
    public int Trials { get; }

    public override string Kind => "binomial";
    public override string SupportDescription => $"integers 0 to {Trials}";
    public override string Describe() => $"{Kind}(D = {DataDim}, n = {Trials})";

    /// <summary>n sigmoid(ℓ).</summary>
    public override Tensor MeanFromOutput(Tensor output)
    {
        using var scope = NewDisposeScope();
        return (functional.sigmoid(output) * Scalars.Of(Trials)).MoveToOuterDisposeScope();
    }

    /// <summary>x_j = Σ_{k=1..n} 1[u_k &lt; p_j] with uniforms u_k drawn with <paramref name="generator"/>, as floats.</summary>
    public override Tensor SampleFromOutput(Tensor output, Generator generator)
    {
        using var scope = NewDisposeScope();
        var p = functional.sigmoid(output);
        var count = zeros_like(p);
        for (int k = 0; k < Trials; k++)
        {
            using var draw = NewDisposeScope();
            var u = Runtime.RandomDraws.Uniform(p.shape, p.dtype, p.device, generator);
            count.add_(u.lt(p).to(p.dtype), Scalars.One);
        }
        return count.MoveToOuterDisposeScope();
    }

    protected override Tensor ElementLogProb(Tensor output, Tensor x, Tensor? mask)
    {
        using var scope = NewDisposeScope();
        var xs = Filled(x, mask, 0);
        var failures = xs.neg().add(Scalars.Of(Trials), Scalars.One);                                                         // n − x
        var logChoose = lgamma(full_like(xs, Scalars.Of(Trials + 1.0))) - lgamma(xs.add(Scalars.Of(1), Scalars.One)) - lgamma(failures.add(Scalars.Of(1), Scalars.One));
        var logP = functional.logsigmoid(output);                                        // log σ(ℓ)
        var logQ = functional.logsigmoid(-output);                                       // log σ(−ℓ)
        return logChoose.add(xs * logP, Scalars.One).add(failures * logQ, Scalars.One).MoveToOuterDisposeScope();
    }

    protected override Tensor InvalidValues(Tensor x) => x.lt(Scalars.Of(0)).logical_or(x.gt(Scalars.Of(Trials))).logical_or(x.ne(x.floor()));
}
