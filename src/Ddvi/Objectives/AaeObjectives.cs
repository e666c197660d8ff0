using Ddvi.Runtime;
using Ddvi.Models;
using Ddvi.Priors;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace Ddvi.Objectives;

/// <summary>
/// The three losses of the adversarial autoencoder as the release trains it (arXiv:2401.02739; the authors' release),
/// one per optimiser step on each batch, in this order:
/// <list type="number">
/// <item>reconstruction (encoder + decoder): ½·mean over pixels and batch of (E[x | z = f(x)] − x)², the likelihood's mean (sigmoid of the logits for the Bernoulli);</item>
/// <item>discriminator (D only): −w·mean_B[log D(z_p) + log(1 − D(f(x)))], z_p ~ p(z), f(x) held fixed;</item>
/// <item>generator (encoder only): −w·mean_B[log D(f(x))], the encoder learning to be taken for the prior;</item>
/// </list>
/// with w = 6. log D = log sigmoid(l) and log(1 − D) = log sigmoid(−l) are computed from the logit l, where
/// the release adds 1e-15 inside the logs; the two agree until D saturates, where the release's loss stops
/// growing at about 34.5 per term and its gradient vanishes while these keep a useful gradient.
/// Each function sets the mode its step needs (the encoder in eval mode while it only supplies codes to D,
/// D in eval mode, without input noise, while the encoder learns from it) and restores it afterwards. The release
/// asks for the same modes, but its dropout ignores them (a defect of the authors' release: its dropout stays on at
/// evaluation); here eval mode turns dropout off.
/// </summary>
public static class AaeObjectives
{
    /// <summary>Reconstruction loss on x <c>[B, D]</c>: ½·MSE(E[x | z = encoder(x)], x), mean over pixels and batch.</summary>
    public static LossTerms ReconstructionLoss(AdversarialAutoencoder model, Tensor x)
    {
        var z = model.Encode(x);
        var reconstruction = model.Likelihood.MeanFromOutput(model.DecodeOutput(z));
        var mse = functional.mse_loss(reconstruction, x);
        return new LossTerms(Scalars.Of(0.5) * mse, [("mse", mse)]);
    }

    /// <summary>
    /// Discriminator loss on a batch x <c>[B, D]</c> and as many prior samples (drawn with <paramref name="generator"/>):
    /// −w·mean(log D(z_p) + log(1 − D(z_e))) with z_e = encoder(x) computed without gradient in eval mode.
    /// <paramref name="noiseStd"/> is σ of D's multiplicative input noise (see <see cref="AaeDiscriminator.NoiseStdAt"/>).
    /// </summary>
    public static LossTerms DiscriminatorLoss(AdversarialAutoencoder model, Tensor x, IPrior prior, double noiseStd,
        double adversarialWeight, Generator generator)
    {
        var zPrior = prior.Sample(x.shape[0], generator);
        Tensor zEncoded;
        using (no_grad())
            zEncoded = InMode(model.Encoder, training: false, () => model.Encode(x));
        return DiscriminatorLoss(model.Discriminator, zPrior, zEncoded, noiseStd, adversarialWeight, generator);
    }

    /// <summary>
    /// The discriminator loss on given codes: −w·mean(log D(z_p)) − w·mean(log(1 − D(z_e))) for prior samples
    /// z_p <c>[B, d]</c> and encodings z_e <c>[B', d]</c> (detached here). Terms: the two means of log-probabilities and
    /// D's accuracy at threshold ½.
    /// </summary>
    public static LossTerms DiscriminatorLoss(AaeDiscriminator discriminator, Tensor zPrior, Tensor zEncoded, double noiseStd,
        double adversarialWeight, Generator generator)
    {
        var priorLogits = discriminator.Logits(zPrior, noiseStd, generator);                 // [B]
        var encodedLogits = discriminator.Logits(zEncoded.detach(), noiseStd, generator);    // [B']
        var logDPrior = functional.logsigmoid(priorLogits).mean();
        var logOneMinusDEncoded = functional.logsigmoid(-encodedLogits).mean();
        var total = Scalars.Of(-adversarialWeight) * logDPrior.add(logOneMinusDEncoded, Scalars.One);
        using var noGrad = no_grad();
        var accuracy = Scalars.Of(0.5) * (priorLogits > Scalars.Of(0)).to(priorLogits.dtype).mean().add((encodedLogits <= Scalars.Of(0)).to(encodedLogits.dtype).mean(), Scalars.One);
        return new LossTerms(total, [("log_d_prior", logDPrior), ("log_1m_d_encoded", logOneMinusDEncoded), ("accuracy", accuracy)]);
    }

    /// <summary>
    /// Generator (regularisation) loss on x <c>[B, D]</c>: −w·mean(log D(encoder(x))), with D in eval mode (no input
    /// noise, no dropout). Gradients flow through D into the encoder; the caller keeps D's own parameters fixed.
    /// </summary>
    public static LossTerms GeneratorLoss(AdversarialAutoencoder model, Tensor x, double adversarialWeight) =>
        GeneratorLoss(model.Discriminator, model.Encode(x), adversarialWeight);

    /// <summary>The generator loss on given codes z_e <c>[B, d]</c>: −w·mean(log D(z_e)), D in eval mode.</summary>
    public static LossTerms GeneratorLoss(AaeDiscriminator discriminator, Tensor zEncoded, double adversarialWeight)
    {
        var logits = InMode(discriminator, training: false, () => discriminator.call(zEncoded));   // [B]
        var logDEncoded = functional.logsigmoid(logits).mean();
        return new LossTerms(Scalars.Of(-adversarialWeight) * logDEncoded, [("log_d_encoded", logDEncoded)]);
    }

    // The autograd graph keeps the dropout masks already drawn, so restoring the mode before backward is safe.
    private static T InMode<T>(Module module, bool training, Func<T> body)
    {
        bool was = module.training;
        module.train(training);
        try
        {
            return body();
        }
        finally
        {
            module.train(was);
        }
    }
}
