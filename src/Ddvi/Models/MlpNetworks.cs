using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace Ddvi.Models;

/// <summary>
/// The one multilayer-perceptron trunk behind every encoder, decoder, auxiliary encoder and discriminator:
/// input → hidden layers, each Linear → LeakyReLU(slope) → dropout → one or more linear heads. <see cref="forward"/>
/// returns the heads side by side <c>[B, Σ head widths]</c> (a single head's output as it is); <see cref="Heads"/>
/// returns them apart. The paper's MNIST-format networks (arXiv:2401.02739, appendix; the authors' release) are
/// <c>new Mlp(D, [1000, 1000], heads, dropout)</c> with slope 0.2. Dropout is active only in training mode and draws
/// from libtorch's global generator (<see cref="UniformMaskDropout"/>).
/// </summary>
/// <remarks>Layers are created in the order hidden layers, then heads, so a seed gives the same initial weights as the
/// separate encoder and decoder classes this replaces. Checkpoint keys: <c>hidden.k.*</c>, <c>heads.k.*</c>.</remarks>
public sealed class Mlp : Module<Tensor, Tensor>, IPrecisionSettable
{
    /// <summary>The slope of the LeakyReLU the paper's networks use.</summary>
    public const double PaperLeakySlope = 0.2;

    private readonly ModuleList<Linear> hidden;
    private readonly ModuleList<Linear> heads;
    private readonly UniformMaskDropout dropout;
    private readonly long[] headWidths;

    // The slope as one libtorch Scalar for the module's life. A Scalar made from a double per call is a temporary whose
    // native handle TorchSharp passes on without keeping the object alive, so a garbage collection on another thread can
    // finalize it while libtorch still reads it (seen once: a DDVI warm-up stopped inside leaky_relu with c10's
    // "toFloat" check failing). The field keeps this one alive.
    private readonly Scalar leakySlopeScalar;

    /// <param name="inputDim">Input width.</param>
    /// <param name="hiddenWidths">Width of each hidden layer, in order (none: the heads read the input directly).</param>
    /// <param name="headWidths">Output width of each head, in the order <see cref="Heads"/> returns them.</param>
    /// <param name="dropout">Dropout probability after each hidden layer, in [0, 1).</param>
    /// <param name="leakySlope">Negative slope of the LeakyReLU (0 gives ReLU).</param>
    public Mlp(int inputDim, IReadOnlyList<int> hiddenWidths, IReadOnlyList<int> headWidths, double dropout = 0.0,
        double leakySlope = PaperLeakySlope) : base(nameof(Mlp))
    {
        ArgumentNullException.ThrowIfNull(hiddenWidths);
        ArgumentNullException.ThrowIfNull(headWidths);
        if (inputDim < 1 || hiddenWidths.Any(w => w < 1) || headWidths.Count == 0 || headWidths.Any(w => w < 1))
            throw new ArgumentException(
                $"Mlp needs positive sizes and at least one head, got input {inputDim}, hidden [{string.Join(", ", hiddenWidths)}], heads [{string.Join(", ", headWidths)}].");
        if (!(dropout >= 0 && dropout < 1))
            throw new ArgumentOutOfRangeException(nameof(dropout), dropout, "Mlp: dropout probability must lie in [0, 1).");
        if (!double.IsFinite(leakySlope) || leakySlope < 0)
            throw new ArgumentOutOfRangeException(nameof(leakySlope), leakySlope, "Mlp: the LeakyReLU slope must be finite and ≥ 0.");

        InputDim = inputDim;
        HiddenWidths = [.. hiddenWidths];
        LeakySlope = leakySlope;
        leakySlopeScalar = leakySlope.ToScalar();
        this.headWidths = headWidths.Select(w => (long)w).ToArray();
        var layers = new List<Linear>();
        int width = inputDim;
        foreach (int w in hiddenWidths)
        {
            layers.Add(Linear(width, w));
            width = w;
        }
        hidden = new ModuleList<Linear>([.. layers]);
        heads = new ModuleList<Linear>(headWidths.Select(w => Linear(width, w)).ToArray());
        this.dropout = new UniformMaskDropout(dropout);
        RegisterComponents();
    }

