using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Ddvi.FastPaths;

/// <summary>
/// The forward pass of a stride-1 transposed convolution to one to three output channels with a kernel of at most 4×4
/// (the decoders' image layer, 16 → 3 with 4×4 taps on CIFAR-10) computed input pixel by input pixel: pixel (iy, ix)
/// adds x[b, iy, ix, :]·w[:, c, ky, kx] to output (iy + ky, ix + kx, c). For each kernel row ky the k·C values it adds
/// are one 16-lane vector (lane kx·C + c; <see cref="Pack"/>), so a pixel is k fused multiply-adds per input channel
/// with the channel's value broadcast, four neighbouring pixels at once (16 accumulators, each weight vector loaded once
/// for four pixels). The four pixels' vectors of one kernel row overlap in the output row by whole pixels; they are
/// shifted into place across two vectors (<c>valignd</c>), and what reaches past the next block of four pixels is carried
/// to it in a register, so each output value is read and written once per input row with masked loads and stores.
/// </summary>
/// <remarks>
/// Against the output-pixel loop of <see cref="TransposedConvKernel"/> (a dot product per output pixel and channel, closed
/// by a sum across the vector) nothing is summed across a vector. Batch 128, 29×29×16 → 32×32×3, medians of 300 calls
/// alternated in one process: 1.44 → 0.74 ms on two threads, 3.3 → 1.5 ms on one (docs/performance.md). Each image is
/// one task and its output values are summed in a fixed order (the bias, then input rows in order, input channels in
/// order within a pixel), so results do not depend on the thread count or on the image's place in the batch.
/// </remarks>
internal static unsafe class ImageLayerScatterKernel
{
    private const int Lanes = 16;

    /// <summary>Kernel rows per pixel (one accumulator each): the largest kernel the loop takes.</summary>
    public const int MaxKernel = 4;

    /// <summary>Off: the image layer takes <see cref="TransposedConvKernel"/>'s output-pixel loop (tests and measurements).</summary>
    internal static bool Enabled { get; set; } = true;

    /// <summary>Whether the loop takes this layer: stride 1, one to three output channels, a kernel of at most 4×4.</summary>
    public static bool Supports(long outChannels, long kernel, long stride) =>
        Enabled && stride == 1 && outChannels is >= 1 and <= 3 && kernel is >= 1 and <= MaxKernel;

    /// <summary>
    /// The weight <c>[C_in, C, k, k]</c> as <c>[C_in, 4, 16]</c>: row ky of input channel i holds w[i, c, ky, kx] in lane
    /// kx·C + c, zeros in the lanes and rows past k·C and k.
    /// </summary>
    public static TorchSharp.torch.Tensor Pack(TorchSharp.torch.Tensor weight)
    {
        // A loop rather than tensor operations: six of those took 0.08 ms, a tenth of the layer's forward pass.
        int inChannels = (int)weight.shape[0], outChannels = (int)weight.shape[1], k = (int)weight.shape[2];
        var packed = TorchSharp.torch.zeros([inChannels, MaxKernel, Lanes], dtype: TorchSharp.torch.ScalarType.Float32);
        var source = TensorMemory.Elements<float>(weight);                          // [C_in, C, k, k], contiguous
        var target = TensorMemory.Elements<float>(packed);
        for (int i = 0; i < inChannels; i++)
            for (int c = 0; c < outChannels; c++)
                for (int ky = 0; ky < k; ky++)
                    for (int kx = 0; kx < k; kx++)
                        target[(i * MaxKernel + ky) * Lanes + kx * outChannels + c] = source[((i * outChannels + c) * k + ky) * k + kx];
        return packed;
    }

    /// <summary>
    /// y ← bias + the transposed convolution of x: x <c>[B, H, W, C_in]</c> and y <c>[B, H + k − 1, W + k − 1, C]</c>
    /// contiguous (NHWC), the weight packed by <see cref="Pack"/>, <paramref name="bias"/> C values.
    /// </summary>
    public static void Forward(float* x, float* packed, float* bias, float* y, TransposedConvShape shape, int threads)
    {
        switch (shape.OutChannels)
        {
            case 1: OpenMpTeam.For(shape.Batch, threads, b => Image<One>(x, packed, bias, y, shape, (int)b)); break;
            case 2: OpenMpTeam.For(shape.Batch, threads, b => Image<Two>(x, packed, bias, y, shape, (int)b)); break;
            case 3: OpenMpTeam.For(shape.Batch, threads, b => Image<Three>(x, packed, bias, y, shape, (int)b)); break;
            default: throw new ArgumentOutOfRangeException(nameof(shape), shape.OutChannels, "ImageLayerScatterKernel: one to three output channels.");
        }
    }

