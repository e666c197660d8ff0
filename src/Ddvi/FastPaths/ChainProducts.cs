using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace Ddvi.FastPaths;

/// <summary>
/// The matrix products of one chain step on one thread's rows, float32, AVX-512, for <see cref="DenoiserChainKernel"/>.
/// A hidden layer of the paper's denoiser is a [64 × 128] · [128 × 128] product per thread; MKL takes ≈ 27 µs for it with
/// the table copy and ReLU pass around it (its call, packing of the weight on every call and the two passes), these
/// register blocks ≈ 16 µs with the table row as the accumulators' start and ReLU applied as they are stored (one thread,
/// 64 rows; the arithmetic alone is ≈ 11 µs at the core's product rate). The narrow layers (the d = 2 state in, ε̂ out)
/// are vector loops instead of MKL calls with an inner dimension of 2.
/// </summary>
/// <remarks>Row-major throughout; every width passed as <c>hidden</c> or <c>n</c> is a multiple of <see cref="Columns"/>.
/// ReLU keeps a NaN, as libtorch's does.</remarks>
internal static unsafe class ChainProducts
{
    /// <summary>Output columns of one register block; hidden widths must be multiples of it.</summary>
    public const int Columns = 32;

    private const int BlockRows = 8;

    /// <summary>
    /// output[b, c] = act(start[c] + Σ_k x[b, k] · w[k, c]) for b &lt; <paramref name="rows"/>, c &lt; <paramref name="n"/>,
    /// k &lt; <paramref name="k"/>: act is ReLU when <paramref name="relu"/>, else the identity; a null
    /// <paramref name="start"/> starts at zero. <paramref name="lda"/>, <paramref name="ldw"/> and <paramref name="ldo"/>
    /// are the row strides of x, w and output.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Rows(float* x, int lda, int rows, float* w, int ldw, int n, int k, float* start, bool relu, float* output, int ldo)
    {
        int r = 0;
        for (; r + BlockRows <= rows; r += BlockRows)
            for (int c = 0; c < n; c += Columns)
                Block(x + (long)r * lda, lda, w + c, ldw, start is null ? null : start + c, relu, output + (long)r * ldo + c, ldo, k);
        for (; r < rows; r++)
            for (int c = 0; c < n; c += Columns)
                Single(x + (long)r * lda, w + c, ldw, start is null ? null : start + c, relu, output + (long)r * ldo + c, k);
    }

    /// <summary>
    /// output[b, c] = act(start[b, c] + Σ_j x[b, j] · w[j, c]) for a narrow x (<paramref name="width"/> columns):
    /// <paramref name="startStride"/> is start's row stride, 0 for one row shared by every b; a null start is zero.
    /// w is <c>[width, hidden]</c> and output <c>[rows, hidden]</c>, both contiguous.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Narrow(float* x, int width, int rows, float* w, int hidden, float* start, int startStride, float* output, bool relu = true)
    {
        for (int b = 0; b < rows; b++)
        {
            float* xb = x + (long)b * width, ob = output + (long)b * hidden;
            float* sb = start is null ? null : start + (long)b * startStride;
            for (int c = 0; c < hidden; c += Vector512<float>.Count)
            {
                var acc = sb is null ? Vector512<float>.Zero : Vector512.Load(sb + c);
                for (int j = 0; j < width; j++)
                    acc = Vector512.FusedMultiplyAdd(Vector512.Create(xb[j]), Vector512.Load(w + (long)j * hidden + c), acc);
                (relu ? Relu(acc) : acc).Store(ob + c);
            }
        }
    }

    /// <summary>
    /// output[b, j] = bias[j] + Σ_c x[b, c] · w[j, c] for a narrow output (<paramref name="width"/> columns): x is
    /// <c>[rows, hidden]</c>, w <c>[width, hidden]</c>, output <c>[rows, width]</c>, all contiguous; a null bias is zero.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Dots(float* x, int rows, int hidden, float* w, int width, float* bias, float* output)
    {
        for (int b = 0; b < rows; b++)
        {
            float* xb = x + (long)b * hidden;
            for (int j = 0; j < width; j++)
            {
                float* wj = w + (long)j * hidden;
                Vector512<float> low = Vector512<float>.Zero, high = Vector512<float>.Zero;
                for (int c = 0; c < hidden; c += 2 * Vector512<float>.Count)
                {
                    low = Vector512.FusedMultiplyAdd(Vector512.Load(xb + c), Vector512.Load(wj + c), low);
                    high = Vector512.FusedMultiplyAdd(Vector512.Load(xb + c + 16), Vector512.Load(wj + c + 16), high);
                }
                output[(long)b * width + j] = Vector512.Sum(low + high) + (bias is null ? 0f : bias[j]);
            }
        }
    }

