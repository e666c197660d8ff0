using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

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
    /// output[b, c] = act(start_b[c] + Σ_k x[b, k] · w[k, c]) for b &lt; <paramref name="rows"/>, c &lt; <paramref name="n"/>,
    /// k &lt; <paramref name="k"/>: act is ReLU when <paramref name="relu"/>, else the identity; start_b is
    /// <paramref name="start"/>'s row b (<see cref="Starts"/>: none, one shared row, a row each, or rows picked by index).
    /// <paramref name="lda"/>, <paramref name="ldw"/> and <paramref name="ldo"/> are the row strides of x, w and output.
    /// The starts may be the output itself: each block reads its starts before it stores.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Rows(float* x, int lda, int rows, float* w, int ldw, int n, int k, Starts start, bool relu, float* output, int ldo)
    {
        int r = 0;
        for (; r + BlockRows <= rows; r += BlockRows)
            for (int c = 0; c < n; c += Columns)
                Block(x + (long)r * lda, lda, w + c, ldw, start.From(r), c, relu, output + (long)r * ldo + c, ldo, k);
        for (; r < rows; r++)
            for (int c = 0; c < n; c += Columns)
                Single(x + (long)r * lda, w + c, ldw, start.IsNone ? null : start.Row(r) + c, relu, output + (long)r * ldo + c, k);
    }

    /// <summary>
    /// output[b, c] = act(start_b[c] + Σ_j x[b, j] · w[j, c]) for a narrow x (<paramref name="width"/> columns), start_b
    /// <paramref name="start"/>'s row b (see <see cref="Rows"/>). w is <c>[width, hidden]</c> and output
    /// <c>[rows, hidden]</c>, both contiguous.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Narrow(float* x, int width, int rows, float* w, int hidden, Starts start, float* output, bool relu = true)
    {
        for (int b = 0; b < rows; b++)
        {
            float* xb = x + (long)b * width, ob = output + (long)b * hidden;
            float* sb = start.IsNone ? null : start.Row(b);
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
    private static void Block(float* x0, int lda, float* w, int ldw, Starts start, int column, bool relu, float* o, int ldo, int k)
    {
        Vector512<float> a0, a1, a2, a3, a4, a5, a6, a7, b0, b1, b2, b3, b4, b5, b6, b7;
        if (start.IsNone)
        {
            a0 = a1 = a2 = a3 = a4 = a5 = a6 = a7 = Vector512<float>.Zero;
            b0 = b1 = b2 = b3 = b4 = b5 = b6 = b7 = Vector512<float>.Zero;
        }
        else
        {
            float* s = start.Row(0) + column; a0 = Vector512.Load(s); b0 = Vector512.Load(s + 16);
            s = start.Row(1) + column; a1 = Vector512.Load(s); b1 = Vector512.Load(s + 16);
            s = start.Row(2) + column; a2 = Vector512.Load(s); b2 = Vector512.Load(s + 16);
            s = start.Row(3) + column; a3 = Vector512.Load(s); b3 = Vector512.Load(s + 16);
            s = start.Row(4) + column; a4 = Vector512.Load(s); b4 = Vector512.Load(s + 16);
            s = start.Row(5) + column; a5 = Vector512.Load(s); b5 = Vector512.Load(s + 16);
            s = start.Row(6) + column; a6 = Vector512.Load(s); b6 = Vector512.Load(s + 16);
            s = start.Row(7) + column; a7 = Vector512.Load(s); b7 = Vector512.Load(s + 16);
        }
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
    /// <summary>
    /// destination[j, i] = source[i, j] for a row-major <c>[rows, columns]</c> source: 8 × 8 tiles transposed in AVX
    /// registers where both counts allow (every tile of a hidden layer's weight), single values elsewhere.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Transpose(float* source, int rows, int columns, float* destination)
    {
        const int tile = 8;
        int fullRows = Avx.IsSupported ? rows / tile * tile : 0, fullColumns = Avx.IsSupported ? columns / tile * tile : 0;
        for (int i = 0; i < fullRows; i += tile)
            for (int j = 0; j < fullColumns; j += tile)
                TransposeTile(source + (long)i * columns + j, columns, destination + (long)j * rows + i, rows);
        for (int i = 0; i < rows; i++)
            for (int j = i < fullRows ? fullColumns : 0; j < columns; j++)
                destination[(long)j * rows + i] = source[(long)i * columns + j];
    }

    // The usual eight-register transpose: pairs interleaved, then 64-bit pairs, then 128-bit halves.
    private static void TransposeTile(float* source, int sourceStride, float* destination, int destinationStride)
    {
        var r0 = Avx.LoadVector256(source);
        var r1 = Avx.LoadVector256(source + sourceStride);
        var r2 = Avx.LoadVector256(source + 2 * sourceStride);
        var r3 = Avx.LoadVector256(source + 3 * sourceStride);
        var r4 = Avx.LoadVector256(source + 4 * sourceStride);
        var r5 = Avx.LoadVector256(source + 5 * sourceStride);
        var r6 = Avx.LoadVector256(source + 6 * sourceStride);
        var r7 = Avx.LoadVector256(source + 7 * sourceStride);
        var t0 = Avx.UnpackLow(r0, r1); var t1 = Avx.UnpackHigh(r0, r1);
        var t2 = Avx.UnpackLow(r2, r3); var t3 = Avx.UnpackHigh(r2, r3);
        var t4 = Avx.UnpackLow(r4, r5); var t5 = Avx.UnpackHigh(r4, r5);
        var t6 = Avx.UnpackLow(r6, r7); var t7 = Avx.UnpackHigh(r6, r7);
        var u0 = Avx.Shuffle(t0, t2, 0x44); var u1 = Avx.Shuffle(t0, t2, 0xEE);
        var u2 = Avx.Shuffle(t1, t3, 0x44); var u3 = Avx.Shuffle(t1, t3, 0xEE);
        var u4 = Avx.Shuffle(t4, t6, 0x44); var u5 = Avx.Shuffle(t4, t6, 0xEE);
        var u6 = Avx.Shuffle(t5, t7, 0x44); var u7 = Avx.Shuffle(t5, t7, 0xEE);
        Avx.Store(destination, Avx.Permute2x128(u0, u4, 0x20));
        Avx.Store(destination + destinationStride, Avx.Permute2x128(u1, u5, 0x20));
        Avx.Store(destination + 2 * destinationStride, Avx.Permute2x128(u2, u6, 0x20));
        Avx.Store(destination + 3 * destinationStride, Avx.Permute2x128(u3, u7, 0x20));
        Avx.Store(destination + 4 * destinationStride, Avx.Permute2x128(u0, u4, 0x31));
        Avx.Store(destination + 5 * destinationStride, Avx.Permute2x128(u1, u5, 0x31));
        Avx.Store(destination + 6 * destinationStride, Avx.Permute2x128(u2, u6, 0x31));
        Avx.Store(destination + 7 * destinationStride, Avx.Permute2x128(u3, u7, 0x31));
    }
}

/// <summary>
/// Where each output row's accumulators start in <see cref="ChainProducts.Rows"/> and <see cref="ChainProducts.Narrow"/>:
/// row b at <c>origin + i_b · stride</c>, with i_b = b, or <c>index[b]</c> when an index is given (rows of a table picked
/// per row, such as each row's time embedding); a zero stride shares one row, a null origin starts at zero.
/// </summary>
internal readonly unsafe struct Starts
{
    private readonly float* origin;
    private readonly int stride;
    private readonly int* index;

    public Starts(float* origin, int stride, int* index = null)
    {
        this.origin = origin;
        this.stride = stride;
        this.index = index;
    }

    /// <summary>Accumulators start at zero.</summary>
    public static Starts None => default;

    /// <summary>Every row starts from the same <paramref name="row"/>.</summary>
    public static Starts Shared(float* row) => new(row, 0);

    public bool IsNone => origin is null;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public float* Row(int b) => origin + (long)(index is null ? b : index[b]) * stride;

    /// <summary>The same starts seen from row <paramref name="b"/> on.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public Starts From(int b) => index is null ? new(origin + (long)b * stride, stride) : new(origin, stride, index + b);
}
