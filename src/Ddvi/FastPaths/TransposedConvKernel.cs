using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace Ddvi.FastPaths;

/// <summary>
/// The shape of a transposed convolution without padding, dilation or groups (the CIFAR-10 decoder's):
/// <c>[B, H, W, C_in]</c> → <c>[B, (H − 1)·s + k, (W − 1)·s + k, C_out]</c>, both stored pixel by pixel (NHWC).
/// </summary>
internal readonly record struct TransposedConvShape(int Batch, int InHeight, int InWidth, int InChannels, int OutChannels, int Kernel, int Stride)
{
    public int OutHeight => (InHeight - 1) * Stride + Kernel;
    public int OutWidth => (InWidth - 1) * Stride + Kernel;
}

/// <summary>
/// The forward pass of <see cref="TransposedConvFunction"/>: a transposed convolution computed output pixel by output
/// pixel, y[b, oy, ox, o] = bias[o] + Σ over the taps (ky, kx) with oy = s·iy + ky and ox = s·ix + kx inside the input of
/// Σ_c x[b, iy, ix, c]·w[c, o, ky, kx]. Each output pixel is the same position in <see cref="Block"/> images at once, so
/// every tap is valid or not for all of them alike, each weight vector loaded serves all of them, and nothing is written
/// but the output. Two kinds of loops:
/// <list type="bullet">
/// <item>16 or 32 output channels: one or two 16-wide accumulators per image, an input value broadcast into a fused
/// multiply-add with the weight row (<see cref="PackRows"/>: <c>[k, k, C_in, C_out]</c>);</item>
/// <item>one to three output channels (the image layer), stride 1, C_in a multiple of 16: for stride 1 the valid taps
/// of one kernel row read consecutive input pixels, whose channels are contiguous in NHWC, so each kernel row is one dot
/// product of contiguous runs of input and weight (<see cref="PackColumns"/>: <c>[k, 3, k, C_in]</c>, the columns
/// reversed, zero rows past C_out), 16 values per vector, summed across the vector at the end. Image layers with
/// kernels up to 4×4 (the decoders') take <see cref="ImageLayerScatterKernel"/> instead, which is about 1.5× faster;
/// this loop stays for larger kernels.</item>
/// </list>
/// Each output value is summed by one thread in a fixed order, so results do not depend on the thread count. Measured on
/// the CIFAR-10 decoder's layers, batch 128, one thread: 32→16 (5×5, stride 2) 4.5 ms against oneDNN's 14–36, 64→32
/// 1.7 against 5.4–7.2, 16→3 (4×4) 2.3–2.6 against 7.6–10.6 (docs/performance.md).
/// </summary>
internal static unsafe class TransposedConvKernel
{
    /// <summary>Images whose same output pixel is computed together.</summary>
    public const int Block = 8;

    /// <summary>Images per block in the few-output-channel loop (12 accumulators for 4 images and 3 outputs).</summary>
    private const int FewBlock = 4;

    /// <summary>Output channels of the few-channel loop.</summary>
    public const int FewChannels = 3;

    private const int Lanes = 16;

    /// <summary>Whether the loops handle these channel counts and stride.</summary>
    public static bool SupportsChannels(long inChannels, long outChannels, long stride) =>
        inChannels > 0 && stride >= 1
        && (UsesRows(outChannels) || (outChannels is >= 1 and <= FewChannels && inChannels % Lanes == 0 && stride == 1));

    /// <summary>Whether <paramref name="outChannels"/> takes the row loop (else the few-channel one).</summary>
    public static bool UsesRows(long outChannels) => outChannels is 16 or 32;

    /// <summary>The row loop's weight: <c>[C_in, C_out, k, k]</c> → <c>[k, k, C_in, C_out]</c>.</summary>
    public static TorchSharp.torch.Tensor PackRows(TorchSharp.torch.Tensor weight) => weight.permute(2, 3, 0, 1).contiguous();

    /// <summary>
    /// The few-channel loop's weight: <c>[C_in, C_out, k, k]</c> → <c>[k, 3, k, C_in]</c> (kernel row, output channel,
    /// kernel column from last to first, input channel), zero rows past C_out.
    /// </summary>
    public static TorchSharp.torch.Tensor PackColumns(TorchSharp.torch.Tensor weight)
    {
        var columns = weight.permute(2, 1, 3, 0).flip(2);
        long missing = FewChannels - weight.shape[1];
        return (missing == 0 ? columns : TorchSharp.torch.nn.functional.pad(columns, [0, 0, 0, 0, 0, missing])).contiguous();
    }

