using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Ddvi.FastPaths;

/// <summary>
/// The shape of a stride-1 convolution without padding from a map of one to four channels to 16:
/// <c>[B, H, W, C]</c> → <c>[B, H − k + 1, W − k + 1, 16]</c>, both stored pixel by pixel (NHWC).
/// </summary>
internal readonly record struct FewChannelShape(int Batch, int Height, int Width, int Channels, int Kernel)
{
    public int OutHeight => Height - Kernel + 1;
    public int OutWidth => Width - Kernel + 1;

    /// <summary>Values of one kernel row of one output channel: the k·C inputs a tap row reads, contiguous in a pixel row.</summary>
    public int RowTaps => Kernel * Channels;
}

/// <summary>
/// The convolutions whose maps have one to four channels on one side and 16 on the other: the CIFAR-10 trunk's first
/// convolution (C→16, 3×3, padding 1, on a zero-padded copy of the images) and the 16→C image layer of the decoder, whose
/// input gradient is such a convolution of the output's gradient and whose weight gradient correlates a 16-channel map
/// with a C-channel one. libtorch runs them on oneDNN at about twice their arithmetic floor, and its static split left the
/// second thread waiting (docs/performance.md).
/// </summary>
/// <remarks>
/// Forward (<see cref="Correlate"/>): y[b, oy, ox, :] = bias + Σ_{ky} Σ_{j &lt; k·C} x[b, oy + ky, ox·C + j]·w[ky, j, :]
/// (the pixel row read as one run of floats, j = kx·C + c), 16 output pixels of a row at once in 16 accumulators, each
/// input value broadcast into a fused multiply-add with the tap's 16 weights. Weight gradient (<see cref="WeightGradient"/>):
/// G[ky, j, :] = Σ over images and output pixels of big[b, oy + ky, ox·C + j]·small[b, oy, ox, :], a tile of up to 16
/// consecutive j of one kernel row in 16 accumulators; per group of <see cref="ConvWeightGradKernel.Group"/> images a
/// partial result, the groups added in order. Both give results that do not depend on the thread count.
/// </remarks>
internal static unsafe class FewChannelConvKernel
{
    /// <summary>Channels of the wide side.</summary>
    public const int Wide = 16;

    private const int Lanes = 16;

    /// <summary>Whether the loops take these channel counts and an output at least 16 pixels wide (one block of pixels).</summary>
    public static bool Supports(long fewChannels, long wideChannels, long outWidth) =>
        fewChannels is >= 1 and <= 4 && wideChannels == Wide && outWidth >= Lanes;

    /// <summary>
    /// A convolution's weight <c>[16, C, k, k]</c> (or a 16→C transposed convolution's <c>[16, C, k, k]</c> read as the
    /// convolution of its input gradient) → <c>[k, k, C, 16]</c>, the layout <see cref="Correlate"/> reads.
    /// </summary>
    public static TorchSharp.torch.Tensor Pack(TorchSharp.torch.Tensor weight) => weight.permute(2, 3, 1, 0).contiguous();

    /// <summary>
    /// <paramref name="padded"/> <c>[B, H + 2p, W + 2p, C]</c> (NHWC) ← <paramref name="x"/> inside a border of
    /// <paramref name="padding"/> zeros, eight images a task on the team; x is <c>[B, H, W, C]</c> (NHWC) or, where
    /// <paramref name="planar"/>, <c>[B, C, H, W]</c> (NCHW), so the copy also does the planes-to-pixels reordering.
    /// (libtorch's <c>zeros</c> and strided <c>copy_</c>, after the NHWC copy of the images, took as long as a third of
    /// the convolution.)
    /// </summary>
    public static void Pad(float* x, bool planar, float* padded, int batch, int height, int width, int channels, int padding, int threads)
    {
        int outWidth = width + 2 * padding, outHeight = height + 2 * padding;
        long rowLength = (long)outWidth * channels, inRow = (long)width * channels, edge = (long)padding * channels, plane = (long)height * width;
        // Eight images a task: one image's copy (≈ 0.4 µs) is too short to hand out on its own.
        const int ImagesPerTask = 8;
        OpenMpTeam.For((batch + ImagesPerTask - 1) / ImagesPerTask, threads, task =>
        {
            for (long b = task * ImagesPerTask, end = Math.Min(batch, b + ImagesPerTask); b < end; b++)
            {
                for (int r = 0; r < outHeight; r++)
                {
                    float* to = padded + (b * outHeight + r) * rowLength;
                    int source = r - padding;
                    if (source < 0 || source >= height)
                    {
                        new Span<float>(to, (int)rowLength).Clear();
                        continue;
                    }
                    new Span<float>(to, (int)edge).Clear();
                    if (planar)
                        Interleave(x + b * channels * plane + (long)source * width, plane, to + edge, width, channels);
                    else
                        new ReadOnlySpan<float>(x + (b * height + source) * inRow, (int)inRow).CopyTo(new Span<float>(to + edge, (int)inRow));
                    new Span<float>(to + edge + inRow, (int)edge).Clear();
                }
            }
        });
    }

