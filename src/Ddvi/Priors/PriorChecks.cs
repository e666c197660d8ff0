using Ddvi.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace Ddvi.Priors;

/// <summary>Argument checks and random draws shared by the priors, so every prior rejects bad input the same way.</summary>
internal static class PriorChecks
{
    public static void SampleCount(string prior, long n)
    {
        if (n < 0) throw new ArgumentOutOfRangeException(nameof(n), n, $"{prior} prior: sample count must be ≥ 0.");
    }

    public static void ClassIndex(string prior, int classIndex, int classCount)
    {
        if (classIndex < 0 || classIndex >= classCount)
            throw new ArgumentOutOfRangeException(nameof(classIndex), classIndex,
                $"{prior} prior: class index must be in [0, {classCount - 1}].");
    }

    /// <summary>d, the latent dimension of a prior that takes any, must be at least 1.</summary>
    public static void Dimension(string prior, int dimension)
    {
        if (dimension < 1)
            throw new ArgumentOutOfRangeException(nameof(dimension), dimension, $"{prior} prior: the latent dimension d must be at least 1, got {dimension}.");
    }

    /// <summary>z must be a floating-point <c>[B, d]</c> tensor (d = <paramref name="dimension"/>, 2 by default) on the prior's device.</summary>
    public static void LatentBatch(string prior, Tensor z, Device device, long dimension = 2)
    {
        if (z.dim() != 2 || z.shape[1] != dimension)
            throw new ArgumentException($"{prior} prior: log density expects z of shape [B, {dimension}], got [{string.Join(", ", z.shape)}].", nameof(z));
        if (!is_floating_point(z))
            throw new ArgumentException($"{prior} prior: log density expects a floating-point z, got {z.dtype}.", nameof(z));
        if (z.device_type != device.type || (device.type == DeviceType.CUDA && device.index >= 0 && z.device_index != device.index))
            throw new ArgumentException($"{prior} prior: z is on {z.device} but the prior lives on {device}.", nameof(z));
    }

    /// <summary>A scale parameter (noise, standard deviation) that must be finite and ≥ 0 (or &gt; 0 when <paramref name="strictlyPositive"/>).</summary>
    public static void Scale(string prior, string parameter, double value, bool strictlyPositive)
    {
        bool ok = double.IsFinite(value) && (strictlyPositive ? value > 0 : value >= 0);
        if (!ok)
            throw new ArgumentOutOfRangeException(parameter, value,
                $"{prior} prior: {parameter} must be finite and {(strictlyPositive ? "> 0" : "≥ 0")}.");
    }

    /// <summary>Classes drawn uniformly from [0, <paramref name="classCount"/>), on the CPU: <c>[n]</c> int64.</summary>
    public static Tensor UniformClasses(long n, int classCount, Generator generator) =>
        RandomDraws.Integers(0, classCount, [n], CPU, generator);

    /// <summary>n copies of one class index on the CPU: <c>[n]</c> int64.</summary>
    public static Tensor OneClass(long n, int classIndex) =>
        full([n], Scalars.Of(classIndex), dtype: int64);

    /// <summary>Standard normal draws <c>[n]</c> in float64 on the CPU (see <see cref="Runtime.RandomDraws"/>).</summary>
    public static Tensor Normal(long n, Generator generator) =>
        RandomDraws.Normal([n], float64, CPU, generator);

    /// <summary>Uniform [0, 1) draws <c>[n]</c> in float64 on the CPU (see <see cref="Runtime.RandomDraws"/>).</summary>
    public static Tensor Uniform(long n, Generator generator) =>
        RandomDraws.Uniform([n], float64, CPU, generator);

    /// <summary>Stacks float64 coordinates into the float32 <c>[n, 2]</c> sample on the prior's device.</summary>
    public static Tensor Points(Tensor x, Tensor y, Device device) => RandomDraws.Place(stack([x, y], 1).to(float32), device);
}
