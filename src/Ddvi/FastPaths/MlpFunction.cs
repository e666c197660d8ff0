using System.Runtime.Intrinsics;
using static TorchSharp.torch;
using static TorchSharp.torch.autograd;

namespace Ddvi.FastPaths;

/// <summary>
/// A whole <see cref="Models.Mlp"/>, h_l = dropout(LeakyReLU(W_l h_{l−1} + b_l)) for each hidden layer and its heads side by
/// side, as one autograd operation on float32 CPU tensors. Recorded op by op the conv encoders' 128 → 1000 → 2 + 2 head
/// is ≈ 25 operations and autograd nodes around three products of 16 M multiply-adds, and took 1.2 ms forward and backward
/// at batch 128 on two threads against 0.27 ms of arithmetic; here each layer is one product and one C# pass that applies
/// the activation and the dropout mask together and keeps their joint derivative (slope × mask) for the backward pass,
/// the heads are one product, and the backward pass is the products and sums alone.
/// </summary>
/// <remarks>
/// Inputs: the <see cref="Settings"/>, x <c>[B, in]</c>, then each hidden layer's weight <c>[out, in]</c> and bias, then
/// each head's weight and bias. Output: the heads side by side <c>[B, Σ widths]</c>. The masks are drawn by
/// <see cref="KeepMask.Create"/> in the layers' order, as <see cref="Models.UniformMaskDropout"/> draws them, so a seed
/// gives the same masks either way. Values agree with the layer-by-layer modules to float32 rounding (the backward pass
/// multiplies by slope × mask once instead of by each in turn); the modules are the reference the tests compare with,
/// and stay for other types, devices and bfloat16. Only first derivatives are supported.
/// </remarks>
internal sealed class MlpFunction : SingleTensorFunction<MlpFunction>
{
    /// <summary>What the operation needs besides tensors.</summary>
    /// <param name="Layers">Hidden layers.</param>
    /// <param name="HeadWidths">Output width of each head.</param>
    /// <param name="Slope">The LeakyReLU's negative slope.</param>
    /// <param name="Keep">1 − p of the dropout, 1 when it is off (evaluation mode or p = 0).</param>
    internal sealed record Settings(int Layers, long[] HeadWidths, double Slope, double Keep);

    /// <summary>Values per parallel task of the activation pass.</summary>
    private const long TaskValues = 1 << 15;

    public override string Name => nameof(MlpFunction);

    /// <summary>Whether <see cref="Models.Mlp"/> may use this operation (the default); false keeps its modules, for comparisons.</summary>
    internal static bool Enabled { get; set; } = true;

    /// <summary>Whether the operation takes <paramref name="x"/> and <paramref name="parameters"/>: float32 CPU tensors, x <c>[B, in]</c> with B ≥ 1.</summary>
    public static bool Supports(Tensor x, IEnumerable<Tensor> parameters) =>
        Enabled && x.dtype == ScalarType.Float32 && x.device_type == TorchSharp.DeviceType.CPU && x.dim() == 2 && x.shape[0] > 0
        && parameters.All(p => p.dtype == ScalarType.Float32 && p.device_type == TorchSharp.DeviceType.CPU);

    /// <summary>The network on <paramref name="x"/>; <paramref name="layers"/> and <paramref name="heads"/> as (weight, bias) pairs.</summary>
    public static Tensor Run(Settings settings, Tensor x, IReadOnlyList<(Tensor Weight, Tensor Bias)> layers, IReadOnlyList<(Tensor Weight, Tensor Bias)> heads)
    {
        var arguments = new List<object> { settings, x };
        foreach (var (weight, bias) in layers.Concat(heads))
        {
            arguments.Add(weight);
            arguments.Add(bias);
        }
        return apply([.. arguments]);
    }

