using Ddvi.Models;
using Ddvi.Objectives;

namespace Ddvi.Experiments.Methods;

/// <summary>The AEVB family of baselines, each trained with the release's objective and β ramp (arXiv:2401.02739; the
/// authors' release).</summary>
public static class AevbMethods
{
    private const string PixelScales =
        "nats_per_image sums log p(x|z) over pixels, release_per_pixel_scale averages it over pixels (the release's BCE scale)";

    /// <summary>The VAE: q(z|x) Gaussian with σ² = sigmoid(encoder output).</summary>
    public static IExperimentMethod Vae(MethodContext context)
    {
        var settings = context.Config.Vae;
        var prior = context.Prior;
        int d = prior.Dimension;
        var networks = context.Networks();
        var encoder = networks.AreModelDefaults ? null : networks.Encoder([d, d], settings.Hidden, settings.Dropout);
        var likelihood = networks.AreModelDefaults ? null : networks.Likelihood(d, settings.Hidden, settings.Dropout);
        return new SingleObjectiveMethod<GaussianVae>("vae",
            new GaussianVae((int)context.Train.Dimension, latentDim: d, settings.Hidden, settings.Dropout, likelihood, encoder), context,
            (model, step, epochs) => VaeObjective.Loss(model, step.Batch.RequireX(), prior,
                new VaeWeights(settings.KlWeightAt(step.Epoch, epochs), settings.PriorWeight), step.Generator),
            (model, x, generator) => VaeObjective.Elbo(model, x, prior, generator),
            "one-sample estimate per test image of log p(x|z) + log p(z) − log q(z|x), z ~ q(z|x); " + PixelScales);
    }

    /// <summary>The IAF-VAE: a Gaussian start refined by an inverse autoregressive flow with context.</summary>
    public static IExperimentMethod IafVae(MethodContext context)
    {
        var settings = context.Config.Iaf;
        var prior = context.Prior;
        int d = prior.Dimension;
        var networks = context.Networks();
        var encoder = networks.AreModelDefaults ? null : networks.Encoder([d, d, settings.ContextSize], settings.Hidden, settings.Dropout);
        var likelihood = networks.AreModelDefaults ? null : networks.Likelihood(d, settings.Hidden, settings.Dropout);
        return new SingleObjectiveMethod<IafVae>("iaf-vae",
            new IafVae((int)context.Train.Dimension, latentDim: d, settings.Hidden, settings.Dropout,
                settings.ContextSize, settings.FlowLayers, settings.MadeHidden, likelihood, encoder), context,
            (model, step, epochs) => IafVaeObjective.Loss(model, step.Batch.RequireX(), prior,
                new VaeWeights(settings.KlWeightAt(step.Epoch, epochs), settings.PriorWeight), step.Generator),
            (model, x, generator) => IafVaeObjective.Elbo(model, x, prior, generator),
            "one-sample estimate per test image of log p(x|z) + log p(z) − log q(z|x), z = IAF(z0; h), z0 ~ N(μ, σ²), " +
            "log q(z|x) = log N(z0; μ, σ²) − log|det ∂z/∂z0|; " + PixelScales);
    }

    /// <summary>The two-level hierarchical IAF-VAE; its latents are the second level's z2.</summary>
    public static IExperimentMethod HierarchicalIafVae(MethodContext context)
    {
        var settings = context.Config.HierarchicalIaf;
        var prior = context.Prior;
        int d = prior.Dimension;
        var networks = context.Networks();
        var encoder = networks.AreModelDefaults ? null : networks.Encoder([d, d, settings.ContextSize], settings.Hidden, settings.Dropout);
        var features = networks.AreModelDefaults ? null : networks.Features(settings.FeatureSize, settings.Hidden, settings.Dropout);
        var likelihood = networks.AreModelDefaults ? null : networks.Likelihood(d, settings.Hidden, settings.Dropout);
        return new SingleObjectiveMethod<HierarchicalIafVae>("h-iaf-vae",
            new HierarchicalIafVae((int)context.Train.Dimension, latentDim: d, settings.Hidden, settings.Dropout,
                settings.ContextSize, settings.FlowLayers, settings.MadeHidden, settings.FeatureSize, settings.Level2Hidden, likelihood,
                encoder, features), context,
            (model, step, epochs) => HierarchicalIafVaeObjective.Loss(model, step.Batch.RequireX(), prior,
                new VaeWeights(settings.KlWeightAt(step.Epoch, epochs), settings.PriorWeight), step.Generator),
            (model, x, generator) => HierarchicalIafVaeObjective.Elbo(model, x, prior, generator),
            "one-sample estimate per test image of log p(x|z2) + log N(z1; 0, I) − log q(z1|x) + log p(z2) − log q(z2|x, z1), " +
            "each level z = IAF(z0; h) with log q = log N(z0; μ, σ²) − log|det ∂z/∂z0|; latents are z2; " + PixelScales);
    }
}
