using Ddvi.Runtime;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace Ddvi.Flows;

/// <summary>
/// A linear layer whose weights pass through a fixed 0/1 connectivity mask M: y = x (W ⊙ M)ᵀ + b
/// (Germain et al. 2015, MADE). M[o, i] = 0 removes the connection from input i to output o, so
/// ∂y_o/∂x_i = 0 for every value of W. Weights and bias are initialised as <c>nn.Linear</c> does.
/// </summary>
/// <remarks>
/// The mask is a persistent buffer, as in the release: it follows the module through <c>.to()</c> and is
/// written to checkpoints next to the weights it gates.
/// </remarks>
public sealed class MaskedLinear : Module<Tensor, Tensor>
{
    private readonly Parameter weight;
    private readonly Parameter bias;
    private readonly Tensor mask;

    /// <param name="mask">Connectivity <c>[out, in]</c> of zeros and ones; copied.</param>
    public MaskedLinear(Tensor mask) : base(nameof(MaskedLinear))
    {
        if (mask.dim() != 2 || mask.shape[0] < 1 || mask.shape[1] < 1)
            throw new ArgumentException($"MaskedLinear: the mask must be a non-empty matrix [out, in], got [{string.Join(", ", mask.shape)}].", nameof(mask));
        using (var scope = NewDisposeScope())
        {
            var asFloat = mask.to(float32);
            if (!(asFloat.eq(Scalars.Of(0)) | asFloat.eq(Scalars.Of(1))).all().item<bool>())
                throw new ArgumentException("MaskedLinear: mask entries must be 0 or 1.", nameof(mask));
            this.mask = asFloat.clone().DetachFromDisposeScope();
        }
        OutFeatures = mask.shape[0];
        InFeatures = mask.shape[1];
        weight = Parameter(empty(OutFeatures, InFeatures));
        bias = Parameter(empty(OutFeatures));
        using (no_grad())
        {
            // nn.Linear's initialisation: U(−1/√in, 1/√in) for weights (kaiming_uniform with a = √5) and bias.
            init.kaiming_uniform_(weight, Math.Sqrt(5));
            double bound = 1 / Math.Sqrt(InFeatures);
            init.uniform_(bias, -bound, bound);
        }
        RegisterComponents();
    }

    public long InFeatures { get; }
    public long OutFeatures { get; }

    /// <summary>The connectivity <c>[out, in]</c> (the module's own buffer; do not dispose).</summary>
    public Tensor Mask => mask;

    /// <summary>W <c>[out, in]</c>, unmasked (the parameter itself).</summary>
    internal Parameter Weight => weight;

    /// <summary>b <c>[out]</c> (the parameter itself).</summary>
    internal Parameter Bias => bias;

    /// <summary>x <c>[B, in]</c> → <c>[B, out]</c>.</summary>
    public override Tensor forward(Tensor x)
    {
        using var masked = weight * mask;
        return functional.linear(x, masked, bias);
    }
}
