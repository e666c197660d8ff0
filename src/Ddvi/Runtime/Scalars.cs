using TorchSharp;

namespace Ddvi.Runtime;

/// <summary>
/// libtorch scalars that stay alive while libtorch reads them. TorchSharp 0.107 turns a number passed where a
/// <see cref="Scalar"/> is expected (<c>x * 0.5</c>, <c>x.clamp(min: 1e-6)</c>, <c>x.leaky_relu(0.2)</c>) into a
/// temporary <see cref="Scalar"/> that nothing references once its native handle is taken. When any other thread makes
/// the garbage collector run during that native call, the finalizer thread can free the scalar while libtorch still
/// reads it: the call then fails inside libtorch (c10's "Expected false to be true" from <c>Scalar::toFloat</c>) or
/// reads a freed value. With a thread allocating in the background this happens within about 10,000 such calls (see
/// <c>ScalarLifetimeTests</c>). Ddvi's code passes every number through <see cref="Of(double)"/> and its overloads, every
/// addition's <c>alpha</c> as <see cref="One"/>, and the build refuses the implicit conversions, the tensor operators that
/// take numbers and the TorchSharp methods that make temporaries inside (<c>src/BannedSymbols*.txt</c>,
/// Microsoft.CodeAnalysis.BannedApiAnalyzers).
/// </summary>
/// <remarks>
/// Each call makes a new <see cref="Scalar"/> of the same kind as TorchSharp's implicit conversion would (a double, an
/// integer or a boolean: the result's dtype is the same) and keeps it in a ring of the last <see cref="Kept"/> scalars
/// made on the calling thread, which disposes a scalar when its slot is reused. So a scalar from here is valid until
/// <see cref="Kept"/> more have been made on the same thread: pass it straight to the operation that reads it, and hold
/// a scalar of your own (<c>value.ToScalar()</c>, disposed with its owner) for longer.
/// </remarks>
public static class Scalars
{
    /// <summary>How many scalars each thread keeps alive (a power of two).</summary>
    public const int Kept = 256;

    [ThreadStatic] private static Scalar?[]? ring;
    [ThreadStatic] private static int next;

    /// <summary>
    /// The integer 1, made once and held for the life of the process: the <c>alpha</c> to pass to <c>add</c>,
    /// <c>add_</c> and <c>addcdiv</c> (<c>a.add(b, Scalars.One)</c> for <c>a + b</c>). TorchSharp's overloads without it,
    /// and the <c>+</c> operator, make a temporary 1 on every call. An integer, so that integer tensors stay integer.
    /// </summary>
    public static Scalar One { get; } = 1L.ToScalar();

    /// <summary>A double scalar, alive for the next <see cref="Kept"/> scalars made on this thread.</summary>
    public static Scalar Of(double value) => Keep(value.ToScalar());

    /// <summary>A single-precision scalar (libtorch keeps it as a double, as TorchSharp's conversion does).</summary>
    public static Scalar Of(float value) => Keep(value.ToScalar());

    /// <summary>An integer scalar: integer tensors stay integer, as with TorchSharp's conversion from <c>long</c>.</summary>
    public static Scalar Of(long value) => Keep(value.ToScalar());

    /// <summary>An integer scalar, as TorchSharp's conversion from <c>int</c>.</summary>
    public static Scalar Of(int value) => Keep(value.ToScalar());

    /// <summary>A boolean scalar.</summary>
    public static Scalar Of(bool value) => Keep(value.ToScalar());

    private static Scalar Keep(Scalar scalar)
    {
        var slots = ring ??= new Scalar?[Kept];
        int slot = next;
        next = (slot + 1) & (Kept - 1);
        slots[slot]?.Dispose();
        slots[slot] = scalar;
        return scalar;
    }
}
