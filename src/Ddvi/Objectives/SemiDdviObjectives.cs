using Ddvi.Diffusion;
using Ddvi.Models;
using Ddvi.Priors;
using Ddvi.Runtime;
using static TorchSharp.torch;

namespace Ddvi.Objectives;

/// <summary>
/// Weights of the semi-supervised DDVI losses (the authors' release, <c>conf/model/diff_vae_warmup_semi.yaml</c> and
/// <c>diff_vae_semi.yaml</c>).
/// </summary>
/// <param name="KlWeight">β: weight of KL(q(y_T|x) ‖ N(0, I)), of the entropy and prior terms and (times
/// <paramref name="ClassifierWeight"/>) of the cross-entropy (0.1; 0.5 on CIFAR-10).</param>
/// <param name="PriorWeight">λ_z: weight of −log p(z|c) inside the β term (1; stage 3 only).</param>
/// <param name="MatchingWeight">w: weight of the wake mean matching and the sleep noise prediction (1).</param>
/// <param name="EntropyWeight">Weight of the entropy of q(c|x) on unlabelled data inside the β term (0.001).</param>
/// <param name="ClassifierWeight">Weight of the labelled cross-entropy, times β (1).</param>
public sealed record SemiDdviWeights(double KlWeight = 0.1, double PriorWeight = 1.0, double MatchingWeight = 1.0,
    double EntropyWeight = 0.001, double ClassifierWeight = 1.0, NoiseLossKind NoiseLoss = NoiseLossKind.Huber);

/// <summary>The class-dependent parts of a semi-supervised wake step, per class and example (<c>[C, B]</c> each), and
/// the class weights w <c>[B, C]</c> they are combined with (<see cref="SemiSupervision"/>).</summary>
public sealed record SemiWakeTerms(Tensor Reconstruction, Tensor NegLogPrior, Tensor Matching, Tensor Weights, Tensor Kl, Tensor Logits);

/// <summary>
/// The objectives of semi-supervised DDVI as pure functions of a <see cref="SemiDdviModel"/>, a batch with labels
/// (negative = unlabelled), the class densities and a generator (arXiv:2401.02739; the authors' release). Every class's
/// chain runs over the whole batch as one batched chain (<see cref="SemiDdviModel.RunChains"/>); a class-dependent term
/// L_c enters as Σ_c w_c L_c with w the label's one-hot or q(c|x) (<see cref="SemiSupervision.Combine"/>).
/// Reconstruction is −log p(x|z) averaged over pixels (the release's BCE scale).
/// </summary>
public static class SemiDdviObjectives
{
    /// <summary>
    /// Stage 1, the C prior diffusions at once: n points z_c ~ p(z|c) per class, t ~ U{1..T}, ε ~ N(0, I),
    /// y_t = √ᾱ_t z + √(1 − ᾱ_t) ε, L = Huber(ε, ε_c(y_t, t)) averaged over classes, points and dimensions. Term <c>noise</c>.
    /// </summary>
    public static LossTerms PriorDiffusionLoss(SemiDdviModel model, ILabelledPrior prior, int perClass, NoiseLossKind kind, Generator generator)
    {
        using var scope = NewDisposeScope();
        var z = ClassDraws(prior, model.ClassCount, perClass, generator);                         // [C, n, d]
        var schedule = model.Schedule;
        var t = GaussianDiffusion.SampleTimesteps(z.shape[0] * z.shape[1], schedule.Steps, generator, z.device).view(z.shape[0], z.shape[1]);
        var eps = RandomDraws.Normal(z.shape, z.dtype, z.device, generator);
        var yt = (Column(schedule.SqrtAlphaBar, t) * z).add(Column(schedule.SqrtOneMinusAlphaBar, t) * eps, Scalars.One);
        var noise = GaussianDiffusion.NoisePredictionLoss(eps, model.PriorDenoisers.Predict(yt, null, t), kind);
        return DdviObjectives.Keep(noise, ("noise", noise));
    }

