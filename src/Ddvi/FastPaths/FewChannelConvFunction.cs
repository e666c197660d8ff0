using static TorchSharp.torch;
using static TorchSharp.torch.autograd;

namespace Ddvi.FastPaths;

/// <summary>
/// A stride-1 convolution from one to four channels to 16 (the CIFAR-10 and MNIST trunks' first layer: 3×3, padding 1) as
/// one autograd operation on Ddvi's own loops (<see cref="FewChannelConvKernel"/>): the forward pass on a zero-padded
/// NHWC copy of the input, which the backward pass keeps for the weight's gradient (the correlation of dL/dy with it);
/// the bias's gradient is dL/dy summed per channel (<see cref="ChannelSumKernel"/>); the input's gradient, where the
/// input needs one, is libtorch's transposed convolution of dL/dy. libtorch ran this layer's forward pass and weight
/// gradient on oneDNN at about twice their arithmetic floor, and its static split of the work kept the second thread
/// waiting (docs/performance.md).
/// </summary>
/// <remarks>
/// Inputs: the <see cref="Settings"/>, x <c>[B, C, H, W]</c> (NHWC strides, or contiguous NCHW: the flattened images the
/// trunk reads, whose planes the padding loop gathers into its NHWC copy), the weight <c>[16, C, k, k]</c>, the bias
/// <c>[16]</c>. Output <c>[B, 16, H + 2p − k + 1, W + 2p − k + 1]</c> in NHWC strides. The reference is libtorch's
/// <c>conv2d</c>, which <see cref="Models.ConvTrunk"/> runs wherever <see cref="Supports"/> is false; the tests compare the
/// two. Only first derivatives are supported.
/// </remarks>
internal sealed class FewChannelConvFunction : SingleTensorFunction<FewChannelConvFunction>
{
    /// <summary>The padding and which inputs need a gradient (read when the operation is applied).</summary>
    internal sealed record Settings(int Padding, bool InputGrad, bool WeightGrad, bool BiasGrad, bool BiasCancels = false);

    public override string Name => nameof(FewChannelConvFunction);

    /// <summary>
    /// Whether <see cref="Models.ConvTrunk"/> and <see cref="TransposedConvFunction"/> may use these loops (the default);
    /// false keeps libtorch's kernels, for comparisons.
    /// </summary>
    internal static bool Enabled { get; set; } = true;

    /// <summary>
    /// Whether the operation handles these tensors: a float32 CPU map <c>[B, C, H, W]</c> stored pixel by pixel (NHWC) or
    /// plane by plane (NCHW) with one to four channels, a float32 contiguous CPU weight <c>[16, C, k, k]</c> and bias
    /// <c>[16]</c>, stride 1, a padding below the kernel size and an output at least 16 pixels wide.
    /// </summary>
    public static bool Supports(Tensor x, Tensor? weight, Tensor? bias, long stride, long padding)
    {
        if (!Enabled || stride != 1 || padding < 0 || !ConvOperands.Suit(x, weight, bias, stride, inputDim: 1, planarToo: true)) return false;
        long kernel = weight!.shape[2];
        long outHeight = x.shape[2] + 2 * padding - kernel + 1, outWidth = x.shape[3] + 2 * padding - kernel + 1;
        return padding < kernel && outHeight >= 1 && FewChannelConvKernel.Supports(x.shape[1], weight.shape[0], outWidth);
    }

    /// <summary>conv2d(x, weight, bias, padding); the caller has checked <see cref="Supports"/>.</summary>
    /// <param name="biasCancels">Whether the output goes straight into a batch norm in training mode, whose batch mean
    /// removes any per-channel constant: the bias's gradient is then exactly zero and is returned as zeros instead of the
    /// rounding residue of a per-channel sum (see <see cref="Models.ImageBatchNorm.RemovesInputShift"/>).</param>
    public static Tensor Run(Tensor x, Tensor weight, Tensor bias, long padding, bool biasCancels = false) =>
        apply(new Settings((int)padding, x.requires_grad, weight.requires_grad, bias.requires_grad, biasCancels), x, weight, bias);

    public override unsafe Tensor forward(AutogradContext ctx, params object[] vars)
    {
        var settings = (Settings)vars[0];
        var x = (Tensor)vars[1];
        var weight = (Tensor)vars[2];
        var bias = (Tensor)vars[3];
        int threads = Math.Max(1, get_num_threads());
        int batch = (int)x.shape[0], channels = (int)x.shape[1], height = (int)x.shape[2], width = (int)x.shape[3], p = settings.Padding;
        var pixels = x.permute(0, 2, 3, 1);
        bool planar = !pixels.is_contiguous();                                           // NCHW (Supports)
        var padded = pixels;
        if (p > 0 || planar)
        {
            padded = empty([batch, height + 2 * p, width + 2 * p, channels], dtype: ScalarType.Float32);
            FewChannelConvKernel.Pad(TensorMemory.Pointer<float>(planar ? x : pixels), planar, TensorMemory.Pointer<float>(padded), batch, height, width, channels, p, threads);
        }
        var output = FewChannelConvKernel.Convolve(padded, weight, bias, threads);
        ctx.save_for_backward([settings.WeightGrad ? padded : empty(0), settings.InputGrad ? weight : empty(0)]);
        ctx.save_data(nameof(Settings), settings);
        return output.permute(0, 3, 1, 2);
    }

    public override List<Tensor> backward(AutogradContext ctx, Tensor gradOutput)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var settings = (Settings)ctx.get_data(nameof(Settings));
        var saved = ctx.get_saved_variables();
        // In NHWC strides, the layout the loops read.
        var gradPixels = gradOutput.permute(0, 2, 3, 1).contiguous();
        Tensor? gradInput = null, gradWeight = null, gradBias = null;
        if (settings.InputGrad)
        {
            var weight = saved[1];
            gradInput = nn.functional.conv_transpose2d(gradPixels.permute(0, 3, 1, 2), weight, null,
                padding: [settings.Padding, settings.Padding]);
        }
        if (settings.WeightGrad)
        {
            var padded = saved[0];                                                       // [B, H + 2p, W + 2p, C]
            int kernel = (int)(padded.shape[1] - gradPixels.shape[1] + 1);
            gradWeight = FewChannelConvKernel.WeightGradient(gradPixels, padded, kernel, Math.Max(1, get_num_threads()));
        }
        if (settings.BiasGrad)
            gradBias = settings.BiasCancels ? zeros(gradPixels.shape[3], dtype: gradPixels.dtype) : ChannelSumKernel.Sums(gradPixels, Math.Max(1, get_num_threads()));
        var result = new List<Tensor> { null!, gradInput!, gradWeight!, gradBias! };
        foreach (var gradient in result)
            if (gradient is not null) scope.MoveToOuter(gradient);
        return result;
    }
}
