using Ddvi.FastPaths;
using TorchSharp;

namespace Ddvi.Runtime;

/// <summary>Where tensors live: chosen once per run and passed down, never chosen inside a model or prior.</summary>
public enum DeviceChoice
{
    /// <summary>CUDA when TorchSharp's CUDA backend is loaded and a GPU is visible, else CPU.</summary>
    Auto,
    Cpu,
    Cuda,
}

/// <summary>Resolves the device and thread count of a run and seeds libtorch's global generators.</summary>
public static class ComputeDevice
{
    /// <summary>
    /// The device for <paramref name="choice"/>; throws when CUDA is asked for but not available. Applies no
    /// process-wide setting: <see cref="CpuRuntime.Configure"/> does, once at start-up.
    /// </summary>
    public static torch.Device Resolve(DeviceChoice choice)
    {
        return choice switch
        {
            DeviceChoice.Cpu => torch.CPU,
            DeviceChoice.Cuda when torch.cuda.is_available() => torch.CUDA,
            DeviceChoice.Cuda => throw new InvalidOperationException(
                "--device cuda: CUDA is not available. This build uses the TorchSharp-cpu package; " +
                "see README section 'Devices' for swapping in TorchSharp-cuda-linux, or use --device cpu."),
            _ => torch.cuda.is_available() ? torch.CUDA : torch.CPU,
        };
    }

    /// <summary>
    /// One line on Ddvi's CPU kernels for logs and benchmark headers: MKL's kernel choice, the heap setting (both as
    /// <see cref="CpuRuntime.Configure"/> left them; this changes nothing) and where the parallel loops and chain kernel
    /// run. On another device they touch only host-side tensors, and the line says so.
    /// </summary>
    public static string HostKernelNotes(torch.Device device)
    {
        string kernels = MathKernelDispatch.State?.Description ?? "MKL chooses its own kernels (CpuRuntime.Configure was not called)";
        string notes = $"{kernels}; {NativeHeap.Description}; {OpenMpTeam.Description}";
        return device.type == DeviceType.CPU
            ? notes
            : $"host side only: {notes}; on {device} the chain, Adam and the KDE run as libtorch operations";
    }

    /// <summary>Sets libtorch's intra-op thread count; 0 keeps libtorch's own default.</summary>
    public static void SetThreads(int threads)
    {
        if (threads < 0) throw new ArgumentOutOfRangeException(nameof(threads), threads, "--threads must be 0 (libtorch default) or a positive count.");
        if (threads > 0) torch.set_num_threads(threads);
    }

    /// <summary>Seeds libtorch's global generators (used by dropout and weight initialisation).</summary>
    public static void SeedGlobal(long seed)
    {
        torch.manual_seed(seed);
        if (torch.cuda.is_available()) torch.cuda.manual_seed_all(seed);
    }
}
