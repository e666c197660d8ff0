using Ddvi.Models;
using Ddvi.Objectives;
using Ddvi.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace Ddvi.Experiments.Methods;

/// <summary>
/// A method trained by one objective over all its parameters in one stage, with a one-sample ELBO: the shape
/// of the AEVB family (VAE, IAF-VAE, hierarchical IAF-VAE). The model is moved to the run's device here,
/// before the optimiser sees its parameters (TorchSharp's <c>.to()</c> replaces parameter objects).
/// </summary>
public sealed class SingleObjectiveMethod<TModel> : IExperimentMethod where TModel : nn.Module, ILatentVariableModel
{
    private readonly TModel _model;
    private readonly Func<TModel, Tensor, Generator, ElboEstimate> _elbo;

    /// <param name="name">Model name: the stage and phase name, so loss columns read "name/term".</param>
    /// <param name="loss">The objective of one batch, given the model, the step and the stage's epoch count.</param>
    public SingleObjectiveMethod(string name, TModel model, MethodContext context,
        Func<TModel, PhaseStep, int, LossTerms> loss, Func<TModel, Tensor, Generator, ElboEstimate> elbo, string elboDefinition)
    {
        _model = model;
        _elbo = elbo;
        ElboDefinition = elboDefinition;
        _model.to(context.Device);

        int epochs = context.Config.ResolvedEpochs;
        var phase = new TrainingPhase
        {
            Name = name,
            Parameters = _model.parameters().ToList(),
            LearningRate = context.Config.ResolvedLearningRate,
            Loss = step => loss(_model, step, epochs),
        };
        Stages = [new TrainingStage(name, epochs, context.TrainingBatches(), [phase])];
    }

    public nn.Module Module => _model;
    public ILatentVariableModel Model => _model;
    public IReadOnlyList<TrainingStage> Stages { get; }
    public bool HasElbo => true;
    public string ElboDefinition { get; }

    public ElboEstimate EstimateElbo(Tensor x, Generator generator) => _elbo(_model, x, generator);
}
