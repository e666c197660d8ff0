using Ddvi.Runtime;
using Ddvi.Diffusion;
using Ddvi.Models;
using Ddvi.Priors;
using static TorchSharp.torch;

namespace Ddvi.Objectives;

/// <summary>How the reconstruction term −log p(x | z) enters a loss.</summary>
public enum ReconstructionScale
{
    /// <summary>
    /// The authors' release: −log p(x | z) averaged over the D features as well as the batch (its BCE is a mean over
    /// pixels). Against latent terms at their own scale this tempers the posterior: with β_KL the objective is
    /// (1/D)·[−log p(x|z) + D·β_KL·(KL − λ log p(z))], i.e. the ELBO of a likelihood raised to the power 1/(D·β_KL).
    /// </summary>
    PerFeatureMean,

    /// <summary>−log p(x | z) summed over features (a batch mean of per-example sums): the ELBO's own scale.</summary>
    Sum,
}

/// <summary>What the sleep phase decodes its prior draws z' ~ p(z) into.</summary>
public enum FantasyKind
{
    /// <summary>x̃ = E[x | z'], the likelihood's mean (the authors' release: sigmoid of the decoder's logits).</summary>
    Mean,

    /// <summary>x̃ ~ p(x | z'), a draw from the likelihood: the wake-sleep fantasy proper, with the data's support.</summary>
    Sample,
}

/// <summary>What the wake loss compares the chain's start q(y_T | x) with.</summary>
public enum StartTarget
{
    /// <summary>KL(q(y_T | x) ‖ N(0, I)), in closed form: the authors' release. It pulls y_T towards 0 on top of
    /// −log p(z), which shrinks the posterior towards the prior's centre.</summary>
    StandardNormal,

    /// <summary>
    /// log q(y_T | x) − log r(y_T | z) at the sampled y_T, with r(y_T | z) = N(√ᾱ_T z, (1 − ᾱ_T) I) the forward
    /// process's marginal given the chain's output z: the term the auxiliary-variable ELBO of the paper has there (an
    /// unbiased one-sample estimate of its KL), which the release replaces by the KL to N(0, I).
    /// </summary>
    ForwardMarginal,
}

/// <summary>Weights of the warm-up loss (stage 2, the release's <c>diff_vae</c>).</summary>
/// <param name="KlWeight">Weight of KL(N(μ, σ²) ‖ N(0, I)) (0.01).</param>
/// <param name="NoiseWeight">Weight of the prior denoiser's noise-prediction loss on prior samples (1).</param>
/// <param name="NoiseLoss">Regression loss of the noise prediction (Huber, the release's).</param>
/// <param name="Reconstruction">How −log p(x|z) is scaled (per-feature mean, the release's).</param>
public sealed record DdviWarmupWeights(double KlWeight = 0.01, double NoiseWeight = 1.0, NoiseLossKind NoiseLoss = NoiseLossKind.Huber,
    ReconstructionScale Reconstruction = ReconstructionScale.PerFeatureMean);

