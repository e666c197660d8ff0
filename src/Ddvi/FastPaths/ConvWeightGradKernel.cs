using System.Runtime.Intrinsics;

namespace Ddvi.FastPaths;

/// <summary>
/// The shapes of a weight gradient of a convolution without padding: the small map <c>[B, h, w, C_small]</c> and the big
/// map <c>[B, H, W, C_big]</c>, both stored pixel by pixel (NHWC), where small pixel (py, px) meets big pixel
/// (s·py + ky, s·px + kx) through kernel tap (ky, kx). For a convolution the small map is the output's gradient and the
/// big one the input; for a transposed convolution the small map is the input and the big one the output's gradient.
/// </summary>
internal readonly record struct WeightGradShape(int Batch, int SmallHeight, int SmallWidth, int SmallChannels,
    int BigHeight, int BigWidth, int BigChannels, int Kernel, int Stride)
{
    /// <summary>Values of the result <c>[k, k, C_big, C_small]</c>.</summary>
    public long ResultLength => (long)Kernel * Kernel * BigChannels * SmallChannels;

    /// <summary>Groups of <see cref="ConvWeightGradKernel.Group"/> images, each summed on its own before the groups are added.</summary>
    public int Groups => (Batch + ConvWeightGradKernel.Group - 1) / ConvWeightGradKernel.Group;
}

/// <summary>
/// A convolution's (or transposed convolution's) weight gradient as one loop of Ddvi's own:
/// G[ky, kx, c, a] = Σ over images b and small pixels (py, px) of small[b, py, px, a] · big[b, s·py + ky, s·px + kx, c].
/// For <c>conv2d(x, w, stride s)</c> with w <c>[C_out, C_in, k, k]</c>, small = dL/dy and big = x give G as
/// <c>[k, k, C_in, C_out]</c>; for <c>conv_transpose2d(x, w, stride s)</c> with w <c>[C_in, C_out, k, k]</c>, small = x and
/// big = dL/dy give <c>[k, k, C_out, C_in]</c>; in both the weight's gradient is G permuted (3, 2, 0, 1).
/// </summary>
/// <remarks>
/// Per kernel tap, a block of big-map channels and a group of images, a tile of 16 accumulators (all C_small channels,
/// 32 as two 16-wide vectors times 8 big-map channels, or 64 as four times 4) is summed over the group's small pixels: each
/// small pixel's vectors are loaded once and each big-map value is broadcast into a fused multiply-add
/// (<c>vfmadd231ps … {1to16}</c>). Each group writes its own partial result, and the groups' partials are added in their
/// order, so the result does not depend on the thread count. oneDNN's weight-gradient kernels for the CIFAR-10 trunk's and
/// decoder's layers ran at 1.5–3× their arithmetic floor on this project's processors (docs/performance.md).
/// </remarks>
internal static unsafe class ConvWeightGradKernel
{
    /// <summary>Images summed together before their partial result is stored.</summary>
    public const int Group = 8;

    private const int Lanes = 16;

    /// <summary>Whether the loop handles these channel counts: 32 small-map channels with a multiple of 8 big-map ones, or 64 with a multiple of 4.</summary>
    public static bool SupportsChannels(long smallChannels, long bigChannels) =>
        bigChannels > 0 && ((smallChannels == 32 && bigChannels % 8 == 0) || (smallChannels == 64 && bigChannels % 4 == 0));

    /// <summary>Big-map channels per tile.</summary>
    private static int TileWidth(int smallChannels) => smallChannels == 32 ? 8 : 4;

    /// <summary>
    /// The weight gradient <c>[C_small, C_big, k, k]</c> (G permuted (3, 2, 0, 1), contiguous) of a convolution whose
    /// kernel tap (ky, kx) joins pixel (py, px) of <paramref name="small"/> <c>[B, h, w, C_small]</c> with pixel
    /// (s·py + ky, s·px + kx) of <paramref name="big"/> <c>[B, H, W, C_big]</c>, both float32 CPU maps, NHWC contiguous;
    /// the channel counts as <see cref="SupportsChannels"/> says.
    /// </summary>
    public static TorchSharp.torch.Tensor Gradient(TorchSharp.torch.Tensor small, TorchSharp.torch.Tensor big, int kernel, int stride, int threads)
    {
        var shape = new WeightGradShape((int)small.shape[0], (int)small.shape[1], (int)small.shape[2], (int)small.shape[3],
            (int)big.shape[1], (int)big.shape[2], (int)big.shape[3], kernel, stride);
        using var scope = TorchSharp.torch.NewDisposeScope();
        var result = TorchSharp.torch.empty([kernel, kernel, shape.BigChannels, shape.SmallChannels], dtype: TorchSharp.torch.ScalarType.Float32);
        var partials = TorchSharp.torch.empty([shape.Groups > 1 ? shape.Groups * shape.ResultLength : 0], dtype: TorchSharp.torch.ScalarType.Float32);
        Compute(TensorMemory.Pointer<float>(small), TensorMemory.Pointer<float>(big), TensorMemory.Pointer<float>(result),
            TensorMemory.Pointer<float>(partials), shape, threads);
        return result.permute(3, 2, 0, 1).contiguous().MoveToOuterDisposeScope();
    }

