namespace Ddvi.FastPaths;

/// <summary>
/// The shape of a convolution without padding, dilation or groups: <c>[B, H, W, C_in]</c> →
/// <c>[B, (H − k)/s + 1, (W − k)/s + 1, C_out]</c>, both stored pixel by pixel (NHWC).
/// </summary>
internal readonly record struct DirectConvShape(int Batch, int InHeight, int InWidth, int InChannels, int OutChannels, int Kernel, int Stride)
{
    public int OutHeight => (InHeight - Kernel) / Stride + 1;
    public int OutWidth => (InWidth - Kernel) / Stride + 1;
}

/// <summary>
/// A convolution without padding computed output pixel by output pixel with the transposed loop's pixel blocks
/// (<see cref="TransposedConvKernel.Pixel"/>): y[b, oy, ox, o] = bias[o] + Σ over all taps (ky, kx) of
/// Σ_c x[b, s·oy + ky, s·ox + kx, c]·w[o, c, ky, kx], the same pixel of eight images at once, 16 output channels in one
/// accumulator per image, 32 in two, 64 as two halves of 32. The weight is packed <c>[k, k, C_in, C_out]</c>
/// (<see cref="Pack"/>). Used for the CIFAR-10 trunk's strided convolutions' forward pass and for the decoder's
/// transposed convolutions' input gradient (a convolution of the output's gradient with the same weight), which
/// oneDNN ran at 1.2–2.4× their arithmetic floor on two threads (docs/performance.md). Each output value is summed by one
/// thread in a fixed order, so results do not depend on the thread count.
/// </summary>
internal static unsafe class DirectConvKernel
{
    /// <summary>
    /// Whether the loop takes these channel counts: 16, 32 or 64 outputs from a positive multiple of 16 inputs (with
    /// fewer inputs, as in the gradient of the 16→3 image layer, oneDNN was faster: 0.73–0.77 against 0.97–1.00 ms on two
    /// threads).
    /// </summary>
    public static bool SupportsChannels(long inChannels, long outChannels) =>
        inChannels > 0 && inChannels % 16 == 0 && outChannels is 16 or 32 or 64;

    /// <summary>A convolution's weight <c>[C_out, C_in, k, k]</c> (or a transposed one's <c>[C_in, C_out, k, k]</c> read
    /// as the convolution of its input gradient) → <c>[k, k, C_in, C_out]</c> (<c>[k, k, C_out, C_in]</c>).</summary>
    public static TorchSharp.torch.Tensor Pack(TorchSharp.torch.Tensor weight) => weight.permute(2, 3, 1, 0).contiguous();

    /// <summary>y ← the convolution of x; <paramref name="weight"/> packed by <see cref="Pack"/>, <paramref name="bias"/> C_out values.</summary>
    public static void Forward(float* x, float* weight, float* bias, float* y, DirectConvShape shape, int threads)
    {
        int blocks = (shape.Batch + TransposedConvKernel.Block - 1) / TransposedConvKernel.Block;
        int parts = TransposedConvKernel.PartsPerBlock(blocks, shape.OutHeight, threads);
        OpenMpTeam.For((long)blocks * parts, threads, chunk =>
        {
            long block = chunk / parts, part = chunk % parts;
            int first = (int)(part * shape.OutHeight / parts), last = (int)((part + 1) * shape.OutHeight / parts);
            for (int oy = first; oy < last; oy++)
                RowLoop(x, weight, bias, y, shape, (int)block * TransposedConvKernel.Block, oy);
        });
    }

    // Output row oy of the block of images from b0: every kernel tap is inside the input.
    private static void RowLoop(float* x, float* weight, float* bias, float* y, DirectConvShape shape, int b0, int oy)
    {
        int k = shape.Kernel, s = shape.Stride, ci = shape.InChannels, co = shape.OutChannels;
        int outHeight = shape.OutHeight, outWidth = shape.OutWidth;
        int n = Math.Min(TransposedConvKernel.Block, shape.Batch - b0);
        long inImage = (long)shape.InHeight * shape.InWidth * ci, outImage = (long)outHeight * outWidth * co;
        Span<int> offsets = stackalloc int[k], iys = stackalloc int[k], ixs = stackalloc int[k];
        for (int t = 0; t < k; t++)
        {
            offsets[t] = t;
            iys[t] = s * oy + t;
        }
        float* input = x + (long)b0 * inImage;
        for (int ox = 0; ox < outWidth; ox++)
        {
            for (int t = 0; t < k; t++) ixs[t] = s * ox + t;
            float* output = y + (((long)b0 * outHeight + oy) * outWidth + ox) * co;
            TransposedConvKernel.Pixel(input, inImage, n, weight, bias, output, outImage, ci, co, k, shape.InWidth, offsets, iys, offsets, ixs);
        }
    }
}
