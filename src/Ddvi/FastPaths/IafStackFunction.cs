using Ddvi.Flows;
using TorchSharp;
using static TorchSharp.torch;
using static TorchSharp.torch.autograd;

namespace Ddvi.FastPaths;

/// <summary>
/// A whole <see cref="IafStack"/> as one autograd operation on the CPU in float32: the same function and gradients as
/// its modules (the reference, <see cref="IafStack.forward"/> with this switched off), computed with direct BLAS
/// products (<see cref="CpuBlas"/>) and the element-wise steps in C#. Per IAF layer, MADE's masked layers and its
/// context map, a₁ = ReLU(z (W₀⊙M₀)ᵀ + b₀ + h W_hᵀ + b_h), a_{j+1} = ReLU(a_j (W_j⊙M_j)ᵀ + b_j), (s, m) = a_J (W_J⊙M_J)ᵀ + b_J,
/// then z′ = m + σ(s)(z − m) and log det += Σ log σ(s).
/// </summary>
/// <remarks>
/// Why: a stack is ≈ 20 tensor operations a layer on [B, 128] tensors, each costing more in dispatch, graph recording and
/// small-product threading than in arithmetic. At batch 128 the IAF-VAE's four-layer stack took 2.16 ms forward and
/// backward on two threads as modules and takes 1.36 ms as this operation, most of it MKL's small products
/// (docs/performance.md).
/// Inputs, in order: the <see cref="StackShape"/>, z₀ <c>[B, d]</c>, h <c>[B, C]</c>, then per IAF layer each masked
/// layer's weight, bias and mask, and the context map's weight and bias. Output: <c>[B, d + 1]</c>, z_K beside the total
/// log-determinant. Only first derivatives are supported.
/// </remarks>
internal sealed class IafStackFunction : SingleTensorFunction<IafStackFunction>
{
    /// <summary>Sizes: d variables, C context features, H hidden units, L IAF layers of J hidden layers each.</summary>
    internal sealed record StackShape(int Dim, int Context, int Hidden, int Layers, int HiddenLayers)
    {
        /// <summary>Tensors per IAF layer among the inputs: (weight, bias, mask) of J + 1 masked layers, then the context's weight and bias.</summary>
        public int PerLayer => 3 * (HiddenLayers + 1) + 2;
    }

    /// <summary>Whether <see cref="IafStack"/> runs through this operation where it applies (the default).</summary>
    internal static bool Enabled { get; set; } = true;

    public override string Name => nameof(IafStackFunction);

    /// <summary>Whether the stack and its inputs suit this operation: float32 CPU tensors and parameters, and a BLAS to call.</summary>
    public static bool Supports(IafStack stack, Tensor z0, Tensor h) =>
        Enabled && CpuBlas.IsAvailable && Float32OnCpu(z0) && Float32OnCpu(h) && z0.dim() == 2 && h.dim() == 2 && z0.shape[0] == h.shape[0]
        && stack.parameters().All(Float32OnCpu);

    private static bool Float32OnCpu(Tensor tensor) => tensor.device_type == DeviceType.CPU && tensor.dtype == ScalarType.Float32;

    /// <summary>(z_K <c>[B, d]</c>, total log-determinant <c>[B]</c>) of the stack.</summary>
    public static (Tensor Z, Tensor LogDet) Run(IafStack stack, Tensor z0, Tensor h)
    {
        var layers = stack.Layers;
        var made = layers[0].Made;
        var shape = new StackShape(made.Dim, (int)made.Context.weight!.shape[1], (int)made.MaskedLayers[0].OutFeatures, layers.Count, made.MaskedLayers.Count - 1);
        var arguments = new List<object>(3 + shape.Layers * shape.PerLayer) { shape, z0, h };
        foreach (var layer in layers)
        {
            foreach (var masked in layer.Made.MaskedLayers)
            {
                arguments.Add(masked.Weight);
                arguments.Add(masked.Bias);
                arguments.Add(masked.Mask);
            }
            arguments.Add(layer.Made.Context.weight!);
            arguments.Add(layer.Made.Context.bias!);
        }
        var output = apply([.. arguments]);
        return (output.narrow(1, 0, shape.Dim), output.select(1, shape.Dim));
    }