    /// <summary>
    /// result <c>[k, k, C_big, C_small]</c> ← G; <paramref name="partials"/> holds <see cref="WeightGradShape.Groups"/> ·
    /// <see cref="WeightGradShape.ResultLength"/> values of scratch (unused with one group).
    /// </summary>
    public static void Compute(float* small, float* big, float* result, float* partials, WeightGradShape shape, int threads)
    {
        int taps = shape.Kernel * shape.Kernel, width = TileWidth(shape.SmallChannels), blocks = shape.BigChannels / width;
        int groups = shape.Groups;
        long length = shape.ResultLength;
        float* sums = groups == 1 ? result : partials;
        // A chunk is a run of one group's taps, so that a group's maps are read into one core's caches only (handing out
        // single taps to alternating threads was 30–50% slower on two threads).
        int parts = TransposedConvKernel.PartsPerBlock(groups, taps, threads);
        OpenMpTeam.For((long)groups * parts, threads, chunk =>
        {
            long group = chunk / parts, part = chunk % parts;
            int b0 = (int)group * Group, count = Math.Min(Group, shape.Batch - b0);
            for (int tap = (int)(part * taps / parts); tap < (int)((part + 1) * taps / parts); tap++)
                for (int block = 0; block < blocks; block++)
                {
                    float* tile = sums + group * length + ((long)tap * shape.BigChannels + block * width) * shape.SmallChannels;
                    if (shape.SmallChannels == 32) Tile32(small, big, tile, shape, b0, count, tap / shape.Kernel, tap % shape.Kernel, block * width);
                    else Tile64(small, big, tile, shape, b0, count, tap / shape.Kernel, tap % shape.Kernel, block * width);
                }
        });
        if (groups > 1) AddGroups(partials, result, groups, length, threads);
    }

    /// <summary>
    /// result ← the sum of <paramref name="groups"/> partial results of <paramref name="length"/> values each (a multiple
    /// of 16), laid one after another in <paramref name="partials"/>, added in group order.
    /// </summary>
    internal static void AddGroups(float* partials, float* result, int groups, long length, int threads)
    {
        const int Stretch = 1024;
        OpenMpTeam.For((length + Stretch - 1) / Stretch, threads, chunk =>
        {
            long start = chunk * Stretch, end = Math.Min(length, start + Stretch);
            for (long i = start; i < end; i += Lanes)
            {
                var total = Vector512.Load(partials + i);
                for (int g = 1; g < groups; g++)
                    total += Vector512.Load(partials + g * length + i);
                total.Store(result + i);
            }
        });
    }

    // 32 small-map channels (two vectors) × 8 big-map channels from c0, tap (ky, kx), images b0 … b0 + count − 1.
    private static void Tile32(float* small, float* big, float* tile, WeightGradShape s, int b0, int count, int ky, int kx, int c0)
    {
        Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default, a4 = default, a5 = default, a6 = default, a7 = default;
        Vector512<float> h0 = default, h1 = default, h2 = default, h3 = default, h4 = default, h5 = default, h6 = default, h7 = default;
        long step = (long)s.Stride * s.BigChannels;
        for (int b = b0; b < b0 + count; b++)
            for (int py = 0; py < s.SmallHeight; py++)
            {
                float* p = small + ((long)b * s.SmallHeight + py) * s.SmallWidth * 32;
                float* q = big + (((long)b * s.BigHeight + s.Stride * py + ky) * s.BigWidth + kx) * s.BigChannels + c0;
                for (int px = 0; px < s.SmallWidth; px++, p += 32, q += step)
                {
                    var low = Vector512.Load(p);
                    var high = Vector512.Load(p + 16);
                    var v = Vector512.Create(q[0]);
                    a0 = Vector512.FusedMultiplyAdd(low, v, a0);
                    h0 = Vector512.FusedMultiplyAdd(high, v, h0);
                    v = Vector512.Create(q[1]);
                    a1 = Vector512.FusedMultiplyAdd(low, v, a1);
                    h1 = Vector512.FusedMultiplyAdd(high, v, h1);
                    v = Vector512.Create(q[2]);
                    a2 = Vector512.FusedMultiplyAdd(low, v, a2);
                    h2 = Vector512.FusedMultiplyAdd(high, v, h2);
                    v = Vector512.Create(q[3]);
                    a3 = Vector512.FusedMultiplyAdd(low, v, a3);
                    h3 = Vector512.FusedMultiplyAdd(high, v, h3);
                    v = Vector512.Create(q[4]);
                    a4 = Vector512.FusedMultiplyAdd(low, v, a4);
                    h4 = Vector512.FusedMultiplyAdd(high, v, h4);
                    v = Vector512.Create(q[5]);
                    a5 = Vector512.FusedMultiplyAdd(low, v, a5);
                    h5 = Vector512.FusedMultiplyAdd(high, v, h5);
                    v = Vector512.Create(q[6]);
                    a6 = Vector512.FusedMultiplyAdd(low, v, a6);
                    h6 = Vector512.FusedMultiplyAdd(high, v, h6);
                    v = Vector512.Create(q[7]);
                    a7 = Vector512.FusedMultiplyAdd(low, v, a7);
                    h7 = Vector512.FusedMultiplyAdd(high, v, h7);
                }
            }
        a0.Store(tile); h0.Store(tile + 16);
        a1.Store(tile + 32); h1.Store(tile + 48);
        a2.Store(tile + 64); h2.Store(tile + 80);
        a3.Store(tile + 96); h3.Store(tile + 112);
        a4.Store(tile + 128); h4.Store(tile + 144);
        a5.Store(tile + 160); h5.Store(tile + 176);
        a6.Store(tile + 192); h6.Store(tile + 208);
        a7.Store(tile + 224); h7.Store(tile + 240);
    }

