using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace Ddvi.Models;

/// <summary>
/// Shared body of the DDVI denoisers (REFERENCE.md §1): hidden layers h_k = ReLU(W_k h_{k−1} + b_k + e_k[t]) where e_k is
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

    /// <summary>Checks t and returns the embedding rows it reads: row = t − 1.</summary>
    public static Tensor Rows(Tensor t, long batch, int steps, string owner) // [B] → [B]
    {
        if (t.dtype != ScalarType.Int64 || t.dim() != 1 || t.shape[0] != batch)
            throw new ArgumentException($"{owner}: timesteps t must be an int64 vector [{batch}], got {t.dtype} [{string.Join(", ", t.shape)}].", nameof(t));
        // Range checked only on the CPU, where reading min/max costs no device sync.
        if (t.device_type == DeviceType.CPU && batch > 0)
        {
            long min = t.min().item<long>();
            long max = t.max().item<long>();
            if (min < 1 || max > steps)
                throw new ArgumentOutOfRangeException(nameof(t), $"{owner}: timesteps must lie in 1..{steps}, got values in {min}..{max}.");
        }
        return t - 1;
    }

    public static Tensor Hidden(Linear layer, Embedding embedding, Tensor h, Tensor rows) // [B, in], [B] → [B, hidden]
        => functional.relu(layer.forward(h) + embedding.forward(rows));

    public static void CheckInput(Tensor x, long width, string name, string owner)
    {
        if (x.dim() != 2 || x.shape[1] != width)
            throw new ArgumentException($"{owner}: {name} must be [B, {width}], got [{string.Join(", ", x.shape)}].", name);
    }
}

/// <summary>
/// Unconditional noise predictor ε_θ(y_t, t) of the prior diffusion (REFERENCE.md §1, §3 stage 1): an MLP of
/// <c>hiddenLayers</c> layers of <c>hidden</c> units, h_k = ReLU(W_k h_{k−1} + b_k + e_k[t]), with a learned embedding
/// table e_k of T rows per hidden layer (uniform [0, 1) at initialisation; t ∈ 1..T reads row t − 1), then a linear
/// output to d.
/// </summary>
/// <remarks>Initial weights and embeddings draw from libtorch's global generator (seed it once per run).</remarks>
public sealed class TimeConditionedMlp : Module<Tensor, Tensor, Tensor>
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
        using var scope = NewDisposeScope();
        var rows = TimeConditionedLayers.Rows(t, y.shape[0], Steps, nameof(TimeConditionedMlp));
        var h = y;
        for (int k = 0; k < layers.Count; k++)
            h = TimeConditionedLayers.Hidden(layers[k], timeEmbeddings[k], h, rows);
        return output.forward(h).MoveToOuterDisposeScope();
    }
}

/// <summary>
/// The posterior's noise predictor ε_φ(y_t, a_φ(x), t) (REFERENCE.md §1, §3 stage 3): the time-conditioned MLP of
/// <see cref="TimeConditionedMlp"/> on concat(y_t, a) with a residual connection from the first hidden layer's output to
/// the third's, added after the third layer's ReLU: h_3 = ReLU(W_3 h_2 + b_3 + e_3[t]) + h_1.
/// </summary>
/// <remarks>Initial weights and embeddings draw from libtorch's global generator (seed it once per run).</remarks>
public sealed class ConditionalDenoiser : Module<Tensor, Tensor, Tensor, Tensor>
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
        using var scope = NewDisposeScope();
        var rows = TimeConditionedLayers.Rows(t, y.shape[0], Steps, nameof(ConditionalDenoiser));
        var h = cat([y, context], 1);
        Tensor? residual = null;
        for (int k = 0; k < layers.Count; k++)
        {
            h = TimeConditionedLayers.Hidden(layers[k], timeEmbeddings[k], h, rows);
            if (k == ResidualFrom) residual = h;
            if (k == ResidualTo) h = h + residual!;
        }
        return output.forward(h).MoveToOuterDisposeScope();
    }
}

/// <summary>
/// The auxiliary encoder a_φ(x) that gives the posterior denoiser its context (REFERENCE.md §3 stage 3): an MLP
/// input → hidden → hidden → c with LeakyReLU(0.2) and dropout after each hidden layer. Dropout is active only in
/// <c>train()</c> mode and draws from libtorch's global generator (TorchSharp's dropout takes none).
/// </summary>
public sealed class AuxiliaryEncoder : Module<Tensor, Tensor>
{
    public const double LeakySlope = 0.2;

    readonly Linear hidden1;
    readonly Linear hidden2;
    readonly Linear output;
    readonly Dropout dropout;

    public AuxiliaryEncoder(int inputDim = 784, int hidden = 1000, int contextDim = 2, double dropout = 0.4) : base(nameof(AuxiliaryEncoder))
    {
        if (inputDim < 1)
            throw new ArgumentOutOfRangeException(nameof(inputDim), inputDim, "AuxiliaryEncoder: input width must be at least 1.");
        if (hidden < 1)
            throw new ArgumentOutOfRangeException(nameof(hidden), hidden, "AuxiliaryEncoder: hidden width must be at least 1.");
        if (contextDim < 1)
            throw new ArgumentOutOfRangeException(nameof(contextDim), contextDim, "AuxiliaryEncoder: context dimension must be at least 1.");
        if (!(dropout >= 0 && dropout < 1))
            throw new ArgumentOutOfRangeException(nameof(dropout), dropout, "AuxiliaryEncoder: dropout probability must lie in [0, 1).");
        InputDim = inputDim;
        ContextDim = contextDim;
        hidden1 = Linear(inputDim, hidden);
        hidden2 = Linear(hidden, hidden);
        output = Linear(hidden, contextDim);
        this.dropout = Dropout(dropout);
        RegisterComponents();
    }

    public int InputDim { get; }
    public int ContextDim { get; }

    /// <param name="x">Flattened data <c>[B, input]</c>.</param>
    /// <returns>a_φ(x) <c>[B, c]</c>.</returns>
    public override Tensor forward(Tensor x)
    {
        TimeConditionedLayers.CheckInput(x, InputDim, nameof(x), nameof(AuxiliaryEncoder));
        using var scope = NewDisposeScope();
        var h = dropout.forward(functional.leaky_relu(hidden1.forward(x), LeakySlope));
        h = dropout.forward(functional.leaky_relu(hidden2.forward(h), LeakySlope));
        return output.forward(h).MoveToOuterDisposeScope();
    }
}
