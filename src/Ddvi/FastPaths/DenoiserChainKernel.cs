using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using Ddvi.Runtime;
using static TorchSharp.torch;

namespace Ddvi.FastPaths;

/// <summary>
/// The CPU kernel behind <see cref="DenoiserChainFunction"/>: each step's layers as direct products, in float32 on
/// AVX-512 hand-written register blocks with the bias-and-time-embedding row and ReLU fused (<see cref="ChainProducts"/>,
/// <see cref="HandProducts"/>), otherwise MKL's (<see cref="CpuBlas"/>), with the table rows, ReLU, residual sum and DDIM
/// update done in C# on the same memory, and every activation written straight into one <c>[T, B, hidden]</c> buffer per layer. A step of the
/// 4-layer, 128-unit denoiser is then 5 products and a few vectorised passes, where as tensor operations it is ≈ 12
/// operations at 3–20 µs each (more than the 128 × 128 product itself).
/// </summary>
/// <remarks>
/// Buffers are indexed by state: index i holds what step t = T − i computed from y_t = states[i]. Float32 and float64,
/// contiguous CPU tensors.
/// </remarks>
internal static unsafe class DenoiserChainKernel
{
    /// <summary>
    /// Whether float32 chains whose hidden width is a multiple of 32 (the paper's 128) and whose state is at most
    /// <see cref="MaxNarrowWidth"/> wide compute their products here (<see cref="ChainProducts"/>, AVX-512) instead of
    /// through MKL: each hidden layer as 8 × 32 register blocks with the table row and ReLU applied as the block is stored,
    /// the narrow first and output layers (d inputs, d outputs) as vector loops. True by default; false sends every product to
    /// MKL as before (the kernel's other path, also taken for float64 and other widths).
    /// </summary>
    internal static bool HandProducts { get; set; } = true;

    /// <summary>The widest state (latent dimension) the hand-written narrow layers take; wider ones go to MKL.</summary>
    internal const int MaxNarrowWidth = 8;

    internal static bool UsesHandProducts<T>(int hidden, int width) =>
        HandProducts && typeof(T) == typeof(float) && Vector512.IsHardwareAccelerated && hidden % ChainProducts.Columns == 0 && width <= MaxNarrowWidth;

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

    /// <summary>
    /// Row ranges of the batch, one per thread of the OpenMP team: every row's chain is independent of the others', so each
    /// thread runs all T steps on its own rows with single-threaded products (MKL does not nest inside a parallel region),
    /// with no hand-over between the ≈ 6 products of each step, and the element-wise passes run on both cores.
    /// </summary>
    /// <param name="batch">The rows.</param>
    /// <param name="minimumRows">The fewest rows a thread takes (16 for a chain: below that a product is too small to be
    /// worth a thread of its own).</param>
    internal static (int Chunks, int RowsPerChunk) SplitRows(int batch, int minimumRows = 16)
    {
        int threads = OpenMpTeam.IsAvailable ? Math.Max(1, get_num_threads()) : 1;
        int chunks = Math.Clamp(batch / minimumRows, 1, threads);
        int rows = (batch + chunks - 1) / chunks;
        return ((batch + rows - 1) / rows, rows);
    }

