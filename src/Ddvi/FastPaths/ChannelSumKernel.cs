using System.Runtime.Intrinsics;

namespace Ddvi.FastPaths;

/// <summary>
/// Per-channel sums of a float32 map stored pixel by pixel (<c>[rows, C]</c>, NHWC): the bias gradients of Ddvi's own
/// convolution operations (dL/dy summed over images and pixels). libtorch's reduction over the leading dimensions of such
/// a map ran on one thread for most of its time in the CIFAR-10 steps' profiles (docs/performance.md). Chunks of
/// <see cref="RowsPerChunk"/> rows are summed in float32 (16 channels per vector where C is a multiple of 16), the chunks'
/// sums added in float64 in chunk order, so the result does not depend on the number of threads.
/// </summary>
internal static unsafe class ChannelSumKernel
{
    /// <summary>Rows per chunk.</summary>
    internal const int RowsPerChunk = 1024;

    /// <summary>The sums <c>[C]</c> (float32) of <paramref name="map"/> <c>[…, C]</c>, a contiguous float32 CPU tensor.</summary>
    public static TorchSharp.torch.Tensor Sums(TorchSharp.torch.Tensor map, int threads)
    {
        int channels = (int)map.shape[^1];
        long rows = map.numel() / Math.Max(1, channels);
        var totals = Sums(TensorMemory.Pointer<float>(map), rows, channels, threads);
        var result = new float[channels];
        for (int c = 0; c < channels; c++) result[c] = (float)totals[c];
        return TorchSharp.torch.tensor(result);
    }

    /// <summary>Σ over the rows of <paramref name="map"/> <c>[rows, channels]</c>, per channel.</summary>
    public static double[] Sums(float* map, long rows, int channels, int threads)
    {
        long chunks = (rows + RowsPerChunk - 1) / RowsPerChunk;
        var parts = new double[chunks * channels];
        OpenMpTeam.For(chunks, threads, chunk =>
        {
            long start = chunk * RowsPerChunk, end = Math.Min(rows, start + RowsPerChunk);
            int c = 0;
            for (; c + Vector512<float>.Count <= channels; c += Vector512<float>.Count)
            {
                var sum = Vector512<float>.Zero;
                for (long offset = start * channels + c, last = end * channels; offset < last; offset += channels)
                    sum += Vector512.Load(map + offset);
                for (int i = 0; i < Vector512<float>.Count; i++) parts[chunk * channels + c + i] = sum[i];
            }
            for (; c < channels; c++)
            {
                float sum = 0;
                for (long offset = start * channels + c, last = end * channels; offset < last; offset += channels)
                    sum += map[offset];
                parts[chunk * channels + c] = sum;
            }
        });
        var totals = new double[channels];
        for (long chunk = 0; chunk < chunks; chunk++)
            for (int c = 0; c < channels; c++)
                totals[c] += parts[chunk * channels + c];
        return totals;
    }
}