    public override Tensor forward(AutogradContext ctx, params object[] vars)
    {
        var settings = (Settings)vars[0];
        var x = (Tensor)vars[1];
        int layers = settings.Layers, heads = settings.HeadWidths.Length;
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var saved = new List<Tensor> { x };
        var h = x;
        for (int l = 0; l < layers; l++)
        {
            var output = nn.functional.linear(h, (Tensor)vars[2 + 2 * l], (Tensor)vars[3 + 2 * l]).contiguous();
            // The mask is drawn after the product, as the dropout module draws it after the layer and its activation.
            var factor = settings.Keep < 1 ? KeepMask.Create(output, settings.Keep) : empty_like(output);
            Activate(output, factor, (float)settings.Slope, masked: settings.Keep < 1);
            saved.Add(output);
            saved.Add(factor);
            h = output;
        }
        var headWeights = Enumerable.Range(0, heads).Select(i => (Tensor)vars[2 + 2 * layers + 2 * i]).ToArray();
        var headBiases = Enumerable.Range(0, heads).Select(i => (Tensor)vars[3 + 2 * layers + 2 * i]).ToArray();
        var weight = heads == 1 ? headWeights[0] : cat(headWeights, 0);
        var result = nn.functional.linear(h, weight, heads == 1 ? headBiases[0] : cat(headBiases, 0));
        saved.Add(weight);
        for (int l = 0; l < layers; l++) saved.Add((Tensor)vars[2 + 2 * l]);
        // The saved tensors outlive this scope: the context holds them until the backward pass.
        foreach (var tensor in saved) scope.MoveToOuter(tensor);
        ctx.save_for_backward(saved);
        ctx.save_data(nameof(Settings), settings);
        ctx.save_data("inputGrad", x.requires_grad);
        return result.MoveToOuterDisposeScope();
    }

    public override List<Tensor> backward(AutogradContext ctx, Tensor gradOutput)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var settings = (Settings)ctx.get_data(nameof(Settings));
        bool inputGrad = (bool)ctx.get_data("inputGrad");
        var saved = ctx.get_saved_variables();
        int layers = settings.Layers, heads = settings.HeadWidths.Length;
        var x = saved[0];
        Tensor Output(int l) => l == 0 ? x : saved[2 * l - 1];                                      // h_l, h_0 = x
        Tensor Factor(int l) => saved[2 * l];                                                        // l ≥ 1
        var headWeight = saved[1 + 2 * layers];
        var g = gradOutput.contiguous();
        var result = new Tensor[2 + 2 * layers + 2 * heads];
        var gradHeadWeight = g.t().mm(Output(layers));                                               // [Σ widths, hidden]
        var gradHeadBias = g.sum(dim: 0L);
        long row = 0;
        for (int i = 0; i < heads; i++)
        {
            long width = settings.HeadWidths[i];
            result[2 + 2 * layers + 2 * i] = heads == 1 ? gradHeadWeight : gradHeadWeight.narrow(0, row, width);
            result[3 + 2 * layers + 2 * i] = heads == 1 ? gradHeadBias : gradHeadBias.narrow(0, row, width);
            row += width;
        }
        Tensor? gradH = layers > 0 || inputGrad ? g.mm(headWeight) : null;
        for (int l = layers; l >= 1; l--)
        {
            var gradPre = gradH!.mul_(Factor(l));
            result[2 * l] = gradPre.t().mm(Output(l - 1));
            result[2 * l + 1] = gradPre.sum(dim: 0L);
            gradH = l > 1 || inputGrad ? gradPre.mm(saved[2 + 2 * layers + (l - 1)]) : null;
        }
        result[1] = inputGrad ? gradH! : null!;
        result[0] = null!;
        foreach (var gradient in result)
            if (gradient is not null) scope.MoveToOuter(gradient);
        return [.. result];
    }

    // h ← LeakyReLU(h)·m and factor ← slope-or-1 · m in one pass; m is factor's incoming mask when masked, else 1.
    private static unsafe void Activate(Tensor output, Tensor factor, float slope, bool masked)
    {
        float* h = TensorMemory.Pointer<float>(output), f = TensorMemory.Pointer<float>(factor);
        long count = output.numel();
        OpenMpTeam.For((count + TaskValues - 1) / TaskValues, Math.Max(1, get_num_threads()), task =>
        {
            long i = task * TaskValues, end = Math.Min(count, (task + 1) * TaskValues);
            Vector512<float> slopes = Vector512.Create(slope), one = Vector512<float>.One;
            for (; i + Vector512<float>.Count <= end; i += Vector512<float>.Count)
            {
                var v = Vector512.Load(h + i);
                var d = Vector512.ConditionalSelect(Vector512.GreaterThan(v, Vector512<float>.Zero), one, slopes);
                var m = masked ? Vector512.Load(f + i) : one;
                (v * d * m).Store(h + i);
                (d * m).Store(f + i);
            }
            for (; i < end; i++)
            {
                float v = h[i], d = v > 0 ? 1f : slope, m = masked ? f[i] : 1f;
                h[i] = v * d * m;
                f[i] = d * m;
            }
        });
    }
}
