using System.Numerics;
using System.Runtime.CompilerServices;
using Ddvi.Runtime;
using static TorchSharp.torch;

namespace Ddvi.Models;

/// <summary>
/// The CPU kernel behind <see cref="DenoiserChainFunction"/>: each step's layers as direct BLAS products
/// (<see cref="CpuBlas"/>) with the bias-and-time-embedding rows, ReLU, residual sum and DDIM update done in C# on the same
/// memory, and every activation written straight into one <c>[T, B, hidden]</c> buffer per layer. A step of the
/// 4-layer, 128-unit denoiser is then 5 products and a few vectorised passes, where as tensor operations it is ≈ 12
/// operations at 3–20 µs each (more than the 128 × 128 product itself).
/// </summary>
/// <remarks>
/// Buffers are indexed by state: index i holds what step t = T − i computed from y_t = states[i]. Float32 and float64,
/// contiguous CPU tensors.
/// </remarks>
internal static unsafe class DenoiserChainKernel
{
    /// <summary>What the forward pass keeps for the backward pass, all indexed by state (see remarks).</summary>
    /// <param name="States">y_T, …, y_0 as <c>[T + 1, B, d]</c>.</param>
    /// <param name="Activations">Each hidden layer's ReLU output, <c>[T, B, hidden]</c>.</param>
    /// <param name="ResidualSums">The residual sum that the layer after <see cref="DenoiserChainFunction.ChainShape.ResidualTo"/> reads, or null.</param>
    internal sealed record ForwardResult(Tensor States, Tensor[] Activations, Tensor? ResidualSums);

    /// <summary>Whether the kernel can run on these inputs; otherwise the tensor-operation path does.</summary>
    public static bool Supports(Tensor yT, IReadOnlyList<Tensor> weights, IReadOnlyList<Tensor> tables, Tensor outputWeight, Tensor outputBias)
    {
        if (!CpuBlas.IsAvailable) return false;
        var type = yT.dtype;
        if (type != ScalarType.Float32 && type != ScalarType.Float64) return false;
        bool Plain(Tensor t) => t.dtype == type && t.device_type == TorchSharp.DeviceType.CPU && t.is_contiguous();
        return Plain(yT) && weights.All(w => Plain(w) && w.dim() == 2) && tables.All(Plain) && Plain(outputWeight) && Plain(outputBias)
               && yT.shape[0] * Math.Max(weights[0].shape[0], yT.shape[1]) < int.MaxValue;
    }

    public static ForwardResult Forward(DenoiserChainFunction.ChainShape shape, Tensor yT, Tensor[] weights, Tensor[] tables, Tensor outputWeight, Tensor outputBias) =>
        yT.dtype == ScalarType.Float32
            ? Forward<float>(shape, yT, weights, tables, outputWeight, outputBias)
            : Forward<double>(shape, yT, weights, tables, outputWeight, outputBias);

    /// <summary>
    /// The backward recursion through the steps: returns ∂L/∂y_T <c>[B, d]</c>, each hidden layer's pre-activation gradient
    /// <c>[T, B, hidden]</c> and ∂L/∂ε̂ <c>[T, B, d]</c>, all indexed by state. Weight and table gradients are sums of
    /// these over steps, taken by the caller as single products.
    /// </summary>
    public static (Tensor StartGrad, Tensor[] PreGrads, Tensor OutputGrads) Backward(DenoiserChainFunction.ChainShape shape, ForwardResult forward,
        Tensor[] weights, Tensor outputWeight, Tensor gradStates) =>
        forward.States.dtype == ScalarType.Float32
            ? Backward<float>(shape, forward, weights, outputWeight, gradStates)
            : Backward<double>(shape, forward, weights, outputWeight, gradStates);