    public override unsafe Tensor forward(AutogradContext ctx, params object[] vars)
    {
        var shape = (StackShape)vars[0];
        var z0 = ((Tensor)vars[1]).contiguous();
        var h = ((Tensor)vars[2]).contiguous();
        int b = (int)z0.shape[0], d = shape.Dim, hidden = shape.Hidden, hiddenLayers = shape.HiddenLayers;
        ctx.save_data(nameof(StackShape), shape);

        // Saved for the backward pass: h, then per layer the masked weights (J + 1), the masks (J + 1), the context
        // weight, the layer's input z, its activations a₁ … a_J and its output (s, m).
        var saved = new List<Tensor> { h };
        var output = empty([b, d + 1], dtype: ScalarType.Float32);
        var z = z0.clone();
        var logDet = zeros([b], dtype: ScalarType.Float32);
        float* logDetPointer = TensorMemory.Pointer<float>(logDet);
        for (int layer = 0; layer < shape.Layers; layer++)
        {
            int offset = 3 + layer * shape.PerLayer;
            var masked = new Tensor[hiddenLayers + 1];
            var masks = new Tensor[hiddenLayers + 1];
            for (int j = 0; j <= hiddenLayers; j++)
            {
                masks[j] = ((Tensor)vars[offset + 3 * j + 2]).contiguous();
                masked[j] = Masked((Tensor)vars[offset + 3 * j], masks[j]);
            }
            var contextWeight = ((Tensor)vars[offset + 3 * (hiddenLayers + 1)]).contiguous();
            var contextBias = ((Tensor)vars[offset + 3 * (hiddenLayers + 1) + 1]).contiguous();
            saved.AddRange(masked);
            saved.AddRange(masks);
            saved.Add(contextWeight);
            saved.Add(z);

            // a₁ = ReLU(z W₀ᵀ + h W_hᵀ + b₀ + b_h).
            var activation = empty([b, hidden], dtype: ScalarType.Float32);
            float* a = TensorMemory.Pointer<float>(activation);
            CpuBlas.Gemm(false, true, b, hidden, d, 1f, TensorMemory.Pointer<float>(z), d, TensorMemory.Pointer<float>(masked[0]), d, 0f, a, hidden);
            CpuBlas.Gemm(false, true, b, hidden, shape.Context, 1f, TensorMemory.Pointer<float>(h), shape.Context, TensorMemory.Pointer<float>(contextWeight), shape.Context, 1f, a, hidden);
            AddBiasesRelu(a, b, hidden, Pointer((Tensor)vars[offset + 1]), TensorMemory.Pointer<float>(contextBias));
            saved.Add(activation);
            for (int j = 1; j < hiddenLayers; j++)
            {
                var following = empty([b, hidden], dtype: ScalarType.Float32);
                float* n = TensorMemory.Pointer<float>(following);
                CpuBlas.Gemm(false, true, b, hidden, hidden, 1f, a, hidden, TensorMemory.Pointer<float>(masked[j]), hidden, 0f, n, hidden);
                AddBiasesRelu(n, b, hidden, Pointer((Tensor)vars[offset + 3 * j + 1]), null);
                saved.Add(following);
                a = n;
            }
            // (s, m) = a_J W_Jᵀ + b_J, then z′ = m + σ(s)(z − m) and log det += Σ log σ(s).
            var sm = empty([b, 2 * d], dtype: ScalarType.Float32);
            float* o = TensorMemory.Pointer<float>(sm);
            CpuBlas.Gemm(false, true, b, 2 * d, hidden, 1f, a, hidden, TensorMemory.Pointer<float>(masked[hiddenLayers]), hidden, 0f, o, 2 * d);
            float* outputBias = Pointer((Tensor)vars[offset + 3 * hiddenLayers + 1]);
            var next = empty([b, d], dtype: ScalarType.Float32);
            float* zIn = TensorMemory.Pointer<float>(z), zOut = TensorMemory.Pointer<float>(next);
            for (int row = 0; row < b; row++)
            {
                float* rowOut = o + (long)row * 2 * d;
                for (int v = 0; v < 2 * d; v++) rowOut[v] += outputBias[v];
                float sum = 0;
                for (int v = 0; v < d; v++)
                {
                    float s = rowOut[v], m = rowOut[d + v];
                    float gate = Sigmoid(s);
                    zOut[row * d + v] = m + gate * (zIn[row * d + v] - m);
                    sum += LogSigmoid(s);
                }
                logDetPointer[row] += sum;
            }
            saved.Add(sm);
            z = next;
        }
        ctx.save_for_backward(saved);
        output.narrow(1, 0, d).copy_(z);
        output.select(1, d).copy_(logDet);
        return output;
    }

