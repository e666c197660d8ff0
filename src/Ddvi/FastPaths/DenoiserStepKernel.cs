using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using Ddvi.Runtime;
using static TorchSharp.torch;

namespace Ddvi.FastPaths;

/// <summary>
/// The CPU kernel behind <see cref="DenoiserStepFunction"/>: one evaluation of a time-conditioned denoiser, each row at
/// its own timestep, in float32 on <see cref="ChainProducts"/>' AVX-512 blocks. Each hidden layer's accumulators start
/// from the row's bias plus time embedding and ReLU is applied as they are stored; the backward pass walks the layers
/// back with the same blocks, and the weight, bias and table gradients are summed over the batch at the end (the weight
/// gradients as one MKL product each, the bias and table gradients in one pass).
/// </summary>
/// <remarks>
/// Float32, contiguous CPU tensors, hidden widths a multiple of <see cref="ChainProducts.Columns"/>, inputs and outputs at
/// most <see cref="DenoiserChainKernel.MaxNarrowWidth"/> wide, AVX-512 present (<see cref="Supports"/>). Rows are split
/// between the OpenMP team's threads as the chain kernel splits them (<see cref="DenoiserChainKernel.SplitRows"/>), at
/// least <see cref="MinimumRowsPerThread"/> to a thread.
/// </remarks>
internal static unsafe class DenoiserStepKernel
{
    /// <summary>
    /// The fewest rows worth a thread of their own: below it the rows stay on one thread. One call is small (0.04 GFLOP
    /// forward and backward at the paper's batch of 128), and handing half of it to a second thread cost more than it
    /// saved: DDVI's stage-1 step at batch 128 took 0.67–0.68 ms on one thread against 0.73–0.74 ms split in two
    /// (two-thread team, alternated in one process). On one thread the weight gradients are the blocks' products too.
    /// </summary>
    internal static int MinimumRowsPerThread { get; set; } = 128;

    /// <summary>What the forward pass keeps for the backward pass.</summary>
    /// <param name="Output">ε̂ <c>[B, d]</c>.</param>
    /// <param name="Activations">Each hidden layer's ReLU output <c>[B, hidden]</c>.</param>
    /// <param name="ResidualSum">The residual sum that the layer after the residual connection reads, or null.</param>
    /// <param name="FirstTransposed">W_0ᵀ <c>[in, hidden]</c>, which the backward pass reads too.</param>
    internal sealed record ForwardResult(Tensor Output, Tensor[] Activations, Tensor? ResidualSum, Tensor FirstTransposed);

    /// <summary>The gradients of one backward pass, in the function's input order.</summary>
    internal sealed record Gradients(Tensor Input, Tensor[] Weights, Tensor[] Biases, Tensor[] Tables, Tensor OutputWeight, Tensor OutputBias);

    /// <summary>Whether the kernel runs on these inputs; otherwise the denoiser's own tensor operations do.</summary>
    public static bool Supports(Tensor input, Tensor t, IReadOnlyList<Tensor> weights, IReadOnlyList<Tensor> biases, IReadOnlyList<Tensor> tables,
        Tensor outputWeight, Tensor outputBias)
    {
        if (!Vector512.IsHardwareAccelerated || !CpuBlas.IsAvailable) return false;
        static bool Plain(Tensor x) => x.dtype == ScalarType.Float32 && x.device_type == TorchSharp.DeviceType.CPU && x.is_contiguous();
        if (!Plain(input) || !weights.All(Plain) || !biases.All(Plain) || !tables.All(Plain) || !Plain(outputWeight) || !Plain(outputBias))
            return false;
        if (t.dtype != ScalarType.Int64 || t.device_type != TorchSharp.DeviceType.CPU || !t.is_contiguous() || input.shape[0] < 1) return false;
        long hidden = weights[0].shape[0];
        return hidden % ChainProducts.Columns == 0 && input.shape[1] <= DenoiserChainKernel.MaxNarrowWidth
               && outputWeight.shape[0] <= DenoiserChainKernel.MaxNarrowWidth && input.shape[0] * hidden < int.MaxValue;
    }

