using static TorchSharp.torch;
using static TorchSharp.torch.autograd;

namespace Ddvi.FastPaths;

/// <summary>
/// A convolution without padding, dilation or groups whose passes are all Ddvi's own loops: the forward pass
/// (<see cref="DirectConvKernel"/>), and the gradient of
/// y = conv2d(x, w, stride s) with respect to x is the transposed convolution of dL/dy with the same weight and stride
/// (<see cref="TransposedConvKernel"/>, the weight <c>[C_out, C_in, k, k]</c> read as a transposed convolution's
/// <c>[in, out, k, k]</c>), and the weight's gradient is the correlation of dL/dy with x (<see cref="ConvWeightGradKernel"/>).
/// oneDNN ran these passes for the CIFAR-10 trunk's strided convolutions at 1.2–2.4× their arithmetic floor
/// (docs/performance.md). The bias's gradient is dL/dy summed per channel (<see cref="ChannelSumKernel"/>).
/// </summary>
/// <remarks>
/// Inputs: the <see cref="Settings"/>, x <c>[B, C_in, H, W]</c> (NHWC strides), the weight <c>[C_out, C_in, k, k]</c>,
/// the bias <c>[C_out]</c>. Output <c>[B, C_out, (H − k)/s + 1, (W − k)/s + 1]</c> in NHWC strides. The
/// reference is libtorch's <c>conv2d</c>, which <see cref="Models.ConvTrunk"/> runs wherever <see cref="Supports"/> is
/// false; the tests compare the two. Only first derivatives are supported.
/// </remarks>
internal sealed class StridedConvFunction : SingleTensorFunction<StridedConvFunction>
{
    /// <summary>The stride and which inputs need a gradient (read when the operation is applied).</summary>
    internal sealed record Settings(long Stride, bool InputGrad, bool WeightGrad, bool BiasGrad, bool BiasCancels = false);

    public override string Name => nameof(StridedConvFunction);

    /// <summary>
    /// Whether <see cref="Models.ConvTrunk"/> may use this operation (the default); false keeps libtorch's convolution
    /// everywhere, for comparisons.
    /// </summary>
    internal static bool Enabled { get; set; } = true;

    /// <summary>
    /// Whether the operation handles these tensors: a float32 CPU map <c>[B, C_in, H, W]</c> stored pixel by pixel (NHWC),
    /// a float32 contiguous CPU weight <c>[C_out, C_in, k, k]</c> and bias <c>[C_out]</c>, a stride that fits the map
    /// exactly ((H − k) and (W − k) multiples of it, so the transposed convolution gives back H×W), C_in of 16 or 32
    /// (the output channels of the transposed loop, <see cref="TransposedConvKernel.UsesRows"/>) and channel counts the
    /// weight-gradient loop takes (<see cref="ConvWeightGradKernel.SupportsChannels"/>: C_out 32 or 64).
    /// </summary>
    public static bool Supports(Tensor x, Tensor? weight, Tensor? bias, long stride)
    {
        if (!ConvOperands.Suit(x, weight, bias, stride, inputDim: 1) || !TransposedConvKernel.UsesRows(x.shape[1])
            || !ConvWeightGradKernel.SupportsChannels(weight!.shape[0], x.shape[1]) || !DirectConvKernel.SupportsChannels(x.shape[1], weight.shape[0]))
            return false;
        long kernel = weight!.shape[2];
        return x.shape[2] >= kernel && x.shape[3] >= kernel && (x.shape[2] - kernel) % stride == 0 && (x.shape[3] - kernel) % stride == 0;
    }

