using Ddvi.Diffusion;
using Ddvi.Models;
using Ddvi.Priors;
using Ddvi.Runtime;
using static TorchSharp.torch;

namespace Ddvi.Objectives;

/// <summary>
/// Settings of the clustering objectives (the paper's genomics experiment, arXiv:2401.02739; the authors' release,
/// <c>diff_vae_autoclustering_mse</c>). Defaults are the release's.
/// </summary>
/// <param name="KlWeight">β, weight of KL(q(y | x) ‖ N(0, I)) in the wake loss (0.005).</param>
/// <param name="Margin">η, the separation hinge's margin between two centres (1.5).</param>
/// <param name="Bound">Every centre coordinate is kept in [−Bound, Bound] by a penalty (2.5).</param>
/// <param name="BoundWeight">Weight of that penalty (100).</param>
/// <param name="SeparationRampStart">Epoch (0-based) after which the separation and bound terms' weight grows (100).</param>
/// <param name="SeparationRampEvery">The weight grows by 1 every this many epochs after the ramp's start (10).</param>
/// <param name="NoiseLoss">Regression loss of the noise prediction on prior draws (Huber, the release's).</param>
/// <param name="Reconstruction">How −log p(x|z) enters the wake loss (per-feature mean, the release's MSE criterion).</param>
public sealed record ClusteringWeights(double KlWeight = 0.005, double Margin = 1.5, double Bound = 2.5, double BoundWeight = 100,
    int SeparationRampStart = 100, int SeparationRampEvery = 10, NoiseLossKind NoiseLoss = NoiseLossKind.Huber,
    ReconstructionScale Reconstruction = ReconstructionScale.PerFeatureMean)
{
    /// <summary>The release's weight of the separation and bound terms in a (0-based) epoch: 1 up to the ramp's start,
    /// then ⌊(epoch − start) / every⌋ + 1 (10 in the last of 200 epochs).</summary>
    public double SeparationWeight(int epoch) =>
        epoch <= SeparationRampStart ? 1.0 : (epoch - SeparationRampStart) / SeparationRampEvery + 1;

    public void Validate()
    {
        static void NonNegative(double value, string name)
        {
            if (!double.IsFinite(value) || value < 0)
                throw new ArgumentOutOfRangeException(name, value, $"ClusteringWeights: {name} must be a finite number ≥ 0.");
        }
        NonNegative(KlWeight, nameof(KlWeight));
        NonNegative(Margin, nameof(Margin));
        NonNegative(BoundWeight, nameof(BoundWeight));
        if (!(Bound > 0) || !double.IsFinite(Bound))
            throw new ArgumentOutOfRangeException(nameof(Bound), Bound, "ClusteringWeights: Bound must be positive and finite.");
        if (SeparationRampStart < 0)
            throw new ArgumentOutOfRangeException(nameof(SeparationRampStart), SeparationRampStart, "ClusteringWeights: SeparationRampStart must be ≥ 0.");
        if (SeparationRampEvery < 1)
            throw new ArgumentOutOfRangeException(nameof(SeparationRampEvery), SeparationRampEvery, "ClusteringWeights: SeparationRampEvery must be ≥ 1.");
    }
}

/// <summary>
/// The objectives of clustering with a learned Gaussian-mixture prior, as pure functions (the paper's genomics
/// experiment; the authors' release). Centres μ_k are pushed apart by a hinge on pairwise distances and kept in a box;
/// under <see cref="ClusteringDdvi"/> they follow the chain through the noise-prediction loss on their own draws.
/// Every random draw takes the caller's generator.
/// </summary>
public static class ClusteringObjectives
{
    /// <summary>
    /// The separation hinge over <paramref name="pairs"/> pairs of components (a, b) drawn uniformly with replacement:
    /// mean over pairs of max(0, η − √(‖μ_a − μ_b‖² + 10⁻⁶)). As in the release, a pair may draw the same component
    /// twice; such a pair adds a constant ≈ η and no gradient.
    /// </summary>
    /// <param name="means">The centres <c>[K, d]</c>.</param>
    public static Tensor Separation(Tensor means, int pairs, double margin, Generator generator) // [K, d] → []
    {
        ArgumentNullException.ThrowIfNull(means);
        ArgumentNullException.ThrowIfNull(generator);
        if (means.dim() != 2 || means.shape[0] < 1)
            throw new ArgumentException($"ClusteringObjectives.Separation: the centres must be [K, d] with K ≥ 1, got [{string.Join(", ", means.shape)}].", nameof(means));
        if (pairs < 1)
            throw new ArgumentOutOfRangeException(nameof(pairs), pairs, "ClusteringObjectives.Separation: at least one pair is needed.");
        using var scope = NewDisposeScope();
        Tensor a, b;
        using (no_grad())
        {
            var drawn = RandomDraws.Integers(0, means.shape[0], [2, pairs], means.device, generator);
            a = drawn[0];
            b = drawn[1];
        }
        var distance = (means.index_select(0, a) - means.index_select(0, b)).pow(Scalars.Of(2)).sum(1).add(Scalars.Of(1e-6), Scalars.One).sqrt(); // [pairs]
        return distance.neg().add(Scalars.Of(margin), Scalars.One).clamp_min(Scalars.Of(0)).mean().MoveToOuterDisposeScope();
    }