    /// <summary>The output channel count as a constant of the type, so that the lane shifts below compile to immediates.</summary>
    private interface IChannels { static abstract int Count { get; } }
    private readonly struct One : IChannels { public static int Count => 1; }
    private readonly struct Two : IChannels { public static int Count => 2; }
    private readonly struct Three : IChannels { public static int Count => 3; }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Image<TC>(float* xAll, float* packed, float* bias, float* yAll, TransposedConvShape shape, int b) where TC : struct, IChannels
    {
        int c = TC.Count, k = shape.Kernel, inChannels = shape.InChannels, height = shape.InHeight, width = shape.InWidth;
        long rowFloats = (long)shape.OutWidth * c, imageFloats = shape.OutHeight * rowFloats;
        float* x = xAll + (long)b * height * width * inChannels;
        float* y = yAll + b * imageFloats;
        FillBias(y, imageFloats, bias, c);
        var keep = Mask(4 * c);                                 // a block of four pixels' own output values
        for (int iy = 0; iy < height; iy++)
        {
            Vector512<float> carry0 = default, carry1 = default, carry2 = default, carry3 = default;
            float* inputRow = x + (long)iy * width * inChannels;
            float* outputRow = y + iy * rowFloats;
            for (int ix = 0; ix < width; ix += 4)
            {
                int pixels = Math.Min(4, width - ix);
                float* p0 = inputRow + (long)ix * inChannels;
                // Pixels past the row's end read the block's first pixel again; their sums are dropped below.
                float* p1 = pixels > 1 ? p0 + inChannels : p0, p2 = pixels > 2 ? p0 + 2 * inChannels : p0, p3 = pixels > 3 ? p0 + 3 * inChannels : p0;
                Vector512<float> a00 = default, a01 = default, a02 = default, a03 = default, a10 = default, a11 = default, a12 = default, a13 = default;
                Vector512<float> a20 = default, a21 = default, a22 = default, a23 = default, a30 = default, a31 = default, a32 = default, a33 = default;
                float* w = packed;
                for (int i = 0; i < inChannels; i++, w += MaxKernel * Lanes)
                {
                    var w0 = Vector512.Load(w);
                    var w1 = Vector512.Load(w + Lanes);
                    var w2 = Vector512.Load(w + 2 * Lanes);
                    var w3 = Vector512.Load(w + 3 * Lanes);
                    var v = Vector512.Create(p0[i]);
                    a00 = Vector512.FusedMultiplyAdd(v, w0, a00); a01 = Vector512.FusedMultiplyAdd(v, w1, a01);
                    a02 = Vector512.FusedMultiplyAdd(v, w2, a02); a03 = Vector512.FusedMultiplyAdd(v, w3, a03);
                    v = Vector512.Create(p1[i]);
                    a10 = Vector512.FusedMultiplyAdd(v, w0, a10); a11 = Vector512.FusedMultiplyAdd(v, w1, a11);
                    a12 = Vector512.FusedMultiplyAdd(v, w2, a12); a13 = Vector512.FusedMultiplyAdd(v, w3, a13);
                    v = Vector512.Create(p2[i]);
                    a20 = Vector512.FusedMultiplyAdd(v, w0, a20); a21 = Vector512.FusedMultiplyAdd(v, w1, a21);
                    a22 = Vector512.FusedMultiplyAdd(v, w2, a22); a23 = Vector512.FusedMultiplyAdd(v, w3, a23);
                    v = Vector512.Create(p3[i]);
                    a30 = Vector512.FusedMultiplyAdd(v, w0, a30); a31 = Vector512.FusedMultiplyAdd(v, w1, a31);
                    a32 = Vector512.FusedMultiplyAdd(v, w2, a32); a33 = Vector512.FusedMultiplyAdd(v, w3, a33);
                }
                float* output = outputRow + (long)ix * c;
                if (ix + 4 < width)
                {
                    Middle<TC>(ref carry0, a00, a10, a20, a30, output, keep);
                    if (k > 1) Middle<TC>(ref carry1, a01, a11, a21, a31, output + rowFloats, keep);
                    if (k > 2) Middle<TC>(ref carry2, a02, a12, a22, a32, output + 2 * rowFloats, keep);
                    if (k > 3) Middle<TC>(ref carry3, a03, a13, a23, a33, output + 3 * rowFloats, keep);
                    continue;
                }
                if (pixels < 2) a10 = a11 = a12 = a13 = default;
                if (pixels < 3) a20 = a21 = a22 = a23 = default;
                if (pixels < 4) a30 = a31 = a32 = a33 = default;
                int span = (pixels - 1 + k) * c;                    // output values from the block's first pixel to the row's end
                Last<TC>(carry0, a00, a10, a20, a30, output, span);
                if (k > 1) Last<TC>(carry1, a01, a11, a21, a31, output + rowFloats, span);
                if (k > 2) Last<TC>(carry2, a02, a12, a22, a32, output + 2 * rowFloats, span);
                if (k > 3) Last<TC>(carry3, a03, a13, a23, a33, output + 3 * rowFloats, span);
            }
        }
    }

