using Ddvi.FastPaths;
using Ddvi.Runtime;
using Ddvi.Diffusion;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace Ddvi.Models;

/// <summary>
/// Shared body of the DDVI denoisers, as the authors' release builds them (arXiv:2401.02739):
/// hidden layers h_k = ReLU(W_k h_{k−1} + b_k + e_k[t]) where e_k is
/// a learned per-timestep embedding table of T rows (initialised uniform [0, 1)) added to the pre-activation.
/// Timestep t ∈ 1..T reads row t − 1 of each table.
/// </summary>
static class TimeConditionedLayers
{
    public static (ModuleList<Linear> Layers, ModuleList<Embedding> TimeEmbeddings) Create(long inputDim, int hidden, int hiddenLayers, int steps, int minLayers, string owner)
    {
        if (inputDim < 1)
            throw new ArgumentOutOfRangeException(nameof(inputDim), inputDim, $"{owner}: input width must be at least 1.");
        if (hidden < 1)
            throw new ArgumentOutOfRangeException(nameof(hidden), hidden, $"{owner}: hidden width must be at least 1.");
        if (hiddenLayers < minLayers)
            throw new ArgumentOutOfRangeException(nameof(hiddenLayers), hiddenLayers, $"{owner}: needs at least {minLayers} hidden layer(s).");
        if (steps < 1)
            throw new ArgumentOutOfRangeException(nameof(steps), steps, $"{owner}: diffusion steps T must be at least 1 (one embedding row per step).");

        var layers = new ModuleList<Linear>();
        var embeddings = new ModuleList<Embedding>();
        for (int k = 0; k < hiddenLayers; k++)
        {
            layers.Add(Linear(k == 0 ? inputDim : hidden, hidden));
            var embedding = Embedding(steps, hidden);
            using (no_grad())
                init.uniform_(embedding.weight, 0.0, 1.0);
            embeddings.Add(embedding);
        }
        return (layers, embeddings);
    }

    /// <summary>Checks t's type and shape (an int64 vector of one timestep per row).</summary>
    public static void CheckTimesteps(Tensor t, long batch, string owner)
    {
        if (t.dtype != ScalarType.Int64 || t.dim() != 1 || t.shape[0] != batch)
            throw new ArgumentException($"{owner}: timesteps t must be an int64 vector [{batch}], got {t.dtype} [{string.Join(", ", t.shape)}].", nameof(t));
    }

    /// <summary>Checks t and returns the embedding rows it reads: row = t − 1.</summary>
    public static Tensor Rows(Tensor t, long batch, int steps, string owner) // [B] → [B]
    {
        CheckTimesteps(t, batch, owner);
        // Range checked only on the CPU, where reading min/max costs no device sync.
        if (t.device_type == DeviceType.CPU && batch > 0)
        {
            long min = t.min().item<long>();
            long max = t.max().item<long>();
            if (min < 1 || max > steps)
                throw new ArgumentOutOfRangeException(nameof(t), $"{owner}: timesteps must lie in 1..{steps}, got values in {min}..{max}.");
        }
        return t - Scalars.Of(1);
    }

    /// <summary>
    /// The network's forward pass on <paramref name="input"/> (the first layer's input, <c>[B, in]</c>) as one autograd
    /// operation (<see cref="DenoiserStepFunction"/>) where it applies: float32 on the CPU with AVX-512, hidden widths a
    /// multiple of 32, narrow inputs and outputs; null elsewhere, where the layers run as module operations. Both compute
    /// the same function with the same gradients; t's type and shape are checked by the caller, its range here.
    /// </summary>
    public static Tensor? AsOneOperation(ModuleList<Linear> layers, ModuleList<Embedding> embeddings, Linear output, Tensor input, Tensor t,
        int residualFrom, int residualTo, int steps, string owner)
    {
        int count = layers.Count;
        var weights = new Tensor[count];
        var biases = new Tensor[count];
        var tables = new Tensor[count];
        for (int k = 0; k < count; k++)
        {
            weights[k] = layers[k].weight!;
            biases[k] = layers[k].bias!;
            tables[k] = embeddings[k].weight!;
        }
        if (!DenoiserStepFunction.Supports(input, t, weights, biases, tables, output.weight!, output.bias!)) return null;
        var network = new DenoiserStepFunction.Network(count, residualFrom, residualTo, steps);
        return DenoiserStepFunction.Run(network, input, t, weights, biases, tables, output.weight!, output.bias!, owner);
    }

