using Ddvi.Diffusion;
using Ddvi.Models;
using Ddvi.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace Ddvi.FastPaths;

/// <summary>
/// The one seam between a DDIM reverse chain and its hand-written fast path: the whole chain y_T → … → y_0 of a
/// time-conditioned denoiser as one autograd operation (<see cref="DenoiserChainFunction"/>, on the CPU through
/// <see cref="DenoiserChainKernel"/>) with a written-out backward pass. <see cref="Supports"/> says where it applies;
/// everywhere else, and always as the reference it is tested against, the chain runs step by step as plain tensor
/// operations (<see cref="ReverseChain.RunPrepared"/> with the denoiser's <c>PrepareChain</c>, or
/// <see cref="ReverseChain.Run"/> with a module call per step). Both compute the same states and gradients.
/// </summary>
public static class ChainRunner
{
    /// <summary>
    /// Whether <see cref="RunChain(TimeConditionedMlp, Tensor, NoiseSchedule)"/> /
    /// <see cref="RunChain(ConditionalDenoiser, Tensor, Tensor, NoiseSchedule)"/> run this chain: a
    /// <see cref="TimeConditionedMlp"/> or <see cref="ConditionalDenoiser"/>, on the CPU (elsewhere it has not been
    /// measured), with gradients being recorded (without them the step-by-step chain records nothing either) and no
    /// step list asked for (the one operation keeps the states, not each step's ε̂).
    /// </summary>
    /// <param name="denoiser">The chain's noise predictor.</param>
    /// <param name="device">Where y_T lives.</param>
    /// <param name="recordsGradients">Whether autograd records the chain (<c>torch.is_grad_enabled()</c>).</param>
    /// <param name="keepTrajectory">Whether the caller asks for each step's y_t and ε̂.</param>
    public static bool Supports(nn.Module denoiser, DeviceType device, bool recordsGradients, bool keepTrajectory) =>
        denoiser is TimeConditionedMlp or ConditionalDenoiser && device == DeviceType.CPU && recordsGradients && !keepTrajectory;

    /// <summary>
    /// The unconditional DDIM chain of <paramref name="denoiser"/> from <paramref name="yT"/> <c>[B, d]</c> as one
    /// autograd operation: y_T, …, y_0 stacked as <c>[T + 1, B, d]</c>.
    /// </summary>
    public static Tensor RunChain(this TimeConditionedMlp denoiser, Tensor yT, NoiseSchedule schedule)
    {
        ArgumentNullException.ThrowIfNull(denoiser);
        return Run(denoiser, null, schedule, yT, nameof(TimeConditionedMlp));
    }

    /// <summary>
    /// The DDIM chain of <paramref name="denoiser"/> from <paramref name="yT"/> <c>[B, d]</c> conditioned on
    /// <paramref name="context"/> <c>[B, c]</c>, as one autograd operation: y_T, …, y_0 stacked as <c>[T + 1, B, d]</c>.
    /// The context's share of the first layer, W_a a, is computed once per chain.
    /// </summary>
    public static Tensor RunChain(this ConditionalDenoiser denoiser, Tensor context, Tensor yT, NoiseSchedule schedule)
    {
        ArgumentNullException.ThrowIfNull(denoiser);
        TimeConditionedLayers.CheckInput(context, denoiser.ContextDim, nameof(context), nameof(ConditionalDenoiser));
        if (yT.shape[0] != context.shape[0])
            throw new ArgumentException($"ConditionalDenoiser: y_T has {yT.shape[0]} rows but the context has {context.shape[0]}.", nameof(yT));
        var first = ((ITimeConditionedNetwork)denoiser).Layers[0];
        var contextShare = context.matmul(first.weight!.narrow(1, denoiser.DataDim, denoiser.ContextDim).t()); // [B, hidden]
        return Run(denoiser, contextShare, schedule, yT, nameof(ConditionalDenoiser));
    }

    /// <summary>
    /// The network's chain through <see cref="DenoiserChainFunction"/>. <paramref name="firstLayerExtra"/>
    /// (<c>[B, hidden]</c> or null) is added to the first layer's pre-activation, whose weight then reads only the
    /// first d input columns.
    /// </summary>
    static Tensor Run(ITimeConditionedNetwork network, Tensor? firstLayerExtra, NoiseSchedule schedule, Tensor yT, string owner)
    {
        int steps = network.Steps;
        long stateWidth = network.DataDim;
        if (schedule.Steps != steps)
            throw new ArgumentException($"{owner}: the schedule has T = {schedule.Steps} but the network has {steps} time embedding rows.", nameof(schedule));
        if (yT.dim() != 2 || yT.shape[1] != stateWidth)
            throw new ArgumentException($"{owner}: y_T must be [B, {stateWidth}], got [{string.Join(", ", yT.shape)}].", nameof(yT));
        var layers = network.Layers;
        var embeddings = network.TimeEmbeddings;
        int count = layers.Count;
        var weights = new Tensor[count];
        var tables = new Tensor[count];
        for (int k = 0; k < count; k++)
        {
            weights[k] = k == 0 ? layers[k].weight!.narrow(1, 0, stateWidth) : layers[k].weight!;
            var table = layers[k].bias!.unsqueeze(0).add(embeddings[k].weight!, Scalars.One);                     // [T, hidden]
            if (k == 0 && firstLayerExtra is not null) table = table.unsqueeze(1).add(firstLayerExtra.unsqueeze(0), Scalars.One);
            tables[k] = table;
        }
        var coefficients = Enumerable.Range(1, steps).Select(schedule.DdimCoefficients).ToArray();
        var shape = new DenoiserChainFunction.ChainShape(count, network.ResidualFrom, network.ResidualTo, coefficients);
        return DenoiserChainFunction.Run(shape, yT, weights, tables, network.Output.weight!, network.Output.bias!);
    }
}
