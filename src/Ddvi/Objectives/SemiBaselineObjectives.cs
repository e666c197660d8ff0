using Ddvi.Runtime;
using Ddvi.Models;
using Ddvi.Priors;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace Ddvi.Objectives;

/// <summary>Weights of the semi-supervised AEVB baselines (the authors' release, <c>conf/model/vae_semi.yaml</c>,
/// <c>iaf_vae_semi.yaml</c>): β constant (0.01), p_w (5 for the VAE, 1 for the IAF-VAE), the entropy weight inside the
/// prior term (0.001) and <c>cls_weight</c> (1).</summary>
public sealed record SemiVaeWeights(double KlWeight, double PriorWeight, double EntropyWeight = 0.001, double ClassifierWeight = 1.0);

/// <summary>
/// The release's semi-supervised VAE and IAF-VAE losses (arXiv:2401.02739; the authors' <c>VAE_semi</c>,
/// <c>IAF_VAE_semi</c>): with z ~ q(z|x) (through the flow for the IAF-VAE), BCE a mean over pixels,
/// L = BCE + β·[log q(z|x) − p_w·(Σ_c w_c log p(z|c) + 0.001·H(q(c|x)))] + cls·β·CE, where w_c is the label's one-hot
/// or q(c|x) (<see cref="SemiSupervision.Combine"/>) and log p(z|c) the per-class KDE. As in the release, the entropy sits
/// inside the prior term, so it enters with −β·p_w·0.001 (it rewards spread predictions, unlike DDVI-semi's).
/// Terms <c>bce</c>, <c>log_q</c>, <c>log_p_c</c>, <c>entropy</c>, <c>ce</c>.
/// </summary>
public static class SemiVaeObjective
{
    public static LossTerms Loss(GaussianVae model, Tensor x, Tensor labels, ClassConditionalDensity density, SemiVaeWeights weights, Generator generator)
    {
        using var scope = NewDisposeScope();
        var (mean, logVariance, logits) = model.PosteriorAndLogits(x);
        var (z, epsilon) = GaussianVae.Reparameterise(mean, logVariance, generator);
        var reconstruction = model.Likelihood.MeanNegativeLogProbPerFeature(model.DecodeOutput(z), x);
        var logQ = GaussianMath.LogDensityOfReparameterised(epsilon, logVariance).mean();
        return Combine(reconstruction, logQ, z, logits!, labels, density, weights, model.Likelihood.ReconstructionTermName);
    }

    public static LossTerms IafLoss(IafVae model, Tensor x, Tensor labels, ClassConditionalDensity density, SemiVaeWeights weights, Generator generator)
    {
        using var scope = NewDisposeScope();
        var (sample, logits) = model.SamplePosteriorAndLogits(x, generator);
        var reconstruction = model.Likelihood.MeanNegativeLogProbPerFeature(model.DecodeOutput(sample.Z), x);
        var logQ = FlowObjective.LogQ(sample).mean();
        return Combine(reconstruction, logQ, sample.Z, logits!, labels, density, weights, model.Likelihood.ReconstructionTermName);
    }

    /// <summary>One-sample ELBO per example: Σ_pixels log p(x|z) + Σ_c q(c|x) log p(z|c) − log q(z|x), and the release's per-pixel scale.</summary>
    public static ElboEstimate Elbo(Tensor logLikelihood, Tensor logQ, Tensor z, Tensor logits, ClassConditionalDensity density, long pixels)
    {
        using var scope = NewDisposeScope();
        var q = functional.softmax(logits, 1).t();                                                  // [C, B]
        var logP = density.LogDensityByClass(z.unsqueeze(0).expand(q.shape[0], z.shape[0], z.shape[1]));
        var latent = (q * logP).sum(dim: 0) - logQ;
        return new ElboEstimate(logLikelihood.add(latent, Scalars.One).MoveToOuterDisposeScope(),
            (logLikelihood / Scalars.Of(pixels)).add(latent, Scalars.One).MoveToOuterDisposeScope());
    }

    public static ElboEstimate Elbo(GaussianVae model, Tensor x, ClassConditionalDensity density, Generator generator)
    {
        using var scope = NewDisposeScope();
        var (mean, logVariance, logits) = model.PosteriorAndLogits(x);
        var (z, epsilon) = GaussianVae.Reparameterise(mean, logVariance, generator);
        var estimate = Elbo(model.Likelihood.LogProbFromOutput(model.DecodeOutput(z), x), GaussianMath.LogDensityOfReparameterised(epsilon, logVariance),
            z, logits!, density, x.shape[1]);
        return new ElboEstimate(estimate.NatsPerImage.MoveToOuterDisposeScope(), estimate.ReleasePerPixelScale.MoveToOuterDisposeScope());
    }