    /// <summary>
    /// Checks every timestep against 1..T (the table rows the kernel reads) with the message of the tensor path, on the
    /// host (the values live on the CPU; no device sync).
    /// </summary>
    public static void CheckTimesteps(Tensor t, int steps, string owner)
    {
        var values = TensorMemory.Elements<long>(t);
        long min = long.MaxValue, max = long.MinValue;
        foreach (long value in values)
        {
            min = Math.Min(min, value);
            max = Math.Max(max, value);
        }
        if (min < 1 || max > steps)
            throw new ArgumentOutOfRangeException(nameof(t), $"{owner}: timesteps must lie in 1..{steps}, got values in {min}..{max}.");
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static ForwardResult Forward(DenoiserStepFunction.Network network, Tensor input, Tensor t, Tensor[] weights, Tensor[] biases, Tensor[] tables,
        Tensor outputWeight, Tensor outputBias)
    {
        int layers = network.Layers;
        int batch = (int)input.shape[0], width = (int)input.shape[1], hidden = (int)weights[0].shape[0], outputWidth = (int)outputWeight.shape[0];
        var output = empty([batch, outputWidth], ScalarType.Float32);
        var activations = new Tensor[layers];
        for (int k = 0; k < layers; k++) activations[k] = empty([batch, hidden], ScalarType.Float32);
        var residualSum = network.ResidualTo >= 0 ? empty([batch, hidden], ScalarType.Float32) : null;
        // The blocks read each weight as [in, out] rows: W_0ᵀ [in, hidden] here, W_kᵀ [hidden, hidden] in each thread.
        var firstTransposed = empty([width, hidden], ScalarType.Float32);
        var (chunks, rows) = DenoiserChainKernel.SplitRows(batch, MinimumRowsPerThread);
        using var hiddenTransposed = layers > 1 ? empty([chunks, layers - 1, hidden, hidden], ScalarType.Float32) : null;
        ChainProducts.Transpose(TensorMemory.Pointer<float>(weights[0]), hidden, width, TensorMemory.Pointer<float>(firstTransposed));
        // Each row's accumulators start from b_k + e_k[t − 1]: the sums for every t, and each row's index into them.
        int steps = network.Steps;
        using var startTables = empty([layers, steps, hidden], ScalarType.Float32);
        for (int k = 0; k < layers; k++)
        {
            float* bias = TensorMemory.Pointer<float>(biases[k]), table = TensorMemory.Pointer<float>(tables[k]);
            float* sums = TensorMemory.Pointer<float>(startTables) + (long)k * steps * hidden;
            for (int row = 0; row < steps; row++)
                ElementwiseKernels.Add(new ReadOnlySpan<float>(bias, hidden), new ReadOnlySpan<float>(table + (long)row * hidden, hidden),
                    new Span<float>(sums + (long)row * hidden, hidden));
        }
        using var rowIndex = TableRows(t);

        var memory = new Memory(
            (nint)TensorMemory.Pointer<float>(input), (nint)TensorMemory.Pointer<int>(rowIndex),
            (nint)TensorMemory.Pointer<float>(firstTransposed), weights.Select(w => (nint)TensorMemory.Pointer<float>(w)).ToArray(),
            hiddenTransposed is null ? 0 : (nint)TensorMemory.Pointer<float>(hiddenTransposed),
            (nint)TensorMemory.Pointer<float>(startTables), steps,
            activations.Select(a => (nint)TensorMemory.Pointer<float>(a)).ToArray(), residualSum is null ? 0 : (nint)TensorMemory.Pointer<float>(residualSum),
            (nint)TensorMemory.Pointer<float>(outputWeight), (nint)TensorMemory.Pointer<float>(outputBias), (nint)TensorMemory.Pointer<float>(output),
            width, hidden, outputWidth);
        OpenMpTeam.For(chunks, chunks, chunk =>
        {
            int first = (int)chunk * rows;
            ForwardRows(network, memory, (int)chunk, first, Math.Min(batch, first + rows) - first);
        });
        return new ForwardResult(output, activations, residualSum, firstTransposed);
    }

    /// <summary>t − 1 for each row as int32 <c>[B]</c>: the table row it reads (t already checked against 1..T).</summary>
    private static Tensor TableRows(Tensor t)
    {
        var rows = empty([t.shape[0]], ScalarType.Int32);
        var values = TensorMemory.Elements<long>(t);
        var target = TensorMemory.Elements<int>(rows);
        for (int b = 0; b < values.Length; b++) target[b] = (int)values[b] - 1;
        return rows;
    }

    /// <summary>Raw memory of one forward pass (pointers as <see cref="nint"/> so that closures may hold them).</summary>
    private sealed record Memory(nint Input, nint RowIndex, nint FirstTransposed, nint[] Weights, nint HiddenTransposed, nint StartTables, int Steps, nint[] Activations, nint ResidualSum,
        nint OutputWeight, nint OutputBias, nint Output, int Width, int Hidden, int OutputWidth);

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void ForwardRows(DenoiserStepFunction.Network network, Memory memory, int chunk, int first, int rows)
    {
        int width = memory.Width, hidden = memory.Hidden;
        // Each thread transposes the hidden weights for itself: its blocks then read them from its own cache.
        long square = (long)hidden * hidden;
        float* transposed = (float*)memory.HiddenTransposed + (long)chunk * (network.Layers - 1) * square;
        for (int k = 1; k < network.Layers; k++)
            ChainProducts.Transpose((float*)memory.Weights[k], hidden, hidden, transposed + (k - 1) * square);
        int* rowIndex = (int*)memory.RowIndex + first;
        float* input = (float*)memory.Input + (long)first * width;
        int inputWidth = width;
        float* residualStart = null;
        for (int k = 0; k < network.Layers; k++)
        {
            float* activation = (float*)memory.Activations[k] + (long)first * hidden;
            var starts = new Starts((float*)memory.StartTables + (long)k * memory.Steps * hidden, hidden, rowIndex);
            if (k == 0) ChainProducts.Narrow(input, inputWidth, rows, (float*)memory.FirstTransposed, hidden, starts, activation);
            else ChainProducts.Rows(input, inputWidth, rows, transposed + (k - 1) * square, hidden, hidden, inputWidth, starts, true, activation, hidden);
            input = activation;
            inputWidth = hidden;
            if (k == network.ResidualFrom) residualStart = activation;
            if (k == network.ResidualTo)
            {
                float* sum = (float*)memory.ResidualSum + (long)first * hidden;
                int count = rows * hidden;
                ElementwiseKernels.Add(new ReadOnlySpan<float>(activation, count), new ReadOnlySpan<float>(residualStart, count), new Span<float>(sum, count));
                input = sum;
            }
        }
        ChainProducts.Dots(input, rows, hidden, (float*)memory.OutputWeight, memory.OutputWidth, (float*)memory.OutputBias,
            (float*)memory.Output + (long)first * memory.OutputWidth);
    }

    /// <summary>
    /// The gradients of every input given ∂L/∂ε̂ (<paramref name="outputGrad"/> <c>[B, d]</c>): the layers walked back on
    /// the threads' rows, then the weight gradients as products over the batch and the bias and table gradients summed.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static Gradients Backward(DenoiserStepFunction.Network network, Tensor input, Tensor t, Tensor[] weights, Tensor outputWeight,
        ForwardResult forward, Tensor outputGrad)
    {
        int layers = network.Layers;
        int batch = (int)input.shape[0], width = (int)input.shape[1], hidden = (int)weights[0].shape[0], outputWidth = (int)outputWeight.shape[0];
        var preGrads = new Tensor[layers];
        for (int k = 0; k < layers; k++) preGrads[k] = empty([batch, hidden], ScalarType.Float32);
        var inputGrad = empty([batch, width], ScalarType.Float32);
        using var hiddenGrad = empty([batch, hidden], ScalarType.Float32);
        using var residualGrad = network.ResidualTo >= 0 ? empty([batch, hidden], ScalarType.Float32) : null;
        var memory = new BackwardMemory(
            (nint)TensorMemory.Pointer<float>(outputGrad), (nint)TensorMemory.Pointer<float>(outputWeight),
            weights.Select(w => (nint)TensorMemory.Pointer<float>(w)).ToArray(), (nint)TensorMemory.Pointer<float>(forward.FirstTransposed),
            forward.Activations.Select(a => (nint)TensorMemory.Pointer<float>(a)).ToArray(), preGrads.Select(g => (nint)TensorMemory.Pointer<float>(g)).ToArray(),
            (nint)TensorMemory.Pointer<float>(hiddenGrad), residualGrad is null ? 0 : (nint)TensorMemory.Pointer<float>(residualGrad),
            (nint)TensorMemory.Pointer<float>(inputGrad), width, hidden, outputWidth);
        var (chunks, rows) = DenoiserChainKernel.SplitRows(batch, MinimumRowsPerThread);
        OpenMpTeam.For(chunks, chunks, chunk =>
        {
            int first = (int)chunk * rows;
            BackwardRows(network, memory, first, Math.Min(batch, first + rows) - first);
        });

        // Sums over the batch: ∂W_k = δ_kᵀ · (layer k's input), ∂b_k = Σ_b δ_k[b], ∂e_k[t − 1] = Σ_{b at t} δ_k[b]. On one
        // thread the products are the blocks' too; with the rows split, MKL's (threaded over both cores).
        bool ownProducts = chunks == 1;
        using var scratch = ownProducts ? empty([Math.Max(hidden, Math.Max(width, outputWidth)) * (long)batch + (long)width * hidden], ScalarType.Float32) : null;
        float* scratchPointer = ownProducts ? TensorMemory.Pointer<float>(scratch!) : null;
        var weightGrads = new Tensor[layers];
        var biasGrads = new Tensor[layers];
        var tableGrads = new Tensor[layers];
        long* timesteps = TensorMemory.Pointer<long>(t);
        for (int k = 0; k < layers; k++)
        {
            var layerInput = k == 0 ? input : k - 1 == network.ResidualTo ? forward.ResidualSum! : forward.Activations[k - 1];
            int inputWidth = k == 0 ? width : hidden;
            weightGrads[k] = empty([hidden, inputWidth], ScalarType.Float32);
            WeightGradient(TensorMemory.Pointer<float>(preGrads[k]), hidden, TensorMemory.Pointer<float>(layerInput), inputWidth, batch,
                TensorMemory.Pointer<float>(weightGrads[k]), scratchPointer);
            tableGrads[k] = zeros([network.Steps, hidden], ScalarType.Float32);
            biasGrads[k] = zeros([hidden], ScalarType.Float32);
            float* table = TensorMemory.Pointer<float>(tableGrads[k]), preGrad = TensorMemory.Pointer<float>(preGrads[k]);
            for (int b = 0; b < batch; b++)
                AddRow(table + (timesteps[b] - 1) * hidden, preGrad + (long)b * hidden, hidden);
            float* biasGrad = TensorMemory.Pointer<float>(biasGrads[k]);
            for (int row = 0; row < network.Steps; row++)
                AddRow(biasGrad, table + (long)row * hidden, hidden);
            preGrads[k].Dispose();
        }
        var lastInput = layers - 1 == network.ResidualTo ? forward.ResidualSum! : forward.Activations[layers - 1];
        var outputWeightGrad = empty([outputWidth, hidden], ScalarType.Float32);
        WeightGradient(TensorMemory.Pointer<float>(outputGrad), outputWidth, TensorMemory.Pointer<float>(lastInput), hidden, batch,
            TensorMemory.Pointer<float>(outputWeightGrad), scratchPointer);
        var outputBiasGrad = zeros([outputWidth], ScalarType.Float32);
        float* outputBiasSum = TensorMemory.Pointer<float>(outputBiasGrad), gradRows = TensorMemory.Pointer<float>(outputGrad);
        for (int b = 0; b < batch; b++)
            for (int j = 0; j < outputWidth; j++)
                outputBiasSum[j] += gradRows[(long)b * outputWidth + j];
        return new Gradients(inputGrad, weightGrads, biasGrads, tableGrads, outputWeightGrad, outputBiasGrad);
    }

