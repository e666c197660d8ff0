using Ddvi.Diffusion;
using Ddvi.Runtime;
using TorchSharp;
using static TorchSharp.torch;
using static TorchSharp.torch.autograd;

namespace Ddvi.FastPaths;

/// <summary>
/// The whole DDIM chain of a time-conditioned denoiser (the DDVI posterior's reverse process; arXiv:2401.02739)
/// as one autograd operation: the forward pass runs the T steps without building a graph, and the backward pass runs
/// them in reverse as plain products. It computes
/// the same function and gradients as the prepared chain built from modules (<see cref="Models.TimeConditionedLayers.Prepare"/>
/// with <see cref="ReverseChain.RunPrepared"/>) with less work: nothing is recorded for the ≈ 12 operations of each of
/// the T steps, ReLU's backward is one C# pass (<see cref="ElementwiseKernels"/>), and each weight's and table's gradient
/// is summed over all steps at the end as one product or sum. Per-operation overhead, not arithmetic, dominated a DDVI
/// wake step's chain (≈ 3 ms of arithmetic in ≈ 15 ms); this took the 40-step chain's forward and backward from a median
/// of 15.2 to 12.8 ms (docs/performance.md). On the CPU, for float32 and float64, both passes run in
/// <see cref="DenoiserChainKernel"/> (direct products, hand-written or MKL's, with the element-wise steps fused in C#); elsewhere, as tensor
/// operations.
/// </summary>
/// <remarks>
/// Inputs, in order: the <see cref="ChainShape"/>, y_T <c>[B, d]</c>, each hidden layer's weight W_k
/// (<c>[hidden, in]</c>; the first one only the columns that read y), each hidden layer's bias-plus-time-embedding table
/// (<c>[T, hidden]</c>, or <c>[T, B, hidden]</c> for the first layer when it carries a per-row share such as the
/// context's), the output weight <c>[d, hidden]</c> and bias <c>[d]</c>. Output: the states y_T, y_{T−1}, …, y_0 stacked
/// as <c>[T + 1, B, d]</c>. Only first derivatives are supported (the backward pass is not itself differentiable).
/// </remarks>
internal sealed class DenoiserChainFunction : SingleTensorFunction<DenoiserChainFunction>
{
    /// <summary>What the function needs besides tensors: layer count, residual connection and the DDIM coefficients of each step.</summary>
    /// <param name="Coefficients">(KeepY, KeepEps) of step t at index t − 1.</param>
    internal sealed record ChainShape(int Layers, int ResidualFrom, int ResidualTo, (double KeepY, double KeepEps)[] Coefficients)
    {
        public int Steps => Coefficients.Length;
    }

    public override string Name => nameof(DenoiserChainFunction);

    /// <summary>
    /// Whether chains run through <see cref="DenoiserChainKernel"/> where it applies (the default); false keeps the tensor
    /// operations everywhere, the reference the kernel is tested against.
    /// </summary>
    internal static bool UseKernel { get; set; } = true;

    /// <summary>Runs the chain; see the class remarks for the inputs. Returns <c>[T + 1, B, d]</c>.</summary>
    public static Tensor Run(ChainShape shape, Tensor yT, IReadOnlyList<Tensor> weights, IReadOnlyList<Tensor> tables, Tensor outputWeight, Tensor outputBias)
    {
        if (weights.Count != shape.Layers || tables.Count != shape.Layers)
            throw new ArgumentException($"{nameof(DenoiserChainFunction)}: expected {shape.Layers} weights and tables, got {weights.Count} and {tables.Count}.");
        var arguments = new List<object> { shape, yT };
        arguments.AddRange(weights);
        arguments.AddRange(tables);
        arguments.Add(outputWeight);
        arguments.Add(outputBias);
        return apply([.. arguments]);
    }

    public override Tensor forward(AutogradContext ctx, params object[] vars)
    {
        var shape = (ChainShape)vars[0];
        var yT = (Tensor)vars[1];
        int layers = shape.Layers;
        var weights = Enumerable.Range(0, layers).Select(k => (Tensor)vars[2 + k]).ToArray();
        var tables = Enumerable.Range(0, layers).Select(k => (Tensor)vars[2 + layers + k]).ToArray();
        var outputWeight = (Tensor)vars[2 + 2 * layers];
        var outputBias = (Tensor)vars[3 + 2 * layers];

        ctx.save_data(nameof(ChainShape), shape);
        ctx.save_data("perRowFirstTable", tables[0].dim() == 3);
        // The kernel reads raw memory: the first weight, a column slice, is packed (hidden × d values).
        var packedWeights = weights.Select(w => w.is_contiguous() ? w : w.contiguous()).ToArray();
        bool kernel = UseKernel && DenoiserChainKernel.Supports(yT, packedWeights, tables, outputWeight, outputBias);
        ctx.save_data(nameof(UseKernel), kernel);
        return kernel
            ? ForwardWithKernel(ctx, shape, yT, packedWeights, tables, outputWeight, outputBias)
            : ForwardWithTensorOperations(ctx, shape, yT, weights, tables, outputWeight, outputBias);
    }

