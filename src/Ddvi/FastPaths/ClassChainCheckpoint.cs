using Ddvi.Runtime;
using Ddvi.Diffusion;
using Ddvi.Models;
using TorchSharp;
using static TorchSharp.torch;
using static TorchSharp.torch.autograd;

namespace Ddvi.FastPaths;

/// <summary>
/// The batched per-class DDIM chain of <see cref="ClassDenoisers"/> (all C classes as one <c>[C, B, ·]</c> product per
/// layer and step) as one autograd operation that keeps only the chain's states: the forward pass runs the T steps
/// without a graph, and the backward pass recomputes them a segment of <see cref="ChainSpec.Segment"/> steps at a time,
/// with a graph, from the saved state that starts the segment, and back-propagates through that segment alone. The same
/// function and gradients as the chain recorded step by step (the reference, <see cref="SemiDdviModel.RunChains"/> with
/// <c>checkpointed: false</c>), for one extra forward pass; memory holds one segment's activations instead of T steps'
/// (T = 100, ten classes of a 1,024-example batch: about 2.6 GB recorded, about 0.3 GB here).
/// </summary>
/// <remarks>Inputs: the <see cref="ChainSpec"/>, y_T <c>[C, B, d]</c>, the context rows <c>[C, B, c]</c> (an empty tensor
/// when unconditional), then <see cref="ClassDenoisers.Parameters"/>. Output: the states y_T, …, y_0 <c>[T + 1, C, B, d]</c>.
/// First derivatives only.</remarks>
internal sealed class ClassChainCheckpoint : SingleTensorFunction<ClassChainCheckpoint>
{
    /// <summary>The networks, the DDIM coefficients of steps t = 1..T (index t − 1) and the steps recomputed together.</summary>
    internal sealed record ChainSpec(ClassDenoisers Denoisers, (double KeepY, double KeepEps)[] Coefficients, int Segment);

    public override string Name => nameof(ClassChainCheckpoint);

    public static Tensor Run(ClassDenoisers denoisers, NoiseSchedule schedule, Tensor yT, Tensor? contextRows, int segment = 10)
    {
        var coefficients = Enumerable.Range(1, schedule.Steps).Select(schedule.DdimCoefficients).ToArray();
        var arguments = new List<object> { new ChainSpec(denoisers, coefficients, Math.Max(1, segment)), yT, contextRows ?? empty(0, device: yT.device, dtype: yT.dtype) };
        arguments.AddRange(denoisers.Parameters());
        return apply([.. arguments]);
    }

    public override Tensor forward(AutogradContext ctx, params object[] vars)
    {
        var spec = (ChainSpec)vars[0];
        var yT = (Tensor)vars[1];
        var context = (Tensor)vars[2];
        var parameters = vars.Skip(3).Cast<Tensor>().ToList();
        using var noGrad = no_grad();
        var states = Forward(spec, parameters, context.numel() == 0 ? null : context, yT, from: spec.Coefficients.Length, to: 0);
        ctx.save_data(nameof(ChainSpec), spec);
        // Frozen networks (the prior chains of the warm-up) need no weight gradients: skip their products.
        ctx.save_data("trained", parameters.Select(p => p.requires_grad).ToArray());
        ctx.save_for_backward([states, context, .. parameters]);
        return states;
    }

    /// <summary>States y_from, y_from−1, …, y_to stacked (the first row the given <paramref name="start"/>).</summary>
    private static Tensor Forward(ChainSpec spec, IReadOnlyList<Tensor> parameters, Tensor? context, Tensor start, int from, int to)
    {
        using var scope = NewDisposeScope();
        var predict = spec.Denoisers.PrepareChain(parameters, context);
        var states = new List<Tensor>(from - to + 1) { start };
        var y = start;
        for (int step = from; step > to; step--)
        {
            using var stepScope = NewDisposeScope();
            var (keepY, keepEps) = spec.Coefficients[step - 1];
            y = predict(y, step).mul(Scalars.Of(keepEps)).add_(y, alpha: Scalars.Of(keepY)).MoveToOuterDisposeScope();
            states.Add(y);
        }
        return stack(states, 0).MoveToOuterDisposeScope();
    }

    public override List<Tensor> backward(AutogradContext ctx, Tensor gradStates) // [T + 1, C, B, d]
    {
        var spec = (ChainSpec)ctx.get_data(nameof(ChainSpec));
        var saved = ctx.get_saved_variables();
        var states = saved[0];
        bool conditioned = saved[1].numel() > 0;
        int steps = spec.Coefficients.Length;
        using var scope = NewDisposeScope();
        var trained = (bool[])ctx.get_data("trained");
        var leaves = saved.Skip(2).Select((p, j) => p.detach().requires_grad_(trained[j])).ToList();
        var trainedLeaves = leaves.Where((_, j) => trained[j]).ToList();
        var contextLeaf = conditioned ? saved[1].detach().requires_grad_(true) : null;
        var parameterGrads = trainedLeaves.Select(p => zeros_like(p)).ToList();
        var contextGrad = conditioned ? zeros_like(saved[1]) : null;
        var stateGrad = gradStates[steps].clone();                                                  // ∂L/∂y_0
        // Segments of states rows [i0, i1] (row i holds y_{T−i}), last segment first.
        for (int i1 = steps; i1 > 0; i1 -= spec.Segment)
        {
            int i0 = Math.Max(0, i1 - spec.Segment);
            using var segmentScope = NewDisposeScope();
            var start = states[i0].detach().requires_grad_(true);
            Tensor outputs;
            // The view too is taken with gradients on: one taken under the backward pass's no_grad would not require grad.
            using (enable_grad())
                outputs = Forward(spec, leaves, contextLeaf, start, from: steps - i0, to: steps - i1).narrow(0, 1, i1 - i0);   // rows i0+1..i1
            var outputGrads = gradStates.narrow(0, i0 + 1, i1 - i0).clone();
            outputGrads[-1].add_(stateGrad - gradStates[i1], Scalars.One);                                       // the row i1's full gradient
            var inputs = new List<Tensor> { start };
            inputs.AddRange(trainedLeaves);
            if (contextLeaf is not null) inputs.Add(contextLeaf);
            var grads = grad([outputs], inputs, [outputGrads], allow_unused: true);
            for (int j = 0; j < trainedLeaves.Count; j++)
                if (grads[1 + j] is { } g && !g.IsInvalid) parameterGrads[j].add_(g, Scalars.One);
            if (contextLeaf is not null && grads[^1] is { } cg && !cg.IsInvalid) contextGrad!.add_(cg, Scalars.One);
            var startGrad = grads[0] is { } sg && !sg.IsInvalid ? sg : zeros_like(start);
            stateGrad = startGrad.add(gradStates[i0], Scalars.One).MoveToOuterDisposeScope();
        }
        var result = new List<Tensor> { null!, stateGrad, contextGrad! };
        int next = 0;
        result.AddRange(trained.Select(t => t ? parameterGrads[next++] : null!));
        foreach (var tensor in result)
            if (tensor is not null) scope.MoveToOuter(tensor);
        return result;
    }
}
