using static TorchSharp.torch;
using static TorchSharp.torch.autograd;

namespace Ddvi.FastPaths;

/// <summary>
/// A transposed convolution without padding, dilation or groups as one autograd operation whose forward pass is Ddvi's
/// own loop (<see cref="TransposedConvKernel"/>) on float32 CPU maps in NHWC strides. On this project's processors
/// oneDNN ran the CIFAR-10 decoder's transposed convolutions' forward passes at 4–9× their arithmetic floor (its strided
/// backward-data kernel, docs/performance.md); the loop here computes each output pixel directly.
/// </summary>
/// <remarks>
/// In the backward pass the input's gradient is the convolution of the output's gradient with the same weight and stride:
/// Ddvi's <see cref="DirectConvKernel"/> where it takes the channels (this layer's C_out a multiple of 16 and C_in 16, 32
/// or 64: the decoder's 64→32 and 32→16), <see cref="FewChannelConvKernel"/> for a 16→C image layer (C of one to four,
/// stride 1), else libtorch's <c>conv2d</c> (the kernel libtorch runs for this gradient itself). The weight's gradient is
/// Ddvi's <see cref="ConvWeightGradKernel"/> where it takes the channel counts (C_in 32 or 64: the decoder's 64→32 and
/// 32→16 layers), <see cref="FewChannelConvKernel.WeightGradient"/> for the image layer, else libtorch's: that
/// convolution's weight gradient with the input as its incoming gradient (taken with <c>autograd.grad</c>, the oneDNN
/// weight-gradient kernel libtorch's transposed convolution runs). The bias's gradient is the output gradient's sum per
/// channel (<see cref="ChannelSumKernel"/>).
/// Inputs: the <see cref="Settings"/>, x <c>[B, C_in, H, W]</c> (NHWC strides), the weight <c>[C_in, C_out, k, k]</c>,
/// the bias <c>[C_out]</c>. Output <c>[B, C_out, (H − 1)·s + k, (W − 1)·s + k]</c> in NHWC strides. The reference is
/// libtorch's <c>conv_transpose2d</c>, which <see cref="Models.ConvDecoder"/> runs wherever <see cref="Supports"/> is
/// false; the tests compare the two. Only first derivatives are supported.
/// </remarks>
internal sealed class TransposedConvFunction : SingleTensorFunction<TransposedConvFunction>
{
    /// <summary>The stride and which inputs need a gradient (read when the operation is applied).</summary>
    internal sealed record Settings(long Stride, bool InputGrad, bool WeightGrad, bool BiasGrad, bool BiasCancels = false);

    public override string Name => nameof(TransposedConvFunction);

    /// <summary>
    /// Whether <see cref="Models.ConvDecoder"/> may use this operation (the default); false keeps libtorch's transposed
    /// convolution everywhere, for comparisons.
    /// </summary>
    internal static bool Enabled { get; set; } = true;

    /// <summary>
    /// Whether the operation handles these tensors: a float32 CPU map <c>[B, C_in, H, W]</c> stored pixel by pixel (NHWC),
    /// a float32 contiguous CPU weight <c>[C_in, C_out, k, k]</c> and bias <c>[C_out]</c>, a positive stride, and channel
    /// counts the loops take (<see cref="TransposedConvKernel.SupportsChannels"/>: 16 or 32 outputs, or one to three
    /// with inputs a multiple of 16 and stride 1).
    /// </summary>
    public static bool Supports(Tensor x, Tensor? weight, Tensor? bias, long stride) =>
        ConvOperands.Suit(x, weight, bias, stride, inputDim: 0) && TransposedConvKernel.SupportsChannels(x.shape[1], weight!.shape[1], stride);