    /// <summary>Whether <see cref="Interleave"/> takes its vector path (else the element loop, the reference).</summary>
    internal static bool VectorInterleave = true;

    /// <summary>
    /// One pixel row from channel planes: <paramref name="to"/>[column·C + c] ← <paramref name="from"/>[c·plane + column]
    /// for the <paramref name="width"/> columns. Three channels (RGB) take 16 pixels at a time, the three planes' vectors
    /// merged by two two-source permutes per output vector; one channel is a copy; the rest, and the columns past the last
    /// whole 16, go element by element.
    /// </summary>
    internal static void Interleave(float* from, long plane, float* to, int width, int channels)
    {
        if (channels == 1)
        {
            new ReadOnlySpan<float>(from, width).CopyTo(new Span<float>(to, width));
            return;
        }
        int column = 0;
        if (channels == 3 && VectorInterleave && Avx512F.IsSupported)
        {
            var (firstPair, firstThird, secondPair, secondThird, thirdPair, thirdThird) = RgbIndices.Value;
            float* red = from, green = from + plane, blue = from + 2 * plane;
            for (; column + Lanes <= width; column += Lanes)
            {
                var r = Vector512.Load(red + column);
                var g = Vector512.Load(green + column);
                var b = Vector512.Load(blue + column);
                float* o = to + (long)column * 3;
                Vector512.Store(Avx512F.PermuteVar16x32x2(Avx512F.PermuteVar16x32x2(r, firstPair, g), firstThird, b), o);
                Vector512.Store(Avx512F.PermuteVar16x32x2(Avx512F.PermuteVar16x32x2(r, secondPair, g), secondThird, b), o + Lanes);
                Vector512.Store(Avx512F.PermuteVar16x32x2(Avx512F.PermuteVar16x32x2(r, thirdPair, g), thirdThird, b), o + 2 * Lanes);
            }
        }
        for (; column < width; column++)
            for (int c = 0; c < channels; c++)
                to[(long)column * channels + c] = from[c * plane + column];
    }

    // For output vector k (values 16k … 16k + 15 of 16 RGB pixels, value v = 3·pixel + channel): the first permute takes
    // red (table 0) and green (table 1) values into their lanes, the second keeps those lanes (table 0) and takes blue
    // (table 1) into the rest.
    private static readonly Lazy<(Vector512<int>, Vector512<int>, Vector512<int>, Vector512<int>, Vector512<int>, Vector512<int>)> RgbIndices = new(() =>
    {
        var indices = new Vector512<int>[6];
        Span<int> pair = stackalloc int[Lanes], third = stackalloc int[Lanes];
        for (int k = 0; k < 3; k++)
        {
            for (int lane = 0; lane < Lanes; lane++)
            {
                int value = k * Lanes + lane, pixel = value / 3, channel = value % 3;
                pair[lane] = channel == 1 ? Lanes + pixel : pixel;                       // red from table 0, green from table 1
                third[lane] = channel == 2 ? Lanes + pixel : lane;                       // keep the lane, or blue from table 1
            }
            indices[2 * k] = Vector512.Create<int>(pair);
            indices[2 * k + 1] = Vector512.Create<int>(third);
        }
        return (indices[0], indices[1], indices[2], indices[3], indices[4], indices[5]);
    });

