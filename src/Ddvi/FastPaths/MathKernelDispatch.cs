using System.Runtime.InteropServices;
using System.Runtime.Intrinsics.X86;
using TorchSharp;

namespace Ddvi.FastPaths;

/// <summary>What <see cref="MathKernelDispatch.Ensure"/> found and did.</summary>
public enum MathKernelDispatchStatus
{
    /// <summary>MKL was told the CPU may run its AVX-512 kernels, before its first matrix product.</summary>
    WideKernelsEnabled,
    /// <summary>Nothing to do: not x86-64 Linux, an Intel CPU (MKL already picks its best kernels), or no AVX-512.</summary>
    NotNeeded,
    /// <summary>Switched off by the environment variable <see cref="MathKernelDispatch.DisableVariable"/>.</summary>
    Disabled,
    /// <summary>MKL had already chosen its kernels (a matrix product ran before the call); its choice stays.</summary>
    AlreadyChosen,
    /// <summary>This libtorch build does not look like the one this was written for; nothing was changed.</summary>
    Unrecognised,
}

/// <summary>The outcome of <see cref="MathKernelDispatch.Ensure"/>, with a sentence for logs and benchmark reports.</summary>
public sealed record MathKernelDispatchState(MathKernelDispatchStatus Status, string Description);

/// <summary>
/// Lets libtorch's matrix products use AVX-512 on non-Intel CPUs that have it (AMD Zen 4 and 5). libtorch's CPU build
/// links Intel MKL, whose dispatcher picks its AVX-512 kernels only when <c>mkl_serv_intel_cpu_true()</c> says the CPU
/// is Intel; elsewhere it runs its AVX2 kernels at half the vector width. On the 2-core Zen 5 reference machine that is
/// ≈ 200 against ≈ 450 GFLOP/s for the float32 products every model here is made of.
/// </summary>
/// <remarks>
/// <para>That function returns a cached answer: <c>mov eax, [rip + cache]; test eax, eax; js compute; ret</c>. Writing 1
/// into the cache before MKL's first call makes it answer "Intel"; MKL then chooses its kernels by the CPU's feature
/// flags as usual. No code is patched: the cache is an ordinary writable variable. Nothing is written unless the
/// function starts with exactly those instructions and the cache still holds its "not yet decided" value (negative),
/// so another MKL build, or a process where MKL has already chosen, is left alone.</para>
/// <para>Applies only to x86-64 Linux on a non-Intel CPU with AVX-512 F, CD, BW, DQ and VL (the set MKL's AVX-512
/// kernels use). Set <c>DDVI_MKL_AVX512=off</c> to keep MKL's own choice. Results change only by float32 rounding
/// (different blocking of the same sums).</para>
/// <para>Call it before any tensor work. <see cref="CpuRuntime.Configure"/> calls it, and the CLI, the benchmark suite,
/// the test assembly and <see cref="Inference.DdviFit.Fit"/> call that first.</para>
/// </remarks>
public static class MathKernelDispatch
{
    public const string DisableVariable = "DDVI_MKL_AVX512";

    private static readonly Lock Gate = new();
    private static MathKernelDispatchState? _state;

    /// <summary>The outcome of the first <see cref="Ensure"/> call, or null before it.</summary>
    public static MathKernelDispatchState? State => _state;

    /// <summary>Enables MKL's AVX-512 kernels where this CPU has AVX-512 but MKL would not use it. Idempotent.</summary>
    public static MathKernelDispatchState Ensure()
    {
        lock (Gate)
            return _state ??= Decide();
    }

    private static MathKernelDispatchState Decide()
    {
        string? setting = Environment.GetEnvironmentVariable(DisableVariable);
        if (IsSwitchedOff(setting))
            return new(MathKernelDispatchStatus.Disabled, $"MKL chooses its own kernels ({DisableVariable}={setting})");
        if (!OperatingSystem.IsLinux() || RuntimeInformation.ProcessArchitecture != Architecture.X64 || !X86Base.IsSupported)
            return new(MathKernelDispatchStatus.NotNeeded, "MKL chooses its own kernels (not x86-64 Linux)");
        if (CpuVendor() == "GenuineIntel")
            return new(MathKernelDispatchStatus.NotNeeded, "MKL chooses its own kernels (Intel CPU)");
        if (!(Avx512F.IsSupported && Avx512CD.IsSupported && Avx512BW.IsSupported && Avx512DQ.IsSupported && Avx512F.VL.IsSupported))
            return new(MathKernelDispatchStatus.NotNeeded, "MKL chooses its own kernels (no AVX-512 on this CPU)");

        _ = torch.get_num_threads(); // loads libtorch, so its library is mapped; runs no matrix product
        string? library = LoadedLibraries.Find("libtorch_cpu.so");
        if (library is null || !NativeLibrary.TryLoad(library, out var handle))
            return new(MathKernelDispatchStatus.Unrecognised, "MKL chooses its own kernels (libtorch_cpu.so not found among the loaded libraries)");
        try
        {
            if (!NativeLibrary.TryGetExport(handle, "mkl_serv_intel_cpu_true", out var function))
                return new(MathKernelDispatchStatus.Unrecognised, "MKL chooses its own kernels (this libtorch exports no mkl_serv_intel_cpu_true)");
            return SetCachedAnswer(function);
        }
        finally
        {
            NativeLibrary.Free(handle); // drops only the reference taken above; libtorch stays loaded
        }
    }

    /// <summary>Whether a value of <see cref="DisableVariable"/> switches the change off: off, 0, false or no (any case).</summary>
    public static bool IsSwitchedOff(string? setting) =>
        setting is not null && setting.Trim().ToLowerInvariant() is "off" or "0" or "false" or "no";

    private static unsafe MathKernelDispatchState SetCachedAnswer(nint function)
    {
        // mov eax, [rip + disp32] (8B 05 disp32); test eax, eax (85 C0); js rel8 (78 xx); ret (C3)
        byte* code = (byte*)function;
        if (code[0] != 0x8B || code[1] != 0x05 || code[6] != 0x85 || code[7] != 0xC0 || code[8] != 0x78 || code[10] != 0xC3)
            return new(MathKernelDispatchStatus.Unrecognised, "MKL chooses its own kernels (mkl_serv_intel_cpu_true is not the expected MKL build)");
        int displacement = *(int*)(code + 2);
        int* cache = (int*)(code + 6 + displacement);
        int current = Volatile.Read(ref *cache);
        if (current >= 0)
            return new(MathKernelDispatchStatus.AlreadyChosen, current == 1
                ? "MKL already uses its Intel kernel choice"
                : "MKL had already chosen its AVX2 kernels before Ddvi could enable AVX-512 (a matrix product ran first)");
        Volatile.Write(ref *cache, 1);
        return new(MathKernelDispatchStatus.WideKernelsEnabled, "MKL's AVX-512 kernels enabled on this non-Intel CPU");
    }

    private static string CpuVendor()
    {
        var (_, ebx, ecx, edx) = X86Base.CpuId(0, 0);
        Span<int> parts = [ebx, edx, ecx];
        return System.Text.Encoding.ASCII.GetString(MemoryMarshal.AsBytes(parts));
    }
}
