using TorchSharp;
using static TorchSharp.torch;
using static TorchSharp.torch.autograd;

namespace Ddvi.FastPaths;

/// <summary>
/// One evaluation of a time-conditioned denoiser ε(x, t) = W_out h_L + b_out, h_k = ReLU(W_k h_{k−1} + b_k + e_k[t − 1])
/// (with an optional residual connection; arXiv:2401.02739, the authors' release), each row at its own timestep, as one
/// autograd operation on <see cref="DenoiserStepKernel"/>. This is the noise-prediction call of DDVI's stage 1 (the prior
/// diffusion, the whole step), of the warm-up's prior term and of every sleep step: as module operations the 4-layer,
/// 128-unit network is ≈ 20 operations forward and as many backward at 3–20 µs each, for 0.04 GFLOP at batch 128.
/// The modules' own forward pass is the reference it is tested against and what runs wherever <see cref="Supports"/>
/// says no (float64, other devices, other widths, no AVX-512).
/// </summary>
/// <remarks>
/// Inputs, in order: the <see cref="Network"/>, the first layer's input x <c>[B, in]</c>, the int64 timesteps t
/// <c>[B]</c> in 1..T, each hidden layer's weight W_k <c>[hidden, in]</c>, each bias b_k <c>[hidden]</c>, each time
/// embedding table e_k <c>[T, hidden]</c>, the output weight <c>[d, hidden]</c> and bias <c>[d]</c>. Output: ε̂
/// <c>[B, d]</c>. Only first derivatives are supported (the backward pass is not itself differentiable).
/// </remarks>
internal sealed class DenoiserStepFunction : SingleTensorFunction<DenoiserStepFunction>
{
    /// <summary>Layer count, residual connection (hidden layers, 0-based, −1 for none) and T, the tables' rows.</summary>
    internal sealed record Network(int Layers, int ResidualFrom, int ResidualTo, int Steps);

    public override string Name => nameof(DenoiserStepFunction);

    /// <summary>
    /// Whether the denoisers' forward pass runs here where the kernel applies (the default); false keeps their module
    /// operations everywhere, the reference the kernel is tested against.
    /// </summary>
    internal static bool UseKernel { get; set; } = true;

    /// <summary>Whether <see cref="Run"/> applies to these inputs (see <see cref="DenoiserStepKernel.Supports"/>).</summary>
    public static bool Supports(Tensor input, Tensor t, IReadOnlyList<Tensor> weights, IReadOnlyList<Tensor> biases, IReadOnlyList<Tensor> tables,
        Tensor outputWeight, Tensor outputBias) =>
        UseKernel && DenoiserStepKernel.Supports(input, t, weights, biases, tables, outputWeight, outputBias);

    /// <summary>ε̂ <c>[B, d]</c>; see the class remarks for the inputs. The timesteps are checked against 1..T first.</summary>
    public static Tensor Run(Network network, Tensor input, Tensor t, IReadOnlyList<Tensor> weights, IReadOnlyList<Tensor> biases,
        IReadOnlyList<Tensor> tables, Tensor outputWeight, Tensor outputBias, string owner)
    {
        if (weights.Count != network.Layers || biases.Count != network.Layers || tables.Count != network.Layers)
            throw new ArgumentException($"{nameof(DenoiserStepFunction)}: expected {network.Layers} weights, biases and tables, got {weights.Count}, {biases.Count} and {tables.Count}.");
        DenoiserStepKernel.CheckTimesteps(t, network.Steps, owner);
        var arguments = new List<object>(4 + 3 * network.Layers) { network, input, t };
        arguments.AddRange(weights);
        arguments.AddRange(biases);
        arguments.AddRange(tables);
        arguments.Add(outputWeight);
        arguments.Add(outputBias);
        return apply([.. arguments]);
    }

    public override Tensor forward(AutogradContext ctx, params object[] vars)
    {
        var network = (Network)vars[0];
        var input = (Tensor)vars[1];
        var t = (Tensor)vars[2];
        int layers = network.Layers;
        Tensor Input(int index) => (Tensor)vars[3 + index];
        var weights = Enumerable.Range(0, layers).Select(k => Input(k)).ToArray();
        var biases = Enumerable.Range(0, layers).Select(k => Input(layers + k)).ToArray();
        var tables = Enumerable.Range(0, layers).Select(k => Input(2 * layers + k)).ToArray();
        var outputWeight = Input(3 * layers);
        var outputBias = Input(3 * layers + 1);

        var result = DenoiserStepKernel.Forward(network, input, t, weights, biases, tables, outputWeight, outputBias);
        ctx.save_data(nameof(Network), network);
        // Saved: x, t, the weights, the output weight, W_0ᵀ, the activations, then the residual sum if any.
        var saved = new List<Tensor>(layers * 2 + 6) { input.detach(), t };
        saved.AddRange(weights);
        saved.Add(outputWeight);
        saved.Add(result.FirstTransposed);
        saved.AddRange(result.Activations);
        if (result.ResidualSum is not null) saved.Add(result.ResidualSum);
        ctx.save_for_backward(saved);
        return result.Output;
    }

    public override List<Tensor> backward(AutogradContext ctx, Tensor gradOutput) // [B, d]
    {
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        var network = (Network)ctx.get_data(nameof(Network));
        int layers = network.Layers;
        var saved = ctx.get_saved_variables();
        var input = saved[0];
        var t = saved[1];
        var weights = saved.Skip(2).Take(layers).ToArray();
        var outputWeight = saved[2 + layers];
        var firstTransposed = saved[3 + layers];
        var activations = saved.Skip(4 + layers).Take(layers).ToArray();
        var residualSum = network.ResidualTo >= 0 ? saved[4 + 2 * layers] : null;
        var forward = new DenoiserStepKernel.ForwardResult(null!, activations, residualSum, firstTransposed);
        var gradients = DenoiserStepKernel.Backward(network, input, t, weights, outputWeight, forward, gradOutput.contiguous());

        var result = new List<Tensor>(4 + 3 * layers) { null!, gradients.Input, null! };
        result.AddRange(gradients.Weights);
        result.AddRange(gradients.Biases);
        result.AddRange(gradients.Tables);
        result.Add(gradients.OutputWeight);
        result.Add(gradients.OutputBias);
        foreach (var gradient in result)
            if (gradient is not null) scope.MoveToOuter(gradient);
        return result;
    }
}