    /// <summary>
    /// The box penalty on every centre coordinate: w · (mean(max(0, μ − B)) + mean(max(0, −μ − B))) over the K × d
    /// coordinates. The release takes these means over the centres of its sampled pairs, whose expectation this is.
    /// </summary>
    public static Tensor BoundPenalty(Tensor means, double bound, double weight) // [K, d] → []
    {
        ArgumentNullException.ThrowIfNull(means);
        using var scope = NewDisposeScope();
        var penalty = (means - Scalars.Of(bound)).clamp_min(Scalars.Of(0)).mean().add((-means - Scalars.Of(bound)).clamp_min(Scalars.Of(0)).mean(), Scalars.One);
        return (Scalars.Of(weight) * penalty).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// The wake step on data x: with y, z from <see cref="ClusteringDdvi.Posterior"/>,
    /// L = −log p(x | z) (per-feature mean by default: the release's MSE up to a constant) + β·KL(N(μ, σ²) ‖ N(0, I)).
    /// Nothing is detached: the reconstruction trains the encoder, the decoder and, through the chain, the prior denoiser.
    /// Terms: the likelihood's reconstruction name (<c>nll</c> for the Gaussian), <c>kl</c>.
    /// </summary>
    public static LossTerms WakeLoss(ClusteringDdvi model, Tensor x, ClusteringWeights weights, Generator generator) // x [B, D]
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(weights);
        using var scope = NewDisposeScope();
        var (_, z, mean, logVariance) = model.Posterior(x, generator);
        var output = model.DecodeOutput(z);
        var reconstruction = weights.Reconstruction == ReconstructionScale.PerFeatureMean
            ? model.Likelihood.MeanNegativeLogProbPerFeature(output, x)
            : -model.Likelihood.LogProbFromOutput(output, x).mean();
        var kl = GaussianMath.KlToStandardNormalFromLogVariance(mean, logVariance).mean();
        var total = reconstruction.add(Scalars.Of(weights.KlWeight) * kl, Scalars.One);
        return DdviObjectives.Keep(total, (model.Likelihood.ReconstructionTermName, reconstruction), ("kl", kl));
    }

    /// <summary>
    /// The centres' step after an epoch (the release's cluster optimiser): with B reparameterised draws z = μ_c + σ ε of
    /// the current mixture, L = s(epoch)·(separation + box penalty) + L_noise(z), where L_noise is the prior denoiser's
    /// noise-prediction loss on those draws. Only the centres are meant to step on it: the noise term moves them towards
    /// where the chain (trained end to end on data) puts its mass, the hinge keeps them apart.
    /// Terms: <c>separation</c>, <c>bound</c>, <c>noise</c>.
    /// </summary>
    public static LossTerms CentreLoss(ClusteringDdvi model, int batchSize, int epoch, ClusteringWeights weights, Generator generator)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(weights);
        if (batchSize < 1)
            throw new ArgumentOutOfRangeException(nameof(batchSize), batchSize, "ClusteringObjectives.CentreLoss: the batch of prior draws must hold at least 1 point.");
        using var scope = NewDisposeScope();
        var means = model.Prior.Means;
        var separation = Separation(means, batchSize, weights.Margin, generator);
        var bound = BoundPenalty(means, weights.Bound, weights.BoundWeight);
        var (z, _) = model.Prior.SampleReparameterised(batchSize, generator);
        var noise = DdviObjectives.NoisePrediction(z, model.Schedule, weights.NoiseLoss, generator, (yt, t) => model.PriorDenoiser.call(yt, t));
        var total = (Scalars.Of(weights.SeparationWeight(epoch)) * separation.add(bound, Scalars.One)).add(noise, Scalars.One);
        return DdviObjectives.Keep(total, ("separation", separation), ("bound", bound), ("noise", noise));
    }

    /// <summary>
    /// The prior denoiser's re-fit to the current mixture after an epoch (the release's diffusion optimiser): the
    /// noise-prediction loss on B draws of p(z), drawn without gradient. Term: <c>noise</c>.
    /// </summary>
    public static LossTerms RefitLoss(ClusteringDdvi model, int batchSize, ClusteringWeights weights, Generator generator)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(weights);
        return DdviObjectives.PriorDiffusionLoss(model.PriorDenoiser, model.Schedule, model.Prior, batchSize, weights.NoiseLoss, generator);
    }

    /// <summary>
    /// The clustering VAE's centre step (per batch, after its ELBO step; the release's <c>clustering_vae</c> does the same
    /// with its cluster layer): s(epoch)·(separation + box penalty) over <paramref name="pairs"/> pairs.
    /// Terms: <c>separation</c>, <c>bound</c>.
    /// </summary>
    public static LossTerms SeparationLoss(LearnableGaussianMixture prior, int pairs, int epoch, ClusteringWeights weights, Generator generator)
    {
        ArgumentNullException.ThrowIfNull(prior);
        ArgumentNullException.ThrowIfNull(weights);
        using var scope = NewDisposeScope();
        var separation = Separation(prior.Means, pairs, weights.Margin, generator);
        var bound = BoundPenalty(prior.Means, weights.Bound, weights.BoundWeight);
        var total = Scalars.Of(weights.SeparationWeight(epoch)) * separation.add(bound, Scalars.One);
        return DdviObjectives.Keep(total, ("separation", separation), ("bound", bound));
    }
}