    public static Tensor Hidden(Linear layer, Embedding embedding, Tensor h, Tensor rows) // [B, in], [B] → [B, hidden]
        => functional.relu(layer.forward(h).add(embedding.forward(rows), Scalars.One));

    /// <summary>
    /// The network as a <see cref="ChainNoisePredictor"/> for a chain whose rows share t: each layer's Wᵀ taken once and its
    /// bias plus time embedding precomputed for every t as one <c>[T, hidden]</c> table, so a step is one addmm and one
    /// ReLU per layer. <paramref name="firstLayerExtra"/> (<c>[B, hidden]</c> or null) is added to the first layer's
    /// pre-activation (the context's share of it); the first layer then reads only the first <paramref name="stateWidth"/>
    /// input columns. Computes exactly what the modules' forward computes, with the same parameters and gradients.
    /// </summary>
    public static ChainNoisePredictor Prepare(ModuleList<Linear> layers, ModuleList<Embedding> embeddings, Linear output,
        long stateWidth, Tensor? firstLayerExtra, int residualFrom, int residualTo, int steps, string owner)
    {
        int count = layers.Count;
        var weightsT = new Tensor[count];
        var biasRows = new Tensor[count][];
        for (int k = 0; k < count; k++)
        {
            var weight = k == 0 ? layers[k].weight!.narrow(1, 0, stateWidth) : layers[k].weight!;
            weightsT[k] = weight.t();
            var table = layers[k].bias!.unsqueeze(0).add(embeddings[k].weight!, Scalars.One);                     // [T, hidden]
            // The first layer's extra (the context's share, [B, hidden]) joins its table once: [T, B, hidden].
            if (k == 0 && firstLayerExtra is not null) table = table.unsqueeze(1).add(firstLayerExtra.unsqueeze(0), Scalars.One);
            // One unbind instead of a row selection per step: its backward is one stack, where T selections would each
            // scatter into a zero [T, hidden] gradient and add it up.
            biasRows[k] = table.unbind(0);
        }
        var outputT = output.weight!.t();
        var outputBias = output.bias!;
        return (y, step) =>
        {
            if (step < 1 || step > steps)
                throw new ArgumentOutOfRangeException(nameof(step), step, $"{owner}: timestep must lie in 1..{steps}.");
            int row = step - 1;
            var h = y;
            Tensor? residual = null;
            for (int k = 0; k < count; k++)
            {
                h = functional.relu(biasRows[k][row].addmm(h, weightsT[k]));
                if (k == residualFrom) residual = h;
                if (k == residualTo) h = h.add(residual!, Scalars.One);
            }
            return outputBias.addmm(h, outputT);
        };
    }

    public static void CheckInput(Tensor x, long width, string name, string owner)
    {
        if (x.dim() != 2 || x.shape[1] != width)
            throw new ArgumentException($"{owner}: {name} must be [B, {width}], got [{string.Join(", ", x.shape)}].", name);
    }
}

/// <summary>
/// What a chain runner outside the module needs of a time-conditioned denoiser (see <c>Ddvi.FastPaths.ChainRunner</c>):
/// its hidden layers, time embedding tables, output layer and residual connection, read as they are. The denoisers
/// themselves know nothing of how a runner uses them.
/// </summary>
internal interface ITimeConditionedNetwork
{
    ModuleList<Linear> Layers { get; }
    ModuleList<Embedding> TimeEmbeddings { get; }
    Linear Output { get; }
    /// <summary>d: the width of the state y_t (the first layer's leading input columns).</summary>
    int DataDim { get; }
    /// <summary>T: the number of rows of each time embedding table.</summary>
    int Steps { get; }
    /// <summary>Hidden layers (0-based) joined by a residual connection, the first's output added to the second's; −1 for none.</summary>
    int ResidualFrom { get; }
    int ResidualTo { get; }
}

/// <summary>
/// Unconditional noise predictor ε_θ(y_t, t) of the prior diffusion, stage 1 of the release's pipeline
/// (arXiv:2401.02739; the authors' release): an MLP of
/// <c>hiddenLayers</c> layers of <c>hidden</c> units, h_k = ReLU(W_k h_{k−1} + b_k + e_k[t]), with a learned embedding
/// table e_k of T rows per hidden layer (uniform [0, 1) at initialisation; t ∈ 1..T reads row t − 1), then a linear
/// output to d.
/// </summary>
/// <remarks>Initial weights and embeddings draw from libtorch's global generator (seed it once per run).</remarks>
public sealed class TimeConditionedMlp : Module<Tensor, Tensor, Tensor>, ITimeConditionedNetwork
{
    readonly ModuleList<Linear> layers;
    readonly ModuleList<Embedding> timeEmbeddings;
    readonly Linear output;

