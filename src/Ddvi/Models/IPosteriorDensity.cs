using Ddvi.Likelihoods;
using static TorchSharp.torch;

namespace Ddvi.Models;

/// <summary>
/// K posterior draws per example with the log-density that importance weighting needs.
/// </summary>
/// <param name="Z">z ~ q(z|x) <c>[K, B, d]</c>, the latent the likelihood reads.</param>
/// <param name="LogQ">
/// log q(z|x) <c>[K, B]</c>. For a posterior with auxiliary variables u (the hierarchical IAF-VAE's z₁) it is
/// log q(z, u|x) − log r(u|z) for the posterior's stated r, so that p(x|z) p(z) r(u|z) / q(z, u|x) is an unbiased
/// estimate of p(x) and E_q[log p(x|z) + log p(z) − LogQ] a lower bound on log p(x).
/// </param>
/// <param name="JacobianSign">
/// The sign of det ∂z/∂u <c>[K, B]</c> (+1, −1, or 0 where singular) for a posterior whose density comes from a change of
/// variables through a map with no closed-form determinant (DDVI's chain), so that its injectivity can be checked along
/// the draws; null where the map is injective by construction (a Gaussian, an IAF).
/// </param>
public sealed record PosteriorDraws(Tensor Z, Tensor LogQ, Tensor? JacobianSign = null);

/// <summary>
/// A model whose approximate posterior has a density that can be evaluated at its own draws: what a true ELBO
/// E_q[log p(x|z) + log p(z) − log q(z|x)] and an importance-weighted bound on log p(x) (Burda, Grosse and Salakhutdinov,
/// arXiv:1509.00519) need. Implementations are modules; callers switch them to eval mode (dropout off) and may call under
/// <c>no_grad()</c>.
/// </summary>
public interface IPosteriorDensity
{
    /// <summary>d.</summary>
    int LatentDim { get; }

    /// <summary>p(x|z), whose decoder reads <see cref="PosteriorDraws.Z"/>.</summary>
    Likelihood Likelihood { get; }

    /// <summary>How <see cref="PosteriorDraws.LogQ"/> is computed, in words, for metrics files.</summary>
    string PosteriorDensityDescription { get; }

    /// <summary>
    /// <paramref name="samples"/> independent draws z ~ q(z|x) for each row of x <c>[B, D]</c>, all from
    /// <paramref name="generator"/>, with log q(z|x) at each. The encoder runs once per row.
    /// </summary>
    PosteriorDraws DrawWithLogDensity(Tensor x, int samples, Generator generator);
}

/// <summary>Shape helpers shared by the <see cref="IPosteriorDensity"/> implementations.</summary>
internal static class PosteriorDrawShapes
{
    /// <summary>Each row of a <c>[B, …]</c> tensor repeated K times, sample-major: <c>[K·B, …]</c> (row k·B + b is row b).</summary>
    public static Tensor Repeat(Tensor perExample, int samples)
    {
        if (samples < 1)
            throw new ArgumentOutOfRangeException(nameof(samples), samples, "DrawWithLogDensity: the number of samples per example must be at least 1.");
        var shape = perExample.shape;
        var expanded = new long[shape.Length + 1];
        expanded[0] = samples;
        shape.CopyTo(expanded, 1);
        var flat = (long[])shape.Clone();
        flat[0] = samples * shape[0];
        return perExample.unsqueeze(0).expand(expanded).reshape(flat);
    }

    /// <summary><c>[K·B, …]</c> back to <c>[K, B, …]</c>.</summary>
    public static Tensor Split(Tensor flat, int samples)
    {
        var shape = flat.shape;
        var split = new long[shape.Length + 1];
        split[0] = samples;
        split[1] = shape[0] / samples;
        Array.Copy(shape, 1, split, 2, shape.Length - 1);
        return flat.reshape(split);
    }
}
