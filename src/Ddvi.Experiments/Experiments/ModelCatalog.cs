using System.Globalization;
using Ddvi.Experiments.Methods;
using Ddvi.Models;

namespace Ddvi.Experiments;

/// <summary>
/// One model the experiments train, with everything that differs by model: its command-line name, its defaults (the
/// paper's and the authors' release's numbers; arXiv:2401.02739) and how to build it from a run's configuration.
/// </summary>
/// <param name="Name">The command-line name (<c>--model</c>).</param>
/// <param name="PaperEpochs">Epochs of the paper/release (DDVI: of stage 3).</param>
/// <param name="QuickEpochs">Epochs on the built-in synthetic dataset: enough to show structure in about two minutes on
/// 2 cores.</param>
/// <param name="LearningRate">Adam learning rate of the model's training when <c>--lr</c> is not given (DDVI: of
/// stage 3; its stages 1 and 2 have their own, in <see cref="DdviSettings"/>).</param>
/// <param name="Create">Builds the method (model, objectives and stages) for a run.</param>
/// <param name="SemiSupervised">Whether the model learns from a label budget (<c>--labels</c>, the release's 1,000 or
/// 10,000 by default) and classifies with q(c|x).</param>
/// <param name="BatchSize">Mini-batch size when <c>--batch-size</c> is not given (the release's: 128; 1,024 for ddvi-semi).</param>
/// <param name="Fork">Where a run of the model can be forked (<c>ddvi train --fork-from</c>); null for one-stage models.</param>
public sealed record ModelRegistration(string Name, int PaperEpochs, int QuickEpochs, double LearningRate,
    Func<MethodContext, IExperimentMethod> Create, bool SemiSupervised = false, int BatchSize = PaperSettings.BatchSize, ForkPoint? Fork = null);

/// <summary>The models Ddvi trains, registered by name in one list: adding a model is one entry.</summary>
public static class ModelCatalog
{
    /// <summary>Every model, in the order the command line lists them.</summary>
    public static IReadOnlyList<ModelRegistration> Models { get; } =
    [
        new("ddvi", PaperEpochs: 100, QuickEpochs: 15, LearningRate: 1e-4, context => new DdviMethod(context), Fork: DdviMethod.ForkPoint),
        new("vae", PaperEpochs: 200, QuickEpochs: 30, LearningRate: 1e-4, AevbMethods.Vae),
        new("iaf-vae", PaperEpochs: 200, QuickEpochs: 30, LearningRate: 1e-4, AevbMethods.IafVae),
        new("h-iaf-vae", PaperEpochs: 200, QuickEpochs: 30, LearningRate: 1e-4, AevbMethods.HierarchicalIafVae),
        new("aae", PaperEpochs: 200, QuickEpochs: 15, LearningRate: 2e-4, context => new AaeMethod(context)),
        new("ddvi-semi", PaperEpochs: 50, QuickEpochs: 4, LearningRate: 1e-4, context => new SemiDdviMethod(context), SemiSupervised: true, BatchSize: 1024,
            Fork: SemiDdviMethod.ForkPoint),
        new("vae-semi", PaperEpochs: 50, QuickEpochs: 30, LearningRate: 1e-4, SemiBaselineMethods.VaeSemi, SemiSupervised: true),
        new("iaf-vae-semi", PaperEpochs: 50, QuickEpochs: 30, LearningRate: 1e-4, SemiBaselineMethods.IafVaeSemi, SemiSupervised: true),
        new("aae-semi", PaperEpochs: 200, QuickEpochs: 15, LearningRate: 2e-4, SemiBaselineMethods.AaeSemi, SemiSupervised: true),
    ];

    public static IReadOnlyList<string> Names { get; } = [.. Models.Select(m => m.Name)];

    /// <summary>The registration of <paramref name="model"/>; an unknown name is an error listing the valid ones.</summary>
    public static ModelRegistration Get(string model) =>
        Models.FirstOrDefault(m => m.Name == model)
        ?? throw new ArgumentException($"--model '{model}' is not known; valid: {string.Join(", ", Names)}");

    /// <summary>Epochs of the paper/release for the model.</summary>
    public static int PaperEpochs(string model) => Get(model).PaperEpochs;

    /// <summary>Epochs on the built-in synthetic dataset: enough to show structure in about two minutes on 2 cores.</summary>
    public static int QuickEpochs(string model) => Get(model).QuickEpochs;

    public static double DefaultLearningRate(string model) => Get(model).LearningRate;

    /// <summary>The model of <paramref name="context"/>'s configuration, its networks (MLPs, conv trunks and decoders) set to the configuration's precision.</summary>
    public static IExperimentMethod Create(MethodContext context)
    {
        var method = Get(context.Config.Model).Create(context);
        method.Module.SetNetworkPrecision(context.Config.Precision);
        return method;
    }

    /// <summary>Each model's value of <paramref name="value"/>, for help texts: "ddvi 100, vae 200, …".</summary>
    public static string Describe<T>(Func<ModelRegistration, T> value) where T : IFormattable =>
        string.Join(", ", Models.Select(m => $"{m.Name} {Format(value(m))}"));

    private static string Format(IFormattable value) =>
        value is double d ? d.ToString("0.###e0", CultureInfo.InvariantCulture) : value.ToString(null, CultureInfo.InvariantCulture);
}