    // Fully optimised from the first call: these loops run thousands of times per epoch, from the first step on.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static ForwardResult Forward<T>(DenoiserChainFunction.ChainShape shape, Tensor yT, Tensor[] weights, Tensor[] tables, Tensor outputWeight, Tensor outputBias)
        where T : unmanaged, INumber<T>
    {
        int steps = shape.Steps, layers = shape.Layers;
        int batch = (int)yT.shape[0], width = (int)yT.shape[1], hidden = (int)weights[0].shape[0];
        var options = (dtype: yT.dtype, device: yT.device);
        var states = empty([steps + 1, batch, width], options.dtype, options.device);
        var activations = Enumerable.Range(0, layers).Select(_ => empty([steps, batch, hidden], options.dtype, options.device)).ToArray();
        var residualSums = shape.ResidualTo >= 0 ? empty([steps, batch, hidden], options.dtype, options.device) : null;
        using var noise = empty([batch, width], options.dtype, options.device);                 // ε̂ of the current step
        TensorMemory.Elements<T>(yT).CopyTo(new Span<T>(TensorMemory.Pointer<T>(states), batch * width));
        // The hand-written products read each weight as [in, out] rows: W_0ᵀ [d, hidden], W_kᵀ [hidden, hidden].
        var transposed = UsesHandProducts<T>(hidden, width) ? weights.Select(w => w.t().contiguous()).ToArray() : null;

        var memory = new ForwardMemory(
            (nint)TensorMemory.Pointer<T>(states), (nint)TensorMemory.Pointer<T>(noise),
            (nint)TensorMemory.Pointer<T>(outputWeight), (nint)TensorMemory.Pointer<T>(outputBias),
            weights.Select(w => (nint)TensorMemory.Pointer<T>(w)).ToArray(), weights.Select(w => (int)w.stride(0)).ToArray(),
            tables.Select(t => (nint)TensorMemory.Pointer<T>(t)).ToArray(),
            activations.Select(a => (nint)TensorMemory.Pointer<T>(a)).ToArray(),
            residualSums is null ? 0 : (nint)TensorMemory.Pointer<T>(residualSums),
            tables[0].dim() == 3, batch, width, hidden, transposed?.Select(w => (nint)TensorMemory.Pointer<T>(w)).ToArray());
        var (chunks, rows) = SplitRows(batch);
        OpenMpTeam.For(chunks, chunks, chunk =>
        {
            int first = (int)chunk * rows, count = Math.Min(batch, first + rows) - first;
            if (memory.Transposed is null) ForwardRows<T, LibraryProducts<T>>(shape, memory, first, count);
            else ForwardRows<float, OwnProducts>(shape, memory, first, count);
        });
        if (transposed is not null) foreach (var w in transposed) w.Dispose();
        return new ForwardResult(states, activations, residualSums);
    }

    /// <summary>Raw memory of one forward pass (pointers as <see cref="nint"/> so that closures may hold them).</summary>
    /// <param name="Transposed">W_0ᵀ <c>[d, hidden]</c> and W_kᵀ <c>[hidden, hidden]</c> for the hand-written products, else null.</param>
    private sealed record ForwardMemory(nint States, nint Noise, nint OutputWeight, nint OutputBias, nint[] Weights, int[] WeightStrides,
        nint[] Tables, nint[] Activations, nint ResidualSums, bool PerRowFirstTable, int Batch, int Width, int Hidden, nint[]? Transposed);

    /// <summary>
    /// The products of one step on one thread's rows, the part that differs between MKL (<see cref="LibraryProducts{T}"/>)
    /// and Ddvi's own blocks (<see cref="OwnProducts"/>); the row loops around them are shared. Struct type arguments, so
    /// the JIT compiles each loop with its products inlined.
    /// </summary>
    private interface IStepProducts<T> where T : unmanaged
    {
        /// <summary>activation ← ReLU(table + input · W_kᵀ) for <paramref name="rows"/> rows; the table <c>[rows, hidden]</c>
        /// when <paramref name="perRow"/>, else one row for all.</summary>
        static abstract void Layer(ForwardMemory memory, int k, T* input, int inputWidth, int rows, T* table, bool perRow, T* activation);

        /// <summary>noise ← bias + input · W_outᵀ, <c>[rows, d]</c>.</summary>
        static abstract void Output(ForwardMemory memory, T* input, int rows, T* noise);

        /// <summary>hiddenGrad ← outputGrad · W_out, <c>[rows, hidden]</c>.</summary>
        static abstract void OutputGradient(BackwardMemory memory, T* outputGrad, int rows, T* hiddenGrad);

        /// <summary>gradient ← preGrad · W_k: <c>[rows, hidden]</c> for k ≥ 1, <c>[rows, d]</c> for k = 0.</summary>
        static abstract void LayerGradient(BackwardMemory memory, int k, T* preGrad, int rows, T* gradient);
    }

