using Ddvi.Runtime;
using System.Numerics;
using System.Runtime.InteropServices;
using static TorchSharp.torch;

namespace Ddvi.FastPaths;

/// <summary>
/// Element-wise steps of a hand-written backward pass that libtorch offers only inside autograd, for small blocks (a
/// 128 × 128 block per chain step and layer). On the CPU, for contiguous float32 or float64 tensors, each is one
/// vectorised pass in C#: the equivalent public tensor operations (a comparison and a product) cost ≈ 20 µs on such a
/// block, more than the block's matrix product. Elsewhere (other devices, layouts or types) they fall back to tensor
/// operations. Gradients are not recorded. The destination may be one of the inputs.
/// </summary>
public static class ElementwiseKernels
{
    /// <summary>
    /// ReLU's backward: <paramref name="destination"/> ← <paramref name="grad"/> where <paramref name="activation"/> (the
    /// ReLU's output) is not ≤ 0 (so a NaN passes, as in libtorch's <c>threshold_backward</c>), 0 elsewhere; returns
    /// <paramref name="destination"/>.
    /// </summary>
    public static Tensor KeepWherePositiveInto(Tensor grad, Tensor activation, Tensor destination)
    {
        CheckShapes(grad, destination, nameof(KeepWherePositiveInto));
        CheckShapes(activation, destination, nameof(KeepWherePositiveInto));
        if (Direct(grad, destination, ScalarType.Float32) && Direct(activation, destination, ScalarType.Float32))
            KeepWherePositive(Floats(grad), Floats(activation), Floats(destination));
        else if (Direct(grad, destination, ScalarType.Float64) && Direct(activation, destination, ScalarType.Float64))
            KeepWherePositive(Doubles(grad), Doubles(activation), Doubles(destination));
        else destination.copy_(grad * activation.le(Scalars.Of(0)).logical_not());
        return destination;
    }

    private static void CheckShapes(Tensor input, Tensor destination, string operation)
    {
        if (!input.shape.SequenceEqual(destination.shape))
            throw new ArgumentException($"ElementwiseKernels.{operation}: input [{string.Join(", ", input.shape)}] and destination [{string.Join(", ", destination.shape)}] differ in shape.");
    }

    private static bool Direct(Tensor input, Tensor destination, ScalarType type) =>
        input.dtype == type && destination.dtype == type
        && input.device_type == TorchSharp.DeviceType.CPU && destination.device_type == TorchSharp.DeviceType.CPU
        && input.is_contiguous() && destination.is_contiguous();

    private static Span<float> Floats(Tensor tensor) => TensorMemory.Elements<float>(tensor);
    private static Span<double> Doubles(Tensor tensor) => TensorMemory.Elements<double>(tensor);

    /// <summary>ReLU in place; a NaN stays NaN, as in libtorch.</summary>
    internal static void ReluInPlace<T>(Span<T> values) where T : unmanaged, INumber<T>
    {
        int i = 0;
        if (Vector.IsHardwareAccelerated)
        {
            var vectors = MemoryMarshal.Cast<T, Vector<T>>(values);
            for (int v = 0; v < vectors.Length; v++)
                vectors[v] = Vector.ConditionalSelect(Vector.LessThan(vectors[v], Vector<T>.Zero), Vector<T>.Zero, vectors[v]);
            i = vectors.Length * Vector<T>.Count;
        }
        for (; i < values.Length; i++)
            if (values[i] < T.Zero) values[i] = T.Zero;
    }

    /// <summary><paramref name="destination"/> ← <paramref name="left"/> + <paramref name="right"/>; the destination may be an input.</summary>
    internal static void Add<T>(ReadOnlySpan<T> left, ReadOnlySpan<T> right, Span<T> destination) where T : unmanaged, INumber<T> =>
        Pairwise<T, Sum<T>>(left, right, destination);

    /// <summary><paramref name="destination"/> ← <paramref name="left"/> ⊙ <paramref name="right"/>; the destination may be an input.</summary>
    internal static void Multiply<T>(ReadOnlySpan<T> left, ReadOnlySpan<T> right, Span<T> destination) where T : unmanaged, INumber<T> =>
        Pairwise<T, Product<T>>(left, right, destination);

    /// <summary>One operation of two numbers, on whole vectors and on single values.</summary>
    private interface IPairOperation<T> where T : unmanaged, INumber<T>
    {
        static abstract Vector<T> Apply(Vector<T> left, Vector<T> right);
        static abstract T Apply(T left, T right);
    }

    private readonly struct Sum<T> : IPairOperation<T> where T : unmanaged, INumber<T>
    {
        public static Vector<T> Apply(Vector<T> left, Vector<T> right) => left + right;
        public static T Apply(T left, T right) => left + right;
    }

    private readonly struct Product<T> : IPairOperation<T> where T : unmanaged, INumber<T>
    {
        public static Vector<T> Apply(Vector<T> left, Vector<T> right) => left * right;
        public static T Apply(T left, T right) => left * right;
    }

    private static void Pairwise<T, TOperation>(ReadOnlySpan<T> left, ReadOnlySpan<T> right, Span<T> destination)
        where T : unmanaged, INumber<T> where TOperation : struct, IPairOperation<T>
    {
        int i = 0;
        if (Vector.IsHardwareAccelerated)
        {
            var lefts = MemoryMarshal.Cast<T, Vector<T>>(left);
            var rights = MemoryMarshal.Cast<T, Vector<T>>(right);
            var target = MemoryMarshal.Cast<T, Vector<T>>(destination);
            for (int v = 0; v < lefts.Length; v++)
                target[v] = TOperation.Apply(lefts[v], rights[v]);
            i = lefts.Length * Vector<T>.Count;
        }
        for (; i < left.Length; i++)
            destination[i] = TOperation.Apply(left[i], right[i]);
    }

    internal static void KeepWherePositive<T>(ReadOnlySpan<T> grad, ReadOnlySpan<T> activation, Span<T> destination) where T : unmanaged, INumber<T>
    {
        int i = 0;
        if (Vector.IsHardwareAccelerated)
        {
            var gradients = MemoryMarshal.Cast<T, Vector<T>>(grad);
            var activations = MemoryMarshal.Cast<T, Vector<T>>(activation);
            var target = MemoryMarshal.Cast<T, Vector<T>>(destination);
            for (int v = 0; v < gradients.Length; v++)
                target[v] = Vector.ConditionalSelect(Vector.LessThanOrEqual(activations[v], Vector<T>.Zero), Vector<T>.Zero, gradients[v]);
            i = gradients.Length * Vector<T>.Count;
        }
        for (; i < grad.Length; i++)
            destination[i] = activation[i] <= T.Zero ? T.Zero : grad[i];
    }
}