    /// <summary>Saved: the weights, the output weight, the states, each layer's activations, then the residual sums if any.</summary>
    private static Tensor ForwardWithKernel(AutogradContext ctx, ChainShape shape, Tensor yT, Tensor[] weights, Tensor[] tables, Tensor outputWeight, Tensor outputBias)
    {
        var result = DenoiserChainKernel.Forward(shape, yT, weights, tables, outputWeight, outputBias);
        var saved = new List<Tensor>(weights) { outputWeight, result.States.detach() };
        saved.AddRange(result.Activations);
        if (result.ResidualSums is not null) saved.Add(result.ResidualSums);
        ctx.save_for_backward(saved);
        return result.States;
    }

    private static Tensor ForwardWithTensorOperations(AutogradContext ctx, ChainShape shape, Tensor yT, Tensor[] weights, Tensor[] tables, Tensor outputWeight, Tensor outputBias)
    {
        int layers = shape.Layers;
        var weightsT = weights.Select(w => w.t()).ToArray();
        var outputWeightT = outputWeight.t();
        var rows = tables.Select(table => table.unbind(0)).ToArray();

        // Saved: the weights, then for each step its input y, each layer's ReLU output and the residual sum (or null).
        var saved = new List<Tensor>(layers + 1 + shape.Steps * (layers + 2));
        saved.AddRange(weights);
        saved.Add(outputWeight);
        var states = new List<Tensor>(shape.Steps + 1) { yT };
        var y = yT;
        for (int step = shape.Steps; step >= 1; step--)
        {
            int row = step - 1;
            saved.Add(y);
            var h = y;
            Tensor? residualStart = null;
            Tensor? residualSum = null;
            for (int k = 0; k < layers; k++)
            {
                var activation = rows[k][row].addmm(h, weightsT[k]).relu_();
                saved.Add(activation);
                h = activation;
                if (k == shape.ResidualFrom) residualStart = activation;
                if (k == shape.ResidualTo) h = residualSum = activation.add(residualStart!, Scalars.One);
            }
            saved.Add(residualSum!);
            var (keepY, keepEps) = shape.Coefficients[row];
            y = outputBias.addmm(h, outputWeightT).mul_(Scalars.Of(keepEps)).add_(y, alpha: Scalars.Of(keepY));
            states.Add(y);
        }
        ctx.save_for_backward(saved);
        return stack(states);
    }

    public override List<Tensor> backward(AutogradContext ctx, Tensor gradStates) // [T + 1, B, d]
    {
        using var noGrad = no_grad();
        // The backward pass's temporaries die here; only the gradients handed back to the engine leave this scope.
        using var scope = NewDisposeScope();
        var shape = (ChainShape)ctx.get_data(nameof(ChainShape));
        bool perRowFirstTable = (bool)ctx.get_data("perRowFirstTable");
        var saved = ctx.get_saved_variables();
        var result = (bool)ctx.get_data(nameof(UseKernel))
            ? BackwardWithKernel(shape, perRowFirstTable, saved, gradStates)
            : BackwardWithTensorOperations(shape, perRowFirstTable, saved, gradStates);
        foreach (var gradient in result)
            if (gradient is not null) scope.MoveToOuter(gradient);
        return result;
    }

    private static List<Tensor> BackwardWithKernel(ChainShape shape, bool perRowFirstTable, List<Tensor> saved, Tensor gradStates)
    {
        int layers = shape.Layers;
        var weights = saved.Take(layers).ToArray();
        var outputWeight = saved[layers];
        var states = saved[layers + 1];
        var activations = saved.Skip(layers + 2).Take(layers).ToArray();
        var residualSums = shape.ResidualTo >= 0 ? saved[2 * layers + 2] : null;
        var forward = new DenoiserChainKernel.ForwardResult(states, activations, residualSums);
        var (startGrad, preGrads, outputGrads) = DenoiserChainKernel.Backward(shape, forward, weights, outputWeight, gradStates);

        // Everything below is indexed by state i (step t = T − i); the tables are indexed by row t − 1 = T − 1 − i.
        Tensor LayerInputs(int k) => k == 0 ? states.narrow(0, 0, shape.Steps)
            : k - 1 == shape.ResidualTo ? residualSums! : activations[k - 1];
        var result = new List<Tensor> { null!, startGrad };
        var tableGrads = new Tensor[layers];
        for (int k = 0; k < layers; k++)
        {
            result.Add(preGrads[k].flatten(0, 1).t().mm(LayerInputs(k).flatten(0, 1)));
            tableGrads[k] = (k == 0 && perRowFirstTable ? preGrads[k] : preGrads[k].sum([1L])).flip(0);
        }
        result.AddRange(tableGrads);
        result.Add(outputGrads.flatten(0, 1).t().mm(LayerInputs(layers).flatten(0, 1)));
        result.Add(outputGrads.sum([0L, 1L]));
        return result;
    }