/// <summary>
/// Weights of the DDVI wake and sleep losses (stage 3, the release's <c>diff_vae_warmup</c>). The record's defaults are
/// the release's (<see cref="Release"/>); <see cref="Elbo"/> puts every term at the ELBO's own scale.
/// </summary>
/// <param name="KlWeight">β_KL, weight of the latent terms KL − λ_z·log p(z) (0.003 in the release).</param>
/// <param name="PriorWeight">λ_z, weight of log p(z) inside the latent terms (1).</param>
/// <param name="MatchingWeight">w, weight of the wake phase's mean matching and of the sleep phase's noise prediction
/// (the release uses one weight, <c>diff_weight</c> = 1, for both).</param>
/// <param name="NoiseLoss">Regression loss of both (Huber, the release's).</param>
/// <param name="Reconstruction">How −log p(x|z) is scaled (per-feature mean in the release).</param>
/// <param name="Fantasies">What the sleep phase decodes prior draws into (the likelihood's mean in the release).</param>
/// <param name="Start">What q(y_T | x) is compared with (N(0, I) in the release).</param>
/// <param name="AggregateWeight">λ_agg, weight of <see cref="AggregateMatching.SquaredMmd"/> between the wake batch's latents
/// and as many prior draws (0, the release's: no such term, and no draws for it).</param>
public sealed record DdviWeights(double KlWeight = 0.003, double PriorWeight = 1.0, double MatchingWeight = 1.0, NoiseLossKind NoiseLoss = NoiseLossKind.Huber,
    ReconstructionScale Reconstruction = ReconstructionScale.PerFeatureMean, FantasyKind Fantasies = FantasyKind.Mean,
    StartTarget Start = StartTarget.StandardNormal, double AggregateWeight = 0.0)
{
    /// <summary>
    /// The authors' release (the paper preset): per-feature mean reconstruction, β_KL = 0.003, λ_z = 1, w = 1, Huber,
    /// mean fantasies. For D-dimensional x this tempers the posterior by 1/(D·β_KL) (≈ 0.43 for MNIST's 784 pixels).
    /// </summary>
    public static DdviWeights Release { get; } = new();

    /// <summary>
    /// The library default: −log p(x|z) summed over features, −log p(z) with weight 1 (the ELBO's own scale), y_T
    /// scored against the forward marginal r(y_T | z) as the auxiliary-variable ELBO has it
    /// (<see cref="StartTarget.ForwardMarginal"/>, weight 1), w = 1 on the matching and noise-prediction terms (Huber),
    /// and fantasies drawn from the likelihood. On a conjugate Gaussian model this halves the posterior-mean error of
    /// the release's N(0, I) start term (docs/elbo.md, "The start term in training").
    /// </summary>
    public static DdviWeights Elbo { get; } = new(KlWeight: 1.0, PriorWeight: 1.0, MatchingWeight: 1.0, NoiseLoss: NoiseLossKind.Huber,
        Reconstruction: ReconstructionScale.Sum, Fantasies: FantasyKind.Sample, Start: StartTarget.ForwardMarginal);
}

/// <summary>
/// The parts of the release's test ELBO per example, each <c>[B]</c> (see <see cref="DdviObjectives.ElboTerms"/>):
/// ELBO = LogLikelihood − KlYT + LogPrior − Matching.
/// </summary>
/// <param name="LogLikelihood">log p_θ(x|z) summed over the <paramref name="PixelCount"/> pixels.</param>
/// <param name="KlYT">KL(N(μ, σ²) ‖ N(0, I)), summed over latent dimensions.</param>
/// <param name="LogPrior">log p(z).</param>
/// <param name="Matching">Σ_{t=2}^{T} ‖μ_φ,t − μ̃_t‖² / (2σ̃²_t).</param>
/// <param name="PixelCount">D, the number of pixels the likelihood sums over.</param>
public sealed record DdviElboTerms(Tensor LogLikelihood, Tensor KlYT, Tensor LogPrior, Tensor Matching, long PixelCount)
{
    /// <summary>
    /// Combines the terms: nats per image uses the summed log-likelihood; the release's scale uses its per-pixel mean
    /// (log-likelihood / D) with the latent terms unchanged. Both <c>[B]</c>, new tensors in the caller's scope.
    /// </summary>
    public ElboEstimate Combine()
    {
        using var scope = NewDisposeScope();
        var latent = LogPrior - KlYT - Matching;
        return new ElboEstimate(
            LogLikelihood.add(latent, Scalars.One).MoveToOuterDisposeScope(),
            (LogLikelihood / Scalars.Of(PixelCount)).add(latent, Scalars.One).MoveToOuterDisposeScope());
    }
}