    public static ElboEstimate IafElbo(IafVae model, Tensor x, ClassConditionalDensity density, Generator generator)
    {
        using var scope = NewDisposeScope();
        var (sample, logits) = model.SamplePosteriorAndLogits(x, generator);
        var estimate = Elbo(model.Likelihood.LogProbFromOutput(model.DecodeOutput(sample.Z), x), FlowObjective.LogQ(sample),
            sample.Z, logits!, density, x.shape[1]);
        return new ElboEstimate(estimate.NatsPerImage.MoveToOuterDisposeScope(), estimate.ReleasePerPixelScale.MoveToOuterDisposeScope());
    }

    private static LossTerms Combine(Tensor reconstruction, Tensor logQ, Tensor z, Tensor logits, Tensor labels,
        ClassConditionalDensity density, SemiVaeWeights weights, string reconstructionName)
    {
        long c = logits.shape[1];
        var logP = density.LogDensityByClass(z.unsqueeze(0).expand(c, z.shape[0], z.shape[1]));   // [C, B]
        var w = SemiSupervision.ClassWeights(logits, labels);
        var logPc = SemiSupervision.Combine(logP, w, labels);
        var entropy = SemiSupervision.Entropy(logits, labels);
        var ce = SemiSupervision.CrossEntropy(logits, labels);
        var total = reconstruction
            .add(Scalars.Of(weights.KlWeight) * (logQ - Scalars.Of(weights.PriorWeight) * logPc.add(Scalars.Of(weights.EntropyWeight) * entropy, Scalars.One)), Scalars.One)
            .add(Scalars.Of(weights.ClassifierWeight * weights.KlWeight) * ce, Scalars.One);
        return DdviObjectives.Keep(total, (reconstructionName, reconstruction), ("log_q", logQ), ("log_p_c", logPc), ("entropy", entropy), ("ce", ce));
    }
}

/// <summary>
/// The release's semi-supervised adversarial autoencoder (arXiv:2401.02739; the authors' <c>AAE_semi</c>): its discriminator
/// reads concat(z, one-hot of the label over C + 1 entries, the last meaning "unlabelled"). Prior points come with their
/// segment as label, half of them (chosen by the generator) relabelled "unlabelled"; encodings come with their example's
/// label, or "unlabelled". The reconstruction step is the unsupervised AAE's. It has no classifier q(c|x).
/// </summary>
public static class SemiAaeObjectives
{
    /// <summary>The discriminator's input for points z <c>[B, d]</c> and labels <c>[B]</c> (negative = unlabelled).</summary>
    public static Tensor Input(Tensor z, Tensor labels, int classes)
    {
        using var scope = NewDisposeScope();
        var index = where(labels.ge(Scalars.Of(0)), labels, full_like(labels, Scalars.Of(classes)));
        return cat([z, functional.one_hot(index, classes + 1).to(z.dtype)], 1).MoveToOuterDisposeScope();
    }

    /// <summary>−w·mean(log D(prior input) + log(1 − D(encoded input))), the encodings fixed.</summary>
    public static LossTerms DiscriminatorLoss(AdversarialAutoencoder model, Tensor x, Tensor labels, ILabelledPrior prior, double noiseStd,
        double adversarialWeight, Generator generator)
    {
        using var scope = NewDisposeScope();
        long b = x.shape[0];
        int classes = prior.ClassCount;
        var (zPrior, priorClasses) = prior.SampleLabelled(b, generator);
        var unlabelledRows = Runtime.RandomDraws.Permutation(b, priorClasses.device, generator).narrow(0, 0, b / 2);
        var priorLabels = priorClasses.index_fill(0, unlabelledRows, Scalars.Of(-1));
        Tensor zEncoded;
        using (no_grad())
        {
            bool was = model.Encoder.training;
            model.Encoder.eval();
            zEncoded = model.Encode(x);
            model.Encoder.train(was);
        }
        var terms = AaeObjectives.DiscriminatorLoss(model.Discriminator, Input(zPrior, priorLabels.to(labels.device), classes),
            Input(zEncoded, labels, classes), noiseStd, adversarialWeight, generator);
        return DdviObjectives.Keep(terms.Total, [.. terms.Terms]);
    }

    /// <summary>−w·mean log D(encoded input): the encoder learns to pass for the prior, class by class where labelled.</summary>
    public static LossTerms GeneratorLoss(AdversarialAutoencoder model, Tensor x, Tensor labels, int classes, double adversarialWeight)
    {
        using var scope = NewDisposeScope();
        var terms = AaeObjectives.GeneratorLoss(model.Discriminator, Input(model.Encode(x), labels, classes), adversarialWeight);
        return DdviObjectives.Keep(terms.Total, [.. terms.Terms]);
    }
}
