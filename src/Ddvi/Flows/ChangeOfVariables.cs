using static TorchSharp.torch;

namespace Ddvi.Flows;

/// <summary>
/// The output of a map f: R^d → R^d applied row by row, with the log-determinant of its Jacobian at each row.
/// </summary>
/// <param name="Output">f(u) <c>[B, d]</c>, detached.</param>
/// <param name="LogAbsDet">log |det ∂f/∂u| <c>[B]</c> (−∞ where the Jacobian is singular), in the input's dtype.</param>
/// <param name="Sign">sign of det ∂f/∂u <c>[B]</c>: +1, −1, or 0 where the Jacobian is singular.</param>
public sealed record JacobianDeterminant(Tensor Output, Tensor LogAbsDet, Tensor Sign);

/// <summary>
/// Densities pushed through a map that is differentiable and injective: if u has density q_u and z = f(u), then
/// log q_z(z) = log q_u(u) − log |det ∂f/∂u| (change of variables). For maps with no closed-form log-determinant (the
/// DDVI posterior's DDIM chain) the d × d Jacobian comes from autograd, one backward pass per output coordinate.
/// </summary>
public static class ChangeOfVariables
{
    /// <summary>
    /// f(u) and log |det ∂f/∂u| for every row of <paramref name="input"/> <c>[B, d]</c>, where <paramref name="map"/>
    /// treats rows independently (row b of its output depends on row b of its input only). Because of that independence,
    /// the gradient of Σ_b f(u)_{b,i} with respect to u is row i of every example's Jacobian at once: d backward passes
    /// give all B Jacobians, however large B is. Builds the graph of f even inside <c>no_grad()</c> (it is needed for the
    /// Jacobian) and frees it before returning; parameters of f get no gradient. The determinant is taken in float64.
    /// </summary>
    /// <param name="map">f: <c>[B, d]</c> → <c>[B, d]</c>, differentiable, rows independent (no batch norm, no dropout).</param>
    /// <param name="input">u <c>[B, d]</c>; not modified, and its own graph (if any) is not followed.</param>
    public static JacobianDeterminant LogAbsDetJacobian(Func<Tensor, Tensor> map, Tensor input)
    {
        ArgumentNullException.ThrowIfNull(map);
        ArgumentNullException.ThrowIfNull(input);
        if (input.dim() != 2)
            throw new ArgumentException($"ChangeOfVariables: the input must be [B, d], got [{string.Join(", ", input.shape)}].", nameof(input));
        if (!input.is_floating_point())
            throw new ArgumentException($"ChangeOfVariables: the input must be a floating-point tensor, got {input.dtype}.", nameof(input));

        using var scope = NewDisposeScope();
        long d = input.shape[1];
        Tensor output;
        var rows = new Tensor[d];
        using (enable_grad())
        {
            var u = input.detach().requires_grad_(true);
            output = map(u);
            if (!output.shape.SequenceEqual(input.shape))
                throw new ArgumentException($"ChangeOfVariables: the map must keep the shape [B, d] = [{string.Join(", ", input.shape)}], it returned [{string.Join(", ", output.shape)}].", nameof(map));
            if (!output.requires_grad)
                throw new ArgumentException("ChangeOfVariables: the map's output does not depend differentiably on its input (no autograd graph).", nameof(map));
            for (long i = 0; i < d; i++)
            {
                // ∂(Σ_b f_{b,i})/∂u_{b,j} = ∂f_{b,i}/∂u_{b,j}: row i of example b's Jacobian.
                var coordinate = output.select(1, i).sum();
                rows[i] = autograd.grad([coordinate], [u], retain_graph: i < d - 1)[0];
            }
        }
        var jacobian = stack(rows, 1).to(float64);                                                    // [B, d(out), d(in)]
        var (sign, logAbsDet) = linalg.slogdet(jacobian);                                           // [B], [B]
        return new JacobianDeterminant(
            output.detach().MoveToOuterDisposeScope(),
            logAbsDet.to(input.dtype).MoveToOuterDisposeScope(),
            sign.MoveToOuterDisposeScope());
    }
}
