using TorchSharp;
using Ddvi.Models;
using Ddvi.Objectives;
using Ddvi.Training;
using static TorchSharp.torch;

namespace Ddvi.Experiments.Methods;

/// <summary>The AEVB baseline trained with the release's objective and β ramp (REFERENCE.md §6).</summary>
public sealed class VaeMethod : IExperimentMethod
{
    private readonly GaussianVae _vae;
    private readonly MethodContext _context;

    public VaeMethod(MethodContext context)
    {
        _context = context;
        var settings = context.Config.Vae;
        _vae = new GaussianVae((int)context.Train.Dimension, latentDim: 2, settings.Hidden, settings.Dropout);
        // Move before any optimiser sees the parameters: .to() replaces parameter objects.
        _vae.to(context.Device);

        int epochs = context.Config.ResolvedEpochs;
        var phase = new TrainingPhase
        {
            Name = "vae",
            Parameters = _vae.parameters().ToList(),
            LearningRate = context.Config.ResolvedLearningRate,
            Loss = step => VaeObjective.Loss(_vae, step.Batch.RequireX(), context.Prior,
                new VaeWeights(settings.KlWeightAt(step.Epoch, epochs), settings.PriorWeight), step.Generator),
        };
        Stages = [new TrainingStage("vae", epochs, new ImageBatches(context.Train, context.Config.BatchSize), [phase])];
    }

    public nn.Module Module => _vae;
    public ILatentVariableModel Model => _vae;
    public IReadOnlyList<TrainingStage> Stages { get; }
    public bool HasElbo => true;

    public string ElboDefinition =>
        "one-sample estimate per test image of log p(x|z) + log p(z) − log q(z|x), z ~ q(z|x); " +
        "nats_per_image sums log p(x|z) over pixels, release_per_pixel_scale averages it over pixels (the release's BCE scale)";

    public ElboEstimate EstimateElbo(Tensor x, Generator generator) => VaeObjective.Elbo(_vae, x, _context.Prior, generator);
}
