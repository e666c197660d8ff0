using Ddvi.FastPaths;
using Ddvi.Runtime;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace Ddvi.Models;

/// <summary>
/// Batch norm over the channels of <c>[B, C, H, W]</c> maps, as TorchSharp's <c>BatchNorm2d</c> with its defaults (ε =
/// 1e-5, momentum 0.1, a learned scale and shift, running statistics): the same parameters, buffers, checkpoint keys
/// (<c>weight</c>, <c>bias</c>, <c>running_mean</c>, <c>running_var</c>, <c>num_batches_tracked</c>) and arithmetic. Batch
/// statistics in <c>train()</c> mode, the running averages in <c>eval()</c> mode.
/// </summary>
/// <remarks>
/// TorchSharp's own forward pass advances <c>num_batches_tracked</c> by a temporary scalar 1 on every training step,
/// which the garbage collector can free while libtorch reads it (<see cref="Scalars"/>); this one adds
/// <see cref="Scalars.One"/>.
/// </remarks>
public sealed class ImageBatchNorm : BatchNorm
{
    /// <param name="channels">C, the number of channels normalised.</param>
    public ImageBatchNorm(long channels) : base(channels, 1e-5, 0.1, true, true, null, null, nameof(ImageBatchNorm))
    {
    }

    protected override void ValidateInputDimensions(Tensor input)
    {
        if (input.ndim != 4)
            throw new ArgumentException($"ImageBatchNorm: expects maps [B, C, H, W], got [{string.Join(", ", input.shape)}].", nameof(input));
    }

    public override Tensor forward(Tensor input)
    {
        ValidateInputDimensions(input);
        double factor = momentum ?? 0.0;
        if (training && num_batches_tracked is { } counter)
        {
            counter.add_(Scalars.One, Scalars.One);
            if (momentum is null) factor = 1.0 / counter.item<long>(); // a cumulative average, as TorchSharp's
        }
        return functional.batch_norm(input, running_mean, running_var, weight, bias, training, factor, eps);
    }

    /// <summary>
    /// Whether adding a per-channel constant to the input leaves the output unchanged: in training mode, where the batch's
    /// own mean is subtracted. A bias of the layer before then has no effect on the output, and its gradient is exactly
    /// zero (Σ over the batch of ∂L/∂input is zero per channel), so the conv layers return zeros for it
    /// (<c>biasCancels</c>) rather than a per-channel sum whose rounding residue Adam, which divides by the gradient's own
    /// scale, can turn into a random walk of the bias. In evaluation mode the running mean is fixed and the bias acts.
    /// </summary>
    public bool RemovesInputShift => training;

    /// <summary>
    /// relu(call(<paramref name="input"/>)). With <paramref name="fused"/>, in training mode, on float32 CPU maps in NHWC
    /// strides (<see cref="BatchNormReluFunction.Supports"/>), both in one pass (<see cref="BatchNormReluFunction"/>); the same
    /// values, gradients and running statistics to float rounding. Otherwise libtorch's two operations, the reference.
    /// </summary>
    public Tensor ForwardRelu(Tensor input, bool fused)
    {
        ValidateInputDimensions(input);
        if (fused && BatchNormReluFunction.Enabled && training && momentum is double factor && num_batches_tracked is { } counter
            && BatchNormReluFunction.Supports(input, weight, bias, running_mean, running_var))
        {
            counter.add_(Scalars.One, Scalars.One);
            return BatchNormReluFunction.Run(input, weight!, bias!, running_mean!, running_var!, factor, eps);
        }
        return functional.relu(call(input));
    }
}