/// <summary>
/// The objectives of the three-stage unsupervised DDVI pipeline (arXiv:2401.02739; the authors' release)
/// and the release's test ELBO, as pure functions of a <see cref="DdviModel"/> (or a denoiser), a batch, a prior and a
/// generator. Every random draw
/// (prior samples, y_T's noise, timesteps, ε) takes the caller's generator, which must live on the model's device.
/// BCE is binary cross-entropy with logits, a mean over pixels and batch; "Huber" is smooth L1 with threshold 1, a mean
/// over batch and latent dimensions; every other term is a batch mean.
/// </summary>
/// <remarks>
/// Along a chain, μ_φ,t denotes the posterior's transition from y_t: the DDIM output y_{t−1} of step t (the posterior's
/// transitions are deterministic, so this is their mean), and μ̃_t = w0_t z + wt_t y_t the mean of the forward posterior
/// r(y_{t−1} | y_t, y_0 = z) (arXiv:2401.02739). This is what the release compares in its wake loss and its ELBO.
/// </remarks>
public static class DdviObjectives
{
    /// <summary>
    /// Stage 1, the prior diffusion: z ~ p(z) (<paramref name="batchSize"/> draws), t ~ U{1..T}, ε ~ N(0, I),
    /// y_t = √ᾱ_t z + √(1 − ᾱ_t) ε, L = Huber(ε, ε_θ(y_t, t)) (or L2). Term: <c>noise</c>.
    /// </summary>
    public static LossTerms PriorDiffusionLoss(TimeConditionedMlp denoiser, NoiseSchedule schedule, IPrior prior, int batchSize,
        NoiseLossKind kind, Generator generator)
    {
        ArgumentNullException.ThrowIfNull(denoiser);
        ArgumentNullException.ThrowIfNull(schedule);
        ArgumentNullException.ThrowIfNull(prior);
        if (denoiser.Steps != schedule.Steps)
            throw new ArgumentException($"PriorDiffusionLoss: the denoiser has {denoiser.Steps} time embedding rows but the schedule has T = {schedule.Steps}.", nameof(schedule));
        if (batchSize < 1)
            throw new ArgumentOutOfRangeException(nameof(batchSize), batchSize, "PriorDiffusionLoss: the batch of prior samples must hold at least 1 point.");

        using var scope = NewDisposeScope();
        var z = prior.Sample(batchSize, generator);                                          // [B, d]
        var loss = NoisePrediction(z, schedule, kind, generator, (yt, t) => denoiser.call(yt, t));
        return new LossTerms(loss.MoveToOuterDisposeScope(), [("noise", loss)]);
    }

    /// <summary>
    /// Stage 2, the warm-up model, trained end to end as the release: with (y, z) from
    /// <see cref="DdviModel.WarmupPosterior"/>,
    /// L = BCE(x̂(z), x) + KlWeight·KL(N(μ, σ²) ‖ N(0, I)) + NoiseWeight·L_noise, where L_noise is
    /// <see cref="PriorDiffusionLoss"/> of the model's prior denoiser on B fresh prior samples. Nothing is detached: the
    /// reconstruction reaches the prior denoiser through the chain too. Terms: <c>bce</c>, <c>kl</c>, <c>noise</c>.
    /// </summary>
    public static LossTerms WarmupLoss(DdviModel model, Tensor x, IPrior prior, DdviWarmupWeights weights, Generator generator, Tensor? mask = null) // x [B, D]
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(weights);
        CheckWeight(weights.KlWeight, nameof(weights.KlWeight), nameof(WarmupLoss));
        CheckWeight(weights.NoiseWeight, nameof(weights.NoiseWeight), nameof(WarmupLoss));

