using TorchSharp;
using Ddvi.Models;
using Ddvi.Objectives;
using Ddvi.Training;
using static TorchSharp.torch;

namespace Ddvi.Experiments.Methods;

/// <summary>The hierarchical IAF-VAE baseline trained with the release's objective and β ramp (REFERENCE.md §6).</summary>
public sealed class HierarchicalIafVaeMethod : IExperimentMethod
{
    private readonly HierarchicalIafVae _model;
    private readonly MethodContext _context;

    public HierarchicalIafVaeMethod(MethodContext context)
    {
        _context = context;
        var settings = context.Config.HierarchicalIaf;
        _model = new HierarchicalIafVae((int)context.Train.Dimension, latentDim: 2, settings.Hidden, settings.Dropout,
            settings.ContextSize, settings.FlowLayers, settings.MadeHidden, settings.FeatureSize, settings.Level2Hidden);
        // Move before any optimiser sees the parameters: .to() replaces parameter objects.
        _model.to(context.Device);

        int epochs = context.Config.ResolvedEpochs;
        var phase = new TrainingPhase
        {
            Name = "h-iaf-vae",
            Parameters = _model.parameters().ToList(),
            LearningRate = context.Config.ResolvedLearningRate,
            Loss = step => HierarchicalIafVaeObjective.Loss(_model, step.Batch.RequireX(), context.Prior,
                new VaeWeights(settings.KlWeightAt(step.Epoch, epochs), settings.PriorWeight), step.Generator),
        };
        Stages = [new TrainingStage("h-iaf-vae", epochs, new ImageBatches(context.Train, context.Config.BatchSize), [phase])];
    }

    public nn.Module Module => _model;
    public ILatentVariableModel Model => _model;
    public IReadOnlyList<TrainingStage> Stages { get; }
    public bool HasElbo => true;

    public string ElboDefinition =>
        "one-sample estimate per test image of log p(x|z2) + log N(z1; 0, I) − log q(z1|x) + log p(z2) − log q(z2|x, z1), " +
        "each level z = IAF(z0; h) with log q = log N(z0; μ, σ²) − log|det ∂z/∂z0|; latents are z2; " +
        "nats_per_image sums log p(x|z2) over pixels, release_per_pixel_scale averages it over pixels (the release's BCE scale)";

    public ElboEstimate EstimateElbo(Tensor x, Generator generator) => HierarchicalIafVaeObjective.Elbo(_model, x, _context.Prior, generator);
}
