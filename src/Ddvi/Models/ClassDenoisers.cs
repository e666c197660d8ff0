using Ddvi.Runtime;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace Ddvi.Models;

/// <summary>
/// C time-conditioned noise predictors ε_c(y_t, a, t), one per class, as the semi-supervised DDVI of the authors'
/// release keeps them (arXiv:2401.02739; <c>diff_vae_semi</c> and <c>diff_vae_warmup_semi</c>), with their weights stacked
/// so that all classes run as one batched product: hidden layer k of class c is
/// h_k = ReLU(W_kc h_{k−1} + b_kc + e_kc[t]) (e_kc a learned table of T rows, uniform [0, 1) at initialisation; t ∈ 1..T
/// reads row t − 1), then a linear output to d. With a context width c &gt; 0 the input is concat(y_t, a) and, as the
/// release's <c>ConditionalModelWAUX</c> (and <see cref="ConditionalDenoiser"/>), the first hidden layer's output is added to
/// the third's after its ReLU. Each class's network is initialised as a separate <c>Linear</c> stack would be.
/// </summary>
/// <remarks>
/// Weights are stored as <c>[C, in, out]</c> so a layer over states <c>[C, B, in]</c> is one <c>baddbmm</c>: ten classes
/// of a 1,024-example batch are one product of <c>[10, 1024, 128]</c> by <c>[10, 128, 128]</c> instead of ten small loops.
/// Initial values draw from libtorch's global generator (seed it once per run), like <c>Linear</c>.
/// </remarks>
public sealed class ClassDenoisers : Module
{
    private readonly ParameterList weights;     // W_k [C, in_k, hidden]
    private readonly ParameterList biases;      // b_k [C, 1, hidden]
    private readonly ParameterList embeddings;  // e_k [C, T, hidden]
    private readonly Parameter outputWeight;    // [C, hidden, d]
    private readonly Parameter outputBias;      // [C, 1, d]

    private const int ResidualFrom = 0;
    private const int ResidualTo = 2;

    /// <param name="classes">C, the number of class networks.</param>
    /// <param name="steps">T, rows of each time embedding table.</param>
    /// <param name="dataDim">d, the state width.</param>
    /// <param name="contextDim">Width of the context a (0 = unconditional, no residual connection).</param>
    /// <param name="hidden">Units per hidden layer (128).</param>
    /// <param name="hiddenLayers">Hidden layers (4; at least 3 with a context, for the residual connection).</param>
    public ClassDenoisers(int classes, int steps, int dataDim = 2, int contextDim = 0, int hidden = 128, int hiddenLayers = 4)
        : base(nameof(ClassDenoisers))
    {
        if (classes < 1) throw new ArgumentOutOfRangeException(nameof(classes), classes, "ClassDenoisers: needs at least 1 class.");
        if (steps < 1) throw new ArgumentOutOfRangeException(nameof(steps), steps, "ClassDenoisers: diffusion steps T must be at least 1.");
        if (dataDim < 1) throw new ArgumentOutOfRangeException(nameof(dataDim), dataDim, "ClassDenoisers: data dimension d must be at least 1.");
        if (contextDim < 0) throw new ArgumentOutOfRangeException(nameof(contextDim), contextDim, "ClassDenoisers: context width must be ≥ 0.");
        if (hidden < 1) throw new ArgumentOutOfRangeException(nameof(hidden), hidden, "ClassDenoisers: hidden width must be at least 1.");
        int minLayers = contextDim > 0 ? ResidualTo + 1 : 1;
        if (hiddenLayers < minLayers) throw new ArgumentOutOfRangeException(nameof(hiddenLayers), hiddenLayers, $"ClassDenoisers: needs at least {minLayers} hidden layer(s).");
        Classes = classes;
        Steps = steps;
        DataDim = dataDim;
        ContextDim = contextDim;
        Hidden = hidden;

        weights = new ParameterList();
        biases = new ParameterList();
        embeddings = new ParameterList();
        using (no_grad())
        {
            for (int k = 0; k < hiddenLayers; k++)
            {
                int input = k == 0 ? dataDim + contextDim : hidden;
                weights.Add(new Parameter(LinearUniform([classes, input, hidden], input)));
                biases.Add(new Parameter(LinearUniform([classes, 1, hidden], input)));
                embeddings.Add(new Parameter(rand(classes, steps, hidden)));
            }
            outputWeight = new Parameter(LinearUniform([classes, hidden, dataDim], hidden));
            outputBias = new Parameter(LinearUniform([classes, 1, dataDim], hidden));
        }
        RegisterComponents();
    }

