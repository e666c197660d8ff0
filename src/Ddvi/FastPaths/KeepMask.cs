using System.Numerics;
using static TorchSharp.torch;

namespace Ddvi.FastPaths;

/// <summary>
/// Dropout keep-masks for float32 CPU tensors, m_i = 1/(1 − p) with probability 1 − p and 0 otherwise, filled in one
/// vectorised pass from a counter-based generator (SplitMix64 of seed + i·γ, each 64-bit draw giving two 24-bit uniforms,
/// compared with 1 − p exactly as <c>rand &lt; 1 − p</c> would be). libtorch's CPU <c>rand_like</c> draws element by
/// element from one Mersenne twister (≈ 0.25 ms for a 128 × 1000 activation on this machine), and a DDVI stage-3 step
/// draws eighteen such masks. The seed is one draw from libtorch's global generator, so <c>manual_seed</c> still fixes
/// every mask, and the result does not depend on how many threads fill it.
/// </summary>
public static class KeepMask
{
    private const ulong Gamma = 0x9E3779B97F4A7C15UL;
    private const int ChunkPairs = 1 << 14;

    /// <summary>Whether <see cref="Fill"/> handles tensors like <paramref name="like"/>: contiguous float32 on the CPU.</summary>
    public static bool Supports(Tensor like) =>
        like.device_type == TorchSharp.DeviceType.CPU && like.dtype == ScalarType.Float32;

    /// <summary>A new tensor shaped like <paramref name="like"/> (float32, CPU) holding a scaled keep-mask.</summary>
    /// <param name="keep">1 − p, in (0, 1].</param>
    public static Tensor Create(Tensor like, double keep)
    {
        if (!Supports(like))
            throw new ArgumentException($"KeepMask: needs a float32 CPU tensor, got {like.dtype} on {like.device}.", nameof(like));
        if (!(keep > 0 && keep <= 1))
            throw new ArgumentOutOfRangeException(nameof(keep), keep, "KeepMask: the keep probability must lie in (0, 1].");
        var mask = empty(like.shape, dtype: float32);
        ulong seed = unchecked((ulong)randint(long.MaxValue, [1], dtype: ScalarType.Int64).item<long>());
        Fill(mask, keep, seed);
        return mask;
    }

    /// <summary>Fills the contiguous float32 CPU tensor <paramref name="mask"/> from <paramref name="seed"/>.</summary>
    public static unsafe void Fill(Tensor mask, double keep, ulong seed)
    {
        if (!Supports(mask) || !mask.is_contiguous())
            throw new ArgumentException("KeepMask.Fill: needs a contiguous float32 CPU tensor.", nameof(mask));
        long count = mask.numel();
        if (count == 0) return;
        // u = k·2⁻²⁴ with k a 24-bit integer, so u < keep ⇔ k < ⌈keep·2²⁴⌉.
        uint threshold = (uint)Math.Min(1UL << 24, (ulong)Math.Ceiling(keep * (1 << 24)));
        float scale = (float)(1 / keep);
        float* data = TensorMemory.Pointer<float>(mask);
        long pairs = (count + 1) / 2;
        long chunks = (pairs + ChunkPairs - 1) / ChunkPairs;
        if (chunks == 1)
        {
            FillPairs(data, count, 0, pairs, seed, threshold, scale);
            return;
        }
        OpenMpTeam.For(chunks, get_num_threads(), chunk =>
        {
            long start = chunk * ChunkPairs;
            FillPairs(data, count, start, Math.Min(pairs, start + ChunkPairs), seed, threshold, scale);
        });
    }

    // Draw j (one 64-bit output) gives elements 2j (low half) and 2j + 1 (high half).
    private static unsafe void FillPairs(float* data, long count, long start, long end, ulong seed, uint threshold, float scale)
    {
        long j = start;
        int lanes = Vector<ulong>.Count;
        if (Vector.IsHardwareAccelerated && lanes >= 2)
        {
            Span<ulong> laneOffsets = stackalloc ulong[lanes];
            for (int k = 0; k < lanes; k++) laneOffsets[k] = (ulong)k;
            var offsets = new Vector<ulong>(laneOffsets);
            var gamma = new Vector<ulong>(Gamma);
            var limit = new Vector<uint>(threshold);
            var kept = new Vector<float>(scale);
            // Whole vectors only while every element they write lies inside the tensor.
            for (; j + lanes <= end && 2 * (j + lanes) <= count; j += lanes)
            {
                var counter = (new Vector<ulong>((ulong)j + 1) + offsets) * gamma + new Vector<ulong>(seed);
                var bits = Vector.AsVectorUInt32(Mix(counter));
                var keepLane = Vector.LessThan(Vector.ShiftRightLogical(bits, 8), limit);
                var values = Vector.ConditionalSelect(Vector.AsVectorSingle(keepLane), kept, Vector<float>.Zero);
                values.Store(data + 2 * j);
            }
        }
        for (; j < end; j++)
        {
            ulong bits = Mix(seed + ((ulong)j + 1) * Gamma);
            data[2 * j] = (uint)bits >> 8 < threshold ? scale : 0f;
            if (2 * j + 1 < count) data[2 * j + 1] = (uint)(bits >> 32) >> 8 < threshold ? scale : 0f;
        }
    }

    private static ulong Mix(ulong z)
    {
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    private static Vector<ulong> Mix(Vector<ulong> z)
    {
        z = (z ^ Vector.ShiftRightLogical(z, 30)) * new Vector<ulong>(0xBF58476D1CE4E5B9UL);
        z = (z ^ Vector.ShiftRightLogical(z, 27)) * new Vector<ulong>(0x94D049BB133111EBUL);
        return z ^ Vector.ShiftRightLogical(z, 31);
    }
}