    /// <summary>
    /// y ← the transposed convolution of x. <paramref name="weight"/> packed by <see cref="PackRows"/> or
    /// <see cref="PackColumns"/> as <see cref="UsesRows"/> says; <paramref name="bias"/> C_out values (three for the
    /// few-channel loop, zeros past C_out).
    /// </summary>
    public static void Forward(float* x, float* weight, float* bias, float* y, TransposedConvShape shape, int threads)
    {
        // A chunk is a block's run of output rows: a block's rows stay on one core, whose caches then hold its images.
        int blocks = (shape.Batch + Block - 1) / Block;
        int parts = PartsPerBlock(blocks, shape.OutHeight, threads);
        bool rows = UsesRows(shape.OutChannels);
        OpenMpTeam.For((long)blocks * parts, threads, chunk =>
        {
            long block = chunk / parts, part = chunk % parts;
            int first = (int)(part * shape.OutHeight / parts), last = (int)((part + 1) * shape.OutHeight / parts);
            for (int oy = first; oy < last; oy++)
            {
                long row = block * shape.OutHeight + oy;
                if (rows) RowLoop(x, weight, bias, y, shape, row);
                else FewLoop(x, weight, bias, y, shape, row);
            }
        });
    }

    /// <summary>
    /// Into how many chunks each of <paramref name="units"/> units (blocks or groups of images) is split so that
    /// <paramref name="threads"/> threads get at least eight chunks each (at most <paramref name="most"/> per unit).
    /// A unit's chunks are consecutive rows (taps), which keeps most of an image's data on one core; measured on the
    /// CIFAR-10 layers with two threads, handing out single output rows instead (consecutive rows of one block to
    /// alternating threads) was 20–40% slower, and four or eight chunks per thread were equally fast per call (eight
    /// leave a shorter tail when one thread starts late).
    /// </summary>
    internal static int PartsPerBlock(int units, int most, int threads) =>
        Math.Clamp((8 * threads + units - 1) / Math.Max(1, units), 1, Math.Max(1, most));

    // The taps of output coordinate `o` along a side of `inSide` inputs: kernel offsets and input coordinates.
    private static int Taps(int o, int inSide, int kernel, int stride, Span<int> offsets, Span<int> inputs)
    {
        int count = 0;
        for (int k = o % stride; k <= o && k < kernel; k += stride)
        {
            int i = (o - k) / stride;
            if (i < inSide)
            {
                offsets[count] = k;
                inputs[count] = i;
                count++;
            }
        }
        return count;
    }

    // One output row `oy` of one block of images (row = block · OutHeight + oy), 16 or 32 output channels.
    private static void RowLoop(float* x, float* weight, float* bias, float* y, TransposedConvShape shape, long row)
    {
        int outHeight = shape.OutHeight, outWidth = shape.OutWidth, k = shape.Kernel, ci = shape.InChannels, co = shape.OutChannels;
        int b0 = (int)(row / outHeight) * Block, oy = (int)(row % outHeight);
        int n = Math.Min(Block, shape.Batch - b0);
        long inImage = (long)shape.InHeight * shape.InWidth * ci, outImage = (long)outHeight * outWidth * co;
        Span<int> kys = stackalloc int[k], iys = stackalloc int[k], kxs = stackalloc int[k], ixs = stackalloc int[k];
        int nky = Taps(oy, shape.InHeight, k, shape.Stride, kys, iys);
        for (int ox = 0; ox < outWidth; ox++)
        {
            int nkx = Taps(ox, shape.InWidth, k, shape.Stride, kxs, ixs);
            float* output = y + (((long)b0 * outHeight + oy) * outWidth + ox) * co;
            float* input = x + (long)b0 * inImage;
            Pixel(input, inImage, n, weight, bias, output, outImage, ci, co, k, shape.InWidth, kys[..nky], iys[..nky], kxs[..nkx], ixs[..nkx]);
        }
    }