    /// <summary>
    /// The convolution <c>[B, H − k + 1, W − k + 1, 16]</c> (NHWC, contiguous) of <paramref name="pixels"/>
    /// <c>[B, H, W, C]</c> (NHWC, contiguous) with <paramref name="weight"/> <c>[16, C, k, k]</c> plus
    /// <paramref name="bias"/> (16 values, or none): the weight packed, the output allocated, <see cref="Correlate"/> run.
    /// </summary>
    public static TorchSharp.torch.Tensor Convolve(TorchSharp.torch.Tensor pixels, TorchSharp.torch.Tensor weight,
        TorchSharp.torch.Tensor? bias, int threads)
    {
        var shape = new FewChannelShape((int)pixels.shape[0], (int)pixels.shape[1], (int)pixels.shape[2], (int)pixels.shape[3],
            (int)weight.shape[2]);
        var output = TorchSharp.torch.empty([shape.Batch, shape.OutHeight, shape.OutWidth, Wide], dtype: TorchSharp.torch.ScalarType.Float32);
        using var packed = Pack(weight);
        Correlate(TensorMemory.Pointer<float>(pixels), TensorMemory.Pointer<float>(packed),
            bias is null ? null : TensorMemory.Pointer<float>(bias), TensorMemory.Pointer<float>(output), shape, threads);
        return output;
    }

    /// <summary>y ← the convolution of x; <paramref name="weight"/> packed by <see cref="Pack"/>, <paramref name="bias"/> 16 values or null.</summary>
    public static void Correlate(float* x, float* weight, float* bias, float* y, FewChannelShape shape, int threads)
    {
        long rows = (long)shape.Batch * shape.OutHeight;
        const int RowsPerChunk = 32;
        OpenMpTeam.For((rows + RowsPerChunk - 1) / RowsPerChunk, threads, chunk =>
        {
            for (long row = chunk * RowsPerChunk, end = Math.Min(rows, row + RowsPerChunk); row < end; row++)
            {
                int b = (int)(row / shape.OutHeight), oy = (int)(row % shape.OutHeight);
                // Blocks of 16 pixels; the last starts 16 before the row's end and recomputes the pixels it overlaps
                // (the same sums in the same order, so the same values).
                for (int ox = 0; ox < shape.OutWidth; ox += Lanes)
                    Block(x, weight, bias, y, shape, b, oy, Math.Min(ox, shape.OutWidth - Lanes));
            }
        });
    }