    /// <summary>
    /// Stage 2, the warm-up (the release's <c>diff_vae_semi</c>): y ~ q(y|x), z_c = the prior chain of class c from y, and
    /// L = Σ_c w_c BCE(x̂(z_c), x) + β·(KL + 0.001·H(q(c|x))) + cls·β·CE. The prior chains are held fixed (not end to end,
    /// as the release's configuration). Terms <c>bce</c>, <c>kl</c>, <c>entropy</c>, <c>ce</c>.
    /// </summary>
    public static LossTerms WarmupLoss(SemiDdviModel model, Tensor x, Tensor labels, SemiDdviWeights weights, Generator generator)
    {
        using var scope = NewDisposeScope();
        var (mean, logVariance, logits) = model.Encode(x);
        var yT = model.SampleStart(mean, logVariance, generator);
        var z = model.RunChains(yT, null, conditioned: false, keepStates: false)[0];               // [C, B, d]
        var w = SemiSupervision.ClassWeights(logits, labels);
        var bce = SemiSupervision.Combine(ReconstructionByClass(model, z, x), w, labels);
        var kl = GaussianMath.KlToStandardNormalFromLogVariance(mean, logVariance).mean();
        var entropy = SemiSupervision.Entropy(logits, labels);
        var ce = SemiSupervision.CrossEntropy(logits, labels);
        var total = bce
            .add(Scalars.Of(weights.KlWeight) * kl.add(Scalars.Of(weights.EntropyWeight) * entropy, Scalars.One), Scalars.One)
            .add(Scalars.Of(weights.ClassifierWeight * weights.KlWeight) * ce, Scalars.One);
        return DdviObjectives.Keep(total, ("bce", bce), ("kl", kl), ("entropy", entropy), ("ce", ce));
    }

    /// <summary>
    /// The class-dependent terms of a stage-3 wake step: y_T ~ q(y_T|x), a = a_φ(x), every class's posterior chain from y_T
    /// (states kept), and per class c and example b: the per-pixel BCE of x̂(z_cb), −log p(z_cb | c), and the mean matching
    /// Huber(μ_φ,t, μ̃_t) (mean over d) at one t ~ U{1..T} per class and example, as <see cref="DdviObjectives.WakeLoss"/>
    /// takes it for one chain.
    /// </summary>
    public static SemiWakeTerms WakeTerms(SemiDdviModel model, Tensor x, Tensor labels, ClassConditionalDensity classDensity,
        NoiseLossKind kind, Generator generator)
    {
        using var scope = NewDisposeScope();
        var (mean, logVariance, logits) = model.Encode(x);
        var yT = model.SampleStart(mean, logVariance, generator);
        var context = model.AuxiliaryEncoder.call(x);
        var states = model.RunChains(yT, context, conditioned: true, keepStates: true);            // [T + 1, C, B, d]
        var z = states[-1];                                                                        // [C, B, d]
        var reconstruction = ReconstructionByClass(model, z, x);                                  // [C, B]
        var negLogPrior = -classDensity.LogDensityByClass(z);                                     // [C, B]
        var matching = MatchingByClass(model.Schedule, states, kind, generator);                  // [C, B]
        var w = SemiSupervision.ClassWeights(logits, labels);
        var kl = GaussianMath.KlToStandardNormalFromLogVariance(mean, logVariance).mean();
        var terms = new SemiWakeTerms(reconstruction, negLogPrior, matching, w, kl, logits);
        scope.MoveToOuter([reconstruction, negLogPrior, matching, w, kl, logits]);
        return terms;
    }

    /// <summary>
    /// Stage 3's wake step (the release's <c>diff_vae_warmup_semi</c>, with the class-conditional prior term and the
    /// cross-entropy the issue asks for): with the terms of <see cref="WakeTerms"/>,
    /// L = Σ_c w_c BCE_c + β·(KL + 0.001·H(q(c|x)) + λ_z Σ_c w_c (−log p(z_c|c))) + w·Σ_c w_c matching_c + cls·β·CE.
    /// Terms <c>bce</c>, <c>kl</c>, <c>entropy</c>, <c>neg_log_p_c</c>, <c>matching</c>, <c>ce</c>.
    /// </summary>
    public static LossTerms WakeLoss(SemiDdviModel model, Tensor x, Tensor labels, ClassConditionalDensity classDensity,
        SemiDdviWeights weights, Generator generator)
    {
        using var scope = NewDisposeScope();
        var terms = WakeTerms(model, x, labels, classDensity, weights.NoiseLoss, generator);
        var bce = SemiSupervision.Combine(terms.Reconstruction, terms.Weights, labels);
        var prior = SemiSupervision.Combine(terms.NegLogPrior, terms.Weights, labels);
        var matching = SemiSupervision.Combine(terms.Matching, terms.Weights, labels);
        var entropy = SemiSupervision.Entropy(terms.Logits, labels);
        var ce = SemiSupervision.CrossEntropy(terms.Logits, labels);
        var total = bce
            .add(Scalars.Of(weights.KlWeight) * terms.Kl.add(Scalars.Of(weights.EntropyWeight) * entropy, Scalars.One).add(Scalars.Of(weights.PriorWeight) * prior, Scalars.One), Scalars.One)
            .add(Scalars.Of(weights.MatchingWeight) * matching, Scalars.One)
            .add(Scalars.Of(weights.ClassifierWeight * weights.KlWeight) * ce, Scalars.One);
        return DdviObjectives.Keep(total, ("bce", bce), ("kl", terms.Kl), ("entropy", entropy), ("neg_log_p_c", prior),
            ("matching", matching), ("ce", ce));
    }