    /// <summary>Raw memory of one backward pass; the <c>[B, hidden]</c> scratch rows are shared, each thread using only its own.</summary>
    private sealed record BackwardMemory(nint OutputGrad, nint OutputWeight, nint[] Weights, nint FirstTransposed, nint[] Activations, nint[] PreGrads,
        nint HiddenGrad, nint ResidualGrad, nint InputGrad, int Width, int Hidden, int OutputWidth);

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void BackwardRows(DenoiserStepFunction.Network network, BackwardMemory memory, int first, int rows)
    {
        int width = memory.Width, hidden = memory.Hidden, count = rows * hidden;
        long hiddenOffset = (long)first * hidden;
        float* hiddenGradPointer = (float*)memory.HiddenGrad + hiddenOffset;
        var hiddenGrads = new Span<float>(hiddenGradPointer, count);
        var residualGrads = memory.ResidualGrad == 0 ? default : new Span<float>((float*)memory.ResidualGrad + hiddenOffset, count);
        // ∂L/∂h_last = ∂L/∂ε̂ · W_out.
        ChainProducts.Narrow((float*)memory.OutputGrad + (long)first * memory.OutputWidth, memory.OutputWidth, rows, (float*)memory.OutputWeight, hidden,
            Starts.None, hiddenGradPointer, relu: false);
        bool residualPending = false;
        for (int k = network.Layers - 1; k >= 0; k--)
        {
            if (k == network.ResidualTo) { hiddenGrads.CopyTo(residualGrads); residualPending = true; }
            if (k == network.ResidualFrom && residualPending) ElementwiseKernels.Add<float>(hiddenGrads, residualGrads, hiddenGrads);
            float* preGrad = (float*)memory.PreGrads[k] + hiddenOffset;
            ElementwiseKernels.KeepWherePositive<float>(hiddenGrads, new ReadOnlySpan<float>((float*)memory.Activations[k] + hiddenOffset, count),
                new Span<float>(preGrad, count));
            if (k > 0) ChainProducts.Rows(preGrad, hidden, rows, (float*)memory.Weights[k], hidden, hidden, hidden, Starts.None, false, hiddenGradPointer, hidden);
            else ChainProducts.Dots(preGrad, rows, hidden, (float*)memory.FirstTransposed, width, null, (float*)memory.InputGrad + (long)first * width);
        }
    }