    // Output pixels ox … ox + 15 of row oy of image b.
    private static void Block(float* x, float* weight, float* bias, float* y, FewChannelShape s, int b, int oy, int ox)
    {
        var start = bias is null ? Vector512<float>.Zero : Vector512.Load(bias);
        Vector512<float> a0 = start, a1 = start, a2 = start, a3 = start, a4 = start, a5 = start, a6 = start, a7 = start;
        Vector512<float> a8 = start, a9 = start, a10 = start, a11 = start, a12 = start, a13 = start, a14 = start, a15 = start;
        int c = s.Channels, n = s.RowTaps;
        float* w = weight;
        for (int ky = 0; ky < s.Kernel; ky++)
        {
            float* row = x + (((long)b * s.Height + oy + ky) * s.Width + ox) * c;
            for (int j = 0; j < n; j++, w += Lanes)
            {
                var v = Vector512.Load(w);
                float* p = row + j;
                a0 = Vector512.FusedMultiplyAdd(Vector512.Create(p[0]), v, a0); p += c;
                a1 = Vector512.FusedMultiplyAdd(Vector512.Create(p[0]), v, a1); p += c;
                a2 = Vector512.FusedMultiplyAdd(Vector512.Create(p[0]), v, a2); p += c;
                a3 = Vector512.FusedMultiplyAdd(Vector512.Create(p[0]), v, a3); p += c;
                a4 = Vector512.FusedMultiplyAdd(Vector512.Create(p[0]), v, a4); p += c;
                a5 = Vector512.FusedMultiplyAdd(Vector512.Create(p[0]), v, a5); p += c;
                a6 = Vector512.FusedMultiplyAdd(Vector512.Create(p[0]), v, a6); p += c;
                a7 = Vector512.FusedMultiplyAdd(Vector512.Create(p[0]), v, a7); p += c;
                a8 = Vector512.FusedMultiplyAdd(Vector512.Create(p[0]), v, a8); p += c;
                a9 = Vector512.FusedMultiplyAdd(Vector512.Create(p[0]), v, a9); p += c;
                a10 = Vector512.FusedMultiplyAdd(Vector512.Create(p[0]), v, a10); p += c;
                a11 = Vector512.FusedMultiplyAdd(Vector512.Create(p[0]), v, a11); p += c;
                a12 = Vector512.FusedMultiplyAdd(Vector512.Create(p[0]), v, a12); p += c;
                a13 = Vector512.FusedMultiplyAdd(Vector512.Create(p[0]), v, a13); p += c;
                a14 = Vector512.FusedMultiplyAdd(Vector512.Create(p[0]), v, a14); p += c;
                a15 = Vector512.FusedMultiplyAdd(Vector512.Create(p[0]), v, a15);
            }
        }
        float* o = y + (((long)b * s.OutHeight + oy) * s.OutWidth + ox) * Lanes;
        a0.Store(o); a1.Store(o + 16); a2.Store(o + 32); a3.Store(o + 48);
        a4.Store(o + 64); a5.Store(o + 80); a6.Store(o + 96); a7.Store(o + 112);
        a8.Store(o + 128); a9.Store(o + 144); a10.Store(o + 160); a11.Store(o + 176);
        a12.Store(o + 192); a13.Store(o + 208); a14.Store(o + 224); a15.Store(o + 240);
    }

    /// <summary>
    /// The weight gradient <c>[16, C, k, k]</c> of a convolution whose kernel tap (ky, kx) joins pixel (oy, ox) of
    /// <paramref name="small"/> <c>[B, h, w, 16]</c> with pixel (oy + ky, ox + kx) of <paramref name="big"/>
    /// <c>[B, h + k − 1, w + k − 1, C]</c>, both float32 CPU maps, NHWC contiguous. For the trunk's first convolution small
    /// is the output's gradient and big the padded images; for the image layer small is its input and big the output's
    /// gradient; in both the weight <c>[16, C, k, k]</c> is G permuted (3, 2, 0, 1).
    /// </summary>
    public static TorchSharp.torch.Tensor WeightGradient(TorchSharp.torch.Tensor small, TorchSharp.torch.Tensor big, int kernel, int threads)
    {
        var shape = new FewChannelShape((int)big.shape[0], (int)big.shape[1], (int)big.shape[2], (int)big.shape[3], kernel);
        using var scope = TorchSharp.torch.NewDisposeScope();
        int groups = (shape.Batch + ConvWeightGradKernel.Group - 1) / ConvWeightGradKernel.Group;
        long length = (long)kernel * shape.RowTaps * Lanes;
        var result = TorchSharp.torch.empty([kernel, kernel, shape.Channels, Lanes], dtype: TorchSharp.torch.ScalarType.Float32);
        var partials = TorchSharp.torch.empty([groups > 1 ? groups * length : 0], dtype: TorchSharp.torch.ScalarType.Float32);
        float* sums = groups == 1 ? TensorMemory.Pointer<float>(result) : TensorMemory.Pointer<float>(partials);
        float* smallValues = TensorMemory.Pointer<float>(small), bigValues = TensorMemory.Pointer<float>(big);
        int tilesPerRow = (shape.RowTaps + Lanes - 1) / Lanes, tiles = kernel * tilesPerRow;
        // A chunk is one group of images, image by image and tile by tile within it, so that each image's maps are read
        // into one core's caches once (a chunk per tile read them once per tile and ran 1.5–2× slower).
        OpenMpTeam.For(groups, threads, group =>
        {
            int b0 = (int)group * ConvWeightGradKernel.Group, end = Math.Min(shape.Batch, b0 + ConvWeightGradKernel.Group);
            for (int b = b0; b < end; b++)
                for (int tile = 0; tile < tiles; tile++)
                {
                    int ky = tile / tilesPerRow, j0 = tile % tilesPerRow * Lanes;
                    float* into = sums + group * length + ((long)ky * shape.RowTaps + j0) * Lanes;
                    bool first = b == b0;
                    switch (Math.Min(Lanes, shape.RowTaps - j0))
                    {
                        case 1: Tile<W1>(smallValues, bigValues, into, shape, b, ky, j0, first); break;
                        case 2: Tile<W2>(smallValues, bigValues, into, shape, b, ky, j0, first); break;
                        case 3: Tile<W3>(smallValues, bigValues, into, shape, b, ky, j0, first); break;
                        case 4: Tile<W4>(smallValues, bigValues, into, shape, b, ky, j0, first); break;
                        case 5: Tile<W5>(smallValues, bigValues, into, shape, b, ky, j0, first); break;
                        case 6: Tile<W6>(smallValues, bigValues, into, shape, b, ky, j0, first); break;
                        case 7: Tile<W7>(smallValues, bigValues, into, shape, b, ky, j0, first); break;
                        case 8: Tile<W8>(smallValues, bigValues, into, shape, b, ky, j0, first); break;
                        case 9: Tile<W9>(smallValues, bigValues, into, shape, b, ky, j0, first); break;
                        case 10: Tile<W10>(smallValues, bigValues, into, shape, b, ky, j0, first); break;
                        case 11: Tile<W11>(smallValues, bigValues, into, shape, b, ky, j0, first); break;
                        case 12: Tile<W12>(smallValues, bigValues, into, shape, b, ky, j0, first); break;
                        case 13: Tile<W13>(smallValues, bigValues, into, shape, b, ky, j0, first); break;
                        case 14: Tile<W14>(smallValues, bigValues, into, shape, b, ky, j0, first); break;
                        case 15: Tile<W15>(smallValues, bigValues, into, shape, b, ky, j0, first); break;
                        default: Tile<W16>(smallValues, bigValues, into, shape, b, ky, j0, first); break;
                    }
                }
        });
        if (groups > 1)
            ConvWeightGradKernel.AddGroups(TensorMemory.Pointer<float>(partials), TensorMemory.Pointer<float>(result), groups, length, threads);
        return result.permute(3, 2, 0, 1).contiguous().MoveToOuterDisposeScope();
    }

