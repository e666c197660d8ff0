using Ddvi.Runtime;
using static TorchSharp.torch;

namespace Ddvi.Priors;

/// <summary>
/// The pinwheel prior of the DDVI paper (arXiv:2401.02739; the authors' release), with its exact density.
/// <para>
/// Arm c of 10: features (r, s) ~ N((1, 0), diag(0.15², 0.005²)), angle θ_c(r) = 2πc/10 + 0.25·e^r,
/// z = T_c(r, s) = R(θ_c(r))·(r, s) with R the counter-clockwise rotation. (The release's einsum applies Rᵀ,
/// which draws the mirror image; the density is the same up to that reflection.)
/// </para>
/// <para>
/// Density by change of variables: p(z) = (1/10) Σ_c N(r_c; 1, 0.15²)·N(s_c; 0, 0.005²) / |det J_c|, with
/// (r_c, s_c) = T_c⁻¹(z) and det J_c = 1 − 0.25·e^{r_c}·s_c. The inverse solves F(r) = z·(cos θ_c(r), sin θ_c(r)) − r = 0
/// (then s = z·(−sin θ_c(r), cos θ_c(r))); F'(r) = −det J, so Newton reads r ← r + F(r)/det J. It runs in float64 for
/// <see cref="NewtonIterations"/> steps from r₀ = |z| without gradient, then one more Newton step with gradient, which gives
/// exactly the implicit-function derivative dr/dz = (∂F/∂z)/det J at the root.
/// </para>
/// <para>
/// Why one preimage per arm: write (r, s) = ρ(cos ψ, sin ψ), so T_c sends it to polar radius ρ and polar angle
/// g(ψ) = ψ + θ_c(ρ cos ψ). In the region r &gt; 0, |s| &lt; 0.05 (10 standard deviations), with ρ &lt; ln 80 ≈ 4.4 (22 radial
/// standard deviations), g'(ψ) = det J ≥ 1 − 0.25·e^ρ·0.05 &gt; 0 and g'(ψ) &lt; 2, and the region's arc of the circle spans
/// at most π, so g is injective and its image is shorter than 2π: each z has at most one preimage of arm c there.
/// The mass outside that region is ≈ 1e−11 (r &lt; 0). The Newton start r₀ = |z| lies within s²/(2|z|) of that preimage,
/// so the iteration converges in a few steps wherever arm c has non-negligible density (the tests check a round trip and
/// that the density integrates to 1).
/// Far from an arm Newton may not converge; there the leftover residual F is charged as extra across-arm distance,
/// −F²/(2·0.005²), so the arm's term stays finite, smooth and negligible.
/// </para>
/// </summary>
public sealed class PinwheelPrior : SegmentedPrior
{
    public const int ArmCount = 10;
    public const double RadialMean = 1.0;
    public const double RadialStd = 0.15;
    public const double TangentialStd = 0.005;
    public const double Rate = 0.25;
    public const int NewtonIterations = 6;

    // Keeps far-from-arm Newton steps bounded; on the support det J lies in [0.9, 1.1], so the floor never binds there.
    internal const double MinNewtonSlope = 0.5;
    internal const double MinAbsJacobian = 1e-12;

    private readonly bool hostDensity;

    /// <param name="device">Where samples and log densities live.</param>
    /// <param name="hostDensity">
    /// Evaluate the log density of CPU points on the host (<see cref="FastPaths.PinwheelDensityKernel"/>: the same
    /// function and gradient; forward and backward at batch 128 on two threads 0.46 ms against the tensor path's 1.74);
    /// false forces the tensor path, which other devices use.
    /// </param>
    public PinwheelPrior(Device device, bool hostDensity = true) : base(device)
    {
        this.hostDensity = hostDensity;
    }

    public override string Name => "pinwheel";
    public override int ClassCount => ArmCount;
    public override bool HasExactDensity => true;

    public override string DensityDescription =>
        "exact: p(z) = (1/10) Σ_c N(r_c; 1, 0.15²) N(s_c; 0, 0.005²) / |1 − 0.25 e^{r_c} s_c|, " +
        $"(r_c, s_c) = arm-c preimage of z by float64 Newton ({NewtonIterations} steps + 1 differentiable step)";

    protected override Tensor Generate(Tensor classes, Generator generator) // [n] → [n, 2]
    {
        long n = classes.shape[0];
        var r = (Scalars.Of(RadialStd) * PriorChecks.Normal(n, generator)).add(Scalars.Of(RadialMean), Scalars.One);
        var s = Scalars.Of(TangentialStd) * PriorChecks.Normal(n, generator);
        var angle = (classes.to(float64) * Scalars.Of(2 * Math.PI / ArmCount)).add(Scalars.Of(Rate) * r.exp(), Scalars.One);
        var (cos, sin) = (angle.cos(), angle.sin());
        return PriorChecks.Points(r * cos - s * sin, (r * sin).add(s * cos, Scalars.One), Device);
    }