    // 64 small-map channels (four vectors) × 4 big-map channels from c0, tap (ky, kx), images b0 … b0 + count − 1.
    private static void Tile64(float* small, float* big, float* tile, WeightGradShape s, int b0, int count, int ky, int kx, int c0)
    {
        Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default, b0v = default, b1 = default, b2 = default, b3 = default;
        Vector512<float> c0v = default, c1 = default, c2 = default, c3 = default, d0 = default, d1 = default, d2 = default, d3 = default;
        long step = (long)s.Stride * s.BigChannels;
        for (int b = b0; b < b0 + count; b++)
            for (int py = 0; py < s.SmallHeight; py++)
            {
                float* p = small + ((long)b * s.SmallHeight + py) * s.SmallWidth * 64;
                float* q = big + (((long)b * s.BigHeight + s.Stride * py + ky) * s.BigWidth + kx) * s.BigChannels + c0;
                for (int px = 0; px < s.SmallWidth; px++, p += 64, q += step)
                {
                    var u0 = Vector512.Load(p);
                    var u1 = Vector512.Load(p + 16);
                    var u2 = Vector512.Load(p + 32);
                    var u3 = Vector512.Load(p + 48);
                    var v = Vector512.Create(q[0]);
                    a0 = Vector512.FusedMultiplyAdd(u0, v, a0);
                    a1 = Vector512.FusedMultiplyAdd(u1, v, a1);
                    a2 = Vector512.FusedMultiplyAdd(u2, v, a2);
                    a3 = Vector512.FusedMultiplyAdd(u3, v, a3);
                    v = Vector512.Create(q[1]);
                    b0v = Vector512.FusedMultiplyAdd(u0, v, b0v);
                    b1 = Vector512.FusedMultiplyAdd(u1, v, b1);
                    b2 = Vector512.FusedMultiplyAdd(u2, v, b2);
                    b3 = Vector512.FusedMultiplyAdd(u3, v, b3);
                    v = Vector512.Create(q[2]);
                    c0v = Vector512.FusedMultiplyAdd(u0, v, c0v);
                    c1 = Vector512.FusedMultiplyAdd(u1, v, c1);
                    c2 = Vector512.FusedMultiplyAdd(u2, v, c2);
                    c3 = Vector512.FusedMultiplyAdd(u3, v, c3);
                    v = Vector512.Create(q[3]);
                    d0 = Vector512.FusedMultiplyAdd(u0, v, d0);
                    d1 = Vector512.FusedMultiplyAdd(u1, v, d1);
                    d2 = Vector512.FusedMultiplyAdd(u2, v, d2);
                    d3 = Vector512.FusedMultiplyAdd(u3, v, d3);
                }
            }
        a0.Store(tile); a1.Store(tile + 16); a2.Store(tile + 32); a3.Store(tile + 48);
        b0v.Store(tile + 64); b1.Store(tile + 80); b2.Store(tile + 96); b3.Store(tile + 112);
        c0v.Store(tile + 128); c1.Store(tile + 144); c2.Store(tile + 160); c3.Store(tile + 176);
        d0.Store(tile + 192); d1.Store(tile + 208); d2.Store(tile + 224); d3.Store(tile + 240);
    }
}