    // One output pixel of n ≤ Block images from the taps given (weight packed [k, k, C_in, C_out]): blocks of eight
    // images take the 16- or 32-channel loops (64 channels as two 32-channel halves), the rest one image at a time.
    internal static void Pixel(float* input, long inImage, int n, float* weight, float* bias, float* output, long outImage,
        int ci, int co, int k, int inWidth, ReadOnlySpan<int> kys, ReadOnlySpan<int> iys, ReadOnlySpan<int> kxs, ReadOnlySpan<int> ixs)
    {
        if (n == Block && co == 16)
            Block16(input, inImage, weight, bias, output, outImage, ci, k, inWidth, kys, iys, kxs, ixs);
        else if (n == Block && co % 32 == 0)
            for (int half = 0; half < co; half += 32)
                Block32(input, inImage, weight + half, co, bias + half, output + half, outImage, ci, k, inWidth, kys, iys, kxs, ixs);
        else
            for (int j = 0; j < n; j++)
                Single(input + j * inImage, weight, bias, output + j * outImage, ci, co, k, inWidth, kys, iys, kxs, ixs);
    }

    private static void Block16(float* input, long inImage, float* weight, float* bias, float* output, long outImage, int ci, int k, int inWidth,
        ReadOnlySpan<int> kys, ReadOnlySpan<int> iys, ReadOnlySpan<int> kxs, ReadOnlySpan<int> ixs)
    {
        var start = Vector512.Load(bias);
        Vector512<float> a0 = start, a1 = start, a2 = start, a3 = start, a4 = start, a5 = start, a6 = start, a7 = start;
        for (int p = 0; p < kys.Length; p++)
            for (int q = 0; q < kxs.Length; q++)
            {
                float* x0 = At(input, iys[p], ixs[q], inWidth, ci), w = Tap(weight, kys[p], kxs[q], k, ci, 16);
                float* x1 = x0 + inImage, x2 = x1 + inImage, x3 = x2 + inImage, x4 = x3 + inImage, x5 = x4 + inImage, x6 = x5 + inImage, x7 = x6 + inImage;
                for (int c = 0; c < ci; c++)
                {
                    var row = Vector512.Load(w + c * 16);
                    a0 = Vector512.FusedMultiplyAdd(Vector512.Create(x0[c]), row, a0);
                    a1 = Vector512.FusedMultiplyAdd(Vector512.Create(x1[c]), row, a1);
                    a2 = Vector512.FusedMultiplyAdd(Vector512.Create(x2[c]), row, a2);
                    a3 = Vector512.FusedMultiplyAdd(Vector512.Create(x3[c]), row, a3);
                    a4 = Vector512.FusedMultiplyAdd(Vector512.Create(x4[c]), row, a4);
                    a5 = Vector512.FusedMultiplyAdd(Vector512.Create(x5[c]), row, a5);
                    a6 = Vector512.FusedMultiplyAdd(Vector512.Create(x6[c]), row, a6);
                    a7 = Vector512.FusedMultiplyAdd(Vector512.Create(x7[c]), row, a7);
                }
            }
        a0.Store(output);
        a1.Store(output + outImage);
        a2.Store(output + 2 * outImage);
        a3.Store(output + 3 * outImage);
        a4.Store(output + 4 * outImage);
        a5.Store(output + 5 * outImage);
        a6.Store(output + 6 * outImage);
        a7.Store(output + 7 * outImage);
    }

