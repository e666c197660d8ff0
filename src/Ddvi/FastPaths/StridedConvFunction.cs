using static TorchSharp.torch;
using static TorchSharp.torch.autograd;

namespace Ddvi.FastPaths;

/// <summary>
/// A convolution without padding, dilation or groups whose input gradient is Ddvi's own loop: the gradient of
/// y = conv2d(x, w, stride s) with respect to x is the transposed convolution of dL/dy with the same weight and stride
/// (<see cref="TransposedConvKernel"/>, the weight <c>[C_out, C_in, k, k]</c> read as a transposed convolution's
/// <c>[in, out, k, k]</c>). oneDNN runs that gradient for the CIFAR-10 trunk's strided convolutions in its strided
/// backward-data kernel at 1.8–2.4× its arithmetic floor (docs/performance.md). The forward pass and the weight and bias
/// gradients are libtorch's: the forward pass records libtorch's convolution on a detached copy of the weight, and the
/// backward pass asks that record for the weight's and bias's gradients only, so nothing is computed twice.
/// </summary>
/// <remarks>
/// Inputs: the <see cref="Settings"/>, x <c>[B, C_in, H, W]</c> (NHWC strides), the weight <c>[C_out, C_in, k, k]</c>,
/// the bias <c>[C_out]</c>. Output <c>[B, C_out, (H − k)/s + 1, (W − k)/s + 1]</c>, libtorch's (NHWC strides). The
/// reference is libtorch's <c>conv2d</c>, which <see cref="Models.ConvTrunk"/> runs wherever <see cref="Supports"/> is
/// false; the tests compare the two. Only first derivatives are supported, and one backward pass per forward pass (it
/// releases the record).
/// </remarks>
internal sealed class StridedConvFunction : SingleTensorFunction<StridedConvFunction>
{
    /// <summary>The stride and which inputs need a gradient (read when the operation is applied).</summary>
    internal sealed record Settings(long Stride, bool InputGrad, bool WeightGrad, bool BiasGrad);

    // libtorch's record of the forward convolution (on detached leaves of the weight and bias), kept for their gradients.
    private sealed record Recorded(Tensor Output, Tensor Weight, Tensor Bias) : IDisposable
    {
        public void Dispose()
        {
            Output.Dispose();
            Weight.Dispose();
            Bias.Dispose();
        }
    }

    private sealed record Saved(Settings Settings, Recorded? Graph);

    public override string Name => nameof(StridedConvFunction);

    /// <summary>
    /// Whether <see cref="Models.ConvTrunk"/> may use this operation (the default); false keeps libtorch's convolution
    /// everywhere, for comparisons.
    /// </summary>
    internal static bool Enabled { get; set; } = true;

    /// <summary>
    /// Whether the operation handles these tensors: a float32 CPU map <c>[B, C_in, H, W]</c> stored pixel by pixel (NHWC),
    /// a float32 contiguous CPU weight <c>[C_out, C_in, k, k]</c> and bias <c>[C_out]</c>, a stride that fits the map
    /// exactly ((H − k) and (W − k) multiples of it, so the transposed convolution gives back H×W), and C_in of 16 or 32
    /// (the output channels of the transposed loop, <see cref="TransposedConvKernel.UsesRows"/>).
    /// </summary>
    public static bool Supports(Tensor x, Tensor? weight, Tensor? bias, long stride)
    {
        if (!ConvOperands.Suit(x, weight, bias, stride, inputDim: 1) || !TransposedConvKernel.UsesRows(x.shape[1])) return false;
        long kernel = weight!.shape[2];
        return x.shape[2] >= kernel && x.shape[3] >= kernel && (x.shape[2] - kernel) % stride == 0 && (x.shape[3] - kernel) % stride == 0;
    }

    /// <summary>conv2d(x, weight, bias, stride); the caller has checked <see cref="Supports"/>.</summary>
    public static Tensor Run(Tensor x, Tensor weight, Tensor bias, long stride) =>
        apply(new Settings(stride, x.requires_grad, weight.requires_grad, bias.requires_grad), x, weight, bias);

    public override Tensor forward(AutogradContext ctx, params object[] vars)
    {
        var settings = (Settings)vars[0];
        var x = (Tensor)vars[1];
        var weight = (Tensor)vars[2];
        var bias = (Tensor)vars[3];
        long[] strides = [settings.Stride, settings.Stride];
        if (settings.InputGrad) ctx.save_for_backward([weight]);
        if (!settings.WeightGrad && !settings.BiasGrad)
        {
            ctx.save_data(nameof(Saved), new Saved(settings, null));
            using var noGrad = no_grad();
            return nn.functional.conv2d(x, weight, bias, strides: strides);
        }
        // The leaves live until the backward pass reads them, past any dispose scope of the caller's; it disposes them.
        var weightLeaf = weight.detach().requires_grad_(settings.WeightGrad).DetachFromDisposeScope();
        var biasLeaf = bias.detach().requires_grad_(settings.BiasGrad).DetachFromDisposeScope();
        Tensor output;
        using (enable_grad())
            output = nn.functional.conv2d(x.detach(), weightLeaf, biasLeaf, strides: strides).DetachFromDisposeScope();
        ctx.save_data(nameof(Saved), new Saved(settings, new Recorded(output, weightLeaf, biasLeaf)));
        return output.detach();
    }

    public override unsafe List<Tensor> backward(AutogradContext ctx, Tensor gradOutput)
    {
        using var scope = NewDisposeScope();
        var (settings, graph) = (Saved)ctx.get_data(nameof(Saved));
        // In NHWC strides, the layout the transposed loop reads and oneDNN's weight-gradient kernel runs fastest on.
        var gradPixels = gradOutput.permute(0, 2, 3, 1).contiguous();
        Tensor? gradInput = null, gradWeight = null, gradBias = null;
        if (settings.InputGrad)
        {
            using var noGrad = no_grad();
            var weight = ctx.get_saved_variables()[0];                                  // [C_out, C_in, k, k]
            var shape = new TransposedConvShape((int)gradPixels.shape[0], (int)gradPixels.shape[1], (int)gradPixels.shape[2],
                (int)weight.shape[0], (int)weight.shape[1], (int)weight.shape[2], (int)settings.Stride);
            var packed = TransposedConvKernel.PackRows(weight);
            var noBias = zeros(shape.OutChannels, dtype: ScalarType.Float32);
            var pixels = empty([shape.Batch, shape.OutHeight, shape.OutWidth, shape.OutChannels], dtype: ScalarType.Float32);
            TransposedConvKernel.Forward(TensorMemory.Pointer<float>(gradPixels), TensorMemory.Pointer<float>(packed),
                TensorMemory.Pointer<float>(noBias), TensorMemory.Pointer<float>(pixels), shape, Math.Max(1, get_num_threads()));
            gradInput = pixels.permute(0, 3, 1, 2);
        }
        if (graph is { } recorded)
        {
            using (recorded)
            {
                var leaves = new List<Tensor>();
                if (settings.WeightGrad) leaves.Add(recorded.Weight);
                if (settings.BiasGrad) leaves.Add(recorded.Bias);
                var grads = grad([recorded.Output], leaves, [gradPixels.permute(0, 3, 1, 2)]);
                int next = 0;
                if (settings.WeightGrad) gradWeight = grads[next++];
                if (settings.BiasGrad) gradBias = grads[next];
            }
        }
        var result = new List<Tensor> { null!, gradInput!, gradWeight!, gradBias! };
        foreach (var gradient in result)
            if (gradient is not null) scope.MoveToOuter(gradient);
        return result;
    }
}