    private static List<Tensor> BackwardWithTensorOperations(ChainShape shape, bool perRowFirstTable, List<Tensor> saved, Tensor gradStates)
    {
        int layers = shape.Layers;
        var weights = saved.Take(layers).ToArray();
        var outputWeight = saved[layers];
        int perStep = layers + 2;

        // Per step only what the chain's recursion needs (the gradient flowing back through the layers); the weight and
        // table gradients are sums over steps, taken at the end as one product or one sum per layer over stacked rows.
        var preGrads = Enumerable.Range(0, layers).Select(_ => new Tensor[shape.Steps]).ToArray();    // [step] of [B, hidden]
        var layerInputs = Enumerable.Range(0, layers + 1).Select(_ => new Tensor[shape.Steps]).ToArray();
        var outputGrads = new Tensor[shape.Steps];                                                    // ∂L/∂ε̂_t, [B, d]

        var grad = gradStates[shape.Steps];                                                        // ∂L/∂y_0
        // Step t read state row T − t and wrote row T − t + 1; walk t = 1..T.
        for (int step = 1; step <= shape.Steps; step++)
        {
            int row = step - 1;
            int stateRow = shape.Steps - step;
            int offset = layers + 1 + stateRow * perStep;
            var input = saved[offset];
            var residualSum = saved[offset + 1 + layers];
            var (keepY, keepEps) = shape.Coefficients[row];

            var outputGrad = grad * Scalars.Of(keepEps);
            outputGrads[row] = outputGrad;
            layerInputs[layers][row] = LayerInput(layers, saved, offset, shape, input, residualSum);
            var hiddenGrad = outputGrad.mm(outputWeight);
            Tensor? residualGrad = null;
            for (int k = layers - 1; k >= 0; k--)
            {
                var activation = saved[offset + 1 + k];
                if (k == shape.ResidualTo) residualGrad = hiddenGrad;
                if (k == shape.ResidualFrom && residualGrad is not null) hiddenGrad = hiddenGrad.add(residualGrad, Scalars.One);
                // Masked in place, except where the residual connection still needs the unmasked gradient.
                var masked = k == shape.ResidualTo ? hiddenGrad.clone() : hiddenGrad;
                var preGrad = ElementwiseKernels.KeepWherePositiveInto(masked, activation, masked);
                preGrads[k][row] = preGrad;
                layerInputs[k][row] = LayerInput(k, saved, offset, shape, input, residualSum);
                hiddenGrad = preGrad.mm(weights[k]);
            }
            // y_{t−1} = KeepY·y_t + KeepEps·ε̂(y_t), and y_t may also be read directly by the loss.
            grad = hiddenGrad.add_(grad, alpha: Scalars.Of(keepY)).add_(gradStates[stateRow], Scalars.One);
        }

        var weightGrads = new Tensor[layers];
        var tableGrads = new Tensor[layers];
        for (int k = 0; k < layers; k++)
        {
            var stackedPreGrads = stack(preGrads[k]);                                              // [T, B, hidden]
            var stackedInputs = stack(layerInputs[k]);                                             // [T, B, in]
            weightGrads[k] = stackedPreGrads.flatten(0, 1).t().mm(stackedInputs.flatten(0, 1));
            tableGrads[k] = k == 0 && perRowFirstTable ? stackedPreGrads : stackedPreGrads.sum([1L]);
        }
        var stackedOutputGrads = stack(outputGrads);                                               // [T, B, d]
        var outputWeightGrad = stackedOutputGrads.flatten(0, 1).t().mm(stack(layerInputs[layers]).flatten(0, 1));

        var result = new List<Tensor> { null!, grad };
        result.AddRange(weightGrads);
        result.AddRange(tableGrads);
        result.Add(outputWeightGrad);
        result.Add(stackedOutputGrads.sum([0L, 1L]));
        return result;
    }

    /// <summary>The input of hidden layer <paramref name="k"/> (k = layers: of the output layer) at one step.</summary>
    private static Tensor LayerInput(int k, List<Tensor> saved, int offset, ChainShape shape, Tensor input, Tensor residualSum)
    {
        if (k == 0) return input;
        return k - 1 == shape.ResidualTo ? residualSum : saved[offset + k];
    }
}
