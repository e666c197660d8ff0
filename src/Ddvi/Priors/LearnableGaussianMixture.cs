using Ddvi.Runtime;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace Ddvi.Priors;

/// <summary>
/// A mixture of K diagonal Gaussians on R^d whose parameters are trained with the model it belongs to:
/// p(z) = Σ_k π_k N(z; μ_k, diag σ_k²), with exact density
/// log p(z) = logsumexp_k [log π_k + Σ_j log N(z_j; μ_kj, σ_kj²)]. Class k is component k.
/// </summary>
/// <remarks>
/// <para>
/// The means μ <c>[K, d]</c> are always learned. The log standard deviations log σ <c>[K, d]</c> and the mixture logits
/// <c>[K]</c> (π = softmax(logits)) are learned when asked for at construction, and otherwise kept fixed. All three are
/// registered with the module under the names <c>means</c>, <c>log_scales</c> and <c>logits</c> — learned ones as
/// parameters, fixed ones as persistent buffers — so <c>state_dict</c>, <c>save</c> and <c>load</c> carry all of them
/// (a random initialisation is saved too) and the keys do not depend on what is learned.
/// </para>
/// <para>
/// Not the paper's <see cref="GaussianMixturePrior"/>, the fixed ring of 10 elongated 2-D components. Unlike the paper's
/// priors, whose classes are equally likely, <see cref="SampleLabelled"/> draws the component from the mixture weights π,
/// so that its points are draws of p(z). Densities are computed in float64 and returned as float32, like the other
/// priors'; samples are float32 on the parameters' device, drawn without gradient.
/// </para>
/// </remarks>
public sealed class LearnableGaussianMixture : Module, ILabelledPrior
{
    public const string PriorName = "learnable-gaussian-mixture";

    // Field names are the state_dict keys. Not readonly: Module.to() replaces them with moved copies.
    Parameter means;    // [K, d]
    Tensor log_scales;  // [K, d], a Parameter when learned
    Tensor logits;      // [K], a Parameter when learned

    /// <summary>
    /// K components in d dimensions with means drawn from N(0, <paramref name="initScale"/>² I) by
    /// <paramref name="generator"/>, every standard deviation <paramref name="initialStd"/> and equal weights.
    /// </summary>
    /// <param name="components">K ≥ 1.</param>
    /// <param name="dimension">d ≥ 1.</param>
    /// <param name="generator">Draws the initial means.</param>
    /// <param name="initScale">Standard deviation of the initial means (finite, ≥ 0).</param>
    /// <param name="initialStd">Initial σ of every component and coordinate (finite, &gt; 0).</param>
    /// <param name="learnScales">Learn log σ; otherwise it stays at log <paramref name="initialStd"/>.</param>
    /// <param name="learnWeights">Learn the mixture logits; otherwise the weights stay equal.</param>
    /// <param name="device">Where the parameters live (CPU by default); the module can be moved later with <c>to</c>.</param>
    public LearnableGaussianMixture(int components, int dimension, Generator generator, double initScale = 1.0,
        double initialStd = 1.0, bool learnScales = false, bool learnWeights = false, Device? device = null)
        : this(RandomMeans(components, dimension, generator, initScale), initialStd, null, learnScales, learnWeights, device, ownsMeans: true)
    {
    }

    /// <summary>As the generator constructor, with the initial means drawn from a generator seeded by <paramref name="seed"/>.</summary>
    public LearnableGaussianMixture(int components, int dimension, long seed, double initScale = 1.0,
        double initialStd = 1.0, bool learnScales = false, bool learnWeights = false, Device? device = null)
        : this(RandomMeans(components, dimension, seed, initScale), initialStd, null, learnScales, learnWeights, device, ownsMeans: true)
    {
    }