    public override unsafe List<Tensor> backward(AutogradContext ctx, Tensor gradOutput) // [B, d + 1]
    {
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        var shape = (StackShape)ctx.get_data(nameof(StackShape));
        var saved = ctx.get_saved_variables();
        int d = shape.Dim, hidden = shape.Hidden, hiddenLayers = shape.HiddenLayers, context = shape.Context;
        var h = saved[0];
        int b = (int)h.shape[0];
        var grad = gradOutput.contiguous();
        var gradZ = grad.narrow(1, 0, d).contiguous();                          // ∂L/∂z′ of the current layer
        var gradLogDet = grad.select(1, d).contiguous();                        // ∂L/∂log det, the same for every layer
        var gradH = zeros([b, context], dtype: ScalarType.Float32);
        float* dh = TensorMemory.Pointer<float>(gradH), dLogDet = TensorMemory.Pointer<float>(gradLogDet), hp = TensorMemory.Pointer<float>(h);
        int savedPerLayer = 2 * (hiddenLayers + 1) + 1 + 1 + hiddenLayers + 1;  // masked weights, masks, context weight, z, activations, (s, m)
        var layerGrads = new List<Tensor>[shape.Layers];
        var gradOut = empty([b, 2 * d], dtype: ScalarType.Float32);
        var gradA = empty([b, hidden], dtype: ScalarType.Float32);
        var gradPre = empty([b, hidden], dtype: ScalarType.Float32);
        float* dOut = TensorMemory.Pointer<float>(gradOut), dA = TensorMemory.Pointer<float>(gradA), dPre = TensorMemory.Pointer<float>(gradPre);
        for (int layer = shape.Layers - 1; layer >= 0; layer--)
        {
            int offset = 1 + layer * savedPerLayer;
            var masked = saved.GetRange(offset, hiddenLayers + 1);
            var masks = saved.GetRange(offset + hiddenLayers + 1, hiddenLayers + 1);
            int next = offset + 2 * (hiddenLayers + 1);
            var contextWeight = saved[next];
            var zIn = saved[next + 1];
            var activations = saved.GetRange(next + 2, hiddenLayers);
            var sm = saved[next + 2 + hiddenLayers];
            float* o = TensorMemory.Pointer<float>(sm), zp = TensorMemory.Pointer<float>(zIn), dz = TensorMemory.Pointer<float>(gradZ);
            var gradZIn = empty([b, d], dtype: ScalarType.Float32);
            float* dzIn = TensorMemory.Pointer<float>(gradZIn);

            // z′ = m + g (z − m), g = σ(s): ∂/∂m = 1 − g, ∂/∂z = g, ∂/∂s = (z − m) g (1 − g); ∂ log σ(s)/∂s = 1 − g.
            for (int row = 0; row < b; row++)
                for (int v = 0; v < d; v++)
                {
                    int i = row * d + v;
                    float s = o[row * 2 * d + v], m = o[row * 2 * d + d + v];
                    float gate = Sigmoid(s), upstream = dz[i];
                    dzIn[i] = upstream * gate;
                    dOut[row * 2 * d + d + v] = upstream * (1 - gate);
                    dOut[row * 2 * d + v] = upstream * (zp[i] - m) * gate * (1 - gate) + dLogDet[row] * (1 - gate);
                }

            // Weight and bias gradients, newest layer first (collected into input order below).
            var grads = new Tensor[3 * (hiddenLayers + 1) + 2];
            var lastInput = activations[hiddenLayers - 1];
            grads[3 * hiddenLayers] = MaskedWeightGrad(dOut, 2 * d, lastInput, hidden, b, masks[hiddenLayers]);
            grads[3 * hiddenLayers + 1] = ColumnSums(dOut, b, 2 * d);
            CpuBlas.Gemm(false, false, b, hidden, 2 * d, 1f, dOut, 2 * d, TensorMemory.Pointer<float>(masked[hiddenLayers]), hidden, 0f, dA, hidden);
            for (int j = hiddenLayers - 1; j >= 0; j--)
            {
                ElementwiseKernels.KeepWherePositive(new ReadOnlySpan<float>(dA, b * hidden), new ReadOnlySpan<float>(TensorMemory.Pointer<float>(activations[j]), b * hidden),
                    new Span<float>(dPre, b * hidden));
                var bias = ColumnSums(dPre, b, hidden);
                grads[3 * j + 1] = bias;
                if (j > 0)
                {
                    grads[3 * j] = MaskedWeightGrad(dPre, hidden, activations[j - 1], hidden, b, masks[j]);
                    CpuBlas.Gemm(false, false, b, hidden, hidden, 1f, dPre, hidden, TensorMemory.Pointer<float>(masked[j]), hidden, 0f, dA, hidden);
                }
                else
                {
                    grads[0] = MaskedWeightGrad(dPre, hidden, zIn, d, b, masks[0]);
                    var contextGrad = empty([hidden, context], dtype: ScalarType.Float32);
                    CpuBlas.Gemm(true, false, hidden, context, b, 1f, dPre, hidden, hp, context, 0f, TensorMemory.Pointer<float>(contextGrad), context);
                    grads[3 * (hiddenLayers + 1)] = contextGrad;
                    grads[3 * (hiddenLayers + 1) + 1] = bias.clone();
                    CpuBlas.Gemm(false, false, b, d, hidden, 1f, dPre, hidden, TensorMemory.Pointer<float>(masked[0]), d, 1f, dzIn, d);
                    CpuBlas.Gemm(false, false, b, context, hidden, 1f, dPre, hidden, TensorMemory.Pointer<float>(contextWeight), context, 1f, dh, context);
                }
            }
            layerGrads[layer] = [.. grads];
            gradZ = gradZIn;
        }

        // The masks' gradients are not wanted (null); the weights' are masked, as autograd's would be through W ⊙ M.
        var result = new List<Tensor> { null!, gradZ, gradH };
        for (int layer = 0; layer < shape.Layers; layer++)
        {
            for (int j = 0; j <= hiddenLayers; j++)
            {
                result.Add(layerGrads[layer][3 * j]);
                result.Add(layerGrads[layer][3 * j + 1]);
                result.Add(null!);
            }
            result.Add(layerGrads[layer][3 * (hiddenLayers + 1)]);
            result.Add(layerGrads[layer][3 * (hiddenLayers + 1) + 1]);
        }
        foreach (var gradient in result)
            if (gradient is not null) scope.MoveToOuter(gradient);
        return result;
    }