    /// <summary>
    /// Stage 3's sleep step: ⌈n/C⌉ fantasies of every class, z ~ p(z|c), x̃ = E[x|z] without gradient, a = a_φ(x̃),
    /// t ~ U{1..T}, ε ~ N(0, I), y_t = √ᾱ_t z + √(1 − ᾱ_t) ε, L = w·Huber(ε, ε_φ,c(y_t, a, t)), all classes' networks in
    /// one batched product. Term <c>noise</c> (unweighted).
    /// </summary>
    public static LossTerms SleepLoss(SemiDdviModel model, ILabelledPrior prior, int batchSize, SemiDdviWeights weights, Generator generator)
    {
        using var scope = NewDisposeScope();
        int classes = model.ClassCount;
        int perClass = Math.Max(1, (batchSize + classes - 1) / classes);
        var z = ClassDraws(prior, classes, perClass, generator);                                  // [C, n, d]
        Tensor fantasies;
        using (no_grad())
            fantasies = model.DecodeMeans(z.reshape(classes * perClass, -1));                      // [C·n, D]
        var context = model.AuxiliaryEncoder.call(fantasies).view(classes, perClass, -1);         // [C, n, ctx]
        var schedule = model.Schedule;
        var t = GaussianDiffusion.SampleTimesteps(classes * perClass, schedule.Steps, generator, z.device).view(classes, perClass);
        var eps = RandomDraws.Normal(z.shape, z.dtype, z.device, generator);
        var yt = (Column(schedule.SqrtAlphaBar, t) * z).add(Column(schedule.SqrtOneMinusAlphaBar, t) * eps, Scalars.One);
        var noise = GaussianDiffusion.NoisePredictionLoss(eps, model.PosteriorDenoisers.Predict(yt, context, t), weights.NoiseLoss);
        return DdviObjectives.Keep(Scalars.Of(weights.MatchingWeight) * noise, ("noise", noise));
    }

    /// <summary>
    /// The release's test ELBO of its semi-supervised DDVI, per example: every class's chain from one y_T, each weighted by
    /// q(c|x): ELBO = Σ_c q(c|x) [log p(x|z_c) + log p(z_c|c) − Σ_{t=2}^{T} ‖μ_φ,t − μ̃_t‖²/(2σ̃²_t)] − KL(q(y_T|x) ‖ N(0, I)),
    /// from the chains <see cref="SemiDdviModel.Stage"/> selects. Under no_grad, eval mode.
    /// </summary>
    public static ElboEstimate Elbo(SemiDdviModel model, Tensor x, ClassConditionalDensity classDensity, Generator generator)
    {
        using var scope = NewDisposeScope();
        var (mean, logVariance, logits) = model.Encode(x);
        var q = nn.functional.softmax(logits, 1).t();                                             // [C, B]
        var yT = model.SampleStart(mean, logVariance, generator);
        bool conditioned = model.Stage == DdviStage.Ddvi;
        var states = model.RunChains(yT, conditioned ? model.AuxiliaryEncoder.call(x) : null, conditioned, keepStates: true);
        var z = states[-1];                                                                        // [C, B, d]
        long c = z.shape[0], b = z.shape[1];
        var logLikelihood = model.Likelihood.LogProbFromOutput(model.DecodeOutput(z.reshape(c * b, -1)), x.repeat(c, 1)).view(c, b);
        var logPrior = classDensity.LogDensityByClass(z);
        var schedule = model.Schedule;
        int steps = schedule.Steps;
        Tensor matching = zeros_like(logPrior);
        if (steps >= 2)
        {
            var t = arange(Scalars.Of(steps), Scalars.Of(1), Scalars.Of(-1), dtype: ScalarType.Int64, device: z.device);            // [T − 1]: t = T..2
            var w0 = NoiseSchedule.Column(schedule.PosteriorW0, t).view(-1, 1, 1, 1);
            var wt = NoiseSchedule.Column(schedule.PosteriorWt, t).view(-1, 1, 1, 1);
            var variance = NoiseSchedule.Column(schedule.PosteriorVariance, t).view(-1, 1, 1, 1);
            var yt = states.narrow(0, 0, steps - 1);
            var chainMean = states.narrow(0, 1, steps - 1);
            matching = ((chainMean - (w0 * z.unsqueeze(0)).add(wt * yt, Scalars.One)).pow(Scalars.Of(2)) / (Scalars.Of(2) * variance)).sum([0, 3]);   // [C, B]
        }
        var kl = GaussianMath.KlToStandardNormalFromLogVariance(mean, logVariance);                        // [B]
        var latent = (q * (logPrior - matching)).sum(dim: 0) - kl;
        return new ElboEstimate(
            (q * logLikelihood).sum(dim: 0).add(latent, Scalars.One).MoveToOuterDisposeScope(),
            ((q * logLikelihood).sum(dim: 0) / Scalars.Of(x.shape[1])).add(latent, Scalars.One).MoveToOuterDisposeScope());
    }

