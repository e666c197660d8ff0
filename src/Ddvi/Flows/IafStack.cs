using Ddvi.Runtime;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace Ddvi.Flows;

/// <summary>
/// A chain of <see cref="IafLayer"/>s, z_K = f_K ∘ … ∘ f_1(z_0), with log|det ∂z_K/∂z_0| = Σ_k log|det ∂z_k/∂z_{k−1}|.
/// Layer k (0-based) uses the natural variable order when k is even and the reversed order when k is odd, so every
/// variable is transformed conditioned on every other one somewhere in the chain. Coordinates never move: z_K is in
/// the same coordinates as z_0.
/// </summary>
/// <remarks>
/// The release flips its output after layers 1 and 3 instead of changing the MADE's order; in fixed coordinates its
/// four layers then run in orders (π, π, reversed π, reversed π). Ddvi alternates every layer, the arrangement of the
/// IAF paper; both chains are triangular-Jacobian flows ending in the original coordinates.
/// </remarks>
public sealed class IafStack : Module<Tensor, Tensor, (Tensor Z, Tensor LogDet)>
{
    private readonly ModuleList<IafLayer> layers;

    /// <param name="dim">Latent width d.</param>
    /// <param name="contextDim">Width of the context h shared by all layers.</param>
    /// <param name="layerCount">Number of IAF layers (4 in the release).</param>
    /// <param name="hidden">Units per hidden layer of each MADE.</param>
    public IafStack(int dim, int contextDim, int layerCount = 4, int hidden = 128) : base(nameof(IafStack))
    {
        if (layerCount < 1) throw new ArgumentOutOfRangeException(nameof(layerCount), layerCount, "IAF stack: needs at least one layer.");
        layers = new ModuleList<IafLayer>(Enumerable.Range(0, layerCount)
            .Select(k => new IafLayer(dim, contextDim, LayerOrder(dim, k), hidden)).ToArray());
        RegisterComponents();
    }

    public IReadOnlyList<IafLayer> Layers => layers.ToList();

    /// <summary>The variable order of layer <paramref name="layer"/>: 0 … d − 1 for even layers, reversed for odd ones.</summary>
    public static int[] LayerOrder(int dim, int layer)
    {
        var natural = Enumerable.Range(0, dim);
        return (layer % 2 == 0 ? natural : natural.Reverse()).ToArray();
    }

    /// <summary>z_0 <c>[B, d]</c>, context h <c>[B, contextDim]</c> → (z_K <c>[B, d]</c>, total log-determinant <c>[B]</c>).</summary>
    /// <remarks>
    /// On the CPU in float32 the whole stack is one autograd operation (<see cref="FastPaths.IafStackFunction"/>: the
    /// same function and gradients, without the ≈ 20 tensor operations a layer); elsewhere the layers run as modules.
    /// </remarks>
    public override (Tensor Z, Tensor LogDet) forward(Tensor z0, Tensor h)
    {
        if (FastPaths.IafStackFunction.Supports(this, z0, h))
            return FastPaths.IafStackFunction.Run(this, z0, h);
        using var scope = NewDisposeScope();
        var z = z0;
        Tensor? logDet = null;
        foreach (var layer in layers)
        {
            var (next, layerLogDet) = layer.call(z, h);
            z = next;
            logDet = logDet is null ? layerLogDet : logDet.add(layerLogDet, Scalars.One);
        }
        return (z.MoveToOuterDisposeScope(), logDet!.MoveToOuterDisposeScope());
    }
}
