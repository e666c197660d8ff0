using Ddvi.Evaluation;
using Ddvi.Models;
using Ddvi.Runtime;

namespace Ddvi.Experiments.Ancestry;

/// <summary>
/// Settings of <c>ddvi ancestry</c>'s learned methods and scores, each default stated once here: the paper's genomics
/// experiment as the authors' release runs it (arXiv:2401.02739; team reference notes §8).
/// </summary>
public sealed record AncestrySettings
{
    /// <summary>Training epochs of the clustering DDVI, the clustering VAE and the AAE (200).</summary>
    public int Epochs { get; init; } = 200;

    /// <summary>Passes over the principal-component matrix per epoch: the release trains on the matrix repeated 5 times.</summary>
    public int PassesPerEpoch { get; init; } = 5;

    public int BatchSize { get; init; } = 128;

    /// <summary>Width of the 4 hidden layers of every encoder and decoder (1000).</summary>
    public int Hidden { get; init; } = 1000;

    public int HiddenLayers { get; init; } = 4;
    public double Dropout { get; init; } = 0.2;
    public int LatentDim { get; init; } = 2;

    /// <summary>Components of the learned mixture prior (20) and their standard deviation (0.125).</summary>
    public int Components { get; init; } = 20;
    public double ComponentStd { get; init; } = 0.125;

    /// <summary>T, the clustering DDVI chain's length (20).</summary>
    public int ChainSteps { get; init; } = 20;

    /// <summary>Steps of the prior diffusion's first fit to the initial mixture (the release: 100 epochs of 1,000).</summary>
    public int PriorDiffusionIterations { get; init; } = 100_000;

    /// <summary>Adam's rate of the clustering DDVI's and VAE's networks (1e-4) and of the AAE's (2e-4).</summary>
    public double LearningRate { get; init; } = 1e-4;
    public double AaeLearningRate { get; init; } = 2e-4;

    /// <summary>β of the clustering DDVI (0.005) and the clustering VAE's final KL weight (0.01, ramped linearly from 0).</summary>
    public double DdviKlWeight { get; init; } = 0.005;
    public double VaeKlWeight { get; init; } = 0.01;

    /// <summary>t-SNE's perplexity (30); UMAP's neighbours (15) and minimum distance (0.5).</summary>
    public double TsnePerplexity { get; init; } = 30;
    public int UmapNeighbours { get; init; } = 15;
    public double UmapMinDist { get; init; } = 0.5;

    /// <summary>The scoring mixture: 20 full-covariance components, 10 starts, covariance regularisation 1e-2.</summary>
    public int ScoreComponents { get; init; } = 20;
    public int ScoreInitialisations { get; init; } = 10;
    public double ScoreRegularisation { get; init; } = 1e-2;

    /// <summary>k of the KNN accuracies (20, 50, 100).</summary>
    public IReadOnlyList<int> NeighbourCounts { get; init; } = [20, 50, 100];

    /// <summary>Share of samples held out for the held-out KNN accuracy (0.2, stratified by population).</summary>
    public double HeldOutFraction { get; init; } = 0.2;

    public DeviceChoice Device { get; init; } = DeviceChoice.Auto;

    /// <summary>Arithmetic of the learned methods' MLPs (<see cref="NetworkPrecision"/>; float32, the release's, unless
    /// asked): <c>bf16</c> runs their products in bfloat16 with float32 weights, optimiser and losses.</summary>
    [System.Text.Json.Serialization.JsonConverter(typeof(System.Text.Json.Serialization.JsonStringEnumConverter<NetworkPrecision>))]
    public NetworkPrecision Precision { get; init; } = NetworkPrecisions.Default;

    public void Validate()
    {
        static void Require(bool condition, string message)
        {
            if (!condition) throw new ArgumentException(message);
        }
        Require(Epochs >= 1, $"--epochs must be ≥ 1, got {Epochs}");
        Require(PassesPerEpoch >= 1, $"--passes-per-epoch must be ≥ 1, got {PassesPerEpoch}");
        Require(BatchSize >= 1, $"--batch-size must be ≥ 1, got {BatchSize}");
        Require(Hidden >= 1 && HiddenLayers >= 1, $"hidden layers must have ≥ 1 unit and there must be ≥ 1 of them, got {HiddenLayers} × {Hidden}");
        Require(Dropout >= 0 && Dropout < 1, $"dropout must be in [0, 1), got {Dropout}");
        Require(LatentDim >= 1, $"--latent-dim must be ≥ 1, got {LatentDim}");
        Require(Components >= 1, $"--components must be ≥ 1, got {Components}");
        Require(ComponentStd > 0 && double.IsFinite(ComponentStd), $"--component-std must be a finite number > 0, got {ComponentStd}");
        Require(ChainSteps >= 1, $"--chain-steps must be ≥ 1, got {ChainSteps}");
        Require(PriorDiffusionIterations >= 1, $"--prior-diffusion-iterations must be ≥ 1, got {PriorDiffusionIterations}");
        Require(LearningRate > 0 && double.IsFinite(LearningRate), $"--lr must be a finite number > 0, got {LearningRate}");
        Require(AaeLearningRate > 0 && double.IsFinite(AaeLearningRate), $"AAE learning rate must be a finite number > 0, got {AaeLearningRate}");
        Require(DdviKlWeight >= 0 && double.IsFinite(DdviKlWeight), $"--kl-weight must be a finite number ≥ 0, got {DdviKlWeight}");
        Require(VaeKlWeight >= 0 && double.IsFinite(VaeKlWeight), $"VAE KL weight must be a finite number ≥ 0, got {VaeKlWeight}");
        Require(TsnePerplexity > 0 && double.IsFinite(TsnePerplexity), $"--perplexity must be a finite number > 0, got {TsnePerplexity}");
        Require(UmapNeighbours >= 2, $"--umap-neighbours must be ≥ 2, got {UmapNeighbours}");
        Require(UmapMinDist >= 0 && double.IsFinite(UmapMinDist), $"--umap-min-dist must be a finite number ≥ 0, got {UmapMinDist}");
        Require(ScoreComponents >= 1 && ScoreInitialisations >= 1, $"the scoring mixture needs ≥ 1 component and ≥ 1 start, got {ScoreComponents} and {ScoreInitialisations}");
        Require(ScoreRegularisation >= 0 && double.IsFinite(ScoreRegularisation), $"covariance regularisation must be a finite number ≥ 0, got {ScoreRegularisation}");
        Require(NeighbourCounts.Count >= 1 && NeighbourCounts.All(k => k >= 1), $"--knn must list k values ≥ 1, got [{string.Join(", ", NeighbourCounts)}]");
        Require(HeldOutFraction > 0 && HeldOutFraction < 1, $"--held-out must be in (0, 1), got {HeldOutFraction}");
        Require(Enum.IsDefined(Precision), $"--precision must be one of {string.Join(", ", NetworkPrecisions.Names)}, got {Precision}");
    }
}