    // 32 output channels of weight rows `rowStride` apart (32, or 64 for one half of a 64-channel layer).
    private static void Block32(float* input, long inImage, float* weight, int rowStride, float* bias, float* output, long outImage, int ci, int k, int inWidth,
        ReadOnlySpan<int> kys, ReadOnlySpan<int> iys, ReadOnlySpan<int> kxs, ReadOnlySpan<int> ixs)
    {
        Vector512<float> low = Vector512.Load(bias), high = Vector512.Load(bias + 16);
        Vector512<float> a0 = low, a1 = low, a2 = low, a3 = low, a4 = low, a5 = low, a6 = low, a7 = low;
        Vector512<float> b0 = high, b1 = high, b2 = high, b3 = high, b4 = high, b5 = high, b6 = high, b7 = high;
        for (int p = 0; p < kys.Length; p++)
            for (int q = 0; q < kxs.Length; q++)
            {
                float* x0 = At(input, iys[p], ixs[q], inWidth, ci), w = Tap(weight, kys[p], kxs[q], k, ci, rowStride);
                float* x1 = x0 + inImage, x2 = x1 + inImage, x3 = x2 + inImage, x4 = x3 + inImage, x5 = x4 + inImage, x6 = x5 + inImage, x7 = x6 + inImage;
                for (int c = 0; c < ci; c++)
                {
                    var rowLow = Vector512.Load(w + (long)c * rowStride);
                    var rowHigh = Vector512.Load(w + (long)c * rowStride + 16);
                    (a0, b0) = Pair(x0[c], rowLow, rowHigh, a0, b0);
                    (a1, b1) = Pair(x1[c], rowLow, rowHigh, a1, b1);
                    (a2, b2) = Pair(x2[c], rowLow, rowHigh, a2, b2);
                    (a3, b3) = Pair(x3[c], rowLow, rowHigh, a3, b3);
                    (a4, b4) = Pair(x4[c], rowLow, rowHigh, a4, b4);
                    (a5, b5) = Pair(x5[c], rowLow, rowHigh, a5, b5);
                    (a6, b6) = Pair(x6[c], rowLow, rowHigh, a6, b6);
                    (a7, b7) = Pair(x7[c], rowLow, rowHigh, a7, b7);
                }
            }
        StorePair(a0, b0, output);
        StorePair(a1, b1, output + outImage);
        StorePair(a2, b2, output + 2 * outImage);
        StorePair(a3, b3, output + 3 * outImage);
        StorePair(a4, b4, output + 4 * outImage);
        StorePair(a5, b5, output + 5 * outImage);
        StorePair(a6, b6, output + 6 * outImage);
        StorePair(a7, b7, output + 7 * outImage);
    }

    // The channels of input pixel (iy, ix) of one image.
    private static float* At(float* image, int iy, int ix, int width, int channels) => image + ((long)iy * width + ix) * channels;

    // The row loop's weight rows [C_in, C_out] of kernel tap (ky, kx).
    private static float* Tap(float* weight, int ky, int kx, int kernel, int inChannels, int outChannels) =>
        weight + (long)(ky * kernel + kx) * inChannels * outChannels;

