using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using static TorchSharp.torch;

namespace Ddvi.FastPaths;

/// <summary>
/// Direct access to a contiguous CPU tensor's elements, for the few loops Ddvi writes in C# (Adam's sweep, dropout masks,
/// ReLU's backward). The caller checks device, type and layout; the memory stays valid while the tensor lives.
/// </summary>
internal static class TensorMemory
{
    public static Span<T> Elements<T>(Tensor tensor) where T : unmanaged => MemoryMarshal.Cast<byte, T>(tensor.bytes);

    /// <summary>The first element's address, for loops split across threads (a span cannot be captured by a lambda).</summary>
    public static unsafe T* Pointer<T>(Tensor tensor) where T : unmanaged =>
        (T*)Unsafe.AsPointer(ref MemoryMarshal.GetReference(Elements<T>(tensor)));
}
