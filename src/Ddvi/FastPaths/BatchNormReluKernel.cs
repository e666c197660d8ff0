using System.Buffers;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace Ddvi.FastPaths;

/// <summary>
/// The loops of <see cref="BatchNormReluFunction"/>: batch norm with batch statistics followed by ReLU, forward and
/// backward, over a float32 map stored pixel by pixel (<c>[rows, C]</c>, rows = B·H·W, the channels of one pixel
/// contiguous: NHWC), C a multiple of 16. The loops take 16 channels at a time (<c>Vector512</c>; where the processor has
/// no AVX-512, .NET runs each as two 8-wide halves, which measured as fast here as with it, and faster than 8-wide loops:
/// docs/performance.md). Each pass splits the rows into chunks run on libtorch's OpenMP team
/// (<see cref="OpenMpTeam"/>); per-channel sums are taken in float32 within a chunk of <see cref="RowsPerChunk"/> rows and
/// added in float64 across chunks, so they do not depend on the number of threads.
/// </summary>
internal static unsafe class BatchNormReluKernel
{
    /// <summary>Rows per chunk: 1,024 rows of 16 to 64 channels are 64–256 KiB, within a core's L2 cache.</summary>
    internal const int RowsPerChunk = 1024;

    /// <summary>Whether the loops handle maps of <paramref name="channels"/> channels (whole 16-wide vectors).</summary>
    public static bool SupportsChannels(long channels) => channels > 0 && channels % Vector512<float>.Count == 0;

    /// <summary>
    /// Per-channel mean and biased variance of <paramref name="x"/> <c>[rows, channels]</c>. The sums are shifted by the
    /// first row (a value near each channel's mean), which keeps the one-pass variance well conditioned.
    /// </summary>
    public static void Statistics(float* x, long rows, int channels, int threads, double[] mean, double[] variance)
    {
        var sums = new double[channels];
        var squares = new double[channels];
        SumTwo(new ShiftedMoments(x), rows, channels, threads, sums, squares);
        for (int c = 0; c < channels; c++)
        {
            double shiftedMean = sums[c] / rows;
            mean[c] = x[c] + shiftedMean;
            variance[c] = Math.Max(0, squares[c] / rows - shiftedMean * shiftedMean);
        }
    }

    /// <summary><paramref name="y"/> ← max(0, x·scale + shift), per channel.</summary>
    public static void NormalizeRelu(float* x, float* y, long rows, int channels, int threads, float[] scale, float[] shift)
    {
        fixed (float* scales = scale, shifts = shift)
        {
            float* a = scales, b = shifts;
            OpenMpTeam.For(Chunks(rows), threads, chunk =>
            {
                long start = chunk * RowsPerChunk, end = Math.Min(rows, start + RowsPerChunk);
                for (int c = 0; c < channels; c += Vector512<float>.Count)
                    NormalizeReluRows(x, y, start, end, channels, c, Vector512.Load(a + c), Vector512.Load(b + c));
            });
        }
    }

    // One 16-channel column of a chunk, the channel's scale and shift held in registers across the rows.
    private static void NormalizeReluRows(float* x, float* y, long start, long end, int channels, int c,
        Vector512<float> scale, Vector512<float> shift)
    {
        for (long offset = start * channels + c, last = end * channels; offset < last; offset += channels)
            Vector512.Store(Vector512.Max(Vector512.Load(x + offset) * scale + shift, Vector512<float>.Zero), y + offset);
    }

    /// <summary>
    /// The backward pass. With g = dL/dy where x·scale + shift &gt; 0 (ReLU's mask, recomputed exactly as the forward pass
    /// computed it) and 0 elsewhere: <paramref name="sumGrad"/> = Σ g (the shift's gradient) and
    /// <paramref name="sumGradCentred"/> = Σ g·(x − mean) per channel, then
    /// dL/dx = scale·(g − Σg/N − (x − mean)·invstd²·Σg(x − mean)/N) into <paramref name="gradX"/>.
    /// </summary>
    public static void Backward(float* x, float* gradY, float* gradX, long rows, int channels, int threads,
        float[] scale, float[] shift, double[] mean, double[] invStd, double[] sumGrad, double[] sumGradCentred)
    {
        var meanF = new float[channels];
        for (int c = 0; c < channels; c++) meanF[c] = (float)mean[c];
        fixed (float* scales = scale, shifts = shift, means = meanF)
        {
            float* a = scales, b = shifts;
            SumTwo(new MaskedGradientMoments(x, gradY, a, b, means), rows, channels, threads, sumGrad, sumGradCentred);
            var slope = new float[channels];
            var offsetTerm = new float[channels];
            for (int c = 0; c < channels; c++)
            {
                // dL/dx = a·g − x·k − d with a = scale, k = scale·invstd²·q/N, d = scale·s/N − mean·k.
                double k = scale[c] * invStd[c] * invStd[c] * sumGradCentred[c] / rows;
                slope[c] = (float)k;
                offsetTerm[c] = (float)(scale[c] * sumGrad[c] / rows - mean[c] * k);
            }
            fixed (float* slopes = slope, offsets = offsetTerm)
            {
                float* sl = slopes, of = offsets;
                OpenMpTeam.For(Chunks(rows), threads, chunk =>
                {
                    long start = chunk * RowsPerChunk, end = Math.Min(rows, start + RowsPerChunk);
                    for (int c = 0; c < channels; c += Vector512<float>.Count)
                        GradientRows(x, gradY, gradX, start, end, channels, c, Vector512.Load(a + c), Vector512.Load(b + c),
                            Vector512.Load(sl + c), Vector512.Load(of + c));
                });
            }
        }
    }

