using Ddvi.Runtime;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace Ddvi.Flows;

/// <summary>
/// MADE (Germain et al. 2015) conditioned on a context h, as in IAF (Kingma et al. 2016): an MLP of masked linear
/// layers, dim → hidden × <c>hiddenLayers</c> (ReLU) → 2·dim, whose masks make both outputs (s, m) of a variable
/// depend only on the variables before it in a chosen order:
/// ∂s_v/∂z_u = ∂m_v/∂z_u = 0 whenever position(u) ≥ position(v). The context enters through a linear map added to
/// the first hidden pre-activation: a₁ = M₁z + b₁ + W_h h, so every output may depend on h.
/// </summary>
/// <remarks>
/// Degrees: input variable v has degree position(v); hidden unit k of every layer has degree k mod max(1, dim − 1),
/// so each degree 0 … dim − 2 is present (the release draws hidden degrees at random; with dim = 2 both give all
/// zeros). A hidden unit sees inputs of degree ≤ its own and the next hidden units of degree ≥ its own; an output
/// of variable v sees hidden units of degree &lt; position(v). The first variable in the order therefore gets
/// constant (s, m): its biases.
/// </remarks>
public sealed class Made : Module<Tensor, Tensor, (Tensor S, Tensor M)>
{
    private readonly ModuleList<MaskedLinear> layers;
    private readonly Linear context;
    private readonly int[] order;

    /// <param name="dim">Number of variables d.</param>
    /// <param name="contextDim">Width of the context h.</param>
    /// <param name="order">The variables from first to last: a permutation of 0 … d − 1 (order[0] depends on none).</param>
    /// <param name="hidden">Units per hidden layer (at least d − 1, so every degree has a unit).</param>
    /// <param name="hiddenLayers">Number of hidden layers (the release uses 3).</param>
    public Made(int dim, int contextDim, IReadOnlyList<int> order, int hidden = 128, int hiddenLayers = 3) : base(nameof(Made))
    {
        if (dim < 1) throw new ArgumentOutOfRangeException(nameof(dim), dim, "MADE: the number of variables must be at least 1.");
        if (contextDim < 1) throw new ArgumentOutOfRangeException(nameof(contextDim), contextDim, "MADE: the context width must be at least 1.");
        if (hiddenLayers < 1) throw new ArgumentOutOfRangeException(nameof(hiddenLayers), hiddenLayers, "MADE: needs at least one hidden layer.");
        if (hidden < Math.Max(1, dim - 1))
            throw new ArgumentOutOfRangeException(nameof(hidden), hidden, $"MADE: a hidden layer needs at least max(1, d − 1) = {Math.Max(1, dim - 1)} units for d = {dim}.");
        if (order.Count != dim || order.OrderBy(v => v).Where((v, i) => v != i).Any())
            throw new ArgumentException($"MADE: the order must be a permutation of 0 … {dim - 1}, got [{string.Join(", ", order)}].", nameof(order));

        Dim = dim;
        this.order = order.ToArray();
        var inputDegree = new long[dim];
        for (int position = 0; position < dim; position++) inputDegree[this.order[position]] = position;
        var hiddenDegree = Enumerable.Range(0, hidden).Select(k => (long)(k % Math.Max(1, dim - 1))).ToArray();

        layers = new ModuleList<MaskedLinear>();
        layers.Add(Masked(inputDegree, hiddenDegree, (input, unit) => input <= unit));
        for (int l = 1; l < hiddenLayers; l++)
            layers.Add(Masked(hiddenDegree, hiddenDegree, (previous, unit) => previous <= unit));
        // Outputs [s_0 … s_{d−1}, m_0 … m_{d−1}]: both halves carry variable v's degree.
        layers.Add(Masked(hiddenDegree, inputDegree.Concat(inputDegree).ToArray(), (unit, output) => unit < output));
        context = Linear(contextDim, hidden);
        RegisterComponents();
    }

    public int Dim { get; }

    /// <summary>The variables from first to last.</summary>
    public IReadOnlyList<int> Order => order;

    /// <summary>The masked layers, input first: d → H, then H → H (hiddenLayers − 1 of them), then H → 2d.</summary>
    internal IReadOnlyList<MaskedLinear> MaskedLayers => [.. layers];

    /// <summary>The context's linear map, added to the first hidden pre-activation.</summary>
    internal Linear Context => context;

    /// <summary>z <c>[B, d]</c>, context h <c>[B, contextDim]</c> → (s <c>[B, d]</c>, m <c>[B, d]</c>).</summary>
    public override (Tensor S, Tensor M) forward(Tensor z, Tensor h)
    {
        using var scope = NewDisposeScope();
        var a = functional.relu(layers[0].call(z).add(context.call(h), Scalars.One));
        for (int l = 1; l < layers.Count - 1; l++)
            a = functional.relu(layers[l].call(a));
        var output = layers[layers.Count - 1].call(a);
        return (output.narrow(1, 0, Dim).MoveToOuterDisposeScope(), output.narrow(1, Dim, Dim).MoveToOuterDisposeScope());
    }

    private static MaskedLinear Masked(long[] inputDegrees, long[] outputDegrees, Func<long, long, bool> connected)
    {
        var values = new float[outputDegrees.Length * inputDegrees.Length];
        for (int o = 0; o < outputDegrees.Length; o++)
            for (int i = 0; i < inputDegrees.Length; i++)
                values[o * inputDegrees.Length + i] = connected(inputDegrees[i], outputDegrees[o]) ? 1f : 0f;
        using var mask = tensor(values, [outputDegrees.Length, inputDegrees.Length]);
        return new MaskedLinear(mask);
    }
}
