using Ddvi.Runtime;
using static TorchSharp.torch;

namespace Ddvi.Priors;

/// <summary>
/// The isotropic Gaussian prior p(z) = N(z; 0, s²I) with its exact density
/// log p(z) = −log(2π s²) − |z|²/(2 s²). Its 10 classes are the equal angular sectors
/// [2πc/10, 2π(c+1)/10) of the polar angle of z (measured in [0, 2π)), each of mass 1/10.
/// </summary>
public sealed class GaussianPrior : ILabelledPrior
{
    public const int SectorCount = 10;

    readonly Device _device;

    /// <param name="device">Where samples live.</param>
    /// <param name="std">Standard deviation s (&gt; 0).</param>
    public GaussianPrior(Device device, double std = 1.0)
    {
        PriorChecks.Scale("gaussian", nameof(std), std, strictlyPositive: true);
        Std = std;
        _device = device;
    }

    public double Std { get; }
    public string Name => "gaussian";
    public int Dimension => 2;
    public int ClassCount => SectorCount;
    public bool HasExactDensity => true;
    public string DensityDescription => $"exact: N(z; 0, {Std}² I)";

    public (Tensor Z, Tensor Classes) SampleLabelled(long n, Generator generator)
    {
        PriorChecks.SampleCount(Name, n);
        using var scope = NewDisposeScope();
        var x = Scalars.Of(Std) * PriorChecks.Normal(n, generator);
        var y = Scalars.Of(Std) * PriorChecks.Normal(n, generator);
        var z = PriorChecks.Points(x, y, _device);
        return (z.MoveToOuterDisposeScope(), RandomDraws.Place(SectorOf(x, y), _device).MoveToOuterDisposeScope());
    }

    /// <summary>N(0, s²I) conditioned on sector c: Rayleigh radius s·√(−2 log(1 − U)), angle uniform in the sector.</summary>
    public Tensor SampleClass(int classIndex, long n, Generator generator)
    {
        PriorChecks.ClassIndex(Name, classIndex, ClassCount);
        PriorChecks.SampleCount(Name, n);
        using var scope = NewDisposeScope();
        var radius = Scalars.Of(Std) * (Scalars.Of(-2) * PriorChecks.Uniform(n, generator).neg().add(Scalars.Of(1), Scalars.One).log()).sqrt();
        var angle = PriorChecks.Uniform(n, generator).add(Scalars.Of(classIndex), Scalars.One) * Scalars.Of(2 * Math.PI / SectorCount);
        return PriorChecks.Points(radius * angle.cos(), radius * angle.sin(), _device).MoveToOuterDisposeScope();
    }

    public Tensor LogDensity(Tensor z)
    {
        PriorChecks.LatentBatch(Name, z, _device);
        using var scope = NewDisposeScope();
        var logP = z.to(float64).pow(Scalars.Of(2)).sum(1) / Scalars.Of(-2 * Std * Std) - Scalars.Of(Math.Log(2 * Math.PI * Std * Std));
        return logP.to(float32).MoveToOuterDisposeScope();
    }

    /// <summary>Sector index of each point <c>[n]</c> int64, from its polar angle in [0, 2π).</summary>
    public static Tensor SectorOf(Tensor x, Tensor y)
    {
        var angle = atan2(y, x).remainder(Scalars.Of(2 * Math.PI));
        return (angle * Scalars.Of(SectorCount / (2 * Math.PI))).floor().clamp(Scalars.Of(0), Scalars.Of(SectorCount - 1)).to(int64);
    }
}
