using Ddvi.Runtime;
using TorchSharp;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace Ddvi.Flows;

/// <summary>
/// One inverse autoregressive flow step (Kingma et al. 2016, eq. 14), the gated form the release uses:
/// (s, m) = MADE(z, h), σ = sigmoid(s), z′ = σ ⊙ z + (1 − σ) ⊙ m. Because (s, m) of a variable depend only on the
/// variables before it in the MADE's order, the Jacobian ∂z′/∂z is triangular in that order with diagonal σ, so
/// log|det ∂z′/∂z| = Σ_v log σ_v, computed as Σ logsigmoid(s) so that it stays finite where σ underflows.
/// </summary>
public sealed class IafLayer : Module<Tensor, Tensor, (Tensor Z, Tensor LogDet)>
{
    private readonly Made made;

    /// <param name="dim">Latent width d.</param>
    /// <param name="contextDim">Width of the context h.</param>
    /// <param name="order">Autoregressive order of the variables, first to last (see <see cref="Made"/>).</param>
    /// <param name="hidden">Units per hidden layer of the MADE (128 in the release's IAF-VAE, 64 in its hierarchical one).</param>
    public IafLayer(int dim, int contextDim, IReadOnlyList<int> order, int hidden = 128) : base(nameof(IafLayer))
    {
        made = new Made(dim, contextDim, order, hidden);
        RegisterComponents();
    }

    public Made Made => made;

    /// <summary>z <c>[B, d]</c>, context h <c>[B, contextDim]</c> → (z′ <c>[B, d]</c>, log|det ∂z′/∂z| <c>[B]</c>).</summary>
    public override (Tensor Z, Tensor LogDet) forward(Tensor z, Tensor h)
    {
        using var scope = NewDisposeScope();
        var (s, m) = made.call(z, h);
        var gate = functional.sigmoid(s);
        var next = m.add(gate * (z - m), Scalars.One);
        var logDet = functional.logsigmoid(s).sum(-1);
        return (next.MoveToOuterDisposeScope(), logDet.MoveToOuterDisposeScope());
    }
}