    /// <summary>K components with the given initial means, every standard deviation <paramref name="initialStd"/>.</summary>
    /// <param name="initialMeans"><c>[K, d]</c> finite floating point; copied (as float32) to the parameters' device.</param>
    /// <param name="initialStd">Initial σ of every component and coordinate (finite, &gt; 0).</param>
    /// <param name="initialWeights">K positive finite weights (normalised here); null → equal weights.</param>
    /// <param name="learnScales">Learn log σ.</param>
    /// <param name="learnWeights">Learn the mixture logits.</param>
    /// <param name="device">Where the parameters live; null → the device of <paramref name="initialMeans"/>.</param>
    public LearnableGaussianMixture(Tensor initialMeans, double initialStd = 1.0, IReadOnlyList<double>? initialWeights = null,
        bool learnScales = false, bool learnWeights = false, Device? device = null)
        : this(CheckedMeans(initialMeans), initialStd, initialWeights, learnScales, learnWeights, device ?? initialMeans.device, ownsMeans: false)
    {
    }

    LearnableGaussianMixture(Tensor initialMeans, double initialStd, IReadOnlyList<double>? initialWeights,
        bool learnScales, bool learnWeights, Device? device, bool ownsMeans) : base(nameof(LearnableGaussianMixture))
    {
        try
        {
            PriorChecks.Scale(PriorName, nameof(initialStd), initialStd, strictlyPositive: true);
            ComponentCount = (int)initialMeans.shape[0];
            Dimension = (int)initialMeans.shape[1];
            LearnsScales = learnScales;
            LearnsWeights = learnWeights;
            var logWeights = InitialLogWeights(initialWeights, ComponentCount);
            device ??= CPU;

            Tensor meanValues, logScaleValues, logitValues;
            using (NewDisposeScope())
            using (no_grad())
            {
                meanValues = initialMeans.detach().to(float32, device).clone().DetachFromDisposeScope();
                logScaleValues = full([ComponentCount, Dimension], Scalars.Of(Math.Log(initialStd)), float32, device).DetachFromDisposeScope();
                logitValues = tensor(logWeights, float32, device).DetachFromDisposeScope();
            }
            // Kept out of any dispose scope the caller has open: the module owns its tensors and disposes them.
            means = Owned(new Parameter(meanValues, requires_grad: true));
            log_scales = learnScales ? Owned(new Parameter(logScaleValues, requires_grad: true)) : logScaleValues;
            logits = learnWeights ? Owned(new Parameter(logitValues, requires_grad: true)) : logitValues;
        }
        finally
        {
            if (ownsMeans) initialMeans.Dispose();
        }
        RegisterComponents();
    }

    public string Name => PriorName;

    /// <summary>d.</summary>
    public int Dimension { get; }

    /// <summary>K.</summary>
    public int ComponentCount { get; }

    /// <summary>K: class k is component k.</summary>
    public int ClassCount => ComponentCount;

    public bool HasExactDensity => true;

    /// <summary>Whether log σ is a trained parameter (else a fixed buffer).</summary>
    public bool LearnsScales { get; }

    /// <summary>Whether the mixture logits are a trained parameter (else a fixed buffer).</summary>
    public bool LearnsWeights { get; }

    public string DensityDescription =>
        $"exact: Σ_k π_k N(z; μ_k, diag σ_k²), K = {ComponentCount} components in d = {Dimension}, learned: means" +
        (LearnsScales ? ", scales" : "") + (LearnsWeights ? ", weights" : "") +
        (LearnsScales && LearnsWeights ? "" : $" (fixed: {string.Join(", ", new[] { LearnsScales ? null : "scales", LearnsWeights ? null : "weights" }.OfType<string>())})");

    /// <summary>The means μ <c>[K, d]</c>: the live parameter (do not dispose).</summary>
    public Tensor Means => means;

    /// <summary>log σ <c>[K, d]</c>: the live parameter or buffer (do not dispose).</summary>
    public Tensor LogScales => log_scales;

    /// <summary>The mixture logits <c>[K]</c>, π = softmax(logits): the live parameter or buffer (do not dispose).</summary>
    public Tensor Logits => logits;

    /// <summary>σ = exp(log σ) <c>[K, d]</c>, a new detached tensor.</summary>
    public Tensor Scales()
    {
        using var _ = no_grad();
        return log_scales.exp();
    }

    /// <summary>The mixture weights π = softmax(logits) <c>[K]</c>, a new detached tensor.</summary>
    public Tensor Weights()
    {
        using var _ = no_grad();
        return logits.softmax(0);
    }

