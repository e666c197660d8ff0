using Ddvi.Runtime;
using static TorchSharp.torch;

namespace Ddvi.Priors;

/// <summary>
/// The standard normal prior p(z) = N(z; 0, I_d) on R^d for any d ≥ 1, with its exact density
/// log p(z) = −(d/2) log 2π − |z|²/2. It has no classes (unlike the paper's 2-D <see cref="GaussianPrior"/>, whose
/// classes are angular sectors): it is the usual VAE prior for latents of any dimension.
/// </summary>
/// <remarks>
/// Like the other priors, samples are float32 on the prior's device and the log density is computed in float64 and
/// returned as float32, whatever the dtype of z.
/// </remarks>
public sealed class StandardNormalPrior : IPrior
{
    public const string PriorName = "standard-normal";

    readonly Device _device;
    readonly double _logNormaliser; // −(d/2) log 2π

    /// <param name="dimension">d ≥ 1.</param>
    /// <param name="device">Where samples live; z given to <see cref="LogDensity"/> must be there too.</param>
    public StandardNormalPrior(int dimension, Device device)
    {
        PriorChecks.Dimension(PriorName, dimension);
        ArgumentNullException.ThrowIfNull(device);
        Dimension = dimension;
        _device = device;
        _logNormaliser = -0.5 * dimension * Math.Log(2 * Math.PI);
    }

    public string Name => PriorName;
    public int Dimension { get; }
    public bool HasExactDensity => true;
    public string DensityDescription => $"exact: N(z; 0, I_{Dimension})";

    /// <summary>n standard normal points <c>[n, d]</c>, float32, drawn with <paramref name="generator"/>.</summary>
    public Tensor Sample(long n, Generator generator)
    {
        PriorChecks.SampleCount(Name, n);
        return RandomDraws.Normal([n, Dimension], float32, _device, generator);
    }

    public Tensor LogDensity(Tensor z)
    {
        PriorChecks.LatentBatch(Name, z, _device, Dimension);
        using var scope = NewDisposeScope();
        var logP = (z.to(float64).pow(Scalars.Of(2)).sum(1) * Scalars.Of(-0.5)).add(Scalars.Of(_logNormaliser), Scalars.One);
        return logP.to(float32).MoveToOuterDisposeScope();
    }
}
