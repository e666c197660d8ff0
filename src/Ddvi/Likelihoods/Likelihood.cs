using Ddvi.Runtime;
using TorchSharp;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace Ddvi.Likelihoods;

/// <summary>
/// A likelihood p(x | z) of a latent variable model p(x, z) = p(z) p(x | z): a module that owns its decoder network
/// (z <c>[B, d]</c> → one output <c>[B, D]</c> per example, the distribution's natural parameter per feature) and any
/// parameters of its own (a learned σ, a dispersion), so that they are registered, saved and optimised with the model.
/// Features are conditionally independent given z.
/// </summary>
/// <remarks>
/// <para>Every method that takes data checks its shape <c>[B, D]</c>; <see cref="CheckData"/> also checks the values lie
/// in the distribution's support (fit-time validation of a whole data set, not called per step).</para>
/// <para>A mask <c>[B, D]</c> (bool, or float with 1 = observed, 0 = missing) removes missing entries from the
/// log-probability: log p(x_obs | z) = Σ_j m_j log p(x_j | z). Values under a 0 mask are never read (they may be NaN).</para>
/// </remarks>
public abstract class Likelihood : Module
{
    /// <param name="name">The module's name.</param>
    /// <param name="decoder">z <c>[B, d]</c> → decoder output <c>[B, D]</c>.</param>
    /// <param name="latentDim">d.</param>
    /// <param name="dataDim">D.</param>
    protected Likelihood(string name, Module<Tensor, Tensor> decoder, int latentDim, int dataDim) : base(name)
    {
        ArgumentNullException.ThrowIfNull(decoder);
        if (latentDim < 1)
            throw new ArgumentOutOfRangeException(nameof(latentDim), latentDim, $"{name}: the latent dimension d must be at least 1.");
        if (dataDim < 1)
            throw new ArgumentOutOfRangeException(nameof(dataDim), dataDim, $"{name}: the data dimension D must be at least 1.");
        this.decoder = decoder;
        LatentDim = latentDim;
        DataDim = dataDim;
        // Derived classes register their own parameters and call RegisterComponents() last in their constructors.
    }

    // Field name = checkpoint key prefix ("decoder.…").
    private readonly Module<Tensor, Tensor> decoder;

    /// <summary>The decoder network z → per-feature output.</summary>
    public Module<Tensor, Tensor> Decoder => decoder;

    /// <summary>A short name of the distribution (<c>bernoulli</c>, <c>gaussian</c>, …), stored in saved models.</summary>
    public abstract string Kind { get; }

    /// <summary>d, the latent width the decoder reads.</summary>
    public int LatentDim { get; }

    /// <summary>D, the data width.</summary>
    public int DataDim { get; }

    /// <summary>The decoder's output for z <c>[B, d]</c> → <c>[B, D]</c>.</summary>
    public Tensor Decode(Tensor z)
    {
        CheckLatents(z);
        return decoder.call(z);
    }

    /// <summary>log p(x | z) summed over the (observed) features: x <c>[B, D]</c>, z <c>[B, d]</c> → <c>[B]</c>.</summary>
    public Tensor LogProb(Tensor x, Tensor z, Tensor? mask = null)
    {
        using var scope = NewDisposeScope();
        return LogProbFromOutput(Decode(z), x, mask).MoveToOuterDisposeScope();
    }