    // One kernel row's block of four pixels laid into the output row: pixel j's vector shifted up by j·C lanes, across
    // (low, high). Returns the low vector; high holds lanes 16 … 31. The shifts are literals per channel count (the
    // generic type's constant picks the branch when the method is compiled).
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Combine<TC>(Vector512<float> carry, Vector512<float> q0, Vector512<float> q1, Vector512<float> q2,
        Vector512<float> q3, out Vector512<float> high) where TC : struct, IChannels
    {
        Vector512<uint> zero = Vector512<uint>.Zero, u1 = q1.AsUInt32(), u2 = q2.AsUInt32(), u3 = q3.AsUInt32();
        Vector512<uint> low1, low2, low3, high1, high2, high3;
        if (TC.Count == 1)
        {
            (low1, high1) = (Avx512F.AlignRight32(u1, zero, 15), Avx512F.AlignRight32(zero, u1, 15));
            (low2, high2) = (Avx512F.AlignRight32(u2, zero, 14), Avx512F.AlignRight32(zero, u2, 14));
            (low3, high3) = (Avx512F.AlignRight32(u3, zero, 13), Avx512F.AlignRight32(zero, u3, 13));
        }
        else if (TC.Count == 2)
        {
            (low1, high1) = (Avx512F.AlignRight32(u1, zero, 14), Avx512F.AlignRight32(zero, u1, 14));
            (low2, high2) = (Avx512F.AlignRight32(u2, zero, 12), Avx512F.AlignRight32(zero, u2, 12));
            (low3, high3) = (Avx512F.AlignRight32(u3, zero, 10), Avx512F.AlignRight32(zero, u3, 10));
        }
        else
        {
            (low1, high1) = (Avx512F.AlignRight32(u1, zero, 13), Avx512F.AlignRight32(zero, u1, 13));
            (low2, high2) = (Avx512F.AlignRight32(u2, zero, 10), Avx512F.AlignRight32(zero, u2, 10));
            (low3, high3) = (Avx512F.AlignRight32(u3, zero, 7), Avx512F.AlignRight32(zero, u3, 7));
        }
        high = high1.AsSingle() + high2.AsSingle() + high3.AsSingle();
        return carry + q0 + low1.AsSingle() + low2.AsSingle() + low3.AsSingle();
    }

    // A block with more pixels after it in the row: its four pixels' own values (4·C lanes) are final for this input row
    // and are added to the output; the rest moves down by 4·C lanes into the carry for the next block.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Middle<TC>(ref Vector512<float> carry, Vector512<float> q0, Vector512<float> q1, Vector512<float> q2, Vector512<float> q3,
        float* output, Vector512<float> keep) where TC : struct, IChannels
    {
        var low = Combine<TC>(carry, q0, q1, q2, q3, out var high);
        Avx512F.MaskStore(output, keep, Avx512F.MaskLoad(output, keep, Vector512<float>.Zero) + low);
        Vector512<uint> h = high.AsUInt32(), l = low.AsUInt32();
        carry = (TC.Count == 1 ? Avx512F.AlignRight32(h, l, 4) : TC.Count == 2 ? Avx512F.AlignRight32(h, l, 8) : Avx512F.AlignRight32(h, l, 12)).AsSingle();
    }

    // The row's last block: everything from its first pixel to the row's end (span values) is added to the output.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Last<TC>(Vector512<float> carry, Vector512<float> q0, Vector512<float> q1, Vector512<float> q2, Vector512<float> q3,
        float* output, int span) where TC : struct, IChannels
    {
        var low = Combine<TC>(carry, q0, q1, q2, q3, out var high);
        var first = Mask(Math.Min(Lanes, span));
        Avx512F.MaskStore(output, first, Avx512F.MaskLoad(output, first, Vector512<float>.Zero) + low);
        if (span <= Lanes) return;
        var second = Mask(span - Lanes);
        Avx512F.MaskStore(output + Lanes, second, Avx512F.MaskLoad(output + Lanes, second, Vector512<float>.Zero) + high);
    }

    private static Vector512<float> Mask(int lanes) => Vector512.LessThan(Vector512<int>.Indices, Vector512.Create(lanes)).AsSingle();

    // Every pixel of one image's output set to the bias: 48 values (16 pixels of three channels, 24 of two, 48 of one) per
    // three stores.
    private static void FillBias(float* y, long count, float* bias, int channels)
    {
        var pattern = stackalloc float[3 * Lanes];
        for (int i = 0; i < 3 * Lanes; i++) pattern[i] = bias[i % channels];
        Vector512<float> p0 = Vector512.Load(pattern), p1 = Vector512.Load(pattern + Lanes), p2 = Vector512.Load(pattern + 2 * Lanes);
        long i0 = 0;
        for (; i0 + 3 * Lanes <= count; i0 += 3 * Lanes)
        {
            p0.Store(y + i0);
            p1.Store(y + i0 + Lanes);
            p2.Store(y + i0 + 2 * Lanes);
        }
        for (; i0 < count; i0++) y[i0] = bias[i0 % channels];
    }
}
