using Ddvi.Runtime;
using static TorchSharp.torch;

namespace Ddvi.Priors;

/// <summary>
/// A mixture of 10 elongated Gaussians on a ring, as in the release (after the adversarial-autoencoder examples):
/// component c has mean 1.4·(cos φ_c, sin φ_c) with φ_c = 2πc/10, standard deviation 0.5 along the radial direction
/// (cos φ_c, sin φ_c) and 0.1 along the tangential one. Exact density
/// log p(z) = logsumexp_c [−log(2π·0.5·0.1) − a_c²/(2·0.5²) − b_c²/(2·0.1²)] − log 10, with (a_c, b_c) the radial and
/// tangential coordinates of z − mean_c. Class c is component c.
/// </summary>
public sealed class GaussianMixturePrior : SegmentedPrior
{
    public const int ComponentCount = 10;
    public const double RingRadius = 1.4;
    public const double RadialStd = 0.5;
    public const double TangentialStd = 0.1;


    public GaussianMixturePrior(Device device) : base(device)
    {
    }

    public override string Name => "gaussian-mixture";
    public override int ClassCount => ComponentCount;
    public override bool HasExactDensity => true;

    public override string DensityDescription =>
        $"exact: (1/10) Σ_c N(z; {RingRadius}·(cos 2πc/10, sin 2πc/10), R_c diag({RadialStd}², {TangentialStd}²) R_cᵀ)";

    protected override Tensor Generate(Tensor classes, Generator generator) // [n] → [n, 2]
    {
        long n = classes.shape[0];
        var radial = (Scalars.Of(RadialStd) * PriorChecks.Normal(n, generator)).add(Scalars.Of(RingRadius), Scalars.One);
        var tangential = Scalars.Of(TangentialStd) * PriorChecks.Normal(n, generator);
        var phi = classes.to(float64) * Scalars.Of(2 * Math.PI / ComponentCount);
        var (cos, sin) = (phi.cos(), phi.sin());
        return PriorChecks.Points(radial * cos - tangential * sin, (radial * sin).add(tangential * cos, Scalars.One), Device);
    }

    public override Tensor LogDensity(Tensor z)
    {
        PriorChecks.LatentBatch(Name, z, Device);
        using var scope = NewDisposeScope();
        var z64 = z.to(float64);
        var x = z64.select(1, 0).unsqueeze(1); // [B, 1]
        var y = z64.select(1, 1).unsqueeze(1); // [B, 1]
        var phi = arange(Scalars.Of(0), Scalars.Of(ComponentCount), Scalars.Of(1), dtype: float64, device: z.device).unsqueeze(0) * Scalars.Of(2 * Math.PI / ComponentCount); // [1, C]
        var (cos, sin) = (phi.cos(), phi.sin());
        var radial = (x * cos).add(y * sin, Scalars.One) - Scalars.Of(RingRadius); // [B, C]
        var tangential = y * cos - x * sin;          // [B, C]
        var logComponent = (radial.pow(Scalars.Of(2)) / Scalars.Of(-2 * RadialStd * RadialStd)).add(tangential.pow(Scalars.Of(2)) / Scalars.Of(-2 * TangentialStd * TangentialStd), Scalars.One)
                           - Scalars.Of(Math.Log(2 * Math.PI * RadialStd * TangentialStd));
        var logP = logComponent.logsumexp(1) - Scalars.Of(Math.Log(ComponentCount));
        return logP.to(float32).MoveToOuterDisposeScope();
    }
}