    /// <summary>log p(x | z) from a decoder output already computed: <c>[B, D]</c>, x <c>[B, D]</c> → <c>[B]</c>.</summary>
    public Tensor LogProbFromOutput(Tensor output, Tensor x, Tensor? mask = null)
    {
        CheckShape(output, x, mask);
        using var scope = NewDisposeScope();
        var perFeature = ElementLogProb(output, x, mask);                    // [B, D]
        if (mask is not null)
            perFeature = where(ObservedMask(mask), perFeature, zeros_like(perFeature));
        return perFeature.sum(-1).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// −(1/(B·D)) Σ log p(x_ij | z_i), the mean negative log-likelihood per feature and example (no mask): the
    /// reconstruction term of the authors' release, which averages its cross-entropy over pixels. A scalar.
    /// </summary>
    public virtual Tensor MeanNegativeLogProbPerFeature(Tensor output, Tensor x)
    {
        CheckShape(output, x, null);
        using var scope = NewDisposeScope();
        return (-ElementLogProb(output, x, null).mean()).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// The name of the reconstruction term in loss records: <c>nll</c> (the mean negative log-likelihood per feature);
    /// the Bernoulli likelihood says <c>bce</c>, the release's name for it.
    /// </summary>
    public virtual string ReconstructionTermName => "nll";

    /// <summary>E[x | z] <c>[B, D]</c> for z <c>[B, d]</c>.</summary>
    public Tensor Mean(Tensor z)
    {
        using var scope = NewDisposeScope();
        return MeanFromOutput(Decode(z)).MoveToOuterDisposeScope();
    }

    /// <summary>E[x | z] from a decoder output <c>[B, D]</c>.</summary>
    public abstract Tensor MeanFromOutput(Tensor output);

    /// <summary>x ~ p(x | z) <c>[B, D]</c> for z <c>[B, d]</c>, drawn with <paramref name="generator"/>; no gradient.</summary>
    public Tensor Sample(Tensor z, Generator generator)
    {
        ArgumentNullException.ThrowIfNull(generator);
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        return SampleFromOutput(Decode(z), generator).MoveToOuterDisposeScope();
    }

    /// <summary>x ~ p(x | z) from a decoder output <c>[B, D]</c>.</summary>
    public abstract Tensor SampleFromOutput(Tensor output, Generator generator);

    /// <summary>
    /// Checks that data <c>[N, D]</c> fits this likelihood (shape, finite values, the support), naming
    /// <paramref name="source"/> and the first offending row and column in the error. Missing entries (mask 0) are
    /// not checked.
    /// </summary>
    public void CheckData(Tensor x, string source, Tensor? mask = null)
    {
        ArgumentNullException.ThrowIfNull(x);
        if (x.dim() != 2 || x.shape[1] != DataDim)
            throw new ArgumentException($"{source}: {Kind} likelihood expects data [N, {DataDim}], got [{string.Join(", ", x.shape)}].");
        using var scope = NewDisposeScope();
        var bad = InvalidValues(x).logical_or(x.isfinite().logical_not());     // [N, D] bool
        if (mask is not null) bad = bad.logical_and(ObservedMask(mask));
        if (bad.any().item<bool>())
        {
            var first = bad.nonzero()[0];
            long row = first[0].item<long>(), column = first[1].item<long>();
            double value = x[row, column].to(float64).item<double>();
            throw new ArgumentException($"{source}: row {row}, column {column} holds {value}, outside the support of the {Kind} likelihood ({SupportDescription}).");
        }
    }

    /// <summary>The support in words, for errors (e.g. "values in [0, 1]").</summary>
    public abstract string SupportDescription { get; }

    /// <summary>A description of the likelihood and its settings, for logs and saved models.</summary>
    public virtual string Describe() => $"{Kind}(D = {DataDim})";

    /// <summary>log p(x_ij | z_i) per element <c>[B, D]</c>; elements under a 0 mask may be anything (they are zeroed).</summary>
    protected abstract Tensor ElementLogProb(Tensor output, Tensor x, Tensor? mask);

    /// <summary>True where x lies outside the support <c>[N, D]</c> (NaN and infinities are caught by the caller).</summary>
    protected abstract Tensor InvalidValues(Tensor x);

    /// <summary>A mask as bool <c>[B, D]</c>: true where observed.</summary>
    protected static Tensor ObservedMask(Tensor mask) => mask.dtype == ScalarType.Bool ? mask : mask.ne(Scalars.Of(0));

    /// <summary>Replaces missing entries of x by <paramref name="fill"/> so that no NaN reaches a gradient.</summary>
    protected static Tensor Filled(Tensor x, Tensor? mask, double fill)
        => mask is null ? x : where(ObservedMask(mask), x, full_like(x, Scalars.Of(fill)));

    private void CheckLatents(Tensor z)
    {
        ArgumentNullException.ThrowIfNull(z);
        if (z.dim() != 2 || z.shape[1] != LatentDim)
            throw new ArgumentException($"{Kind} likelihood: latents must be [B, {LatentDim}], got [{string.Join(", ", z.shape)}].", nameof(z));
    }

    /// <summary>Checks output and x are <c>[B, D]</c> alike and the mask, if any, has their shape.</summary>
    protected void CheckShape(Tensor output, Tensor x, Tensor? mask)
    {
        ArgumentNullException.ThrowIfNull(output);
        ArgumentNullException.ThrowIfNull(x);
        if (x.dim() != 2 || x.shape[1] != DataDim || output.dim() != 2 || output.shape[0] != x.shape[0] || output.shape[1] != DataDim)
            throw new ArgumentException($"{Kind} likelihood: data must be [B, {DataDim}] with a decoder output of the same shape, got x [{string.Join(", ", x.shape)}] and output [{string.Join(", ", output.shape)}].", nameof(x));
        if (mask is not null && !mask.shape.SequenceEqual(x.shape))
            throw new ArgumentException($"{Kind} likelihood: the mask must have the data's shape [{string.Join(", ", x.shape)}], got [{string.Join(", ", mask.shape)}].", nameof(mask));
    }
}
