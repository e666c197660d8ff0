using Ddvi.Runtime;
using static TorchSharp.torch;

namespace Ddvi.Diffusion;

/// <summary>One step of a reverse chain: the state y_t entering step t and the noise ε̂_t predicted there.</summary>
/// <param name="Step">The timestep t (T down to 1).</param>
/// <param name="Yt">y_t <c>[B, d]</c>.</param>
/// <param name="EpsHat">ε̂_t = ε_φ(y_t, t) <c>[B, d]</c>.</param>
public sealed record ReverseChainStep(int Step, Tensor Yt, Tensor EpsHat);

/// <summary>The end of a reverse chain and, when asked for, the steps along it (ordered t = T, T − 1, …, 1).</summary>
/// <param name="Z">y_0 = z <c>[B, d]</c>.</param>
/// <param name="Steps">The chain's steps, or null when the trajectory was not kept.</param>
public sealed record ReverseChainResult(Tensor Z, IReadOnlyList<ReverseChainStep>? Steps);

/// <summary>
/// A noise predictor prepared for one chain in which every row is at the same timestep: ε̂ <c>[B, d]</c> for y_t
/// <c>[B, d]</c> at step t. Preparing lets a network do per-chain work once (transposed weights, bias and timestep tables,
/// the context's share of the first layer) instead of at every step.
/// </summary>
public delegate Tensor ChainNoisePredictor(Tensor y, int step);

/// <summary>
/// Runs the deterministic DDIM chain y_T → y_{T−1} → … → y_0 = z with a noise predictor, the DDVI posterior's reverse
/// process (arXiv:2401.02739; the authors' release):
/// y_{t−1} = √ᾱ_{t−1} ŷ_0 + √(1 − ᾱ_{t−1}) ε̂_t, ŷ_0 = (y_t − √(1 − ᾱ_t) ε̂_t)/√ᾱ_t, for t = T..1.
/// </summary>
/// <remarks>
/// The chain keeps the autograd graph (DDVI's wake step backpropagates through it); run it under <c>no_grad()</c> for
/// sampling and evaluation. All rows share the same t at each step.
/// </remarks>
public static class ReverseChain
{
    /// <param name="denoiser">ε_φ(y_t <c>[B, d]</c>, t <c>[B]</c> int64) → ε̂ <c>[B, d]</c>; close over any context a_φ(x).</param>
    /// <param name="yT">The chain's start y_T <c>[B, d]</c>.</param>
    /// <param name="schedule">The schedule; its T is the chain's length, and it must live on yT's device.</param>
    /// <param name="keepTrajectory">Also return every (t, y_t, ε̂_t) along the chain.</param>
    public static ReverseChainResult Run(Func<Tensor, Tensor, Tensor> denoiser, Tensor yT, NoiseSchedule schedule, bool keepTrajectory = false)
    {
        ArgumentNullException.ThrowIfNull(denoiser);
        ArgumentNullException.ThrowIfNull(schedule);
        if (yT.dim() != 2)
            throw new ArgumentException($"ReverseChain.Run: yT must be [B, d], got [{string.Join(", ", yT.shape)}].", nameof(yT));
        if (!NoiseSchedule.SameDevice(yT.device, schedule.Device))
            throw new ArgumentException($"ReverseChain.Run: yT is on {yT.device} but the schedule's tables are on {schedule.Device}; move the schedule with .to().", nameof(yT));

        using var scope = NewDisposeScope();
        var steps = keepTrajectory ? new List<ReverseChainStep>(schedule.Steps) : null;
        var y = yT;
        for (int step = schedule.Steps; step >= 1; step--)
        {
            var t = full(yT.shape[0], Scalars.Of(step), dtype: ScalarType.Int64, device: yT.device); // [B]
            var epsHat = denoiser(y, t);
            if (!epsHat.shape.SequenceEqual(yT.shape))
                throw new InvalidOperationException($"ReverseChain.Run: the denoiser returned [{string.Join(", ", epsHat.shape)}] at t = {step}; expected [{string.Join(", ", yT.shape)}] like yT.");
            steps?.Add(new ReverseChainStep(step, y, epsHat));
            y = GaussianDiffusion.ReverseStepUnchecked(schedule, y, t, epsHat);
        }

        return HandOver(scope, y, steps);
    }

    /// <summary>
    /// The same chain as <see cref="Run"/>, with a prepared predictor and the update written as
    /// y_{t−1} = KeepY·y_t + KeepEps·ε̂ (<see cref="NoiseSchedule.DdimCoefficients"/>): no timestep tensor, no table lookup,
    /// two element-wise operations per step. Mathematically the same chain; it exists because a DDVI wake step runs 40 of
    /// these steps forward and backward, where per-operation overhead, not arithmetic, dominated.
    /// </summary>
    public static ReverseChainResult RunPrepared(ChainNoisePredictor predictor, Tensor yT, NoiseSchedule schedule, bool keepTrajectory = false)
    {
        ArgumentNullException.ThrowIfNull(predictor);
        ArgumentNullException.ThrowIfNull(schedule);
        if (yT.dim() != 2)
            throw new ArgumentException($"ReverseChain.RunPrepared: yT must be [B, d], got [{string.Join(", ", yT.shape)}].", nameof(yT));

        using var scope = NewDisposeScope();
        var steps = keepTrajectory ? new List<ReverseChainStep>(schedule.Steps) : null;
        var y = yT;
        for (int step = schedule.Steps; step >= 1; step--)
        {
            var epsHat = predictor(y, step);
            if (!epsHat.shape.SequenceEqual(yT.shape))
                throw new InvalidOperationException($"ReverseChain.RunPrepared: the predictor returned [{string.Join(", ", epsHat.shape)}] at t = {step}; expected [{string.Join(", ", yT.shape)}] like yT.");
            steps?.Add(new ReverseChainStep(step, y, epsHat));
            var (keepY, keepEps) = schedule.DdimCoefficients(step);
            // In place on the fresh product: a scalar product's backward does not need its output.
            y = epsHat.mul(Scalars.Of(keepEps)).add_(y, alpha: Scalars.Of(keepY));
        }
        return HandOver(scope, y, steps);
    }

    private static ReverseChainResult HandOver(TorchSharp.DisposeScope scope, Tensor y, List<ReverseChainStep>? steps)
    {
        // Hand the results to the caller's scope; tensors the caller or the denoiser own elsewhere (yT, a cached ε̂) stay where they are.
        IEnumerable<Tensor> results = steps is null ? [y] : steps.SelectMany(s => new[] { s.Yt, s.EpsHat }).Append(y);
        foreach (var result in results.Distinct<Tensor>(ReferenceEqualityComparer.Instance))
        {
            if (scope.Contains(result)) scope.MoveToOuter(result);
        }
        return new ReverseChainResult(y, steps);
    }
}