    public TimeConditionedMlp(int steps, int dataDim = 2, int hidden = 128, int hiddenLayers = 4) : base(nameof(TimeConditionedMlp))
    {
        if (dataDim < 1)
            throw new ArgumentOutOfRangeException(nameof(dataDim), dataDim, "TimeConditionedMlp: data dimension d must be at least 1.");
        DataDim = dataDim;
        Steps = steps;
        (layers, timeEmbeddings) = TimeConditionedLayers.Create(dataDim, hidden, hiddenLayers, steps, minLayers: 1, nameof(TimeConditionedMlp));
        output = Linear(hidden, dataDim);
        RegisterComponents();
    }

    public int DataDim { get; }

    /// <summary>T: the number of rows of each time embedding table.</summary>
    public int Steps { get; }

    /// <param name="y">y_t <c>[B, d]</c>.</param>
    /// <param name="t">int64 timesteps <c>[B]</c> in 1..T.</param>
    /// <returns>ε̂ <c>[B, d]</c>.</returns>
    public override Tensor forward(Tensor y, Tensor t)
    {
        TimeConditionedLayers.CheckInput(y, DataDim, nameof(y), nameof(TimeConditionedMlp));
        TimeConditionedLayers.CheckTimesteps(t, y.shape[0], nameof(TimeConditionedMlp));
        if (TimeConditionedLayers.AsOneOperation(layers, timeEmbeddings, output, y, t, -1, -1, Steps, nameof(TimeConditionedMlp)) is { } fast)
            return fast;
        using var scope = NewDisposeScope();
        var rows = TimeConditionedLayers.Rows(t, y.shape[0], Steps, nameof(TimeConditionedMlp));
        var h = y;
        for (int k = 0; k < layers.Count; k++)
            h = TimeConditionedLayers.Hidden(layers[k], timeEmbeddings[k], h, rows);
        return output.forward(h).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// ε_θ prepared for a reverse chain (all rows at the same t): the same function as <see cref="forward"/> with less
    /// work per step (see <see cref="ReverseChain.RunPrepared"/>). Its tensors live in the caller's dispose scope.
    /// </summary>
    public ChainNoisePredictor PrepareChain() =>
        TimeConditionedLayers.Prepare(layers, timeEmbeddings, output, DataDim, null, residualFrom: -1, residualTo: -1, Steps, nameof(TimeConditionedMlp));

    ModuleList<Linear> ITimeConditionedNetwork.Layers => layers;
    ModuleList<Embedding> ITimeConditionedNetwork.TimeEmbeddings => timeEmbeddings;
    Linear ITimeConditionedNetwork.Output => output;
    int ITimeConditionedNetwork.ResidualFrom => -1;
    int ITimeConditionedNetwork.ResidualTo => -1;
}

/// <summary>
/// The posterior's noise predictor ε_φ(y_t, a_φ(x), t), trained in stage 3 of the release's pipeline (arXiv:2401.02739;
/// the authors' release): the time-conditioned MLP of
/// <see cref="TimeConditionedMlp"/> on concat(y_t, a) with a residual connection from the first hidden layer's output to
/// the third's, added after the third layer's ReLU: h_3 = ReLU(W_3 h_2 + b_3 + e_3[t]) + h_1.
/// </summary>
/// <remarks>Initial weights and embeddings draw from libtorch's global generator (seed it once per run).</remarks>
public sealed class ConditionalDenoiser : Module<Tensor, Tensor, Tensor, Tensor>, ITimeConditionedNetwork
{
    readonly ModuleList<Linear> layers;
    readonly ModuleList<Embedding> timeEmbeddings;
    readonly Linear output;

    // Hidden layers (0-based) joined by the residual connection: the first's output is added to the third's.
    const int ResidualFrom = 0;
    const int ResidualTo = 2;