    /// <summary>conv_transpose2d(x, weight, bias, stride); the caller has checked <see cref="Supports"/>.</summary>
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
        if (settings.WeightGrad) ctx.save_for_backward([x, weight]);
        else ctx.save_for_backward([weight]);
        ctx.save_data(nameof(Settings), settings);
        return Transpose(x, weight, bias, (int)settings.Stride, Math.Max(1, get_num_threads()));
    }

    /// <summary>
    /// conv_transpose2d(x, weight, bias, stride) by <see cref="TransposedConvKernel"/>: x <c>[B, C_in, H, W]</c> in NHWC
    /// strides, the weight <c>[C_in, C_out, k, k]</c> (channel counts as <see cref="TransposedConvKernel.SupportsChannels"/>
    /// says); the output <c>[B, C_out, H', W']</c> in NHWC strides.
    /// </summary>
    internal static unsafe Tensor Transpose(Tensor x, Tensor weight, Tensor bias, int stride, int threads)
    {
        using var scope = NewDisposeScope();
        var shape = new TransposedConvShape((int)x.shape[0], (int)x.shape[2], (int)x.shape[3], (int)x.shape[1], (int)weight.shape[1],
            (int)weight.shape[2], stride);
        bool rows = TransposedConvKernel.UsesRows(shape.OutChannels);
        // The image layer (one to three outputs, stride 1, up to 4×4) input pixel by input pixel; larger kernels take
        // the output-pixel loop.
        bool scatter = !rows && ImageLayerScatterKernel.Supports(shape.OutChannels, shape.Kernel, stride);
        var packed = rows ? TransposedConvKernel.PackRows(weight)
            : scatter ? ImageLayerScatterKernel.Pack(weight)
            : TransposedConvKernel.PackColumns(weight);
        var biasValues = rows || scatter || shape.OutChannels == TransposedConvKernel.FewChannels
            ? bias
            : nn.functional.pad(bias, [0, TransposedConvKernel.FewChannels - shape.OutChannels]);
        var output = empty([shape.Batch, shape.OutHeight, shape.OutWidth, shape.OutChannels], dtype: ScalarType.Float32);
        using (no_grad())
        {
            float* input = TensorMemory.Pointer<float>(x.permute(0, 2, 3, 1));
            if (scatter)
                ImageLayerScatterKernel.Forward(input, TensorMemory.Pointer<float>(packed), TensorMemory.Pointer<float>(biasValues),
                    TensorMemory.Pointer<float>(output), shape, threads);
            else
                TransposedConvKernel.Forward(input, TensorMemory.Pointer<float>(packed), TensorMemory.Pointer<float>(biasValues),
                    TensorMemory.Pointer<float>(output), shape, threads);
        }
        return output.permute(0, 3, 1, 2).MoveToOuterDisposeScope();
    }

    // The input's gradient: the convolution of the output's gradient (NHWC strides) with the weight [C_in, C_out, k, k]
    // read as a convolution's [out, in, k, k]; Ddvi's DirectConvKernel where it takes the channels, else libtorch's.
    private static Tensor InputGradient(Tensor gradPixels, Tensor weight, long stride)
    {
        using var noGrad = no_grad();
        if (!DirectConvKernel.SupportsChannels(weight.shape[1], weight.shape[0]))
            return nn.functional.conv2d(gradPixels, weight, null, strides: [stride, stride]);
        using var zero = zeros(weight.shape[0], dtype: ScalarType.Float32);
        return StridedConvFunction.Convolve(gradPixels, weight, zero, (int)stride, Math.Max(1, get_num_threads()));
    }

    public override List<Tensor> backward(AutogradContext ctx, Tensor gradOutput)
    {
        using var scope = NewDisposeScope();
        var settings = (Settings)ctx.get_data(nameof(Settings));
        var saved = ctx.get_saved_variables();
        var weight = saved[^1];
        // In the layout the forward pass wrote (NHWC), which is the one oneDNN's kernels below run fastest on.
        var gradPixels = gradOutput.permute(0, 2, 3, 1).contiguous().permute(0, 3, 1, 2);
        long[] strides = [settings.Stride, settings.Stride];
        Tensor? gradInput = null, gradWeight = null;
        if (FewChannelConvFunction.Enabled && settings.Stride == 1
            && FewChannelConvKernel.Supports(weight.shape[1], weight.shape[0], gradPixels.shape[3] - weight.shape[2] + 1))
        {
            // The 16→C image layer: both gradients on the few-channel loops (the output's gradient has C channels).
            using var noGrad = no_grad();
            int threads = Math.Max(1, get_num_threads());
            var pixels = gradPixels.permute(0, 2, 3, 1);
            if (settings.WeightGrad)
                gradWeight = FewChannelConvKernel.WeightGradient(saved[0].permute(0, 2, 3, 1), pixels, (int)weight.shape[2], threads);
            // The input's gradient: the correlation of the output's gradient [B, H, W, C] with the weight [16, C, k, k].
            if (settings.InputGrad) gradInput = FewChannelConvKernel.Convolve(pixels, weight, null, threads).permute(0, 3, 1, 2);
        }
        else if (settings.WeightGrad && ConvWeightGradKernel.SupportsChannels(weight.shape[0], weight.shape[1]))
        {
            // Ddvi's weight-gradient loop: the input (C_in channels) against the output's gradient.
            using var noGrad = no_grad();
            int threads = Math.Max(1, get_num_threads());
            var pixels = gradPixels.permute(0, 2, 3, 1);
            gradWeight = ConvWeightGradKernel.Gradient(saved[0].permute(0, 2, 3, 1), pixels, (int)weight.shape[2], (int)settings.Stride, threads);
            if (settings.InputGrad) gradInput = InputGradient(gradPixels, weight, settings.Stride);
        }
        else if (settings.WeightGrad)
        {
            var x = saved[0];
            var leaf = weight.detach().requires_grad_(true);
            using (enable_grad())
            {
                var inputGradient = nn.functional.conv2d(gradPixels, leaf, null, strides: strides);
                gradWeight = grad([inputGradient], [leaf], [x])[0];
                if (settings.InputGrad) gradInput = inputGradient.detach();
            }
        }
        else if (settings.InputGrad)
        {
            using var noGrad = no_grad();
            gradInput = InputGradient(gradPixels, weight, settings.Stride);
        }
        Tensor? gradBias = null;
        if (settings.BiasGrad)
            using (no_grad())
                gradBias = settings.BiasCancels ? zeros(gradPixels.shape[1], dtype: gradPixels.dtype)
                    : ChannelSumKernel.Sums(gradPixels.permute(0, 2, 3, 1), Math.Max(1, get_num_threads()));
        var result = new List<Tensor> { null!, gradInput!, gradWeight!, gradBias! };
        foreach (var gradient in result)
            if (gradient is not null) scope.MoveToOuter(gradient);
        return result;
    }
}
