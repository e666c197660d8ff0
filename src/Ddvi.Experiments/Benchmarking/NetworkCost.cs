using Ddvi.Flows;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Ddvi.Benchmarking;

/// <summary>
/// The matrix-product work of a network, counted from its layer shapes: Macs = Σ in·out over its linear (and masked
/// linear) layers, per example. A forward pass costs 2·rows·Macs FLOPs; the backward pass costs as much again for the
/// weight gradients of trained layers and again for the input gradients of layers whose input needs one.
/// Element-wise work (activations, the diffusion update, Adam) is not counted: the floor is the matrix products alone.
/// </summary>
/// <param name="Macs">Multiply-accumulates per example of one forward pass.</param>
/// <param name="DataInputMacs">The part of <paramref name="Macs"/> in layers that read the data itself (whose input needs no gradient).</param>
public readonly record struct NetworkCost(double Macs, double DataInputMacs)
{
    /// <summary>Counts the linear layers of <paramref name="module"/>; layers with <paramref name="dataWidth"/> inputs are taken to read data.</summary>
    public static NetworkCost Of(nn.Module module, long dataWidth = -1)
    {
        double macs = 0, dataInput = 0;
        foreach (var (_, child) in module.named_modules())
        {
            long[]? shape = child switch
            {
                Linear linear => linear.weight.shape,
                MaskedLinear masked => masked.Mask.shape,
                _ => null,
            };
            if (shape is null) continue;
            double layer = (double)shape[0] * shape[1];
            macs += layer;
            if (shape[1] == dataWidth) dataInput += layer;
        }
        return new NetworkCost(macs, dataInput);
    }

    /// <summary>Forward and backward of a trained network fed with data (no input gradient for the layers reading it).</summary>
    public double TrainedOnData(long rows) => 2.0 * rows * (3 * Macs - DataInputMacs);

    /// <summary>Forward and backward of a trained network whose input needs a gradient (a decoder fed by the posterior).</summary>
    public double TrainedOnLatents(long rows) => 6.0 * rows * Macs;

    /// <summary>Forward and backward of a frozen network that passes gradient to its input (no weight gradients).</summary>
    public double FrozenPassThrough(long rows) => 4.0 * rows * Macs;

    /// <summary>A forward pass without gradient.</summary>
    public double ForwardOnly(long rows) => 2.0 * rows * Macs;
}
