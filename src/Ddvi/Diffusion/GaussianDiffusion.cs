using Ddvi.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace Ddvi.Diffusion;

/// <summary>Which regression loss compares the true noise ε with the network's ε̂.</summary>
public enum NoiseLossKind
{
    /// <summary>Smooth L1 with threshold 1, mean over all elements: ½e² for |e| &lt; 1, |e| − ½ otherwise (the release's).</summary>
    Huber,

    /// <summary>Mean squared error, mean over all elements.</summary>
    L2,
}

/// <summary>
/// The mathematics of Gaussian diffusion in latent space, kept apart from any network (arXiv:2401.02739; the authors'
/// release): forward noising y_t = √ᾱ_t y_0 + √(1 − ᾱ_t) ε, the prediction ŷ_0 = (y_t − √(1 − ᾱ_t) ε̂)/√ᾱ_t, the
/// deterministic
/// DDIM step y_{t−1} = √ᾱ_{t−1} ŷ_0 + √(1 − ᾱ_{t−1}) ε̂, and the forward posterior
/// r(y_{t−1} | y_t, y_0) = N(w0_t y_0 + wt_t y_t, σ̃²_t) with the model's mean obtained by putting ŷ_0 in place of y_0.
/// </summary>
/// <remarks>
/// Every function takes rows <c>[B, d]</c> and an int64 timestep vector <c>[B]</c> with values in 1..T; each row may sit at
/// its own t. The results keep the autograd graph of their inputs.
/// </remarks>
public static class GaussianDiffusion
{
    /// <summary>y_t = √ᾱ_t z0 + √(1 − ᾱ_t) ε, a draw from r(y_t | y_0 = z0) given the noise ε.</summary>
    public static Tensor Noise(NoiseSchedule schedule, Tensor z0, Tensor t, Tensor eps) // [B, d], [B], [B, d] → [B, d]
    {
        CheckRows(schedule, nameof(Noise), t, (nameof(z0), z0), (nameof(eps), eps));
        using var scope = NewDisposeScope();
        return (NoiseSchedule.Column(schedule.SqrtAlphaBar, t) * z0).add(NoiseSchedule.Column(schedule.SqrtOneMinusAlphaBar, t) * eps, Scalars.One)
            .MoveToOuterDisposeScope();
    }

    /// <summary>ŷ_0 = (y_t − √(1 − ᾱ_t) ε̂)/√ᾱ_t, the clean point implied by a noise prediction.</summary>
    public static Tensor PredictZ0(NoiseSchedule schedule, Tensor yt, Tensor t, Tensor epsHat) // [B, d], [B], [B, d] → [B, d]
    {
        CheckRows(schedule, nameof(PredictZ0), t, (nameof(yt), yt), (nameof(epsHat), epsHat));
        using var scope = NewDisposeScope();
        return PredictZ0Unchecked(schedule, yt, t, epsHat).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// The deterministic DDIM update y_{t−1} = √ᾱ_{t−1} ŷ_0 + √(1 − ᾱ_{t−1}) ε̂; at t = 1 (ᾱ_0 := 1) it returns ŷ_0.
    /// </summary>
    public static Tensor ReverseStep(NoiseSchedule schedule, Tensor yt, Tensor t, Tensor epsHat) // [B, d], [B], [B, d] → [B, d]
    {
        CheckRows(schedule, nameof(ReverseStep), t, (nameof(yt), yt), (nameof(epsHat), epsHat));
        using var scope = NewDisposeScope();
        return ReverseStepUnchecked(schedule, yt, t, epsHat).MoveToOuterDisposeScope();
    }

    /// <summary>μ̃_t = w0_t z0 + wt_t y_t, the mean of the forward posterior r(y_{t−1} | y_t, y_0 = z0).</summary>
    public static Tensor ForwardPosteriorMean(NoiseSchedule schedule, Tensor z0, Tensor yt, Tensor t) // [B, d], [B, d], [B] → [B, d]
    {
        CheckRows(schedule, nameof(ForwardPosteriorMean), t, (nameof(z0), z0), (nameof(yt), yt));
        using var scope = NewDisposeScope();
        return (NoiseSchedule.Column(schedule.PosteriorW0, t) * z0).add(NoiseSchedule.Column(schedule.PosteriorWt, t) * yt, Scalars.One)
            .MoveToOuterDisposeScope();
    }

    /// <summary>σ̃²_t = β_t (1 − ᾱ_{t−1})/(1 − ᾱ_t), the forward posterior variance, as a column <c>[B, 1]</c>; zero at t = 1.</summary>
    public static Tensor ForwardPosteriorVariance(NoiseSchedule schedule, Tensor t) // [B] → [B, 1]
        => schedule.Extract(schedule.PosteriorVariance, t);

    /// <summary>
    /// μ_φ,t = w0_t ŷ_0 + wt_t y_t with ŷ_0 from <see cref="PredictZ0"/>: the model's reverse mean, i.e. the forward
    /// posterior mean with the predicted clean point in place of the true one.
    /// </summary>
    public static Tensor ReverseMean(NoiseSchedule schedule, Tensor yt, Tensor t, Tensor epsHat) // [B, d], [B], [B, d] → [B, d]
    {
        CheckRows(schedule, nameof(ReverseMean), t, (nameof(yt), yt), (nameof(epsHat), epsHat));
        using var scope = NewDisposeScope();
        var z0Hat = PredictZ0Unchecked(schedule, yt, t, epsHat);
        return (NoiseSchedule.Column(schedule.PosteriorW0, t) * z0Hat).add(NoiseSchedule.Column(schedule.PosteriorWt, t) * yt, Scalars.One)
            .MoveToOuterDisposeScope();
    }

    /// <summary>The noise-prediction loss between the true noise ε and ε̂, mean over all elements (a scalar).</summary>
    public static Tensor NoisePredictionLoss(Tensor eps, Tensor epsHat, NoiseLossKind kind = NoiseLossKind.Huber) // [B, d], [B, d] → []
    {
        if (!eps.shape.SequenceEqual(epsHat.shape))
            throw new ArgumentException($"NoisePredictionLoss: eps and epsHat must have the same shape, got [{string.Join(", ", eps.shape)}] and [{string.Join(", ", epsHat.shape)}].");
        return kind switch
        {
            NoiseLossKind.Huber => nn.functional.smooth_l1_loss(epsHat, eps, beta: 1.0),
            NoiseLossKind.L2 => nn.functional.mse_loss(epsHat, eps),
            _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, "NoisePredictionLoss: expected Huber or L2."),
        };
    }

