using Ddvi.Experiments.Methods;

namespace Ddvi.Experiments;

/// <summary>The models Ddvi trains, by command-line name, with their paper defaults.</summary>
public static class ModelCatalog
{
    public static IReadOnlyList<string> Names { get; } = ["ddvi", "vae", "iaf-vae", "h-iaf-vae", "aae"];

    /// <summary>Epochs of the paper/release for the model.</summary>
    public static int PaperEpochs(string model) => model switch
    {
        "vae" => 200,
        "ddvi" => 100,
        "iaf-vae" or "h-iaf-vae" => 200,
        "aae" => 200,
        _ => throw Unknown(model),
    };

    /// <summary>Epochs on the built-in synthetic dataset: enough to show structure in about two minutes on 2 cores.</summary>
    public static int QuickEpochs(string model) => model switch
    {
        "vae" => 30,
        "ddvi" => 15,
        "iaf-vae" or "h-iaf-vae" => 30,
        "aae" => 15,
        _ => throw Unknown(model),
    };

    public static double DefaultLearningRate(string model) => model switch
    {
        "vae" or "ddvi" => 1e-4,
        "iaf-vae" or "h-iaf-vae" => 1e-4,
        "aae" => 2e-4,
        _ => throw Unknown(model),
    };

    public static IExperimentMethod Create(MethodContext context) => context.Config.Model switch
    {
        "vae" => AevbMethods.Vae(context),
        "ddvi" => new DdviMethod(context),
        "iaf-vae" => AevbMethods.IafVae(context),
        "h-iaf-vae" => AevbMethods.HierarchicalIafVae(context),
        "aae" => new AaeMethod(context),
        var other => throw Unknown(other),
    };

    private static ArgumentException Unknown(string model) =>
        new($"--model '{model}' is not known; valid: {string.Join(", ", Names)}");
}
