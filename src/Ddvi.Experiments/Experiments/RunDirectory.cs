namespace Ddvi.Experiments;

/// <summary>The layout of a run's folder: everything a run writes goes under it.</summary>
public sealed class RunDirectory(string root)
{
    public string Root { get; } = Path.GetFullPath(root);
    public string Config => Path.Combine(Root, "config.json");

    /// <summary>Every change of config.json: creation, and what each resume changed and why.</summary>
    public string ConfigHistory => Path.Combine(Root, "config-history.json");
    public string Log => Path.Combine(Root, "train.log");
    public string Metrics => Path.Combine(Root, "metrics.json");
    public string TestLatents => Path.Combine(Root, "latents-test.csv");
    public string Plots => Path.Combine(Root, "plots");
    public string Checkpoints(string stage) => Path.Combine(Root, "checkpoints", stage);
    public string StageSnapshot(string stage) => Path.Combine(Root, "checkpoints", stage, "snapshot.json");
    public string Plot(string name) => Path.Combine(Plots, name);

    /// <summary>Default folder of a run: runs/MODEL-DATASET-PRIOR-sSEED (DATASET-nN with <c>--train-images N</c>).</summary>
    public static string DefaultFor(ExperimentConfig config) =>
        Path.Combine("runs", $"{config.Model}-{Data.DatasetCatalog.ShortName(config.Dataset)}{(config.TrainImages is int n ? $"-n{n}" : "")}-{config.Prior}-s{config.Seed}");
}