    /// <summary>conv2d(x, weight, bias, stride); the caller has checked <see cref="Supports"/>.</summary>
    /// <param name="biasCancels">Whether the output goes straight into a batch norm in training mode, whose batch mean
    /// removes any per-channel constant: the bias's gradient is then exactly zero and is returned as zeros instead of the
    /// rounding residue of a per-channel sum (see <see cref="Models.ImageBatchNorm.RemovesInputShift"/>).</param>
    public static Tensor Run(Tensor x, Tensor weight, Tensor bias, long stride, bool biasCancels = false) =>
        apply(new Settings(stride, x.requires_grad, weight.requires_grad, bias.requires_grad, biasCancels), x, weight, bias);

    public override Tensor forward(AutogradContext ctx, params object[] vars)
    {
        var settings = (Settings)vars[0];
        var x = (Tensor)vars[1];
        var weight = (Tensor)vars[2];
        var bias = (Tensor)vars[3];
        ctx.save_for_backward([settings.WeightGrad ? x : empty(0), settings.InputGrad ? weight : empty(0)]);
        ctx.save_data(nameof(Settings), settings);
        return Convolve(x, weight, bias, (int)settings.Stride, Math.Max(1, get_num_threads()));
    }

    /// <summary>
    /// conv2d(x, weight, bias, stride) by <see cref="DirectConvKernel"/>: x <c>[B, C_in, H, W]</c> in NHWC strides, the
    /// weight <c>[C_out, C_in, k, k]</c>; the output <c>[B, C_out, h, w]</c> in NHWC strides.
    /// </summary>
    internal static unsafe Tensor Convolve(Tensor x, Tensor weight, Tensor bias, int stride, int threads)
    {
        using var scope = NewDisposeScope();
        var shape = new DirectConvShape((int)x.shape[0], (int)x.shape[2], (int)x.shape[3], (int)x.shape[1], (int)weight.shape[0],
            (int)weight.shape[2], stride);
        var packed = DirectConvKernel.Pack(weight);
        var output = empty([shape.Batch, shape.OutHeight, shape.OutWidth, shape.OutChannels], dtype: ScalarType.Float32);
        using (no_grad())
            DirectConvKernel.Forward(TensorMemory.Pointer<float>(x.permute(0, 2, 3, 1)), TensorMemory.Pointer<float>(packed),
                TensorMemory.Pointer<float>(bias.contiguous()), TensorMemory.Pointer<float>(output), shape, threads);
        return output.permute(0, 3, 1, 2).MoveToOuterDisposeScope();
    }

    public override List<Tensor> backward(AutogradContext ctx, Tensor gradOutput)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var settings = (Settings)ctx.get_data(nameof(Settings));
        var saved = ctx.get_saved_variables();
        // In NHWC strides, the layout both loops read.
        var gradPixels = gradOutput.permute(0, 2, 3, 1).contiguous();
        int threads = Math.Max(1, get_num_threads());
        Tensor? gradInput = null, gradWeight = null, gradBias = null;
        if (settings.InputGrad)
        {
            var weight = saved[1];                                                       // [C_out, C_in, k, k], read as [in, out, k, k]
            using var noBias = zeros(weight.shape[1], dtype: ScalarType.Float32);
            gradInput = TransposedConvFunction.Transpose(gradPixels.permute(0, 3, 1, 2), weight, noBias, (int)settings.Stride, threads);
        }
        if (settings.WeightGrad)
        {
            var x = saved[0].permute(0, 2, 3, 1);                                       // [B, H, W, C_in]
            int kernel = (int)(x.shape[1] - (gradPixels.shape[1] - 1) * settings.Stride);
            gradWeight = ConvWeightGradKernel.Gradient(gradPixels, x, kernel, (int)settings.Stride, threads);
        }
        if (settings.BiasGrad)
            gradBias = settings.BiasCancels ? zeros(gradPixels.shape[3], dtype: gradPixels.dtype) : ChannelSumKernel.Sums(gradPixels, threads);
        var result = new List<Tensor> { null!, gradInput!, gradWeight!, gradBias! };
        foreach (var gradient in result)
            if (gradient is not null) scope.MoveToOuter(gradient);
        return result;
    }
}