    /// <summary>
    /// log p(z) <c>[B]</c> (float32) for z <c>[B, 2]</c>, differentiable in z. On the CPU (unless the prior was built with
    /// hostDensity: false) the value and its gradient come from <see cref="FastPaths.PinwheelDensityKernel"/> and reach
    /// autograd as value + Σ_j (z_j − sg(z_j))·∂_j log p; elsewhere from tensor operations.
    /// </summary>
    public override Tensor LogDensity(Tensor z)
    {
        PriorChecks.LatentBatch(Name, z, Device);
        return hostDensity && z.device_type == TorchSharp.DeviceType.CPU ? HostLogDensity(z) : TensorLogDensity(z);
    }

    Tensor HostLogDensity(Tensor z)
    {
        using var scope = NewDisposeScope();
        var (x, y) = Geometry.PlanarNeighbourGrid.Coordinates(z);
        bool differentiable = z.requires_grad && is_grad_enabled();
        var values = new double[x.Length];
        var gradients = differentiable ? new double[2 * x.Length] : null;
        FastPaths.PinwheelDensityKernel.Evaluate(x, y, values, gradients, get_num_threads());
        var value = tensor(values).to(float32);
        if (gradients is null) return value.MoveToOuterDisposeScope();
        var gradient = tensor(gradients, [x.Length, 2]).to(z.dtype);
        return value.add(((z - z.detach()) * gradient).sum(1).to(float32), Scalars.One).MoveToOuterDisposeScope();
    }

    Tensor TensorLogDensity(Tensor z)
    {
        using var scope = NewDisposeScope();
        var z64 = z.to(float64);
        var x = z64.select(1, 0).unsqueeze(1); // [B, 1]
        var y = z64.select(1, 1).unsqueeze(1); // [B, 1]
        var armAngle = arange(Scalars.Of(0), Scalars.Of(ArmCount), Scalars.Of(1), dtype: float64, device: z.device).unsqueeze(0) * Scalars.Of(2 * Math.PI / ArmCount); // [1, C]

        Tensor rootGuess; // [B, C]
        using (no_grad())
        {
            var (xd, yd) = (x.detach(), y.detach());
            var radius = xd.pow(Scalars.Of(2)).add(yd.pow(Scalars.Of(2)), Scalars.One).sqrt(); // [B, 1]
            var r = radius.expand(-1, ArmCount);
            for (int i = 0; i < NewtonIterations; i++)
            {
                var (residual, _, jacobian) = ArmResidual(xd, yd, armAngle, r);
                // Any root has |r| = |z·u| ≤ |z|, so clamping to [−|z|, |z|] loses no root and keeps e^r bounded.
                r = minimum(maximum(r.add(residual / jacobian.clamp_min(Scalars.Of(MinNewtonSlope)), Scalars.One), -radius), radius);
            }
            rootGuess = r.detach();
        }

        var (f, _, d) = ArmResidual(x, y, armAngle, rootGuess);
        var rc = rootGuess.add(f / d.clamp_min(Scalars.Of(MinNewtonSlope)), Scalars.One); // implicit-function gradient at the root
        var (leftover, sc, jacobianC) = ArmResidual(x, y, armAngle, rc);

        var logArm = NormalLogDensity(rc, RadialMean, RadialStd).add(NormalLogDensity(sc, 0, TangentialStd), Scalars.One)
                     - jacobianC.abs().clamp_min(Scalars.Of(MinAbsJacobian)).log()
                     - leftover.pow(Scalars.Of(2)) / Scalars.Of(2 * TangentialStd * TangentialStd); // [B, C]
        var logP = logArm.logsumexp(1) - Scalars.Of(Math.Log(ArmCount));
        return logP.to(float32).MoveToOuterDisposeScope();
    }

    /// <summary>For arm angles θ = armAngle + 0.25 e^r: F = z·u(θ) − r, s = z·u⊥(θ), det J = 1 − 0.25 e^r s.</summary>
    static (Tensor Residual, Tensor S, Tensor Jacobian) ArmResidual(Tensor x, Tensor y, Tensor armAngle, Tensor r)
    {
        var swirl = Scalars.Of(Rate) * r.exp();
        var theta = armAngle.add(swirl, Scalars.One);
        var (cos, sin) = (theta.cos(), theta.sin());
        var s = y * cos - x * sin;
        return ((x * cos).add(y * sin, Scalars.One) - r, s, (swirl * s).neg().add(Scalars.Of(1), Scalars.One));
    }

    static Tensor NormalLogDensity(Tensor v, double mean, double std) =>
        (v - Scalars.Of(mean)).pow(Scalars.Of(2)) / Scalars.Of(-2 * std * std) - Scalars.Of(Math.Log(std * Math.Sqrt(2 * Math.PI)));
}