    /// <summary>U(−1/√fanIn, 1/√fanIn): what <c>Linear</c>'s default initialisation gives its weight and bias.</summary>
    private static Tensor LinearUniform(long[] shape, int fanIn)
    {
        double bound = 1.0 / Math.Sqrt(fanIn);
        return rand(shape).mul_(Scalars.Of(2 * bound)).sub_(Scalars.Of(bound));
    }

    public int Classes { get; }
    public int Steps { get; }
    public int DataDim { get; }
    public int ContextDim { get; }
    public int Hidden { get; }
    private bool Residual => ContextDim > 0;

    /// <summary>
    /// ε̂ of every class at per-example timesteps: y <c>[C, B, d]</c> (row c through class c's network), context
    /// <c>[B, c]</c> shared by the classes or <c>[C, B, c]</c> (null when unconditional), t int64 <c>[C, B]</c> or <c>[B]</c>
    /// in 1..T → <c>[C, B, d]</c>.
    /// </summary>
    public Tensor Predict(Tensor y, Tensor? context, Tensor t)
    {
        CheckStates(y);
        using var scope = NewDisposeScope();
        long b = y.shape[1];
        var rows = (t.dim() == 1 ? t.unsqueeze(0).expand(Classes, b) : t) - Scalars.Of(1);                    // [C, B]
        var h = Residual ? cat([y, ContextRows(context, b)], 2) : y;
        Tensor? residual = null;
        for (int k = 0; k < weights.Count; k++)
        {
            var table = embeddings[k].gather(1, rows.unsqueeze(2).expand(Classes, b, Hidden)).add(biases[k], Scalars.One);   // [C, B, hidden]
            h = functional.relu(h.baddbmm(weights[k], table));   // TorchSharp: batch1.baddbmm(batch2, input) = input + batch1·batch2
            if (Residual && k == ResidualFrom) residual = h;
            if (Residual && k == ResidualTo) h = h.add(residual!, Scalars.One);
        }
        return h.baddbmm(outputWeight, outputBias).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// ε̂ of one class <paramref name="classIndex"/> for y <c>[B, d]</c>, context <c>[B, c]</c> (or null), t <c>[B]</c> → <c>[B, d]</c>:
    /// the same network as row <paramref name="classIndex"/> of <see cref="Predict"/>.
    /// </summary>
    public Tensor PredictClass(int classIndex, Tensor y, Tensor? context, Tensor t)
    {
        if (classIndex < 0 || classIndex >= Classes)
            throw new ArgumentOutOfRangeException(nameof(classIndex), classIndex, $"ClassDenoisers: class must lie in 0..{Classes - 1}.");
        if (y.dim() != 2 || y.shape[1] != DataDim)
            throw new ArgumentException($"ClassDenoisers: y must be [B, {DataDim}], got [{string.Join(", ", y.shape)}].", nameof(y));
        using var scope = NewDisposeScope();
        var rows = t - Scalars.Of(1);
        var h = Residual ? cat([y, context ?? throw new ArgumentNullException(nameof(context), "ClassDenoisers: this network needs a context.")], 1) : y;
        Tensor? residual = null;
        for (int k = 0; k < weights.Count; k++)
        {
            var table = embeddings[k][classIndex].index_select(0, rows).add(biases[k][classIndex], Scalars.One);                // [B, hidden]
            h = functional.relu(table.addmm(h, weights[k][classIndex]));
            if (Residual && k == ResidualFrom) residual = h;
            if (Residual && k == ResidualTo) h = h.add(residual!, Scalars.One);
        }
        return outputBias[classIndex].addmm(h, outputWeight[classIndex]).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// The networks prepared for reverse chains where every row is at the same t: ε̂(y, step) for y <c>[C, B, d]</c> →
    /// <c>[C, B, d]</c>, with the context's share of the first layer (W_a a, <c>[C, B, hidden]</c>) and each layer's
    /// bias-plus-embedding rows computed once per chain. The same function as <see cref="Predict"/>; its tensors live in
    /// the caller's dispose scope.
    /// </summary>
    /// <param name="context">a <c>[B, c]</c> or <c>[C, B, c]</c>, or null when unconditional.</param>
    public Func<Tensor, int, Tensor> PrepareChain(Tensor? context, long batch) =>
        PrepareChain(Parameters(), context is null ? null : ContextRows(context, batch));

    /// <summary>The parameters in the order <see cref="PrepareChain(IReadOnlyList{Tensor}, Tensor?)"/> reads them: every
    /// hidden layer's W, then every b, then every e, then the output's W and b.</summary>
    public IReadOnlyList<Tensor> Parameters() => [.. weights, .. biases, .. embeddings, outputWeight, outputBias];

    /// <summary>
    /// <see cref="PrepareChain(Tensor?, long)"/> over explicit parameter tensors (<see cref="Parameters"/>'s order) and
    /// context rows <c>[C, B, c]</c> (null when unconditional): what a recomputing runner uses with its own leaves.
    /// </summary>
    public Func<Tensor, int, Tensor> PrepareChain(IReadOnlyList<Tensor> parameters, Tensor? contextRows)
    {
        int layers = weights.Count;
        var ws = parameters.Take(layers).ToArray();
        var bs = parameters.Skip(layers).Take(layers).ToArray();
        var es = parameters.Skip(2 * layers).Take(layers).ToArray();
        var outW = parameters[3 * layers];
        var outB = parameters[3 * layers + 1];
        var stateWeights = new Tensor[layers];
        var tables = new Tensor[layers][];
        for (int k = 0; k < layers; k++)
        {
            stateWeights[k] = k == 0 && Residual ? ws[0].narrow(1, 0, DataDim) : ws[k];
            var table = es[k].add(bs[k], Scalars.One);                                                               // [C, T, hidden]
            tables[k] = table.unbind(1).Select(row => row.unsqueeze(1)).ToArray();                   // T × [C, 1, hidden]
        }
        Tensor? contextShare = Residual
            ? (contextRows ?? throw new ArgumentNullException(nameof(contextRows), "ClassDenoisers: this network needs a context a."))
                .bmm(ws[0].narrow(1, DataDim, ContextDim))                                           // [C, B, hidden]
            : null;
        return (y, step) =>
        {
            if (step < 1 || step > Steps)
                throw new ArgumentOutOfRangeException(nameof(step), step, $"ClassDenoisers: timestep must lie in 1..{Steps}.");
            var h = y;
            Tensor? residual = null;
            for (int k = 0; k < layers; k++)
            {
                var bias = k == 0 && contextShare is not null ? contextShare.add(tables[0][step - 1], Scalars.One) : tables[k][step - 1];
                // In place on the fresh product: ReLU keeps its output, which the next product reads anyway.
                h = h.baddbmm(stateWeights[k], bias).relu_();
                if (Residual && k == ResidualFrom) residual = h;
                if (Residual && k == ResidualTo) h = h.add(residual!, Scalars.One);
            }
            return h.baddbmm(outW, outB);
        };
    }

    /// <summary>Context rows <c>[C, B, c]</c> from a context shared by the classes <c>[B, c]</c> or given per class.</summary>
    public Tensor ContextRowsFor(Tensor context, long batch) => ContextRows(context, batch);

    /// <summary>The parameters of class <paramref name="classIndex"/>'s network, as separate tensors (views), in layer order:
    /// for each hidden layer W <c>[in, hidden]</c>, b <c>[1, hidden]</c>, e <c>[T, hidden]</c>; then the output's.</summary>
    public IReadOnlyList<Tensor> ClassWeights(int classIndex) =>
        [.. Enumerable.Range(0, weights.Count).SelectMany(k => new[] { weights[k][classIndex], biases[k][classIndex], embeddings[k][classIndex] }),
         outputWeight[classIndex], outputBias[classIndex]];

    private Tensor ContextRows(Tensor? context, long batch)
    {
        if (context is null)
            throw new ArgumentNullException(nameof(context), "ClassDenoisers: this network needs a context a.");
        if (context.dim() == 2 && context.shape[0] == batch && context.shape[1] == ContextDim)
            return context.unsqueeze(0).expand(Classes, batch, ContextDim);
        if (context.dim() == 3 && context.shape[0] == Classes && context.shape[1] == batch && context.shape[2] == ContextDim)
            return context;
        throw new ArgumentException($"ClassDenoisers: context must be [{batch}, {ContextDim}] or [{Classes}, {batch}, {ContextDim}], got [{string.Join(", ", context.shape)}].", nameof(context));
    }

    private void CheckStates(Tensor y)
    {
        if (y.dim() != 3 || y.shape[0] != Classes || y.shape[2] != DataDim)
            throw new ArgumentException($"ClassDenoisers: y must be [{Classes}, B, {DataDim}], got [{string.Join(", ", y.shape)}].", nameof(y));
    }
}