    // Eight rows × 32 columns: 16 accumulators, two weight vectors and one broadcast input per k.
    private static void Block(float* x0, int lda, float* w, int ldw, float* start, bool relu, float* o, int ldo, int k)
    {
        Vector512<float> low = start is null ? Vector512<float>.Zero : Vector512.Load(start);
        Vector512<float> high = start is null ? Vector512<float>.Zero : Vector512.Load(start + 16);
        Vector512<float> a0 = low, a1 = low, a2 = low, a3 = low, a4 = low, a5 = low, a6 = low, a7 = low;
        Vector512<float> b0 = high, b1 = high, b2 = high, b3 = high, b4 = high, b5 = high, b6 = high, b7 = high;
        float* x1 = x0 + lda, x2 = x1 + lda, x3 = x2 + lda, x4 = x3 + lda, x5 = x4 + lda, x6 = x5 + lda, x7 = x6 + lda;
        for (int c = 0; c < k; c++)
        {
            float* row = w + (long)c * ldw;
            var rl = Vector512.Load(row);
            var rh = Vector512.Load(row + 16);
            var v = Vector512.Create(x0[c]); a0 = Vector512.FusedMultiplyAdd(v, rl, a0); b0 = Vector512.FusedMultiplyAdd(v, rh, b0);
            v = Vector512.Create(x1[c]); a1 = Vector512.FusedMultiplyAdd(v, rl, a1); b1 = Vector512.FusedMultiplyAdd(v, rh, b1);
            v = Vector512.Create(x2[c]); a2 = Vector512.FusedMultiplyAdd(v, rl, a2); b2 = Vector512.FusedMultiplyAdd(v, rh, b2);
            v = Vector512.Create(x3[c]); a3 = Vector512.FusedMultiplyAdd(v, rl, a3); b3 = Vector512.FusedMultiplyAdd(v, rh, b3);
            v = Vector512.Create(x4[c]); a4 = Vector512.FusedMultiplyAdd(v, rl, a4); b4 = Vector512.FusedMultiplyAdd(v, rh, b4);
            v = Vector512.Create(x5[c]); a5 = Vector512.FusedMultiplyAdd(v, rl, a5); b5 = Vector512.FusedMultiplyAdd(v, rh, b5);
            v = Vector512.Create(x6[c]); a6 = Vector512.FusedMultiplyAdd(v, rl, a6); b6 = Vector512.FusedMultiplyAdd(v, rh, b6);
            v = Vector512.Create(x7[c]); a7 = Vector512.FusedMultiplyAdd(v, rl, a7); b7 = Vector512.FusedMultiplyAdd(v, rh, b7);
        }
        Store(o, a0, b0, relu); o += ldo;
        Store(o, a1, b1, relu); o += ldo;
        Store(o, a2, b2, relu); o += ldo;
        Store(o, a3, b3, relu); o += ldo;
        Store(o, a4, b4, relu); o += ldo;
        Store(o, a5, b5, relu); o += ldo;
        Store(o, a6, b6, relu); o += ldo;
        Store(o, a7, b7, relu);
    }

    // One row × 32 columns, for the rows left after the eight-row blocks.
    private static void Single(float* x, float* w, int ldw, float* start, bool relu, float* o, int k)
    {
        Vector512<float> a = start is null ? Vector512<float>.Zero : Vector512.Load(start);
        Vector512<float> b = start is null ? Vector512<float>.Zero : Vector512.Load(start + 16);
        for (int c = 0; c < k; c++)
        {
            float* row = w + (long)c * ldw;
            var v = Vector512.Create(x[c]);
            a = Vector512.FusedMultiplyAdd(v, Vector512.Load(row), a);
            b = Vector512.FusedMultiplyAdd(v, Vector512.Load(row + 16), b);
        }
        Store(o, a, b, relu);
    }

    // ReLU that keeps a NaN, as libtorch's and ElementwiseKernels.ReluInPlace.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Relu(Vector512<float> values) =>
        Vector512.ConditionalSelect(Vector512.LessThan(values, Vector512<float>.Zero), Vector512<float>.Zero, values);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Store(float* o, Vector512<float> low, Vector512<float> high, bool relu)
    {
        if (relu)
        {
            low = Relu(low);
            high = Relu(high);
        }
        low.Store(o);
        high.Store(o + 16);
    }
}