    /// <summary>
    /// B timesteps drawn uniformly from 1..T, int64 <c>[B]</c>. Drawn on the CPU and placed on <paramref name="device"/> (CPU when null).
    /// </summary>
    public static Tensor SampleTimesteps(long batchSize, int steps, Generator generator, Device? device = null) // → [B]
    {
        if (batchSize < 1)
            throw new ArgumentOutOfRangeException(nameof(batchSize), batchSize, "SampleTimesteps: batch size must be at least 1.");
        if (steps < 1)
            throw new ArgumentOutOfRangeException(nameof(steps), steps, "SampleTimesteps: diffusion steps T must be at least 1.");
        ArgumentNullException.ThrowIfNull(generator);
        return RandomDraws.Integers(1, steps + 1, [batchSize], device ?? CPU, generator);
    }

    internal static Tensor PredictZ0Unchecked(NoiseSchedule schedule, Tensor yt, Tensor t, Tensor epsHat)
        => (yt - NoiseSchedule.Column(schedule.SqrtOneMinusAlphaBar, t) * epsHat) / NoiseSchedule.Column(schedule.SqrtAlphaBar, t);

    internal static Tensor ReverseStepUnchecked(NoiseSchedule schedule, Tensor yt, Tensor t, Tensor epsHat)
    {
        var z0Hat = PredictZ0Unchecked(schedule, yt, t, epsHat);
        return (NoiseSchedule.Column(schedule.SqrtAlphaBarPrev, t) * z0Hat).add(NoiseSchedule.Column(schedule.SqrtOneMinusAlphaBarPrev, t) * epsHat, Scalars.One);
    }

    static void CheckRows(NoiseSchedule schedule, string caller, Tensor t, params (string Name, Tensor Value)[] rows)
    {
        ArgumentNullException.ThrowIfNull(schedule);
        var (firstName, first) = rows[0];
        if (first.dim() != 2)
            throw new ArgumentException($"GaussianDiffusion.{caller}: {firstName} must be [B, d], got [{string.Join(", ", first.shape)}].", firstName);
        foreach (var (name, value) in rows.Skip(1))
        {
            if (!value.shape.SequenceEqual(first.shape))
                throw new ArgumentException($"GaussianDiffusion.{caller}: {name} must have the shape of {firstName} [{string.Join(", ", first.shape)}], got [{string.Join(", ", value.shape)}].", name);
        }
        schedule.CheckTimesteps(t, $"GaussianDiffusion.{caller}");
        if (t.shape[0] != first.shape[0])
            throw new ArgumentException($"GaussianDiffusion.{caller}: t must hold one timestep per row of {firstName} ({first.shape[0]}), got {t.shape[0]}.", nameof(t));
    }
}
