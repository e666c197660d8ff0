using TorchSharp;
using static TorchSharp.torch;

namespace Ddvi.Runtime;

/// <summary>
/// Random tensors drawn from a seeded generator and placed on any device.
/// </summary>
/// <remarks>
/// TorchSharp 0.107 makes every <see cref="Generator"/> a CPU generator (its native constructor ignores the device it is
/// given), and libtorch refuses a CPU generator for a CUDA draw. So draws for another device are made on the generator's
/// CPU and copied over. That keeps one seed's numbers the same on every device, and a resumed run on the GPU repeats the
/// uninterrupted one as it does on the CPU; the price is one small host-to-device copy per draw, made from page-locked
/// memory without waiting, so the host does not stop for the GPU's queue to drain at each draw.
/// </remarks>
public static class RandomDraws
{
    /// <summary>Standard normal draws of <paramref name="shape"/> on <paramref name="device"/>.</summary>
    public static Tensor Normal(long[] shape, ScalarType dtype, Device device, Generator generator) =>
        Place(randn(shape, dtype: dtype, device: Source(generator), generator: generator), device);

    /// <summary>Uniform [0, 1) draws of <paramref name="shape"/> on <paramref name="device"/>.</summary>
    public static Tensor Uniform(long[] shape, ScalarType dtype, Device device, Generator generator) =>
        Place(rand(shape, dtype: dtype, device: Source(generator), generator: generator), device);

    /// <summary>Integers uniform in [<paramref name="low"/>, <paramref name="high"/>) of <paramref name="shape"/>, int64, on <paramref name="device"/>.</summary>
    public static Tensor Integers(long low, long high, long[] shape, Device device, Generator generator) =>
        Place(randint(low, high, shape, dtype: ScalarType.Int64, device: Source(generator), generator: generator), device);

    /// <summary>A random permutation of [0, <paramref name="count"/>), int64, on <paramref name="device"/>.</summary>
    public static Tensor Permutation(long count, Device device, Generator generator) =>
        Place(randperm(count, device: Source(generator), generator: generator), device);

    private static Device Source(Generator generator)
    {
        ArgumentNullException.ThrowIfNull(generator);
        return CPU;
    }

    /// <summary>
    /// <paramref name="host"/> (a CPU tensor, consumed) on <paramref name="device"/>. For a GPU the copy is queued from
    /// page-locked memory and not waited for: libtorch's pinned-memory cache keeps the buffer until the copy is done.
    /// </summary>
    public static Tensor Place(Tensor host, Device device)
    {
        ArgumentNullException.ThrowIfNull(host);
        if (device.type == DeviceType.CPU) return host;
        if (device.type != DeviceType.CUDA) using (host) return host.to(device);
        using (host)
        using (var pinned = host.pin_memory())
            return pinned.to(device, non_blocking: true);
    }
}