    /// <summary>
    /// destination <c>[out, in]</c> = δᵀ · x for δ <c>[B, out]</c> and x <c>[B, in]</c>: with <paramref name="scratch"/>
    /// (room for max(out, in) × B + in × out values) as the blocks' product over the batch on a transposed operand, δᵀ
    /// when <c>in</c> is a multiple of the blocks' width, else xᵀ (giving the transposed result, transposed back); without,
    /// or when neither width fits the blocks, MKL's.
    /// </summary>
    private static void WeightGradient(float* delta, int outputs, float* x, int inputs, int batch, float* destination, float* scratch)
    {
        if (scratch is not null && inputs % ChainProducts.Columns == 0)
        {
            ChainProducts.Transpose(delta, batch, outputs, scratch);                                 // δᵀ [out, B]
            ChainProducts.Rows(scratch, batch, outputs, x, inputs, inputs, batch, Starts.None, false, destination, inputs);
        }
        else if (scratch is not null && outputs % ChainProducts.Columns == 0)
        {
            float* transposedResult = scratch + (long)inputs * batch;
            ChainProducts.Transpose(x, batch, inputs, scratch);                                      // xᵀ [in, B]
            ChainProducts.Rows(scratch, batch, inputs, delta, outputs, outputs, batch, Starts.None, false, transposedResult, outputs);
            ChainProducts.Transpose(transposedResult, inputs, outputs, destination);
        }
        else
            CpuBlas.Gemm(true, false, outputs, inputs, batch, 1f, delta, outputs, x, inputs, 0f, destination, inputs);
    }

    /// <summary>target[c] += values[c] for c &lt; <paramref name="count"/>, a multiple of 16.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void AddRow(float* target, float* values, int count)
    {
        for (int c = 0; c < count; c += Vector512<float>.Count)
            (Vector512.Load(target + c) + Vector512.Load(values + c)).Store(target + c);
    }
}