    // Both halves of a 32-channel row times one broadcast input value, added to their accumulators.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static (Vector512<float> Low, Vector512<float> High) Pair(float value, Vector512<float> rowLow, Vector512<float> rowHigh,
        Vector512<float> low, Vector512<float> high)
    {
        var v = Vector512.Create(value);
        return (Vector512.FusedMultiplyAdd(v, rowLow, low), Vector512.FusedMultiplyAdd(v, rowHigh, high));
    }

    private static void StorePair(Vector512<float> low, Vector512<float> high, float* output)
    {
        low.Store(output);
        high.Store(output + 16);
    }

    // One image's output pixel (the blocks' remainder), 16 or 32 output channels, in the blocks' summation order.
    private static void Single(float* input, float* weight, float* bias, float* output, int ci, int co, int k, int inWidth,
        ReadOnlySpan<int> kys, ReadOnlySpan<int> iys, ReadOnlySpan<int> kxs, ReadOnlySpan<int> ixs)
    {
        for (int o = 0; o < co; o += 16)
        {
            var a = Vector512.Load(bias + o);
            for (int p = 0; p < kys.Length; p++)
                for (int q = 0; q < kxs.Length; q++)
                {
                    float* xp = At(input, iys[p], ixs[q], inWidth, ci), w = Tap(weight, kys[p], kxs[q], k, ci, co) + o;
                    for (int c = 0; c < ci; c++)
                        a = Vector512.FusedMultiplyAdd(Vector512.Create(xp[c]), Vector512.Load(w + (long)c * co), a);
                }
            a.Store(output + o);
        }
    }

    // One output row of one block of images, one to three output channels, stride 1, C_in a multiple of 16. For output
    // column ox the valid kernel columns kx ∈ [lo, hi] read input pixels ox − hi … ox − lo: one contiguous run of
    // (hi − lo + 1)·C_in values, matched by the packed weight's reversed columns k − 1 − hi … k − 1 − lo.
    private static void FewLoop(float* x, float* weight, float* bias, float* y, TransposedConvShape shape, long row)
    {
        int outHeight = shape.OutHeight, outWidth = shape.OutWidth, k = shape.Kernel, ci = shape.InChannels, co = shape.OutChannels;
        int inWidth = shape.InWidth;
        int b0 = (int)(row / outHeight) * Block, oy = (int)(row % outHeight);
        int n = Math.Min(Block, shape.Batch - b0);
        long inImage = (long)shape.InHeight * inWidth * ci, outImage = (long)outHeight * outWidth * co;
        long weightRow = (long)k * ci;                                  // one output channel's k columns of one kernel row
        Span<int> kys = stackalloc int[k], iys = stackalloc int[k];
        Span<float> sums = stackalloc float[FewBlock * FewChannels];
        int nky = Taps(oy, shape.InHeight, k, 1, kys, iys);
        for (int ox = 0; ox < outWidth; ox++)
        {
            int lo = Math.Max(0, ox - (inWidth - 1)), hi = Math.Min(k - 1, ox);
            int run = (hi - lo + 1) * ci;
            float* output = y + (((long)b0 * outHeight + oy) * outWidth + ox) * co;
            for (int j0 = 0; j0 < n; j0 += FewBlock)
            {
                int m = Math.Min(FewBlock, n - j0);
                // Images past the block's end read the first image again; their sums are not stored.
                long step1 = m > 1 ? inImage : 0, step2 = m > 2 ? 2 * inImage : 0, step3 = m > 3 ? 3 * inImage : 0;
                Vector512<float> a00 = default, a01 = default, a02 = default, a10 = default, a11 = default, a12 = default;
                Vector512<float> a20 = default, a21 = default, a22 = default, a30 = default, a31 = default, a32 = default;
                for (int p = 0; p < nky; p++)
                {
                    float* x0 = x + (((long)(b0 + j0) * shape.InHeight + iys[p]) * inWidth + (ox - hi)) * ci;
                    float* x1 = x0 + step1, x2 = x0 + step2, x3 = x0 + step3;
                    float* w0 = weight + (long)kys[p] * FewChannels * weightRow + (long)(k - 1 - hi) * ci;
                    float* w1 = w0 + weightRow, w2 = w1 + weightRow;
                    for (int c = 0; c < run; c += Lanes)
                    {
                        var u0 = Vector512.Load(w0 + c);
                        var u1 = Vector512.Load(w1 + c);
                        var u2 = Vector512.Load(w2 + c);
                        var v = Vector512.Load(x0 + c);
                        a00 = Vector512.FusedMultiplyAdd(v, u0, a00);
                        a01 = Vector512.FusedMultiplyAdd(v, u1, a01);
                        a02 = Vector512.FusedMultiplyAdd(v, u2, a02);
                        v = Vector512.Load(x1 + c);
                        a10 = Vector512.FusedMultiplyAdd(v, u0, a10);
                        a11 = Vector512.FusedMultiplyAdd(v, u1, a11);
                        a12 = Vector512.FusedMultiplyAdd(v, u2, a12);
                        v = Vector512.Load(x2 + c);
                        a20 = Vector512.FusedMultiplyAdd(v, u0, a20);
                        a21 = Vector512.FusedMultiplyAdd(v, u1, a21);
                        a22 = Vector512.FusedMultiplyAdd(v, u2, a22);
                        v = Vector512.Load(x3 + c);
                        a30 = Vector512.FusedMultiplyAdd(v, u0, a30);
                        a31 = Vector512.FusedMultiplyAdd(v, u1, a31);
                        a32 = Vector512.FusedMultiplyAdd(v, u2, a32);
                    }
                }
                sums[0] = Vector512.Sum(a00);
                sums[1] = Vector512.Sum(a01);
                sums[2] = Vector512.Sum(a02);
                sums[3] = Vector512.Sum(a10);
                sums[4] = Vector512.Sum(a11);
                sums[5] = Vector512.Sum(a12);
                sums[6] = Vector512.Sum(a20);
                sums[7] = Vector512.Sum(a21);
                sums[8] = Vector512.Sum(a22);
                sums[9] = Vector512.Sum(a30);
                sums[10] = Vector512.Sum(a31);
                sums[11] = Vector512.Sum(a32);
                for (int j = 0; j < m; j++)
                    for (int o = 0; o < co; o++)
                        output[(j0 + j) * outImage + o] = sums[j * FewChannels + o] + bias[o];
            }
        }
    }
}
