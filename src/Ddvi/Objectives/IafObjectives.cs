using Ddvi.Runtime;
using Ddvi.Models;
using Ddvi.Priors;
using static TorchSharp.torch;

namespace Ddvi.Objectives;

/// <summary>
/// The IAF-VAE training loss of the release (arXiv:2401.02739; the authors' release)
/// and its one-sample ELBO. With z_0 = μ + σε and
/// z = IAF(z_0; h): L = BCE(x̂(z), x) + β·(log q₀(z_0|x) − log|det ∂z/∂z_0| − p_w·log p(z)), BCE a mean over pixels and
/// batch, the latent terms means over the batch; <see cref="VaeWeights"/> carries β(t) and p_w (1 in the release).
/// </summary>
public static class IafVaeObjective
{
    /// <summary>The training loss on a batch x <c>[B, D]</c>; terms bce, log_q0, log_det, log_p.</summary>
    public static LossTerms Loss(IafVae model, Tensor x, IPrior prior, VaeWeights weights, Generator generator)
    {
        var sample = model.SamplePosterior(x, generator);
        var reconstruction = model.Likelihood.MeanNegativeLogProbPerFeature(model.DecodeOutput(sample.Z), x);
        var logQ0 = GaussianMath.LogDensityOfReparameterised(sample.Epsilon, sample.LogVariance).mean();
        var logDet = sample.LogDet.mean();
        var logP = prior.LogDensity(sample.Z).mean();
        var total = reconstruction.add(Scalars.Of(weights.KlWeight) * (logQ0 - logDet - Scalars.Of(weights.PriorWeight) * logP), Scalars.One);
        return new LossTerms(total, [(model.Likelihood.ReconstructionTermName, reconstruction), ("log_q0", logQ0), ("log_det", logDet), ("log_p", logP)]);
    }

    /// <summary>
    /// One-sample ELBO per example, in nats per image: Σ_pixels log p(x|z) + log p(z) − log q(z|x) with
    /// log q(z|x) = log q₀(z_0|x) − log|det ∂z/∂z_0|; and the release's per-pixel scale, which averages log p(x|z)
    /// over pixels instead.
    /// </summary>
    public static ElboEstimate Elbo(IafVae model, Tensor x, IPrior prior, Generator generator)
    {
        using var scope = NewDisposeScope();
        var sample = model.SamplePosterior(x, generator);
        var logLikelihood = model.Likelihood.LogProbFromOutput(model.DecodeOutput(sample.Z), x);   // [B]
        var latent = prior.LogDensity(sample.Z) - FlowObjective.LogQ(sample);                        // [B]
        return new ElboEstimate(
            logLikelihood.add(latent, Scalars.One).MoveToOuterDisposeScope(),
            (logLikelihood / Scalars.Of(x.shape[1])).add(latent, Scalars.One).MoveToOuterDisposeScope());
    }
}

/// <summary>
/// The hierarchical IAF-VAE loss of the release (arXiv:2401.02739; the authors' release) and its one-sample ELBO:
/// L = BCE(x̂(z₂), x) + β·[(log q₀(z₁⁰|x) − log det₁ − p_w·log N(z₁; 0, I)) + (log q₀(z₂⁰|x, z₁) − log det₂ − p_w·log p(z₂))],
/// β ramping to 0.005 and p_w = 0.5 in the release (the same p_w weighs both prior terms, as there).
/// </summary>
public static class HierarchicalIafVaeObjective
{
    /// <summary>
    /// The training loss on a batch x <c>[B, D]</c>; terms bce, then log_q0, log_det, log_p for each level with suffix
    /// _1 (log_p_1 is the standard-normal log density of z₁) and _2 (log_p_2 is the structured prior at z₂).
    /// </summary>
    public static LossTerms Loss(HierarchicalIafVae model, Tensor x, IPrior prior, VaeWeights weights, Generator generator)
    {
        var (level1, level2) = model.SamplePosterior(x, generator);
        var reconstruction = model.Likelihood.MeanNegativeLogProbPerFeature(model.DecodeOutput(level2.Z), x);
        var logQ01 = GaussianMath.LogDensityOfReparameterised(level1.Epsilon, level1.LogVariance).mean();
        var logDet1 = level1.LogDet.mean();
        var logP1 = FlowObjective.StandardNormalLogDensity(level1.Z).mean();
        var logQ02 = GaussianMath.LogDensityOfReparameterised(level2.Epsilon, level2.LogVariance).mean();
        var logDet2 = level2.LogDet.mean();
        var logP2 = prior.LogDensity(level2.Z).mean();
        var latent = (logQ01 - logDet1 - Scalars.Of(weights.PriorWeight) * logP1).add(logQ02 - logDet2 - Scalars.Of(weights.PriorWeight) * logP2, Scalars.One);
        var total = reconstruction.add(Scalars.Of(weights.KlWeight) * latent, Scalars.One);
        return new LossTerms(total,
        [
            (model.Likelihood.ReconstructionTermName, reconstruction),
            ("log_q0_1", logQ01), ("log_det_1", logDet1), ("log_p_1", logP1),
            ("log_q0_2", logQ02), ("log_det_2", logDet2), ("log_p_2", logP2),
        ]);
    }

    /// <summary>
    /// One-sample ELBO per example, in nats per image:
    /// Σ_pixels log p(x|z₂) + log N(z₁; 0, I) − log q(z₁|x) + log p(z₂) − log q(z₂|x, z₁), each log q the base Gaussian's
    /// log density minus its flow's log-determinant; and the release's per-pixel scale (log p(x|z₂) averaged over pixels).
    /// </summary>
    public static ElboEstimate Elbo(HierarchicalIafVae model, Tensor x, IPrior prior, Generator generator)
    {
        using var scope = NewDisposeScope();
        var (level1, level2) = model.SamplePosterior(x, generator);
        var logLikelihood = model.Likelihood.LogProbFromOutput(model.DecodeOutput(level2.Z), x);                 // [B]
        var latent = (FlowObjective.StandardNormalLogDensity(level1.Z) - FlowObjective.LogQ(level1))
                     .add(prior.LogDensity(level2.Z), Scalars.One) - FlowObjective.LogQ(level2);                     // [B]
        return new ElboEstimate(
            logLikelihood.add(latent, Scalars.One).MoveToOuterDisposeScope(),
            (logLikelihood / Scalars.Of(x.shape[1])).add(latent, Scalars.One).MoveToOuterDisposeScope());
    }
}

/// <summary>Densities shared by the flow objectives.</summary>
public static class FlowObjective
{
    private static readonly double LogTwoPi = Math.Log(2 * Math.PI);

    /// <summary>log q(z|x) = log N(z_0; μ, σ²) − log|det ∂z/∂z_0| per example <c>[B]</c>.</summary>
    public static Tensor LogQ(FlowPosteriorSample sample)
    {
        using var scope = NewDisposeScope();
        var logQ0 = GaussianMath.LogDensityOfReparameterised(sample.Epsilon, sample.LogVariance);
        return (logQ0 - sample.LogDet).MoveToOuterDisposeScope();
    }

    /// <summary>log N(z; 0, I) = −½ Σ (z² + log 2π): <c>[B, d]</c> → <c>[B]</c>.</summary>
    public static Tensor StandardNormalLogDensity(Tensor z)
    {
        using var scope = NewDisposeScope();
        return (Scalars.Of(-0.5) * z.pow(Scalars.Of(2)).add(Scalars.Of(LogTwoPi), Scalars.One)).sum(-1).MoveToOuterDisposeScope();
    }
}