    /// <summary>Per-pixel mean −log p(x_b | z_cb): z <c>[C, B, d]</c>, x <c>[B, D]</c> → <c>[C, B]</c>, one decoder pass over C·B rows.</summary>
    public static Tensor ReconstructionByClass(SemiDdviModel model, Tensor z, Tensor x)
    {
        using var scope = NewDisposeScope();
        long c = z.shape[0], b = z.shape[1];
        var output = model.DecodeOutput(z.reshape(c * b, -1));                                   // [C·B, D]
        var logProb = model.Likelihood.LogProbFromOutput(output, x.repeat(c, 1));                 // [C·B]
        return (-logProb / Scalars.Of(x.shape[1])).view(c, b).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Huber(μ_φ,t, μ̃_t) per class and example (mean over d) at one t ~ U{1..T} each: states <c>[T + 1, C, B, d]</c>
    /// (y_T first) → <c>[C, B]</c>, with μ_φ,t = y_{t−1} the chain's output at step t and μ̃_t = w0_t z + wt_t y_t.
    /// </summary>
    public static Tensor MatchingByClass(NoiseSchedule schedule, Tensor states, NoiseLossKind kind, Generator generator)
    {
        using var scope = NewDisposeScope();
        long steps = states.shape[0] - 1, c = states.shape[1], b = states.shape[2], d = states.shape[3];
        var z = states[-1];
        var t = GaussianDiffusion.SampleTimesteps(c * b, schedule.Steps, generator, states.device).view(c, b);   // [C, B]
        var rows = t.neg().add(Scalars.Of(steps), Scalars.One).unsqueeze(0).unsqueeze(3).expand(1, c, b, d);                     // row T − t holds y_t
        var yt = states.narrow(0, 0, steps).gather(0, rows).squeeze(0);                         // [C, B, d]
        var chainMean = states.narrow(0, 1, steps).gather(0, rows).squeeze(0);                  // [C, B, d]
        var forwardMean = (Column(schedule.PosteriorW0, t) * z).add(Column(schedule.PosteriorWt, t) * yt, Scalars.One);
        var loss = kind == NoiseLossKind.Huber
            ? nn.functional.smooth_l1_loss(chainMean, forwardMean, reduction: nn.Reduction.None, beta: 1.0)
            : nn.functional.mse_loss(chainMean, forwardMean, reduction: nn.Reduction.None);
        return loss.mean([2]).MoveToOuterDisposeScope();
    }

    /// <summary>n draws of each class, stacked <c>[C, n, d]</c>.</summary>
    private static Tensor ClassDraws(ILabelledPrior prior, int classes, int perClass, Generator generator) =>
        stack(Enumerable.Range(0, classes).Select(c => prior.SampleClass(c, perClass, generator)).ToArray(), 0);

    /// <summary>A schedule table read at t <c>[C, B]</c> as <c>[C, B, 1]</c>.</summary>
    private static Tensor Column(Tensor table, Tensor t) => table.index_select(0, t.flatten()).view([t.shape[0], t.shape[1], 1]);
}
