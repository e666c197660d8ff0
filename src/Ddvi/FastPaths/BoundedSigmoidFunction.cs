using System.Runtime.Intrinsics;
using static TorchSharp.torch;
using static TorchSharp.torch.autograd;

namespace Ddvi.FastPaths;

/// <summary>
/// y = low + (high − low)·sigmoid(x) as one autograd operation on float32 CPU tensors (<see cref="Models.BoundedOutput"/>,
/// the Gaussian image decoders' mean in the data's range): libtorch's sigmoid, then the scale and shift in one pass over
/// its output in place; the backward pass is one pass, ∂x = ∂y·(y − low)(high − y)/(high − low), from the saved output.
/// As three tensor operations (sigmoid, multiply, add) it is three passes and three new <c>[B, D]</c> tensors forward
/// and two of each backward. The tensor form stays for other types and devices, and is the reference of the tests.
/// </summary>
internal sealed class BoundedSigmoidFunction : SingleTensorFunction<BoundedSigmoidFunction>
{
    internal sealed record Range(double Low, double High);

    /// <summary>Values per parallel task.</summary>
    private const long TaskValues = 1 << 15;

    public override string Name => nameof(BoundedSigmoidFunction);

    /// <summary>Off: <see cref="Models.BoundedOutput"/> takes the tensor operations (tests and measurements).</summary>
    internal static bool Enabled { get; set; } = true;

    /// <summary>Whether the operation takes <paramref name="x"/>: a contiguous float32 CPU tensor.</summary>
    public static bool Supports(Tensor x) =>
        Enabled && x.dtype == ScalarType.Float32 && x.device_type == TorchSharp.DeviceType.CPU && x.is_contiguous() && x.numel() > 0;

    public static Tensor Run(Tensor x, double low, double high) => apply(new Range(low, high), x);

    public override Tensor forward(AutogradContext ctx, params object[] vars)
    {
        var range = (Range)vars[0];
        var x = (Tensor)vars[1];
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var y = x.sigmoid();
        Affine(y, (float)(range.High - range.Low), (float)range.Low);
        if (x.requires_grad)
        {
            ctx.save_for_backward([y]);
            ctx.save_data(nameof(Range), range);
        }
        return y.MoveToOuterDisposeScope();
    }

    public override List<Tensor> backward(AutogradContext ctx, Tensor gradOutput)
    {
        var range = (Range)ctx.get_data(nameof(Range));
        var y = ctx.get_saved_variables()[0];
        using var scope = NewDisposeScope();
        var grad = gradOutput.dtype == ScalarType.Float32 && gradOutput.is_contiguous() ? gradOutput : gradOutput.to(ScalarType.Float32).contiguous();
        var gradInput = empty_like(y);
        Gradient(grad, y, gradInput, (float)range.Low, (float)range.High);
        return [null!, gradInput.MoveToOuterDisposeScope()];
    }

    // s ← scale·s + shift in place.
    private static unsafe void Affine(Tensor values, float scale, float shift)
    {
        float* s = TensorMemory.Pointer<float>(values);
        long count = values.numel();
        OpenMpTeam.For((count + TaskValues - 1) / TaskValues, Math.Max(1, get_num_threads()), task =>
        {
            long first = task * TaskValues, end = Math.Min(count, first + TaskValues), i = first;
            Vector512<float> a = Vector512.Create(scale), b = Vector512.Create(shift);
            for (; i + Vector512<float>.Count <= end; i += Vector512<float>.Count)
                (Vector512.Load(s + i) * a + b).Store(s + i);
            for (; i < end; i++) s[i] = s[i] * scale + shift;
        });
    }

    // ∂x = ∂y·(y − low)(high − y)/(high − low).
    private static unsafe void Gradient(Tensor gradOutput, Tensor output, Tensor gradInput, float low, float high)
    {
        float* g = TensorMemory.Pointer<float>(gradOutput), y = TensorMemory.Pointer<float>(output), d = TensorMemory.Pointer<float>(gradInput);
        long count = output.numel();
        float inverseWidth = 1f / (high - low);
        OpenMpTeam.For((count + TaskValues - 1) / TaskValues, Math.Max(1, get_num_threads()), task =>
        {
            long first = task * TaskValues, end = Math.Min(count, first + TaskValues), i = first;
            Vector512<float> lo = Vector512.Create(low), hi = Vector512.Create(high), w = Vector512.Create(inverseWidth);
            for (; i + Vector512<float>.Count <= end; i += Vector512<float>.Count)
            {
                var v = Vector512.Load(y + i);
                (Vector512.Load(g + i) * ((v - lo) * (hi - v) * w)).Store(d + i);
            }
            for (; i < end; i++) d[i] = g[i] * ((y[i] - low) * (high - y[i]) * inverseWidth);
        });
    }
}