    /// <summary>The learned parameters: the means, then log σ and the logits when they are learned.</summary>
    public IReadOnlyList<Parameter> PriorParameters
    {
        get
        {
            var learned = new List<Parameter> { means };
            if (log_scales is Parameter scales) learned.Add(scales);
            if (logits is Parameter weights) learned.Add(weights);
            return learned;
        }
    }

    /// <summary>log p(z) for z <c>[B, d]</c> → <c>[B]</c> float32, differentiable in z and in the learned parameters.</summary>
    public Tensor LogDensity(Tensor z)
    {
        CheckLatents(z);
        using var scope = NewDisposeScope();
        return LogJoint(z).logsumexp(1).to(float32).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// The posterior component probabilities p(k | z) = π_k N(z; μ_k, σ_k²) / p(z) for z <c>[B, d]</c> → <c>[B, K]</c>
    /// float32, rows summing to 1; differentiable like <see cref="LogDensity"/>. Their argmax clusters the latents.
    /// </summary>
    public Tensor Responsibilities(Tensor z)
    {
        CheckLatents(z);
        using var scope = NewDisposeScope();
        return LogJoint(z).softmax(1).to(float32).MoveToOuterDisposeScope();
    }

    /// <summary>n points <c>[n, d]</c> and their components <c>[n]</c> (int64), components drawn from the weights π.</summary>
    public (Tensor Z, Tensor Classes) SampleLabelled(long n, Generator generator)
    {
        PriorChecks.SampleCount(Name, n);
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        // Inverse CDF: the component of u ~ U[0, 1) is the number of cumulative weights ≤ u (clamped for rounding).
        var u = PriorChecks.Uniform(n, generator);                                         // [n]
        var cumulative = logits.detach().to(float64).cpu().softmax(0).cumsum(0);         // [K]
        var classes = u.unsqueeze(1).ge(cumulative.unsqueeze(0)).sum(1).clamp_max(Scalars.Of(ComponentCount - 1)).to(int64); // [n]
        var epsilon = RandomDraws.Normal([n, Dimension], float64, CPU, generator);        // [n, d]
        var mu = means.detach().to(float64).cpu().index_select(0, classes);
        var sigma = log_scales.detach().to(float64).cpu().index_select(0, classes).exp();
        var z = RandomDraws.Place(mu.add(sigma * epsilon, Scalars.One).to(float32), means.device);
        return (z.MoveToOuterDisposeScope(), RandomDraws.Place(classes, means.device).MoveToOuterDisposeScope());
    }

    /// <summary>
    /// n reparameterised draws z = μ_c + σ_c ⊙ ε <c>[n, d]</c> (float32, on the parameters' device) and their components c
    /// <c>[n]</c> (int64, drawn from the weights π as <see cref="SampleLabelled"/> does, without gradient). Unlike
    /// <see cref="SampleLabelled"/>, z keeps the autograd graph to the means and log standard deviations, so that a loss
    /// on prior draws (the clustering DDVI's noise-prediction term on p(z), arXiv:2401.02739's genomics experiment) moves
    /// the learned centres.
    /// </summary>
    public (Tensor Z, Tensor Classes) SampleReparameterised(long n, Generator generator)
    {
        PriorChecks.SampleCount(Name, n);
        using var scope = NewDisposeScope();
        Tensor classes, epsilon;
        using (no_grad())
        {
            var u = PriorChecks.Uniform(n, generator);                                     // [n]
            var cumulative = logits.detach().to(float64).cpu().softmax(0).cumsum(0);     // [K]
            classes = RandomDraws.Place(u.unsqueeze(1).ge(cumulative.unsqueeze(0)).sum(1).clamp_max(Scalars.Of(ComponentCount - 1)).to(int64), means.device);
            epsilon = RandomDraws.Place(RandomDraws.Normal([n, Dimension], float64, CPU, generator).to(float32), means.device); // [n, d]
        }
        var z = means.index_select(0, classes).add(log_scales.index_select(0, classes).exp() * epsilon, Scalars.One);
        return (z.MoveToOuterDisposeScope(), classes.MoveToOuterDisposeScope());
    }

    /// <summary>n points <c>[n, d]</c> of component <paramref name="classIndex"/>: μ_k + σ_k ε.</summary>
    public Tensor SampleClass(int classIndex, long n, Generator generator)
    {
        PriorChecks.ClassIndex(Name, classIndex, ClassCount);
        PriorChecks.SampleCount(Name, n);
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        var epsilon = RandomDraws.Normal([n, Dimension], float64, CPU, generator);        // [n, d]
        var mu = means.detach().to(float64).cpu().select(0, classIndex);                  // [d]
        var sigma = log_scales.detach().to(float64).cpu().select(0, classIndex).exp();    // [d]
        return RandomDraws.Place(mu.add(sigma * epsilon, Scalars.One).to(float32), means.device).MoveToOuterDisposeScope();
    }

    /// <summary>log π_k + log N(z; μ_k, diag σ_k²) <c>[B, K]</c> in float64.</summary>
    Tensor LogJoint(Tensor z)
    {
        var z64 = z.to(float64).unsqueeze(1);                    // [B, 1, d]
        var mu = means.to(float64).unsqueeze(0);                 // [1, K, d]
        var logSigma = log_scales.to(float64).unsqueeze(0);      // [1, K, d]
        var standardised = (z64 - mu) * (-logSigma).exp();      // [B, K, d]
        var logComponent = (standardised.pow(Scalars.Of(2)) * Scalars.Of(-0.5) - logSigma).sum(2) - Scalars.Of(0.5 * Dimension * Math.Log(2 * Math.PI)); // [B, K]
        return logComponent.add(logits.to(float64).log_softmax(0).unsqueeze(0), Scalars.One);
    }

    static Parameter Owned(Parameter parameter)
    {
        parameter.DetachFromDisposeScope();
        return parameter;
    }

    void CheckLatents(Tensor z) => PriorChecks.LatentBatch(Name, z, means.device, Dimension);

    static Tensor RandomMeans(int components, int dimension, Generator generator, double initScale)
    {
        CheckShape(components, dimension);
        PriorChecks.Scale(PriorName, nameof(initScale), initScale, strictlyPositive: false);
        ArgumentNullException.ThrowIfNull(generator);
        using var scope = NewDisposeScope();
        return (RandomDraws.Normal([components, dimension], float64, CPU, generator) * Scalars.Of(initScale)).MoveToOuterDisposeScope();
    }

    static Tensor RandomMeans(int components, int dimension, long seed, double initScale)
    {
        CheckShape(components, dimension);
        using var generator = new Generator(unchecked((ulong)seed));
        return RandomMeans(components, dimension, generator, initScale);
    }

    static void CheckShape(int components, int dimension)
    {
        if (components < 1)
            throw new ArgumentOutOfRangeException(nameof(components), components,
                $"{PriorName} prior: the number of components K must be at least 1, got {components}.");
        PriorChecks.Dimension(PriorName, dimension);
    }

    static Tensor CheckedMeans(Tensor initialMeans)
    {
        ArgumentNullException.ThrowIfNull(initialMeans);
        if (initialMeans.dim() != 2)
            throw new ArgumentException(
                $"{PriorName} prior: initial means must be a [K, d] tensor, got [{string.Join(", ", initialMeans.shape)}].", nameof(initialMeans));
        CheckShape((int)Math.Min(initialMeans.shape[0], int.MaxValue), (int)Math.Min(initialMeans.shape[1], int.MaxValue));
        if (!initialMeans.is_floating_point())
            throw new ArgumentException($"{PriorName} prior: initial means must be floating point, got {initialMeans.dtype}.", nameof(initialMeans));
        using (NewDisposeScope())
            if (!initialMeans.isfinite().all().item<bool>())
                throw new ArgumentException($"{PriorName} prior: initial means must be finite.", nameof(initialMeans));
        return initialMeans;
    }

    static double[] InitialLogWeights(IReadOnlyList<double>? weights, int components)
    {
        if (weights is null) return new double[components];
        if (weights.Count != components)
            throw new ArgumentException(
                $"{PriorName} prior: {weights.Count} initial weights given for {components} components.", nameof(weights));
        for (int k = 0; k < components; k++)
            if (!(weights[k] > 0) || !double.IsFinite(weights[k]))
                throw new ArgumentOutOfRangeException(nameof(weights), weights[k],
                    $"{PriorName} prior: initial weight {k} must be positive and finite, got {weights[k]}.");
        double total = weights.Sum();
        return weights.Select(w => Math.Log(w / total)).ToArray();
    }
}