    /// <summary>MKL's products (<see cref="CpuBlas"/>), with the table rows copied in first and ReLU applied after.</summary>
    private readonly struct LibraryProducts<T> : IStepProducts<T> where T : unmanaged, INumber<T>
    {
        public static void Layer(ForwardMemory memory, int k, T* input, int inputWidth, int rows, T* table, bool perRow, T* activation)
        {
            int hidden = memory.Hidden;
            var target = new Span<T>(activation, rows * hidden);
            if (perRow) new ReadOnlySpan<T>(table, rows * hidden).CopyTo(target);
            else
            {
                var tableRow = new ReadOnlySpan<T>(table, hidden);
                for (int b = 0; b < rows; b++) tableRow.CopyTo(target.Slice(b * hidden, hidden));
            }
            CpuBlas.Gemm(false, true, rows, hidden, inputWidth, T.One, input, inputWidth, (T*)memory.Weights[k], memory.WeightStrides[k], T.One, activation, hidden);
            ElementwiseKernels.ReluInPlace(target);
        }

        public static void Output(ForwardMemory memory, T* input, int rows, T* noise)
        {
            int width = memory.Width, hidden = memory.Hidden;
            var bias = new ReadOnlySpan<T>((T*)memory.OutputBias, width);
            var noiseRows = new Span<T>(noise, rows * width);
            for (int b = 0; b < rows; b++) bias.CopyTo(noiseRows.Slice(b * width, width));
            CpuBlas.Gemm(false, true, rows, width, hidden, T.One, input, hidden, (T*)memory.OutputWeight, hidden, T.One, noise, width);
        }

        public static void OutputGradient(BackwardMemory memory, T* outputGrad, int rows, T* hiddenGrad) =>
            CpuBlas.Gemm(false, false, rows, memory.Hidden, memory.Width, T.One, outputGrad, memory.Width, (T*)memory.OutputWeight, memory.Hidden, T.Zero, hiddenGrad, memory.Hidden);

        public static void LayerGradient(BackwardMemory memory, int k, T* preGrad, int rows, T* gradient)
        {
            int columns = k > 0 ? memory.Hidden : memory.Width;
            CpuBlas.Gemm(false, false, rows, columns, memory.Hidden, T.One, preGrad, memory.Hidden, (T*)memory.Weights[k], memory.WeightStrides[k], T.Zero, gradient, columns);
        }
    }

    /// <summary>
    /// Ddvi's own float32 products (<see cref="ChainProducts"/>): the table row (or the first layer's per-row table)
    /// starts each accumulator and ReLU is applied as it is stored, so a layer is one pass.
    /// </summary>
    private readonly struct OwnProducts : IStepProducts<float>
    {
        public static void Layer(ForwardMemory memory, int k, float* input, int inputWidth, int rows, float* table, bool perRow, float* activation)
        {
            int hidden = memory.Hidden;
            if (k == 0) ChainProducts.Narrow(input, inputWidth, rows, (float*)memory.Transposed![0], hidden, perRow ? new Starts(table, hidden) : Starts.Shared(table), activation);
            else ChainProducts.Rows(input, inputWidth, rows, (float*)memory.Transposed![k], hidden, hidden, inputWidth, Starts.Shared(table), true, activation, hidden);
        }

        public static void Output(ForwardMemory memory, float* input, int rows, float* noise) =>
            ChainProducts.Dots(input, rows, memory.Hidden, (float*)memory.OutputWeight, memory.Width, (float*)memory.OutputBias, noise);

        public static void OutputGradient(BackwardMemory memory, float* outputGrad, int rows, float* hiddenGrad) =>
            ChainProducts.Narrow(outputGrad, memory.Width, rows, (float*)memory.OutputWeight, memory.Hidden, Starts.None, hiddenGrad, relu: false);

        public static void LayerGradient(BackwardMemory memory, int k, float* preGrad, int rows, float* gradient)
        {
            int hidden = memory.Hidden;
            if (k > 0) ChainProducts.Rows(preGrad, hidden, rows, (float*)memory.Weights[k], memory.WeightStrides[k], hidden, hidden, Starts.None, false, gradient, hidden);
            else ChainProducts.Dots(preGrad, rows, hidden, (float*)memory.FirstTransposed, memory.Width, null, gradient);
        }
    }

