using System.Text.Json.Serialization;

namespace Ddvi.Experiments;

/// <summary>metrics.json: every number with what it means and how it was computed, following the paper's metrics
/// (arXiv:2401.02739; the authors' release).</summary>
public sealed record MetricsReport
{
    public required string Model { get; init; }
    public required string Dataset { get; init; }
    public required string Prior { get; init; }
    public required string PriorDensity { get; init; }
    public required long Seed { get; init; }
    public required int Epochs { get; init; }
    public required long TrainExamples { get; init; }
    public required long TestExamples { get; init; }
    public required KnnMetric KnnAccuracy { get; init; }
    public required LatentNllMetric LatentNll { get; init; }
    public required ElboMetric Elbo { get; init; }
    public required MmdMetric Mmd { get; init; }
    /// <summary>Latent metrics of intermediate posteriors (DDVI's warm-up), measured when their stage ended.</summary>
    public IReadOnlyList<StageSnapshot> StageSnapshots { get; init; } = [];
    public double TrainingSeconds { get; init; }
    public double EvaluationSeconds { get; init; }
    public string Device { get; init; } = "";
}

public sealed record KnnMetric(double Value, int Neighbours, string Definition);

/// <param name="PriorSampleReference">
/// The same NLL with as many fresh prior samples as test latents in place of the latents: what latents distributed
/// exactly as the prior score (the KDE's own floor at this sample size). Null in metrics files written before it existed.
/// </param>
public sealed record LatentNllMetric(double Value, double[] Bandwidths, int PriorSamples, string Definition,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] double? PriorSampleReference = null);

public sealed record ElboMetric(
    bool Available,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] double? NatsPerImage,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] double? ReleasePerPixelScale,
    string Definition);

public sealed record MmdMetric(double Value, double Squared, double[] Sigmas, int Samples, string Definition);
