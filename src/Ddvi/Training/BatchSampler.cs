using Ddvi.Runtime;
using static TorchSharp.torch;

namespace Ddvi.Training;

/// <summary>
/// Splits <c>[0, count)</c> into shuffled mini-batches of indices, drawing the permutation from the
/// generator it is given so that a seed fixes the order. The last, smaller batch is kept.
/// </summary>
public static class BatchSampler
{
    /// <summary>Index batches <c>[B]</c> (int64, on <paramref name="device"/>) for one epoch.</summary>
    public static IEnumerable<Tensor> Shuffled(long count, int batchSize, Generator generator, Device device)
    {
        if (batchSize <= 0) throw new ArgumentOutOfRangeException(nameof(batchSize), batchSize, "batch size must be positive");
        using var order = RandomDraws.Permutation(count, device, generator);
        for (long start = 0; start < count; start += batchSize)
        {
            long end = Math.Min(start + batchSize, count);
            yield return order.narrow(0, start, end - start);
        }
    }

    public static int BatchCount(long count, int batchSize) => (int)((count + batchSize - 1) / batchSize);
}
