using Ddvi.Runtime;
using Ddvi.Models;
using Ddvi.Priors;
using static TorchSharp.torch;

namespace Ddvi.Objectives;

/// <summary>The weights of the AEVB baseline's objective (arXiv:2401.02739; the authors' release).</summary>
/// <param name="KlWeight">β(t), the current weight of the latent terms (ramped by the caller).</param>
/// <param name="PriorWeight">p_w, the weight of log p(z) inside the latent term (5 in the release).</param>
public sealed record VaeWeights(double KlWeight, double PriorWeight);

/// <summary>
/// The AEVB training loss of the release and the single-sample ELBO used for evaluation.
/// Training: L = BCE(x̂, x) + β·(log q(z|x) − p_w·log p(z)), BCE a mean over pixels and batch,
/// the latent terms means over the batch of one reparameterised sample each.
/// </summary>
public static class VaeObjective
{
    /// <summary>The training loss on a batch x <c>[B, D]</c>.</summary>
    public static LossTerms Loss(GaussianVae model, Tensor x, IPrior prior, VaeWeights weights, Generator generator)
    {
        var (mean, logVariance) = model.Posterior(x);
        var (z, epsilon) = GaussianVae.Reparameterise(mean, logVariance, generator);
        var reconstruction = model.Likelihood.MeanNegativeLogProbPerFeature(model.DecodeOutput(z), x);
        var logQ = GaussianMath.LogDensityOfReparameterised(epsilon, logVariance).mean();
        var logP = prior.LogDensity(z).mean();
        var total = reconstruction.add(Scalars.Of(weights.KlWeight) * (logQ - Scalars.Of(weights.PriorWeight) * logP), Scalars.One);
        return new LossTerms(total, [(model.Likelihood.ReconstructionTermName, reconstruction), ("log_q", logQ), ("log_p", logP)]);
    }

    /// <summary>
    /// One-sample ELBO per example, in nats per image: Σ_pixels log p(x|z) + log p(z) − log q(z|x)
    /// with z ~ q(z|x). Also the release's per-pixel scale: −BCE_mean + log p(z) − log q(z|x).
    /// </summary>
    public static ElboEstimate Elbo(GaussianVae model, Tensor x, IPrior prior, Generator generator)
    {
        using var scope = NewDisposeScope();
        var (mean, logVariance) = model.Posterior(x);
        var (z, epsilon) = GaussianVae.Reparameterise(mean, logVariance, generator);
        var logLikelihood = model.Likelihood.LogProbFromOutput(model.DecodeOutput(z), x);                     // [B]
        var latent = prior.LogDensity(z) - GaussianMath.LogDensityOfReparameterised(epsilon, logVariance);      // [B]
        return new ElboEstimate(
            logLikelihood.add(latent, Scalars.One).MoveToOuterDisposeScope(),
            (logLikelihood / Scalars.Of(x.shape[1])).add(latent, Scalars.One).MoveToOuterDisposeScope());
    }
}

/// <summary>Per-example ELBO estimates <c>[B]</c>: nats per image, and the release's per-pixel scale.</summary>
public sealed record ElboEstimate(Tensor NatsPerImage, Tensor ReleasePerPixelScale);
