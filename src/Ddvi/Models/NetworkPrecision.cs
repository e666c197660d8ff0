using static TorchSharp.torch;

namespace Ddvi.Models;

/// <summary>
/// The arithmetic of a network's matrix products. <see cref="Float32"/> computes in float32 throughout.
/// <see cref="Bfloat16"/> is mixed precision as PyTorch's autocast does it: the weights, their gradients, the optimiser's
/// state and everything outside the network's layers stay float32; each layer casts its input and weights to bfloat16,
/// multiplies with float32 accumulation, and the network returns float32. On CPUs with AVX-512 BF16 (AMD Zen 4 and 5,
/// Intel Cooper Lake and later) the products then run about twice as fast (the 2-core reference machine: 390–435 against
/// 200 GFLOP/s); GPUs and CPUs without it were not measured (without it libtorch converts and may be slower). bfloat16 keeps float32's range with 8 bits of mantissa: outputs differ from float32's by about 1 part in
/// 100, and a training run's trajectory differs from the float32 one's as much as one with another seed might.
/// </summary>
public enum NetworkPrecision
{
    Float32,
    Bfloat16,
}

/// <summary>
/// A network whose products can run in another <see cref="NetworkPrecision"/> (<see cref="Mlp"/>, <see cref="ConvTrunk"/>,
/// <see cref="ConvDecoder"/>): its parameters stay float32 either way.
/// </summary>
public interface IPrecisionSettable
{
    /// <summary>The arithmetic of the network's products.</summary>
    NetworkPrecision Precision { get; set; }
}

/// <summary>The default precision (stated once here), the names the command line uses, and the setter for a model's networks.</summary>
public static class NetworkPrecisions
{
    /// <summary>float32: every run computes as the release does unless asked otherwise.</summary>
    public const NetworkPrecision Default = NetworkPrecision.Float32;

    /// <summary>The names of the precisions, as <c>--precision</c> and experiment files spell them (the command line also
    /// takes <c>fp32</c> and <c>bf16</c>).</summary>
    public static readonly IReadOnlyList<string> Names = ["float32", "bfloat16"];

    public static string Name(this NetworkPrecision precision) => precision switch
    {
        NetworkPrecision.Float32 => "float32",
        NetworkPrecision.Bfloat16 => "bfloat16",
        _ => throw new ArgumentOutOfRangeException(nameof(precision), precision, "unknown network precision"),
    };

    /// <summary>Reads a precision's name (<c>float32</c>/<c>fp32</c>, <c>bf16</c>/<c>bfloat16</c>, any case).</summary>
    public static NetworkPrecision Parse(string text, string option = "--precision")
    {
        ArgumentNullException.ThrowIfNull(text);
        return text.Trim().ToLowerInvariant() switch
        {
            "float32" or "fp32" => NetworkPrecision.Float32,
            "bf16" or "bfloat16" => NetworkPrecision.Bfloat16,
            _ => throw new ArgumentException($"{option}: '{text}' is not a precision; expected float32 (or fp32) or bfloat16 (or bf16)."),
        };
    }

    /// <summary>
    /// Sets <paramref name="precision"/> on every network in <paramref name="module"/> that takes one (the module itself
    /// and its descendants: each <see cref="Mlp"/>, the conv trunks and conv decoders; <see cref="IPrecisionSettable"/>)
    /// and returns how many it set. Other layers (the diffusion denoisers, the flows' masked layers) keep float32.
    /// </summary>
    public static int SetNetworkPrecision(this nn.Module module, NetworkPrecision precision)
    {
        ArgumentNullException.ThrowIfNull(module);
        _ = precision.Name(); // rejects values outside the enum
        int count = 0;
        foreach (var network in module.modules().Prepend(module).OfType<IPrecisionSettable>().Distinct())
        {
            network.Precision = precision;
            count++;
        }
        return count;
    }
}