    // dL/dx = a·g − x·k − d over one 16-channel column of a chunk, the channel's constants held in registers.
    private static void GradientRows(float* x, float* gradY, float* gradX, long start, long end, int channels, int c,
        Vector512<float> scale, Vector512<float> shift, Vector512<float> slope, Vector512<float> offsetTerm)
    {
        for (long offset = start * channels + c, last = end * channels; offset < last; offset += channels)
        {
            var value = Vector512.Load(x + offset);
            var g = Masked(value, gradY + offset, scale, shift);
            Vector512.Store(scale * g - value * slope - offsetTerm, gradX + offset);
        }
    }

    /// <summary>
    /// What <see cref="SumTwo"/> adds up: two 16-channel vectors per pixel row, summed over a chunk's rows in row order.
    /// The whole row loop is the struct's, so the channel's constants stay in registers across the rows (a per-row term
    /// read them again from memory each row and ran the backward pass at half the speed).
    /// </summary>
    private interface ITwoTerms
    {
        (Vector512<float> First, Vector512<float> Second) Sum(long start, long end, int channels, int c);
    }

    /// <summary>x − x₀ and (x − x₀)², x₀ the first row.</summary>
    private readonly struct ShiftedMoments(float* x) : ITwoTerms
    {
        public (Vector512<float> First, Vector512<float> Second) Sum(long start, long end, int channels, int c)
        {
            float* p = x;
            var origin = Vector512.Load(p + c);
            Vector512<float> first = Vector512<float>.Zero, second = Vector512<float>.Zero;
            for (long offset = start * channels + c, last = end * channels; offset < last; offset += channels)
            {
                var v = Vector512.Load(p + offset) - origin;
                first += v;
                second += v * v;
            }
            return (first, second);
        }
    }

    /// <summary>g and g·(x − mean), g the incoming gradient where ReLU passed its input.</summary>
    private readonly struct MaskedGradientMoments(float* x, float* gradY, float* scale, float* shift, float* mean) : ITwoTerms
    {
        public (Vector512<float> First, Vector512<float> Second) Sum(long start, long end, int channels, int c)
        {
            float* p = x, q = gradY;
            var a = Vector512.Load(scale + c);
            var b = Vector512.Load(shift + c);
            var centre = Vector512.Load(mean + c);
            Vector512<float> first = Vector512<float>.Zero, second = Vector512<float>.Zero;
            for (long offset = start * channels + c, last = end * channels; offset < last; offset += channels)
            {
                var value = Vector512.Load(p + offset);
                var g = Masked(value, q + offset, a, b);
                first += g;
                second += g * (value - centre);
            }
            return (first, second);
        }
    }

    /// <summary>
    /// Per-channel sums of both terms over all rows into <paramref name="first"/> and <paramref name="second"/>: float32
    /// within a chunk, float64 across chunks in chunk order, so the sums do not depend on the number of threads.
    /// </summary>
    private static void SumTwo<TTerms>(TTerms terms, long rows, int channels, int threads, double[] first, double[] second)
        where TTerms : struct, ITwoTerms
    {
        long chunks = Chunks(rows);
        var firstParts = ArrayPool<double>.Shared.Rent((int)(chunks * channels));
        var secondParts = ArrayPool<double>.Shared.Rent((int)(chunks * channels));
        OpenMpTeam.For(chunks, threads, chunk =>
        {
            long start = chunk * RowsPerChunk, end = Math.Min(rows, start + RowsPerChunk);
            for (int c = 0; c < channels; c += Vector512<float>.Count)
            {
                var (a, b) = terms.Sum(start, end, channels, c);
                Flush(a, firstParts, chunk * channels + c);
                Flush(b, secondParts, chunk * channels + c);
            }
        });
        for (int c = 0; c < channels; c++)
        {
            double a = 0, b = 0;
            for (long chunk = 0; chunk < chunks; chunk++)
            {
                a += firstParts[chunk * channels + c];
                b += secondParts[chunk * channels + c];
            }
            first[c] = a;
            second[c] = b;
        }
        ArrayPool<double>.Shared.Return(firstParts);
        ArrayPool<double>.Shared.Return(secondParts);
    }

    private static long Chunks(long rows) => (rows + RowsPerChunk - 1) / RowsPerChunk;

    /// <summary>
    /// The incoming gradient where the ReLU passed its input (pre-activation x·scale + shift &gt; 0, the expression
    /// <see cref="NormalizeReluRows"/> computes, so the mask is the one the forward pass applied), 0 elsewhere.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Masked(Vector512<float> x, float* gradY, Vector512<float> scale, Vector512<float> shift) =>
        Vector512.ConditionalSelect(Vector512.GreaterThan(x * scale + shift, Vector512<float>.Zero), Vector512.Load(gradY), Vector512<float>.Zero);

    private static void Flush(Vector512<float> partial, double[] into, long at)
    {
        for (int i = 0; i < Vector512<float>.Count; i++) into[at + i] = partial[i];
    }
}
