using System.Runtime.InteropServices;

namespace Ddvi.FastPaths;

/// <summary>
/// The BLAS matrix product that libtorch's CPU build carries (Intel MKL's <c>sgemm_</c> and <c>dgemm_</c>, exported by
/// <c>libtorch_cpu.so</c>), called directly on raw memory. For Ddvi's 128 × 128 chain blocks a call through libtorch costs
/// ≈ 14 µs against ≈ 12 µs direct, and the ReLU, bias and residual steps around it, done as separate tensor operations,
/// cost more than the product itself; the chain kernel (<see cref="DenoiserChainKernel"/>) fuses those in C#
/// around these calls. The same MKL, with the same kernel choice (<see cref="MathKernelDispatch"/>), does the arithmetic.
/// </summary>
/// <remarks>Row-major helpers over the column-major Fortran interface (32-bit integers, as libtorch's LP64 MKL).</remarks>
internal static unsafe class CpuBlas
{
    private static readonly Lazy<(nint Single, nint Double)> Functions = new(Resolve);

    /// <summary>Whether the loaded libtorch exports both products (false off x86-64 Linux or with another BLAS).</summary>
    public static bool IsAvailable => Functions.Value.Single != 0 && Functions.Value.Double != 0;

    /// <summary>
    /// Row-major C[m, n] ← alpha · op(A) · op(B) + beta · C, where op(A) is <c>[m, k]</c> (A stored <c>[k, m]</c> when
    /// <paramref name="transposeA"/>) and op(B) is <c>[k, n]</c> (B stored <c>[n, k]</c> when <paramref name="transposeB"/>);
    /// lda, ldb, ldc are the row strides (elements) of A, B and C as stored.
    /// </summary>
    public static void Gemm<T>(bool transposeA, bool transposeB, int m, int n, int k, T alpha, T* a, int lda, T* b, int ldb, T beta, T* c, int ldc)
        where T : unmanaged
    {
        if (!IsAvailable)
            throw new InvalidOperationException("CpuBlas: the loaded libtorch exports no sgemm_/dgemm_; check IsAvailable first.");
        if (m == 0 || n == 0) return;
        // Row-major C = op(A)·op(B) is column-major Cᵀ = op(B)ᵀ·op(A)ᵀ: swap the operands and their roles.
        byte opB = transposeB ? (byte)'T' : (byte)'N';
        byte opA = transposeA ? (byte)'T' : (byte)'N';
        if (typeof(T) == typeof(float))
        {
            var gemm = (delegate* unmanaged<byte*, byte*, int*, int*, int*, float*, float*, int*, float*, int*, float*, float*, int*, void>)Functions.Value.Single;
            float alphaValue = (float)(object)alpha, betaValue = (float)(object)beta;
            gemm(&opB, &opA, &n, &m, &k, &alphaValue, (float*)b, &ldb, (float*)a, &lda, &betaValue, (float*)c, &ldc);
        }
        else if (typeof(T) == typeof(double))
        {
            var gemm = (delegate* unmanaged<byte*, byte*, int*, int*, int*, double*, double*, int*, double*, int*, double*, double*, int*, void>)Functions.Value.Double;
            double alphaValue = (double)(object)alpha, betaValue = (double)(object)beta;
            gemm(&opB, &opA, &n, &m, &k, &alphaValue, (double*)b, &ldb, (double*)a, &lda, &betaValue, (double*)c, &ldc);
        }
        else throw new NotSupportedException($"CpuBlas: no matrix product for {typeof(T).Name}; float and double only.");
    }

    private static (nint, nint) Resolve()
    {
        _ = TorchSharp.torch.get_num_threads(); // loads libtorch if nothing has yet
        string? library = LoadedLibraries.Find("libtorch_cpu.so");
        if (library is null || !NativeLibrary.TryLoad(library, out var handle)) return (0, 0);
        // The handle is kept: the functions must stay valid, and libtorch stays loaded for the process anyway.
        return NativeLibrary.TryGetExport(handle, "sgemm_", out var single) && NativeLibrary.TryGetExport(handle, "dgemm_", out var @double)
            ? (single, @double)
            : (0, 0);
    }
}

/// <summary>The shared libraries mapped into this process (Linux), found by file name.</summary>
internal static class LoadedLibraries
{
    /// <summary>The full path of the mapped library named <paramref name="fileName"/>, or null (also off Linux).</summary>
    public static string? Find(string fileName) => FindFirst(name => name == fileName);

    /// <summary>
    /// The full path of the first mapped library whose file name starts with <paramref name="prefix"/> (libtorch's wheels
    /// carry hash-suffixed copies such as <c>libgomp-98b21ff3.so.1</c>), or null.
    /// </summary>
    public static string? FindStartingWith(string prefix) => FindFirst(name => name.StartsWith(prefix, StringComparison.Ordinal));

    private static string? FindFirst(Func<string, bool> matches)
    {
        const string maps = "/proc/self/maps";
        if (!File.Exists(maps)) return null;
        foreach (var line in File.ReadLines(maps))
        {
            int slash = line.IndexOf('/');
            if (slash < 0) continue;
            string path = line[slash..];
            if (matches(Path.GetFileName(path))) return path;
        }
        return null;
    }
}