    private static unsafe float* Pointer(Tensor tensor) => TensorMemory.Pointer<float>(tensor.is_contiguous() ? tensor : tensor.contiguous());

    /// <summary>W ⊙ M as a new contiguous tensor.</summary>
    private static Tensor Masked(Tensor weight, Tensor mask)
    {
        var w = weight.detach().contiguous();
        var result = empty(w.shape, dtype: ScalarType.Float32);
        ElementwiseKernels.Multiply<float>(TensorMemory.Elements<float>(w), TensorMemory.Elements<float>(mask), TensorMemory.Elements<float>(result));
        return result;
    }

    /// <summary>((∂L/∂pre)ᵀ · input) ⊙ M: the gradient of W in pre = x (W ⊙ M)ᵀ.</summary>
    private static unsafe Tensor MaskedWeightGrad(float* gradPre, int outFeatures, Tensor input, int inFeatures, int rows, Tensor mask)
    {
        var result = empty([outFeatures, inFeatures], dtype: ScalarType.Float32);
        CpuBlas.Gemm(true, false, outFeatures, inFeatures, rows, 1f, gradPre, outFeatures, TensorMemory.Pointer<float>(input), inFeatures, 0f,
            TensorMemory.Pointer<float>(result), inFeatures);
        var values = TensorMemory.Elements<float>(result);
        ElementwiseKernels.Multiply<float>(values, TensorMemory.Elements<float>(mask), values);
        return result;
    }

    /// <summary>The sums of the columns of a row-major <c>[rows, columns]</c> matrix, in row order.</summary>
    private static unsafe Tensor ColumnSums(float* values, int rows, int columns)
    {
        var result = zeros([columns], dtype: ScalarType.Float32);
        var sums = TensorMemory.Elements<float>(result);
        for (int row = 0; row < rows; row++)
            ElementwiseKernels.Add<float>(sums, new ReadOnlySpan<float>(values + (long)row * columns, columns), sums);
        return result;
    }

    /// <summary>Each row ← ReLU(row + bias (+ secondBias)).</summary>
    private static unsafe void AddBiasesRelu(float* values, int rows, int columns, float* bias, float* secondBias)
    {
        var first = new ReadOnlySpan<float>(bias, columns);
        for (int row = 0; row < rows; row++)
        {
            var span = new Span<float>(values + (long)row * columns, columns);
            ElementwiseKernels.Add<float>(span, first, span);
            if (secondBias is not null) ElementwiseKernels.Add<float>(span, new ReadOnlySpan<float>(secondBias, columns), span);
        }
        ElementwiseKernels.ReluInPlace(new Span<float>(values, rows * columns));
    }

    private static float Sigmoid(float s) => 1f / (1f + MathF.Exp(-s));

    /// <summary>log σ(s) = min(s, 0) − log(1 + e^{−|s|}), finite where σ underflows.</summary>
    private static float LogSigmoid(float s) => MathF.Min(s, 0) - MathF.Log(1f + MathF.Exp(-MathF.Abs(s)));
}
