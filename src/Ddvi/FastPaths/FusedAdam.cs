using System.Numerics;
using Ddvi.Runtime;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Ddvi.FastPaths;

/// <summary>
/// TorchSharp's <see cref="Adam"/> with a one-pass step for contiguous float32 CPU parameters: each element's moments and
/// weight are updated together in one sweep over memory, where the tensor-op step makes about twenty passes (moments
/// scaled, accumulated, square-rooted into a temporary, divided, added to). The update is Adam's, in the same order
/// of operations as TorchSharp's <c>Adam.step</c>, and the state (step counts, moments) is Adam's own, so checkpoints are
/// interchangeable with the plain optimiser. One deliberate difference: moments that fall below float32's normal range
/// are stored as 0 instead of as subnormal numbers (see <c>Update</c>).
/// <para>
/// Parameters on another device or of another type, and the options the sweep does not implement (weight decay,
/// AMSGrad, maximise, a closure) take the tensor-op step: TorchSharp's <c>Adam.step</c>, written again with scalars
/// that stay alive while libtorch reads them (its own makes temporary ones; see <see cref="Scalars"/>).
/// </para>
/// </summary>
public sealed class FusedAdam : Adam
{
    // Below this many elements one thread does the sweep: splitting costs more than it gains.
    private const int ParallelThreshold = 1 << 16;
    private const int ChunkElements = 1 << 15;

    public FusedAdam(IEnumerable<Parameter> parameters, double lr = 1e-3, double beta1 = 0.9, double beta2 = 0.999, double eps = 1e-8)
        : base(parameters, lr, beta1, beta2, eps)
    {
    }

    public override Tensor step(Func<Tensor>? closure = null)
    {
        if (closure is not null || !CanFuse())
            return TensorStep(closure);

        foreach (var group in _parameter_groups)
        {
            var options = (Options)group.Options;
            double beta1 = options.beta1!.Value, beta2 = options.beta2!.Value, eps = options.eps!.Value;
            double lr = options.LearningRate!.Value;
            foreach (var parameter in group.Parameters)
            {
                using var grad = parameter.grad;
                if (grad is null) continue;
                using var contiguousGrad = grad.is_contiguous() && grad.dtype == ScalarType.Float32 ? null : grad.to(float32).contiguous();
                var state = (State)_state[parameter.Handle];
                state.step += 1;
                double biasCorrection1 = 1 - Math.Pow(beta1, state.step);
                double biasCorrection2 = 1 - Math.Pow(beta2, state.step);
                var coefficients = new StepCoefficients(
                    (float)beta1, (float)(1 - beta1), (float)beta2, (float)(1 - beta2),
                    (float)Math.Sqrt(biasCorrection2), (float)eps, (float)(lr / biasCorrection1));
                Sweep(parameter, contiguousGrad ?? grad, state.exp_avg, state.exp_avg_sq, coefficients);
            }
        }
        return null!;
    }

    /// <summary>Adam's step with tensor operations, as TorchSharp's <c>Adam.step</c> computes it, every number a held scalar.</summary>
    private Tensor TensorStep(Func<Tensor>? closure) => _step<ParamGroup>(group =>
    {
        var options = (Options)group.Options;
        double beta1 = options.beta1!.Value, beta2 = options.beta2!.Value, eps = options.eps!.Value;
        double lr = options.LearningRate!.Value, weightDecay = options.weight_decay ?? 0.0;
        bool amsgrad = options.amsgrad ?? false, maximize = options.maximize ?? false;
        foreach (var parameter in group.Parameters)
        {
            var grad = parameter.grad;
            if (grad is null) continue;
            if (maximize) grad = grad.neg();
            var state = (State)_state[parameter.Handle];
            state.step += 1;
            double biasCorrection1 = 1 - Math.Pow(beta1, state.step);
            double biasCorrection2 = 1 - Math.Pow(beta2, state.step);
            if (weightDecay != 0) grad = grad.add(parameter, Scalars.Of(weightDecay));
            state.exp_avg.mul_(Scalars.Of(beta1)).add_(grad, Scalars.Of(1 - beta1));
            state.exp_avg_sq.mul_(Scalars.Of(beta2)).addcmul_(grad, grad.conj(), Scalars.Of(1 - beta2));
            var second = state.exp_avg_sq;
            if (amsgrad)
            {
                var previous = state.max_exp_avg_sq;
                state.max_exp_avg_sq = maximum(previous, state.exp_avg_sq).DetachFromDisposeScope();
                previous.Dispose();
                second = state.max_exp_avg_sq;
            }
            var denominator = second.sqrt().div_(Scalars.Of(Math.Sqrt(biasCorrection2))).add_(Scalars.Of(eps), Scalars.One);
            parameter.addcdiv_(state.exp_avg, denominator, Scalars.Of(-lr / biasCorrection1));
        }
    }, closure!);

    /// <summary>
    /// <paramref name="state"/>, an optimiser state written by <see cref="TorchSharp.Modules.OptimizerHelper.save_state_dict(BinaryWriter)"/>
    /// of the plain <see cref="Adam"/> (same layout, other type name), relabelled so that this optimiser loads it.
    /// Other states are returned as they are.
    /// </summary>
    public static byte[] AdoptPlainAdamState(byte[] state)
    {
        using var reader = new BinaryReader(new MemoryStream(state));
        if (reader.ReadString() != nameof(Adam)) return state;
        using var relabelled = new MemoryStream();
        using (var writer = new BinaryWriter(relabelled, System.Text.Encoding.UTF8, leaveOpen: true))
            writer.Write(nameof(FusedAdam));
        reader.BaseStream.CopyTo(relabelled);
        return relabelled.ToArray();
    }

