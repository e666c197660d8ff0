using Ddvi.Flows;
using Ddvi.Models;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Ddvi.Benchmarking;

/// <summary>
/// The matrix-product work of a network, counted from its layer shapes: Macs = Σ in·out over its linear (and masked
/// linear) layers, plus <see cref="ConvolutionMacs"/> over the convolutions of its <see cref="ConvTrunk"/>s and the
/// transposed convolutions of its <see cref="ConvDecoder"/>s, per example. A forward pass costs 2·rows·Macs FLOPs; the
/// backward pass costs as much again for the weight gradients of trained layers and again for the input gradients of
/// layers whose input needs one (for a convolution both gradients are convolutions of the same size as the forward one).
/// Element-wise work (activations, batch norm, the diffusion update, Adam) is not counted: the floor is the products alone.
/// </summary>
/// <param name="Macs">Multiply-accumulates per example of one forward pass.</param>
/// <param name="DataInputMacs">The part of <paramref name="Macs"/> in layers that read the data itself (whose input needs no gradient).</param>
public readonly record struct NetworkCost(double Macs, double DataInputMacs)
{
    /// <summary>
    /// Multiply-accumulates of one convolution on one example (no groups, no dilation): each of its
    /// <paramref name="positions"/> spatial positions combines <paramref name="inChannels"/>·k_h·k_w inputs for each of
    /// <paramref name="outChannels"/> outputs. For a convolution the positions are its output's H_out·W_out; a transposed
    /// convolution is the input gradient of a convolution, so each of its input's H_in·W_in positions scatters C_in values
    /// into C_out·k_h·k_w outputs, and its positions are the input's.
    /// </summary>
    public static double ConvolutionMacs(long positions, long inChannels, long outChannels, long kernelArea)
        => (double)positions * inChannels * outChannels * kernelArea;

    /// <summary>Counts the layers of <paramref name="module"/>; layers with <paramref name="dataWidth"/> inputs are taken to
    /// read data (for a conv trunk: its first convolution, when the trunk reads images of that many values). A convolution
    /// outside a <see cref="ConvTrunk"/> or <see cref="ConvDecoder"/>, whose image size the count cannot know, is an error.</summary>
    public static NetworkCost Of(nn.Module module, long dataWidth = -1)
    {
        double macs = 0, dataInput = 0;
        var counted = new HashSet<nn.Module>(ReferenceEqualityComparer.Instance);
        var children = module.named_modules().Select(c => c.module).Prepend(module).Distinct(ReferenceEqualityComparer.Instance).Cast<nn.Module>().ToList();
        foreach (var child in children)
        {
            switch (child)
            {
                case ConvTrunk trunk:
                {
                    var layers = TrunkLayers(trunk);
                    macs += layers.Sum();
                    if ((long)trunk.Channels * trunk.Height * trunk.Width == dataWidth) dataInput += layers[0];
                    foreach (var (_, convolution) in trunk.named_modules()) counted.Add(convolution);
                    continue;
                }
                case ConvDecoder decoder:
                    macs += DecoderLayers(decoder).Sum();
                    foreach (var (_, layer) in decoder.named_modules())
                        if (layer is ConvTranspose2d) counted.Add(layer);
                    continue;
                case Conv2d or ConvTranspose2d when !counted.Contains(child):
                    throw new NotSupportedException($"NetworkCost: a {child.GetType().Name} outside a ConvTrunk or ConvDecoder; its image size, and so its cost, is unknown.");
            }
            long[]? shape = child switch
            {
                Linear linear => linear.weight.shape,
                MaskedLinear masked => masked.Mask.shape,
                _ => null,
            };
            if (shape is null) continue;
            double layerMacs = (double)shape[0] * shape[1];
            macs += layerMacs;
            if (shape[1] == dataWidth) dataInput += layerMacs;
        }
        return new NetworkCost(macs, dataInput);
    }

    /// <summary>Per-example multiply-accumulates of the trunk's four convolutions, in order.</summary>
    public static double[] TrunkLayers(ConvTrunk trunk)
    {
        var result = new double[ConvTrunk.Layers.Count];
        int channels = trunk.Channels, height = trunk.Height, width = trunk.Width;
        for (int i = 0; i < result.Length; i++)
        {
            var (kernel, stride, padding) = ConvTrunk.Layers[i];
            height = (height + 2 * padding - kernel) / stride + 1;
            width = (width + 2 * padding - kernel) / stride + 1;
            result[i] = ConvolutionMacs((long)height * width, channels, ConvTrunk.Widths[i], kernel * kernel);
            channels = ConvTrunk.Widths[i];
        }
        return result;
    }

    /// <summary>Per-example multiply-accumulates of the decoder's four transposed convolutions, in order (its linear
    /// input layer is a <see cref="Linear"/> and counted as one).</summary>
    public static double[] DecoderLayers(ConvDecoder decoder)
    {
        var result = new double[ConvDecoder.Layers.Count];
        int height = decoder.StartHeight, width = decoder.StartWidth;
        for (int i = 0; i < result.Length; i++)
        {
            var (kernel, stride) = ConvDecoder.Layers[i];
            int inChannels = ConvDecoder.Widths[i];
            int outChannels = i + 1 < ConvDecoder.Widths.Count ? ConvDecoder.Widths[i + 1] : decoder.Channels;
            result[i] = ConvolutionMacs((long)height * width, inChannels, outChannels, kernel * kernel);
            height = (height - 1) * stride + kernel;
            width = (width - 1) * stride + kernel;
        }
        return result;
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
