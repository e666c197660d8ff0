using TorchSharp;
using Ddvi.Models;
using Ddvi.Objectives;
using Ddvi.Training;
using static TorchSharp.torch;

namespace Ddvi.Experiments.Methods;

/// <summary>The IAF-VAE baseline trained with the release's objective and β ramp (REFERENCE.md §6).</summary>
public sealed class IafVaeMethod : IExperimentMethod
{
    private readonly IafVae _model;
    private readonly MethodContext _context;

    public IafVaeMethod(MethodContext context)
    {
        _context = context;
        var settings = context.Config.Iaf;
        _model = new IafVae((int)context.Train.Dimension, latentDim: 2, settings.Hidden, settings.Dropout,
            settings.ContextSize, settings.FlowLayers, settings.MadeHidden);
        // Move before any optimiser sees the parameters: .to() replaces parameter objects.
        _model.to(context.Device);

        int epochs = context.Config.ResolvedEpochs;
        var phase = new TrainingPhase
        {
            Name = "iaf-vae",
            Parameters = _model.parameters().ToList(),
            LearningRate = context.Config.ResolvedLearningRate,
            Loss = step => IafVaeObjective.Loss(_model, step.Batch.RequireX(), context.Prior,
                new VaeWeights(settings.KlWeightAt(step.Epoch, epochs), settings.PriorWeight), step.Generator),
        };
        Stages = [new TrainingStage("iaf-vae", epochs, new ImageBatches(context.Train, context.Config.BatchSize), [phase])];
    }

    public nn.Module Module => _model;
    public ILatentVariableModel Model => _model;
    public IReadOnlyList<TrainingStage> Stages { get; }
    public bool HasElbo => true;

    public string ElboDefinition =>
        "one-sample estimate per test image of log p(x|z) + log p(z) − log q(z|x), z = IAF(z0; h), z0 ~ N(μ, σ²), " +
        "log q(z|x) = log N(z0; μ, σ²) − log|det ∂z/∂z0|; nats_per_image sums log p(x|z) over pixels, " +
        "release_per_pixel_scale averages it over pixels (the release's BCE scale)";

    public ElboEstimate EstimateElbo(Tensor x, Generator generator) => IafVaeObjective.Elbo(_model, x, _context.Prior, generator);
}