    /// <summary>How many of a tile's 16 accumulators are used, a constant the JIT folds into each instantiation of <see cref="Tile"/>.</summary>
    private interface IWidth
    {
        static abstract int Value { get; }
    }

    private struct W1 : IWidth { public static int Value => 1; }
    private struct W2 : IWidth { public static int Value => 2; }
    private struct W3 : IWidth { public static int Value => 3; }
    private struct W4 : IWidth { public static int Value => 4; }
    private struct W5 : IWidth { public static int Value => 5; }
    private struct W6 : IWidth { public static int Value => 6; }
    private struct W7 : IWidth { public static int Value => 7; }
    private struct W8 : IWidth { public static int Value => 8; }
    private struct W9 : IWidth { public static int Value => 9; }
    private struct W10 : IWidth { public static int Value => 10; }
    private struct W11 : IWidth { public static int Value => 11; }
    private struct W12 : IWidth { public static int Value => 12; }
    private struct W13 : IWidth { public static int Value => 13; }
    private struct W14 : IWidth { public static int Value => 14; }
    private struct W15 : IWidth { public static int Value => 15; }
    private struct W16 : IWidth { public static int Value => 16; }

    // G[ky, j0 … j0 + width − 1, :] over the small pixels of image b, added to `into` (started from zero where `first`).
    private static void Tile<TWidth>(float* small, float* big, float* into, FewChannelShape s, int b, int ky, int j0, bool first)
        where TWidth : struct, IWidth
    {
        int width = TWidth.Value;
        Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default, a4 = default, a5 = default, a6 = default, a7 = default;
        Vector512<float> a8 = default, a9 = default, a10 = default, a11 = default, a12 = default, a13 = default, a14 = default, a15 = default;
        if (!first)
        {
            a0 = Vector512.Load(into);
            if (width > 1) a1 = Vector512.Load(into + 16);
            if (width > 2) a2 = Vector512.Load(into + 32);
            if (width > 3) a3 = Vector512.Load(into + 48);
            if (width > 4) a4 = Vector512.Load(into + 64);
            if (width > 5) a5 = Vector512.Load(into + 80);
            if (width > 6) a6 = Vector512.Load(into + 96);
            if (width > 7) a7 = Vector512.Load(into + 112);
            if (width > 8) a8 = Vector512.Load(into + 128);
            if (width > 9) a9 = Vector512.Load(into + 144);
            if (width > 10) a10 = Vector512.Load(into + 160);
            if (width > 11) a11 = Vector512.Load(into + 176);
            if (width > 12) a12 = Vector512.Load(into + 192);
            if (width > 13) a13 = Vector512.Load(into + 208);
            if (width > 14) a14 = Vector512.Load(into + 224);
            if (width > 15) a15 = Vector512.Load(into + 240);
        }
        int c = s.Channels, outHeight = s.OutHeight, outWidth = s.OutWidth;
        for (int oy = 0; oy < outHeight; oy++)
        {
            float* p = small + ((long)b * outHeight + oy) * outWidth * Lanes;
            float* q = big + ((long)b * s.Height + oy + ky) * s.Width * c + j0;
            for (int ox = 0; ox < outWidth; ox++, p += Lanes, q += c)
            {
                var u = Vector512.Load(p);
                a0 = Vector512.FusedMultiplyAdd(u, Vector512.Create(q[0]), a0);
                if (width > 1) a1 = Vector512.FusedMultiplyAdd(u, Vector512.Create(q[1]), a1);
                if (width > 2) a2 = Vector512.FusedMultiplyAdd(u, Vector512.Create(q[2]), a2);
                if (width > 3) a3 = Vector512.FusedMultiplyAdd(u, Vector512.Create(q[3]), a3);
                if (width > 4) a4 = Vector512.FusedMultiplyAdd(u, Vector512.Create(q[4]), a4);
                if (width > 5) a5 = Vector512.FusedMultiplyAdd(u, Vector512.Create(q[5]), a5);
                if (width > 6) a6 = Vector512.FusedMultiplyAdd(u, Vector512.Create(q[6]), a6);
                if (width > 7) a7 = Vector512.FusedMultiplyAdd(u, Vector512.Create(q[7]), a7);
                if (width > 8) a8 = Vector512.FusedMultiplyAdd(u, Vector512.Create(q[8]), a8);
                if (width > 9) a9 = Vector512.FusedMultiplyAdd(u, Vector512.Create(q[9]), a9);
                if (width > 10) a10 = Vector512.FusedMultiplyAdd(u, Vector512.Create(q[10]), a10);
                if (width > 11) a11 = Vector512.FusedMultiplyAdd(u, Vector512.Create(q[11]), a11);
                if (width > 12) a12 = Vector512.FusedMultiplyAdd(u, Vector512.Create(q[12]), a12);
                if (width > 13) a13 = Vector512.FusedMultiplyAdd(u, Vector512.Create(q[13]), a13);
                if (width > 14) a14 = Vector512.FusedMultiplyAdd(u, Vector512.Create(q[14]), a14);
                if (width > 15) a15 = Vector512.FusedMultiplyAdd(u, Vector512.Create(q[15]), a15);
            }
        }
        a0.Store(into);
        if (width > 1) a1.Store(into + 16);
        if (width > 2) a2.Store(into + 32);
        if (width > 3) a3.Store(into + 48);
        if (width > 4) a4.Store(into + 64);
        if (width > 5) a5.Store(into + 80);
        if (width > 6) a6.Store(into + 96);
        if (width > 7) a7.Store(into + 112);
        if (width > 8) a8.Store(into + 128);
        if (width > 9) a9.Store(into + 144);
        if (width > 10) a10.Store(into + 160);
        if (width > 11) a11.Store(into + 176);
        if (width > 12) a12.Store(into + 192);
        if (width > 13) a13.Store(into + 208);
        if (width > 14) a14.Store(into + 224);
        if (width > 15) a15.Store(into + 240);
    }
}