    // Fully optimised from the first call: these loops run thousands of times per epoch, from the first step on.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static ForwardResult Forward<T>(DenoiserChainFunction.ChainShape shape, Tensor yT, Tensor[] weights, Tensor[] tables, Tensor outputWeight, Tensor outputBias)
        where T : unmanaged, INumber<T>
    {
        int steps = shape.Steps, layers = shape.Layers;
        int batch = (int)yT.shape[0], width = (int)yT.shape[1], hidden = (int)weights[0].shape[0];
        int block = batch * hidden;
        var options = (dtype: yT.dtype, device: yT.device);
        var states = empty([steps + 1, batch, width], options.dtype, options.device);
        var activations = Enumerable.Range(0, layers).Select(_ => empty([steps, batch, hidden], options.dtype, options.device)).ToArray();
        var residualSums = shape.ResidualTo >= 0 ? empty([steps, batch, hidden], options.dtype, options.device) : null;
        using var noise = empty([batch, width], options.dtype, options.device);                 // ε̂ of the current step

        T* statePointer = TensorMemory.Pointer<T>(states);
        T* noisePointer = TensorMemory.Pointer<T>(noise);
        T* outputWeightPointer = TensorMemory.Pointer<T>(outputWeight);
        var bias = new ReadOnlySpan<T>(TensorMemory.Pointer<T>(outputBias), width);
        TensorMemory.Elements<T>(yT).CopyTo(new Span<T>(statePointer, batch * width));
        var weightPointers = weights.Select(w => (nint)TensorMemory.Pointer<T>(w)).ToArray();
        var tablePointers = tables.Select(t => (nint)TensorMemory.Pointer<T>(t)).ToArray();
        var activationPointers = activations.Select(a => (nint)TensorMemory.Pointer<T>(a)).ToArray();
        T* sumPointer = residualSums is null ? null : TensorMemory.Pointer<T>(residualSums);
        bool perRowFirstTable = tables[0].dim() == 3;

        for (int i = 0; i < steps; i++)
        {
            int row = steps - 1 - i;                                                              // step t = T − i reads table row t − 1
            T* y = statePointer + (long)i * batch * width;
            T* input = y;
            int inputWidth = width;
            T* residualStart = null;
            for (int k = 0; k < layers; k++)
            {
                T* activation = (T*)activationPointers[k] + (long)i * block;
                var target = new Span<T>(activation, block);
                if (k == 0 && perRowFirstTable)
                    new ReadOnlySpan<T>((T*)tablePointers[0] + (long)row * block, block).CopyTo(target);
                else
                {
                    var tableRow = new ReadOnlySpan<T>((T*)tablePointers[k] + (long)row * hidden, hidden);
                    for (int b = 0; b < batch; b++) tableRow.CopyTo(target.Slice(b * hidden, hidden));
                }
                CpuBlas.Gemm(false, true, batch, hidden, inputWidth, T.One, input, inputWidth, (T*)weightPointers[k], (int)weights[k].stride(0), T.One, activation, hidden);
                ElementwiseKernels.ReluInPlace(target);
                input = activation;
                inputWidth = hidden;
                if (k == shape.ResidualFrom) residualStart = activation;
                if (k == shape.ResidualTo)
                {
                    T* sum = sumPointer + (long)i * block;
                    ElementwiseKernels.Add(target, new ReadOnlySpan<T>(residualStart, block), new Span<T>(sum, block));
                    input = sum;
                }
            }
            var noiseRows = new Span<T>(noisePointer, batch * width);
            for (int b = 0; b < batch; b++) bias.CopyTo(noiseRows.Slice(b * width, width));
            CpuBlas.Gemm(false, true, batch, width, hidden, T.One, input, hidden, outputWeightPointer, hidden, T.One, noisePointer, width);
            var (keepY, keepEps) = shape.Coefficients[row];
            T keepState = T.CreateChecked(keepY), keepNoise = T.CreateChecked(keepEps);
            T* next = y + batch * width;
            for (int j = 0; j < batch * width; j++)
                next[j] = noisePointer[j] * keepNoise + y[j] * keepState;
        }
        return new ForwardResult(states, activations, residualSums);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static (Tensor, Tensor[], Tensor) Backward<T>(DenoiserChainFunction.ChainShape shape, ForwardResult forward,
        Tensor[] weights, Tensor outputWeight, Tensor gradStates) where T : unmanaged, INumber<T>
    {
        int steps = shape.Steps, layers = shape.Layers;
        var states = forward.States;
        int batch = (int)states.shape[1], width = (int)states.shape[2], hidden = (int)weights[0].shape[0];
        int block = batch * hidden;
        var (dtype, device) = (states.dtype, states.device);
        var gradIn = gradStates.contiguous();
        var preGrads = Enumerable.Range(0, layers).Select(_ => empty([steps, batch, hidden], dtype, device)).ToArray();
        var outputGrads = empty([steps, batch, width], dtype, device);
        var grad = gradIn[steps].clone();                                                         // ∂L/∂y_0, then ∂L/∂y_t going back
        using var hiddenGrad = empty([batch, hidden], dtype, device);
        using var residualGrad = empty([batch, hidden], dtype, device);
        using var inputGrad = empty([batch, width], dtype, device);

        T* gradPointer = TensorMemory.Pointer<T>(grad);
        T* gradStatePointer = TensorMemory.Pointer<T>(gradIn);
        T* outputGradPointer = TensorMemory.Pointer<T>(outputGrads);
        T* outputWeightPointer = TensorMemory.Pointer<T>(outputWeight);
        T* hiddenGradPointer = TensorMemory.Pointer<T>(hiddenGrad);
        T* residualGradPointer = TensorMemory.Pointer<T>(residualGrad);
        T* inputGradPointer = TensorMemory.Pointer<T>(inputGrad);
        var weightPointers = weights.Select(w => (nint)TensorMemory.Pointer<T>(w)).ToArray();
        var activationPointers = forward.Activations.Select(a => (nint)TensorMemory.Pointer<T>(a)).ToArray();
        var preGradPointers = preGrads.Select(g => (nint)TensorMemory.Pointer<T>(g)).ToArray();
        var hiddenGrads = new Span<T>(hiddenGradPointer, block);
        var residualGrads = new Span<T>(residualGradPointer, block);
        int small = batch * width;

        // Step t read state i = T − t; walk t = 1..T, i.e. i = T − 1 down to 0.
        for (int i = steps - 1; i >= 0; i--)
        {
            int row = steps - 1 - i;
            var (keepY, keepEps) = shape.Coefficients[row];
            T keepState = T.CreateChecked(keepY), keepNoise = T.CreateChecked(keepEps);
            T* outputGrad = outputGradPointer + (long)i * small;
            for (int j = 0; j < small; j++) outputGrad[j] = gradPointer[j] * keepNoise;
            CpuBlas.Gemm(false, false, batch, hidden, width, T.One, outputGrad, width, outputWeightPointer, hidden, T.Zero, hiddenGradPointer, hidden);
            bool residualPending = false;
            for (int k = layers - 1; k >= 0; k--)
            {
                if (k == shape.ResidualTo) { hiddenGrads.CopyTo(residualGrads); residualPending = true; }
                if (k == shape.ResidualFrom && residualPending) ElementwiseKernels.Add<T>(hiddenGrads, residualGrads, hiddenGrads);
                T* preGrad = (T*)preGradPointers[k] + (long)i * block;
                ElementwiseKernels.KeepWherePositive<T>(hiddenGrads, new ReadOnlySpan<T>((T*)activationPointers[k] + (long)i * block, block), new Span<T>(preGrad, block));
                if (k > 0)
                    CpuBlas.Gemm(false, false, batch, hidden, hidden, T.One, preGrad, hidden, (T*)weightPointers[k], (int)weights[k].stride(0), T.Zero, hiddenGradPointer, hidden);
                else
                    CpuBlas.Gemm(false, false, batch, width, hidden, T.One, preGrad, hidden, (T*)weightPointers[0], (int)weights[0].stride(0), T.Zero, inputGradPointer, width);
            }
            // y_{t−1} = KeepY·y_t + KeepEps·ε̂(y_t), and y_t may also be read directly by the loss.
            T* direct = gradStatePointer + (long)i * small;
            for (int j = 0; j < small; j++)
                gradPointer[j] = inputGradPointer[j] + gradPointer[j] * keepState + direct[j];
        }
        return (grad, preGrads, outputGrads);
    }
}