        using var scope = NewDisposeScope();
        var posterior = model.WarmupPosterior(x, generator);
        var bce = Reconstruction(model, posterior.Z, x, mask, weights.Reconstruction);
        var kl = GaussianMath.KlToStandardNormalFromLogVariance(posterior.Mean, posterior.LogVariance).mean();
        var noise = PriorDiffusionLoss(model.PriorDenoiser, model.PriorSchedule, prior, (int)x.shape[0], weights.NoiseLoss, generator).Total;
        var total = bce.add(Scalars.Of(weights.KlWeight) * kl, Scalars.One).add(Scalars.Of(weights.NoiseWeight) * noise, Scalars.One);
        return Keep(total, (model.Likelihood.ReconstructionTermName, bce), ("kl", kl), ("noise", noise));
    }

    /// <summary>
    /// Stage 3's wake step on data x: with y_T, the chain y_T → … → y_0 = z and a = a_φ(x) from
    /// <see cref="DdviModel.DdviPosterior"/>, and one t ~ U{1..T} per example,
    /// L = BCE(x̂(z), x) + β_KL·(KL(N(μ, σ²) ‖ N(0, I)) − λ_z·mean log p(z)) + w·Huber(μ_φ,t, μ̃_t),
    /// μ_φ,t = y_{t−1} the chain's output at step t and μ̃_t = w0_t z + wt_t y_t (see the class remarks), plus
    /// λ_agg·MMD²(z, z') against B fresh prior draws z' when <see cref="DdviWeights.AggregateWeight"/> is above 0 (term
    /// <c>aggregate</c>; not the release's). As in the release nothing is detached: the matching term's gradient reaches the posterior denoiser, the auxiliary
    /// encoder and the encoder both through μ_φ,t and through the target μ̃_t (which depends on z and y_t); the decoder
    /// gets gradient from the BCE only. The prior denoiser is not used. At t = 1 both sides equal z, so those examples
    /// add 0, as in the release. Terms: <c>bce</c>, <c>kl</c>, <c>log_p</c>, <c>matching</c>.
    /// </summary>
    public static LossTerms WakeLoss(DdviModel model, Tensor x, IPrior prior, DdviWeights weights, Generator generator, Tensor? mask = null) // x [B, D]
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(prior);
        CheckWeights(weights, nameof(WakeLoss));

        using var scope = NewDisposeScope();
        var posterior = model.DdviPosterior(x, generator, keepStates: true);
        var z = posterior.Z;
        var bce = Reconstruction(model, z, x, mask, weights.Reconstruction);
        var schedule = model.PosteriorSchedule;
        var kl = weights.Start == StartTarget.StandardNormal
            ? GaussianMath.KlToStandardNormalFromLogVariance(posterior.Mean, posterior.LogVariance).mean()
            : StartAgainstForwardMarginal(posterior, schedule).mean();
        var logP = prior.LogDensity(z).mean();

        var (inputs, outputs) = StackTrajectory(posterior);                                      // [T, B, d] each
        var t = GaussianDiffusion.SampleTimesteps(z.shape[0], schedule.Steps, generator, z.device); // [B]
        // Row T − t holds the step at timestep t (the trajectory runs t = T..1).
        var rows = t.neg().add(Scalars.Of(schedule.Steps), Scalars.One).view(1, -1, 1).expand(1, z.shape[0], z.shape[1]);
        var yt = inputs.gather(0, rows).squeeze(0);                                                 // [B, d]
        var chainMean = outputs.gather(0, rows).squeeze(0);                                         // [B, d]
        var forwardMean = GaussianDiffusion.ForwardPosteriorMean(schedule, z, yt, t);               // [B, d]
        var matching = GaussianDiffusion.NoisePredictionLoss(forwardMean, chainMean, weights.NoiseLoss);

        var total = bce
            .add(Scalars.Of(weights.KlWeight) * (kl - Scalars.Of(weights.PriorWeight) * logP), Scalars.One)
            .add(Scalars.Of(weights.MatchingWeight) * matching, Scalars.One);
        if (weights.AggregateWeight == 0)
            return Keep(total, (model.Likelihood.ReconstructionTermName, bce), ("kl", kl), ("log_p", logP), ("matching", matching));
        // Drawn after every other draw of the step, so that with the term off the step's draws are the release's.
        var aggregate = AggregateMatching.SquaredMmd(z, prior.Sample(z.shape[0], generator));
        total = total.add(Scalars.Of(weights.AggregateWeight) * aggregate, Scalars.One);
        return Keep(total, (model.Likelihood.ReconstructionTermName, bce), ("kl", kl), ("log_p", logP), ("matching", matching), ("aggregate", aggregate));
    }

    /// <summary>
    /// Stage 3's sleep step on fantasies: z' ~ p(z) (<paramref name="batchSize"/> draws), x̃ = sigmoid(decoder(z')) under
    /// no_grad (in whatever train/eval mode the model is, like the release), a = a_φ(x̃), t ~ U{1..T_post}, ε ~ N(0, I),
    /// y_t = √ᾱ_t z' + √(1 − ᾱ_t) ε, L = w·Huber(ε, ε_φ(y_t, a, t)). Only the posterior denoiser and the auxiliary encoder
    /// receive gradient (<see cref="DdviModel.SleepParameters"/>). Term: <c>noise</c> (unweighted).
    /// </summary>
    public static LossTerms SleepLoss(DdviModel model, IPrior prior, int batchSize, DdviWeights weights, Generator generator)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(prior);
        CheckWeights(weights, nameof(SleepLoss));
        if (batchSize < 1)
            throw new ArgumentOutOfRangeException(nameof(batchSize), batchSize, "SleepLoss: the batch of prior samples must hold at least 1 point.");

        using var scope = NewDisposeScope();
        var z = prior.Sample(batchSize, generator);                                          // [B, d]
        Tensor fantasies;                                                                           // [B, D]
        using (no_grad())
            fantasies = weights.Fantasies == FantasyKind.Mean ? model.DecodeMeans(z) : model.Likelihood.Sample(z, generator);
        var context = model.AuxiliaryEncoder.call(fantasies);                                        // [B, c]
        var noise = NoisePrediction(z, model.PosteriorSchedule, weights.NoiseLoss, generator,
            (yt, t) => model.PosteriorDenoiser.call(yt, context, t));
        return Keep(Scalars.Of(weights.MatchingWeight) * noise, ("noise", noise));
    }

    /// <summary>
    /// The release's test ELBO per example, one posterior sample each, from the posterior <see cref="DdviModel.Stage"/>
    /// selects (see <see cref="ElboTerms"/> for the formula and what it omits). Call under <c>no_grad()</c> with the model in
    /// <c>eval()</c> mode.
    /// </summary>
    public static ElboEstimate Elbo(DdviModel model, Tensor x, IPrior prior, Generator generator) // x [B, D] → [B], [B]
    {
        using var scope = NewDisposeScope();
        var estimate = ElboTerms(model, x, prior, generator).Combine();
        return new ElboEstimate(estimate.NatsPerImage.MoveToOuterDisposeScope(), estimate.ReleasePerPixelScale.MoveToOuterDisposeScope());
    }

    /// <summary>
    /// The terms of the release's test ELBO (arXiv:2401.02739; the authors' release),
    /// per example, with (y_T, …, y_0 = z) one draw from the
    /// posterior <see cref="DdviModel.Stage"/> selects:
    /// ELBO = log p_θ(x|z) − KL(N(μ, σ²) ‖ N(0, I)) + log p(z) − Σ_{t=2}^{T} ‖μ_φ,t − μ̃_t‖² / (2σ̃²_t),
    /// with μ_φ,t = y_{t−1} and μ̃_t = w0_t z + wt_t y_t; t = 1, where σ̃²_1 = 0, is left out as in the release.
    /// </summary>
    /// <remarks>
    /// <para>This is the release's evaluation formula, not a strict lower bound on log p(x). The auxiliary-variable bound
    /// E_q[log p(x|z) + log p(z) + log r(y_{1:T} | z) − log q(y_{1:T}, z | x)] differs from it in three ways:
    /// (1) KL(q(y_T|x) ‖ r(y_T|y_0 = z)) is replaced by the KL to N(0, I), though r(y_T|z) = N(√ᾱ_T z, (1 − ᾱ_T) I) is far
    /// from N(0, I) for T = 20 or 40 (ᾱ_T ≈ 0.82 / 0.67); (2) the posterior's transitions are deterministic DDIM steps
    /// (point masses, whose density terms are unbounded), and each is scored as if it were N(μ_φ,t, σ̃²_t), so that its KL to
    /// r(y_{t−1}|y_t, z) = N(μ̃_t, σ̃²_t) reduces to the mean-matching term; (3) the last step's density term and the
    /// t = 1 transition are dropped (σ̃²_1 = 0). The release averages the matching term over latent dimensions as well; here
    /// it is a proper squared norm (summed over d), as the KL between the two Gaussians gives it.</para>
    /// <para>Each tensor is <c>[B]</c>; <see cref="DdviElboTerms.Combine"/> gives nats per image (log-likelihood summed over
    /// pixels) and the release's scale (log-likelihood averaged over pixels, as its BCE is).</para>
    /// </remarks>
    public static DdviElboTerms ElboTerms(DdviModel model, Tensor x, IPrior prior, Generator generator, Tensor? mask = null) // x [B, D]
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(prior);

        using var scope = NewDisposeScope();
        var posterior = model.Posterior(x, generator, keepStates: true);
        var z = posterior.Z;                                                                         // [B, d]
        var logLikelihood = model.Likelihood.LogProbFromOutput(model.DecodeOutput(z), x, mask);     // [B]
        var kl = GaussianMath.KlToStandardNormalFromLogVariance(posterior.Mean, posterior.LogVariance);               // [B]
        var logPrior = prior.LogDensity(z);                                                          // [B]

        var schedule = model.CurrentSchedule;
        int steps = schedule.Steps;
        Tensor matching;
        if (steps < 2)
        {
            matching = zeros_like(logPrior);
        }
        else
        {
            var (inputs, outputs) = StackTrajectory(posterior);                                      // [T, B, d], rows t = T..1
            // Rows 0..T−2 are t = T..2; the last row, t = 1, has σ̃² = 0 and is left out.
            var t = arange(Scalars.Of(steps), Scalars.Of(1), Scalars.Of(-1), dtype: ScalarType.Int64, device: z.device);                // [T − 1]
            var w0 = NoiseSchedule.Column(schedule.PosteriorW0, t).unsqueeze(2);                     // [T − 1, 1, 1]
            var wt = NoiseSchedule.Column(schedule.PosteriorWt, t).unsqueeze(2);
            var variance = NoiseSchedule.Column(schedule.PosteriorVariance, t).unsqueeze(2);
            var yt = inputs[..(steps - 1)];
            var chainMean = outputs[..(steps - 1)];
            var forwardMean = (w0 * z.unsqueeze(0)).add(wt * yt, Scalars.One);                                         // [T − 1, B, d]
            matching = ((chainMean - forwardMean).pow(Scalars.Of(2)) / (Scalars.Of(2) * variance)).sum([0, 2]);           // [B]
        }

        var terms = new DdviElboTerms(logLikelihood, kl, logPrior, matching, x.shape[1]);
        scope.MoveToOuter([logLikelihood, kl, logPrior, matching]);
        return terms;
    }

    /// <summary>
    /// log q(y_T | x) − log r(y_T | z) per example at the sampled y_T, r(y_T | z) = N(√ᾱ_T z, (1 − ᾱ_T) I): <c>[B]</c>.
    /// </summary>
    public static Tensor StartAgainstForwardMarginal(DdviPosteriorSample posterior, NoiseSchedule schedule)
    {
        using var scope = NewDisposeScope();
        var yT = posterior.YT;
        var logQ = (Scalars.Of(-0.5) * ((yT - posterior.Mean).pow(Scalars.Of(2)) / posterior.Variance)
            .add(posterior.LogVariance, Scalars.One).add(Scalars.Of(Math.Log(2 * Math.PI)), Scalars.One)).sum(-1);
        var a = schedule.SqrtAlphaBar.narrow(0, schedule.Steps, 1).to(yT.dtype);                        // [1]
        var s = schedule.SqrtOneMinusAlphaBar.narrow(0, schedule.Steps, 1).to(yT.dtype);                // [1]
        var logR = (Scalars.Of(-0.5) * ((yT - a * posterior.Z) / s).pow(Scalars.Of(2)) - s.log() - Scalars.Of(0.5 * Math.Log(2 * Math.PI))).sum(-1);
        return (logQ - logR).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// −log p(x | z) as <paramref name="scale"/> says: a per-feature mean (observed entries only, under a mask) or a
    /// batch mean of per-example sums. A scalar.
    /// </summary>
    public static Tensor Reconstruction(DdviModel model, Tensor z, Tensor x, Tensor? mask, ReconstructionScale scale)
    {
        var likelihood = model.Likelihood;
        var output = model.DecodeOutput(z);
        if (scale == ReconstructionScale.PerFeatureMean && mask is null)
            return likelihood.MeanNegativeLogProbPerFeature(output, x);
        var logProb = likelihood.LogProbFromOutput(output, x, mask);                                 // [B]
        if (scale == ReconstructionScale.Sum) return -logProb.mean();
        var observed = (mask!.dtype == ScalarType.Bool ? mask : mask.ne(Scalars.Of(0))).sum().clamp_min(Scalars.Of(1));
        return -logProb.sum() / observed;
    }

    /// <summary>y_t entering each step and the chain's output y_{t−1} of that step, over t = T..1 (views of the states).</summary>
    private static (Tensor Inputs, Tensor Outputs) StackTrajectory(DdviPosteriorSample posterior) // → [T, B, d], [T, B, d]
    {
        var states = posterior.States ?? throw new InvalidOperationException("the posterior was sampled without its states");
        long steps = states.shape[0] - 1;
        return (states.narrow(0, 0, steps), states.narrow(0, 1, steps));
    }

    /// <summary>t ~ U{1..T}, ε ~ N(0, I), y_t = √ᾱ_t y_0 + √(1 − ᾱ_t) ε; the regression loss of ε̂(y_t, t) against ε.</summary>
    internal static Tensor NoisePrediction(Tensor y0, NoiseSchedule schedule, NoiseLossKind kind, Generator generator,
        Func<Tensor, Tensor, Tensor> denoiser) // y0 [B, d] → []
    {
        var t = GaussianDiffusion.SampleTimesteps(y0.shape[0], schedule.Steps, generator, y0.device);
        var eps = RandomDraws.Normal(y0.shape, y0.dtype, y0.device, generator);
        var yt = GaussianDiffusion.Noise(schedule, y0, t, eps);
        return GaussianDiffusion.NoisePredictionLoss(eps, denoiser(yt, t), kind);
    }

    internal static LossTerms Keep(Tensor total, params (string Name, Tensor Value)[] terms)
    {
        foreach (var tensor in terms.Select(term => term.Value).Prepend(total).Distinct<Tensor>(ReferenceEqualityComparer.Instance))
            tensor.MoveToOuterDisposeScope();
        return new LossTerms(total, terms);
    }

    private static void CheckWeights(DdviWeights weights, string caller)
    {
        ArgumentNullException.ThrowIfNull(weights);
        CheckWeight(weights.KlWeight, nameof(weights.KlWeight), caller);
        CheckWeight(weights.PriorWeight, nameof(weights.PriorWeight), caller);
        CheckWeight(weights.MatchingWeight, nameof(weights.MatchingWeight), caller);
        CheckWeight(weights.AggregateWeight, nameof(weights.AggregateWeight), caller);
    }

    private static void CheckWeight(double value, string name, string caller)
    {
        if (!double.IsFinite(value) || value < 0)
            throw new ArgumentOutOfRangeException(name, value, $"DdviObjectives.{caller}: {name} must be a finite number ≥ 0.");
    }
}