    /// <summary>All T steps for batch rows [<paramref name="first"/>, <paramref name="first"/> + <paramref name="rows"/>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void ForwardRows<T, TProducts>(DenoiserChainFunction.ChainShape shape, ForwardMemory memory, int first, int rows)
        where T : unmanaged, INumber<T> where TProducts : struct, IStepProducts<T>
    {
        int steps = shape.Steps, layers = shape.Layers;
        int batch = memory.Batch, width = memory.Width, hidden = memory.Hidden;
        int block = batch * hidden, rowBlock = rows * hidden;
        long hiddenOffset = (long)first * hidden;
        T* noise = (T*)memory.Noise + (long)first * width;
        for (int i = 0; i < steps; i++)
        {
            int row = steps - 1 - i;                                                              // step t = T − i reads table row t − 1
            T* y = (T*)memory.States + (long)i * batch * width + (long)first * width;
            T* input = y;
            int inputWidth = width;
            T* residualStart = null;
            for (int k = 0; k < layers; k++)
            {
                T* activation = (T*)memory.Activations[k] + (long)i * block + hiddenOffset;
                bool perRow = k == 0 && memory.PerRowFirstTable;
                T* table = perRow ? (T*)memory.Tables[0] + (long)row * block + hiddenOffset : (T*)memory.Tables[k] + (long)row * hidden;
                TProducts.Layer(memory, k, input, inputWidth, rows, table, perRow, activation);
                input = activation;
                inputWidth = hidden;
                if (k == shape.ResidualFrom) residualStart = activation;
                if (k == shape.ResidualTo)
                {
                    T* sum = (T*)memory.ResidualSums + (long)i * block + hiddenOffset;
                    ElementwiseKernels.Add(new ReadOnlySpan<T>(activation, rowBlock), new ReadOnlySpan<T>(residualStart, rowBlock), new Span<T>(sum, rowBlock));
                    input = sum;
                }
            }
            TProducts.Output(memory, input, rows, noise);
            var (keepY, keepEps) = shape.Coefficients[row];
            T keepState = T.CreateChecked(keepY), keepNoise = T.CreateChecked(keepEps);
            T* next = y + batch * width;
            for (int j = 0; j < rows * width; j++)
                next[j] = noise[j] * keepNoise + y[j] * keepState;
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static (Tensor, Tensor[], Tensor) Backward<T>(DenoiserChainFunction.ChainShape shape, ForwardResult forward,
        Tensor[] weights, Tensor outputWeight, Tensor gradStates) where T : unmanaged, INumber<T>
    {
        int steps = shape.Steps, layers = shape.Layers;
        var states = forward.States;
        int batch = (int)states.shape[1], width = (int)states.shape[2], hidden = (int)weights[0].shape[0];
        var (dtype, device) = (states.dtype, states.device);
        var gradIn = gradStates.contiguous();
        var preGrads = Enumerable.Range(0, layers).Select(_ => empty([steps, batch, hidden], dtype, device)).ToArray();
        var outputGrads = empty([steps, batch, width], dtype, device);
        var grad = gradIn[steps].clone();                                                         // ∂L/∂y_0, then ∂L/∂y_t going back
        using var hiddenGrad = empty([batch, hidden], dtype, device);
        using var residualGrad = empty([batch, hidden], dtype, device);
        using var inputGrad = empty([batch, width], dtype, device);
        // The hand-written first layer reads W_0ᵀ [d, hidden]; the hidden layers read W_k as it is.
        using var firstTransposed = UsesHandProducts<T>(hidden, width) ? weights[0].t().contiguous() : null;

        var memory = new BackwardMemory(
            (nint)TensorMemory.Pointer<T>(grad), (nint)TensorMemory.Pointer<T>(gradIn), (nint)TensorMemory.Pointer<T>(outputGrads),
            (nint)TensorMemory.Pointer<T>(outputWeight), (nint)TensorMemory.Pointer<T>(hiddenGrad), (nint)TensorMemory.Pointer<T>(residualGrad),
            (nint)TensorMemory.Pointer<T>(inputGrad),
            weights.Select(w => (nint)TensorMemory.Pointer<T>(w)).ToArray(), weights.Select(w => (int)w.stride(0)).ToArray(),
            forward.Activations.Select(a => (nint)TensorMemory.Pointer<T>(a)).ToArray(),
            preGrads.Select(g => (nint)TensorMemory.Pointer<T>(g)).ToArray(),
            batch, width, hidden, firstTransposed is null ? 0 : (nint)TensorMemory.Pointer<T>(firstTransposed));
        var (chunks, rows) = SplitRows(batch);
        OpenMpTeam.For(chunks, chunks, chunk =>
        {
            int first = (int)chunk * rows, count = Math.Min(batch, first + rows) - first;
            if (memory.FirstTransposed == 0) BackwardRows<T, LibraryProducts<T>>(shape, memory, first, count);
            else BackwardRows<float, OwnProducts>(shape, memory, first, count);
        });
        return (grad, preGrads, outputGrads);
    }

    /// <summary>Raw memory of one backward pass; [B, ·] scratch rows are shared, each thread using only its own rows.</summary>
    /// <param name="FirstTransposed">W_0ᵀ <c>[d, hidden]</c> for the hand-written products, else 0.</param>
    private sealed record BackwardMemory(nint Grad, nint GradStates, nint OutputGrads, nint OutputWeight, nint HiddenGrad, nint ResidualGrad,
        nint InputGrad, nint[] Weights, int[] WeightStrides, nint[] Activations, nint[] PreGrads, int Batch, int Width, int Hidden, nint FirstTransposed);

    /// <summary>The backward recursion for batch rows [<paramref name="first"/>, <paramref name="first"/> + <paramref name="rows"/>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void BackwardRows<T, TProducts>(DenoiserChainFunction.ChainShape shape, BackwardMemory memory, int first, int rows)
        where T : unmanaged, INumber<T> where TProducts : struct, IStepProducts<T>
    {
        int steps = shape.Steps, layers = shape.Layers;
        int batch = memory.Batch, width = memory.Width, hidden = memory.Hidden;
        int block = batch * hidden, rowBlock = rows * hidden, small = batch * width, rowSmall = rows * width;
        long hiddenOffset = (long)first * hidden, widthOffset = (long)first * width;
        T* grad = (T*)memory.Grad + widthOffset;
        T* hiddenGradPointer = (T*)memory.HiddenGrad + hiddenOffset;
        T* inputGrad = (T*)memory.InputGrad + widthOffset;
        var hiddenGrads = new Span<T>(hiddenGradPointer, rowBlock);
        var residualGrads = new Span<T>((T*)memory.ResidualGrad + hiddenOffset, rowBlock);

        // Step t read state i = T − t; walk t = 1..T, i.e. i = T − 1 down to 0.
        for (int i = steps - 1; i >= 0; i--)
        {
            int row = steps - 1 - i;
            var (keepY, keepEps) = shape.Coefficients[row];
            T keepState = T.CreateChecked(keepY), keepNoise = T.CreateChecked(keepEps);
            T* outputGrad = (T*)memory.OutputGrads + (long)i * small + widthOffset;
            for (int j = 0; j < rowSmall; j++) outputGrad[j] = grad[j] * keepNoise;
            TProducts.OutputGradient(memory, outputGrad, rows, hiddenGradPointer);
            bool residualPending = false;
            for (int k = layers - 1; k >= 0; k--)
            {
                if (k == shape.ResidualTo) { hiddenGrads.CopyTo(residualGrads); residualPending = true; }
                if (k == shape.ResidualFrom && residualPending) ElementwiseKernels.Add<T>(hiddenGrads, residualGrads, hiddenGrads);
                T* preGrad = (T*)memory.PreGrads[k] + (long)i * block + hiddenOffset;
                ElementwiseKernels.KeepWherePositive<T>(hiddenGrads, new ReadOnlySpan<T>((T*)memory.Activations[k] + (long)i * block + hiddenOffset, rowBlock),
                    new Span<T>(preGrad, rowBlock));
                TProducts.LayerGradient(memory, k, preGrad, rows, k > 0 ? hiddenGradPointer : inputGrad);
            }
            // y_{t−1} = KeepY·y_t + KeepEps·ε̂(y_t), and y_t may also be read directly by the loss.
            T* direct = (T*)memory.GradStates + (long)i * small + widthOffset;
            for (int j = 0; j < rowSmall; j++)
                grad[j] = inputGrad[j] + grad[j] * keepState + direct[j];
        }
    }
}