    /// <summary>Whether every parameter and its state can take the one-pass step.</summary>
    private bool CanFuse()
    {
        foreach (var group in _parameter_groups)
        {
            var options = (Options)group.Options;
            if (options.weight_decay is not (null or 0.0) || options.amsgrad is true || options.maximize is true) return false;
            foreach (var parameter in group.Parameters)
            {
                if (parameter.device_type != TorchSharp.DeviceType.CPU || parameter.dtype != ScalarType.Float32 || !parameter.is_contiguous())
                    return false;
                var state = (State)_state[parameter.Handle];
                if (!state.exp_avg.is_contiguous() || !state.exp_avg_sq.is_contiguous()) return false;
            }
        }
        return true;
    }

    private readonly record struct StepCoefficients(
        float Beta1, float OneMinusBeta1, float Beta2, float OneMinusBeta2, float SqrtBiasCorrection2, float Eps, float StepSize);

    private static unsafe void Sweep(Tensor parameter, Tensor grad, Tensor expAvg, Tensor expAvgSq, StepCoefficients c)
    {
        long count = parameter.numel();
        float* p = TensorMemory.Pointer<float>(parameter), g = TensorMemory.Pointer<float>(grad),
            m = TensorMemory.Pointer<float>(expAvg), v = TensorMemory.Pointer<float>(expAvgSq);
        if (count < ParallelThreshold)
        {
            Update(p, g, m, v, 0, count, c);
            return;
        }
        long chunks = (count + ChunkElements - 1) / ChunkElements;
        int threads = Math.Max(1, get_num_threads());
        OpenMpTeam.For(chunks, threads, chunk =>
        {
            long start = chunk * ChunkElements;
            Update(p, g, m, v, start, Math.Min(count, start + ChunkElements), c);
        });
    }

    // Smallest positive normal float32. Moments below it are stored as 0 (see the remarks on Update).
    private const float SmallestNormal = 1.17549435e-38f;

    // m ← β₁m + (1−β₁)g; v ← β₂v + (1−β₂)g²; p ← p − (lr/bc₁)·m / (√v/√bc₂ + ε), as Adam.step does with tensor ops.
    // One difference: a moment that falls below float32's normal range is stored as 0 instead of as a subnormal number.
    // Weights whose gradient is always 0 (those reading image pixels that are 0 in every image, such as Fashion-MNIST's
    // borders) see m shrink by β₁ each step, into the subnormal range within a few hundred steps; arithmetic on subnormals
    // takes a slow path on x86 (this loop ran 4× slower on such moments), while their share of an update is below
    // lr·1.2e-38/ε ≈ 1e-34, far under float32's resolution of any weight.
    private static unsafe void Update(float* p, float* g, float* m, float* v, long start, long end, StepCoefficients c)
    {
        long i = start;
        int width = Vector<float>.Count;
        if (Vector.IsHardwareAccelerated)
        {
            var beta1 = new Vector<float>(c.Beta1);
            var oneMinusBeta1 = new Vector<float>(c.OneMinusBeta1);
            var beta2 = new Vector<float>(c.Beta2);
            var oneMinusBeta2 = new Vector<float>(c.OneMinusBeta2);
            var sqrtBiasCorrection2 = new Vector<float>(c.SqrtBiasCorrection2);
            var eps = new Vector<float>(c.Eps);
            var stepSize = new Vector<float>(c.StepSize);
            var smallestNormal = new Vector<float>(SmallestNormal);
            for (; i + width <= end; i += width)
            {
                var gi = Vector.Load(g + i);
                var mi = Vector.Load(m + i) * beta1 + gi * oneMinusBeta1;
                var vi = Vector.Load(v + i) * beta2 + gi * gi * oneMinusBeta2;
                mi = Vector.ConditionalSelect(Vector.LessThan(Vector.Abs(mi), smallestNormal), Vector<float>.Zero, mi);
                vi = Vector.ConditionalSelect(Vector.LessThan(vi, smallestNormal), Vector<float>.Zero, vi);
                var denominator = Vector.SquareRoot(vi) / sqrtBiasCorrection2 + eps;
                Vector.Store(mi, m + i);
                Vector.Store(vi, v + i);
                Vector.Store(Vector.Load(p + i) - stepSize * (mi / denominator), p + i);
            }
        }
        for (; i < end; i++)
        {
            float gi = g[i];
            float mi = m[i] * c.Beta1 + gi * c.OneMinusBeta1;
            float vi = v[i] * c.Beta2 + gi * gi * c.OneMinusBeta2;
            if (MathF.Abs(mi) < SmallestNormal) mi = 0;
            if (vi < SmallestNormal) vi = 0;
            m[i] = mi;
            v[i] = vi;
            p[i] -= c.StepSize * (mi / (MathF.Sqrt(vi) / c.SqrtBiasCorrection2 + c.Eps));
        }
    }
}
