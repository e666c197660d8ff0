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

    /// <summary>
    /// The true ELBO and importance-weighted bounds on log p(x); null for a model without a posterior density (the AAE)
    /// and in metrics files written before they existed.
    /// </summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public LikelihoodBoundsMetric? LikelihoodBounds { get; init; }
    public required MmdMetric Mmd { get; init; }

    /// <summary>Semi-supervised runs: the label budget, q(c|x)'s test accuracy, KNN fit on the labelled examples only and
    /// the latent NLL against each class's prior segment; null for unsupervised runs.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public SemiSupervisedMetrics? SemiSupervised { get; init; }

    /// <summary>Latent metrics of intermediate posteriors (DDVI's warm-up), measured when their stage ended.</summary>
    public IReadOnlyList<StageSnapshot> StageSnapshots { get; init; } = [];
    public double TrainingSeconds { get; init; }
    public double EvaluationSeconds { get; init; }
    public string Device { get; init; } = "";

    /// <summary>Metrics that came out NaN or infinite (written as null), by their dotted key, with the reason.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public IReadOnlyDictionary<string, string>? NotComputed { get; init; }

    /// <summary>This report with <see cref="NotComputed"/> naming every non-finite number in it.</summary>
    public MetricsReport WithNonFiniteNamed()
    {
        var options = new System.Text.Json.JsonSerializerOptions(ExperimentConfig.JsonOptions) { NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals };
        options.Converters.Clear();
        var found = new SortedDictionary<string, string>(StringComparer.Ordinal);
        Scan(System.Text.Json.JsonSerializer.SerializeToNode(this with { NotComputed = null }, options), "", found);
        return found.Count == 0 ? this : this with { NotComputed = found };
    }

    private static void Scan(System.Text.Json.Nodes.JsonNode? node, string key, IDictionary<string, string> found)
    {
        switch (node)
        {
            case System.Text.Json.Nodes.JsonObject obj:
                foreach (var (name, value) in obj) Scan(value, key.Length == 0 ? name : $"{key}.{name}", found);
                break;
            case System.Text.Json.Nodes.JsonArray array:
                for (int i = 0; i < array.Count; i++) Scan(array[i], $"{key}[{i}]", found);
                break;
            case System.Text.Json.Nodes.JsonValue value when value.TryGetValue(out string? text) && text is "NaN" or "Infinity" or "-Infinity":
                found[key] = $"the value came out {text} (not a finite number: the latents, decoded samples or the model's outputs " +
                             "held non-finite values); written as null";
                break;
        }
    }
}

public sealed record KnnMetric(double Value, int Neighbours, string Definition);

/// <summary>What a semi-supervised run measures beyond the paper's unsupervised metrics.</summary>
/// <param name="Labels">N, the labelled training examples (listed in labelled-indices.csv).</param>
/// <param name="ClassificationAccuracy">Test accuracy of argmax_c q(c|x); null for a model without a classifier.</param>
/// <param name="KnnLabelledAccuracy">KNN on latents fit on the N labelled training examples only (the release fits on
/// every training label: <see cref="MetricsReport.KnnAccuracy"/>).</param>
/// <param name="ClassLatentNll">Mean over classes c of E_{z~p(z|c)}[−log q̂_c(z)], q̂_c the KDE of the test latents of true
/// class c: whether each class covers its own prior segment.</param>
public sealed record SemiSupervisedMetrics(int Labels, ClassificationMetric? ClassificationAccuracy, KnnMetric KnnLabelledAccuracy,
    LatentNllMetric ClassLatentNll);

public sealed record ClassificationMetric(double Value, string Definition);

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

/// <summary>One bound: its mean over the test images in nats per image, and the mean's standard error (null for one image).</summary>
/// <param name="K">Posterior draws per estimate (1: the ELBO).</param>
public sealed record BoundValue(int K, double NatsPerImage,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] double? StandardError);

/// <summary>The Jacobian-sign check of a change-of-variables posterior (DDVI) over all draws.</summary>
/// <param name="ExamplesWithSignChange">Test images whose draws' determinants do not share one nonzero sign: the chain folds there.</param>
public sealed record InjectivityMetric(long Draws, long NegativeDeterminantDraws, long SingularDraws, long ExamplesWithSignChange);

/// <summary>
/// True lower bounds on log p(x) in nats per image (docs/elbo.md), next to the release-formula <see cref="ElboMetric"/>.
/// </summary>
/// <param name="TrueElbo">E_q[log p(x|z) + log p(z) − log q(z|x)], estimated with <paramref name="Samples"/> draws per image.</param>
/// <param name="LogLikelihood">IWAE_K with K = <paramref name="Samples"/>: the tightest lower bound on log p(x) here.</param>
/// <param name="Iwae">IWAE_k for k = 1, 10, 100, … dividing K, and K.</param>
/// <param name="PriorDensity">The log p(z) in the bounds.</param>
/// <param name="PosteriorDensity">How log q(z|x) is computed.</param>
/// <param name="PriorClampedDraws">Draws whose log p(z) the release's KDE clamp would have raised (null: exact prior).</param>
/// <param name="Injectivity">DDVI's determinant-sign check (null for posteriors injective by construction).</param>
public sealed record LikelihoodBoundsMetric(
    int Examples, int Samples, BoundValue TrueElbo, BoundValue LogLikelihood, IReadOnlyList<BoundValue> Iwae,
    string PriorDensity, string PosteriorDensity,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] long? PriorClampedDraws,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] InjectivityMetric? Injectivity,
    double Seconds, string Definition);
