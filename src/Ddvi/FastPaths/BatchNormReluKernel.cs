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
        long chunks = Chunks(rows);
        var sums = ArrayPool<double>.Shared.Rent((int)(chunks * channels));
        var squares = ArrayPool<double>.Shared.Rent((int)(chunks * channels));
        OpenMpTeam.For(chunks, threads, chunk =>
        {
            long start = chunk * RowsPerChunk, end = Math.Min(rows, start + RowsPerChunk);
            for (int c = 0; c < channels; c += Vector512<float>.Count)
            {
                var shift = Vector512.Load(x + c);
                var sum = Vector512<float>.Zero;
                var square = Vector512<float>.Zero;
                float* at = x + start * channels + c;
                for (long r = start; r < end; r++, at += channels)
                {
                    var v = Vector512.Load(at) - shift;
                    sum += v;
                    square += v * v;
                }
                Flush(sum, sums, chunk * channels + c);
                Flush(square, squares, chunk * channels + c);
            }
        });
        for (int c = 0; c < channels; c++)
        {
            double s = 0, q = 0;
            for (long chunk = 0; chunk < chunks; chunk++)
            {
                s += sums[chunk * channels + c];
                q += squares[chunk * channels + c];
            }
            double shiftedMean = s / rows;
            mean[c] = x[c] + shiftedMean;
            variance[c] = Math.Max(0, q / rows - shiftedMean * shiftedMean);
        }
        ArrayPool<double>.Shared.Return(sums);
        ArrayPool<double>.Shared.Return(squares);
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
                for (long r = start; r < end; r++)
                {
                    float* from = x + r * channels, to = y + r * channels;
                    for (int c = 0; c < channels; c += Vector512<float>.Count)
                        Vector512.Store(Vector512.Max(PreActivation(from, a, b, c), Vector512<float>.Zero), to + c);
                }
            });
        }
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
        long chunks = Chunks(rows);
        var sums = ArrayPool<double>.Shared.Rent((int)(chunks * channels));
        var centred = ArrayPool<double>.Shared.Rent((int)(chunks * channels));
        var meanF = new float[channels];
        for (int c = 0; c < channels; c++) meanF[c] = (float)mean[c];
        fixed (float* scales = scale, shifts = shift, means = meanF)
        {
            float* a = scales, b = shifts, m = means;
            OpenMpTeam.For(chunks, threads, chunk =>
            {
                long start = chunk * RowsPerChunk, end = Math.Min(rows, start + RowsPerChunk);
                for (int c = 0; c < channels; c += Vector512<float>.Count)
                {
                    var average = Vector512.Load(m + c);
                    var sum = Vector512<float>.Zero;
                    var sumCentred = Vector512<float>.Zero;
                    long offset = start * channels + c;
                    for (long r = start; r < end; r++, offset += channels)
                    {
                        var g = Masked(x + offset - c, gradY + offset, a, b, c);
                        sum += g;
                        sumCentred += g * (Vector512.Load(x + offset) - average);
                    }
                    Flush(sum, sums, chunk * channels + c);
                    Flush(sumCentred, centred, chunk * channels + c);
                }
            });
            var gain = new float[channels];
            var slope = new float[channels];
            var offsetTerm = new float[channels];
            for (int c = 0; c < channels; c++)
            {
                double s = 0, q = 0;
                for (long chunk = 0; chunk < chunks; chunk++)
                {
                    s += sums[chunk * channels + c];
                    q += centred[chunk * channels + c];
                }
                sumGrad[c] = s;
                sumGradCentred[c] = q;
                // dL/dx = a·g − x·k − d with a = scale, k = scale·invstd²·q/N, d = scale·s/N − mean·k.
                double k = scale[c] * invStd[c] * invStd[c] * q / rows;
                gain[c] = scale[c];
                slope[c] = (float)k;
                offsetTerm[c] = (float)(scale[c] * s / rows - mean[c] * k);
            }
            ArrayPool<double>.Shared.Return(sums);
            ArrayPool<double>.Shared.Return(centred);
            fixed (float* gains = gain, slopes = slope, offsets = offsetTerm)
            {
                float* ga = gains, sl = slopes, of = offsets;
                OpenMpTeam.For(chunks, threads, chunk =>
                {
                    long start = chunk * RowsPerChunk, end = Math.Min(rows, start + RowsPerChunk);
                    for (long r = start; r < end; r++)
                    {
                        float* from = x + r * channels;
                        long row = r * channels;
                        for (int c = 0; c < channels; c += Vector512<float>.Count)
                        {
                            var g = Masked(from, gradY + row + c, a, b, c);
                            var value = Vector512.Load(ga + c) * g - Vector512.Load(from + c) * Vector512.Load(sl + c) - Vector512.Load(of + c);
                            Vector512.Store(value, gradX + row + c);
                        }
                    }
                });
            }
        }
    }

    private static long Chunks(long rows) => (rows + RowsPerChunk - 1) / RowsPerChunk;

    // The same expression in the forward and the backward pass, so ReLU's mask is the one the forward pass applied.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> PreActivation(float* row, float* scale, float* shift, int c) =>
        Vector512.Load(row + c) * Vector512.Load(scale + c) + Vector512.Load(shift + c);

    /// <summary>The incoming gradient where the ReLU passed its input (pre-activation &gt; 0), 0 elsewhere.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Masked(float* row, float* gradY, float* scale, float* shift, int c) =>
        Vector512.ConditionalSelect(Vector512.GreaterThan(PreActivation(row, scale, shift, c), Vector512<float>.Zero),
            Vector512.Load(gradY), Vector512<float>.Zero);

    private static void Flush(Vector512<float> partial, double[] into, long at)
    {
        for (int i = 0; i < Vector512<float>.Count; i++) into[at + i] = partial[i];
    }
}