    public int InputDim { get; }
    public IReadOnlyList<int> HiddenWidths { get; }
    public IReadOnlyList<long> HeadWidths => headWidths;
    public double LeakySlope { get; }
    public double Dropout => dropout.Probability;

    /// <summary>
    /// The arithmetic of the layers' products (<see cref="NetworkPrecision"/>; <see cref="NetworkPrecisions.Default"/>
    /// unless set). With <see cref="NetworkPrecision.Bfloat16"/> a float32 input runs through the layers in bfloat16 and the
    /// heads return float32; inputs of other types (float64 in the exactness tests) run in their own type.
    /// </summary>
    public NetworkPrecision Precision { get; set; } = NetworkPrecisions.Default;

    /// <summary>The total output width, Σ head widths.</summary>
    public long OutputDim => headWidths.Sum();

    /// <summary>x <c>[B, input]</c> → the heads side by side <c>[B, Σ head widths]</c>.</summary>
    public override Tensor forward(Tensor x)
    {
        if (heads.Count == 1)
        {
            using var scope = NewDisposeScope();
            return Head(heads[0], Trunk(x), x.dtype).MoveToOuterDisposeScope();
        }
        var parts = Heads(x);
        try
        {
            return cat(parts, 1);
        }
        finally
        {
            foreach (var part in parts) part.Dispose();
        }
    }

    /// <summary>
    /// x <c>[B, input]</c> → one tensor <c>[B, width]</c> per head, each from its own head layer (contiguous, and with
    /// the same products and rounding as separate networks would have).
    /// </summary>
    public Tensor[] Heads(Tensor x)
    {
        using var scope = NewDisposeScope();
        var h = Trunk(x);
        return heads.Select(head => Head(head, h, x.dtype).MoveToOuterDisposeScope()).ToArray();
    }

    /// <summary>
    /// The heads of any network whose output is its heads side by side: an <see cref="Mlp"/>'s own
    /// <see cref="Heads"/>, or the output of another network (a conv net) split into <paramref name="widths"/>.
    /// </summary>
    public static Tensor[] HeadsOf(Module<Tensor, Tensor> network, Tensor x, IReadOnlyList<long> widths)
    {
        ArgumentNullException.ThrowIfNull(network);
        if (network is Mlp mlp && mlp.headWidths.SequenceEqual(widths)) return mlp.Heads(x);
        using var scope = NewDisposeScope();
        var output = network.call(x);
        if (output.dim() != 2 || output.shape[1] != widths.Sum())
            throw new InvalidOperationException($"{network.GetType().Name}: returned [{string.Join(", ", output.shape)}], expected [B, {widths.Sum()}] (heads of widths {string.Join(", ", widths)} side by side).");
        return output.split(widths.ToArray(), 1).Select(head => head.contiguous().MoveToOuterDisposeScope()).ToArray();
    }

    private Tensor Trunk(Tensor x)
    {
        if (x.dim() != 2 || x.shape[1] != InputDim)
            throw new ArgumentException($"Mlp: input must be [B, {InputDim}], got [{string.Join(", ", x.shape)}].", nameof(x));
        var h = LowPrecision(x.dtype) ? x.to(ScalarType.BFloat16) : x;
        foreach (var layer in hidden)
            h = dropout.call(Apply(layer, h).leaky_relu(leakySlopeScalar));
        return h;
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing) leakySlopeScalar.Dispose();
        base.Dispose(disposing);
    }

    private bool LowPrecision(ScalarType input) => Precision == NetworkPrecision.Bfloat16 && input == ScalarType.Float32;

    // A layer in the input's own type: in bfloat16 the weights are cast for this product (their gradient flows back to the
    // float32 weights through the cast).
    private static Tensor Apply(Linear layer, Tensor h)
    {
        if (h.dtype != ScalarType.BFloat16 || layer.weight!.dtype == ScalarType.BFloat16) return layer.call(h);
        using var weight = layer.weight.to(ScalarType.BFloat16);
        using var bias = layer.bias?.to(ScalarType.BFloat16);
        return functional.linear(h, weight, bias);
    }

    private Tensor Head(Linear head, Tensor h, ScalarType input)
    {
        if (!LowPrecision(input)) return head.call(h);
        using var low = Apply(head, h);
        return low.to(input);
    }
}