    public ConditionalDenoiser(int steps, int dataDim = 2, int contextDim = 2, int hidden = 128, int hiddenLayers = 4) : base(nameof(ConditionalDenoiser))
    {
        if (dataDim < 1)
            throw new ArgumentOutOfRangeException(nameof(dataDim), dataDim, "ConditionalDenoiser: data dimension d must be at least 1.");
        if (contextDim < 1)
            throw new ArgumentOutOfRangeException(nameof(contextDim), contextDim, "ConditionalDenoiser: context dimension must be at least 1.");
        DataDim = dataDim;
        ContextDim = contextDim;
        Steps = steps;
        (layers, timeEmbeddings) = TimeConditionedLayers.Create(dataDim + contextDim, hidden, hiddenLayers, steps, minLayers: ResidualTo + 1, nameof(ConditionalDenoiser));
        output = Linear(hidden, dataDim);
        RegisterComponents();
    }

    public int DataDim { get; }
    public int ContextDim { get; }

    /// <summary>T: the number of rows of each time embedding table.</summary>
    public int Steps { get; }

    /// <param name="y">y_t <c>[B, d]</c>.</param>
    /// <param name="context">a_φ(x) <c>[B, c]</c>.</param>
    /// <param name="t">int64 timesteps <c>[B]</c> in 1..T.</param>
    /// <returns>ε̂ <c>[B, d]</c>.</returns>
    public override Tensor forward(Tensor y, Tensor context, Tensor t)
    {
        TimeConditionedLayers.CheckInput(y, DataDim, nameof(y), nameof(ConditionalDenoiser));
        TimeConditionedLayers.CheckInput(context, ContextDim, nameof(context), nameof(ConditionalDenoiser));
        if (context.shape[0] != y.shape[0])
            throw new ArgumentException($"ConditionalDenoiser: context has {context.shape[0]} rows but y has {y.shape[0]}.", nameof(context));
        TimeConditionedLayers.CheckTimesteps(t, y.shape[0], nameof(ConditionalDenoiser));
        using var scope = NewDisposeScope();
        var input = cat([y, context], 1);
        if (TimeConditionedLayers.AsOneOperation(layers, timeEmbeddings, output, input, t, ResidualFrom, ResidualTo, Steps, nameof(ConditionalDenoiser)) is { } fast)
            return fast.MoveToOuterDisposeScope();
        var rows = TimeConditionedLayers.Rows(t, y.shape[0], Steps, nameof(ConditionalDenoiser));
        var h = input;
        Tensor? residual = null;
        for (int k = 0; k < layers.Count; k++)
        {
            h = TimeConditionedLayers.Hidden(layers[k], timeEmbeddings[k], h, rows);
            if (k == ResidualFrom) residual = h;
            if (k == ResidualTo) h = h.add(residual!, Scalars.One);
        }
        return output.forward(h).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// ε_φ(·, a, ·) prepared for a reverse chain conditioned on <paramref name="context"/> (all rows at the same t): the
    /// same function as <see cref="forward"/>, with the context's share of the first layer, W_aᵀ a, computed once per
    /// chain instead of at every step. Its tensors live in the caller's dispose scope.
    /// </summary>
    /// <param name="context">a_φ(x) <c>[B, c]</c>.</param>
    public ChainNoisePredictor PrepareChain(Tensor context)
    {
        TimeConditionedLayers.CheckInput(context, ContextDim, nameof(context), nameof(ConditionalDenoiser));
        var contextShare = context.matmul(layers[0].weight!.narrow(1, DataDim, ContextDim).t()); // [B, hidden]
        var predict = TimeConditionedLayers.Prepare(layers, timeEmbeddings, output, DataDim, contextShare, ResidualFrom, ResidualTo, Steps, nameof(ConditionalDenoiser));
        return (y, step) =>
        {
            if (y.dim() != 2 || y.shape[0] != context.shape[0] || y.shape[1] != DataDim)
                throw new ArgumentException($"ConditionalDenoiser: y must be [{context.shape[0]}, {DataDim}] like its context rows, got [{string.Join(", ", y.shape)}].", nameof(y));
            return predict(y, step);
        };
    }

    ModuleList<Linear> ITimeConditionedNetwork.Layers => layers;
    ModuleList<Embedding> ITimeConditionedNetwork.TimeEmbeddings => timeEmbeddings;
    Linear ITimeConditionedNetwork.Output => output;
    int ITimeConditionedNetwork.ResidualFrom => ResidualFrom;
    int ITimeConditionedNetwork.ResidualTo => ResidualTo;
}
