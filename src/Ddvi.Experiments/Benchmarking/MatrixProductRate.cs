using Ddvi.Runtime;
using System.Diagnostics;
using static TorchSharp.torch;

namespace Ddvi.Benchmarking;

/// <summary>A measured matrix-product rate: C = A·B with A <c>[Rows, Inner]</c> and B <c>[Inner, Columns]</c>.</summary>
public sealed record MatrixProductRate(long Rows, long Inner, long Columns, double GigaflopsPerSecond,
    [property: System.Text.Json.Serialization.JsonConverter(typeof(System.Text.Json.Serialization.JsonStringEnumConverter<ScalarType>))] ScalarType Type = ScalarType.Float32)
{
    public string Shape => $"[{Rows}×{Inner}]·[{Inner}×{Columns}]{(Type == ScalarType.Float32 ? "" : $" {Type}")}";

    /// <summary>
    /// Times matrix products of one shape on <paramref name="device"/> for about <paramref name="seconds"/> (after a
    /// warm-up) and returns the best rate over several rounds, in GFLOP/s (2·rows·inner·columns per product); float32
    /// unless <paramref name="dtype"/> says otherwise (bfloat16 for the rate of mixed-precision networks).
    /// </summary>
    public static MatrixProductRate Measure(Device device, long rows, long inner, long columns, double seconds = 1.0,
        ScalarType dtype = ScalarType.Float32)
    {
        using var scope = NewDisposeScope();
        using var generator = new Generator(1234);
        var a = RandomDraws.Normal([rows, inner], ScalarType.Float32, device, generator).to(dtype);
        var b = RandomDraws.Normal([inner, columns], ScalarType.Float32, device, generator).to(dtype);
        double flops = 2.0 * rows * inner * columns;

        for (int i = 0; i < 3; i++) Product(a, b);
        Synchronize(device);
        // Products per round so that a round lasts about a tenth of the budget.
        var probe = Stopwatch.StartNew();
        Product(a, b);
        Synchronize(device);
        int perRound = (int)Math.Clamp(seconds / 10 / Math.Max(probe.Elapsed.TotalSeconds, 1e-6), 1, 100_000);

        double best = 0;
        var budget = Stopwatch.StartNew();
        while (budget.Elapsed.TotalSeconds < seconds)
        {
            var round = Stopwatch.StartNew();
            for (int i = 0; i < perRound; i++) Product(a, b);
            Synchronize(device);
            best = Math.Max(best, perRound * flops / round.Elapsed.TotalSeconds);
        }
        return new MatrixProductRate(rows, inner, columns, best / 1e9, dtype);
    }

    static void Product(Tensor a, Tensor b)
    {
        using var product = a.mm(b);
    }

    /// <summary>Waits for queued device work (CUDA); a no-op on the CPU, whose operations are synchronous.</summary>
    public static void Synchronize(Device device)
    {
        if (device.type == TorchSharp.DeviceType.CUDA) cuda.synchronize(device);
    }
}
