using static TorchSharp.torch;

namespace Ddvi.Likelihoods;

/// <summary>
/// Exact draws the count likelihoods need, made with the caller's generator on its CPU (TorchSharp 0.107's generators
/// are CPU generators, see <see cref="Runtime.RandomDraws"/>) and placed on the parameters' device.
/// </summary>
internal static class LikelihoodDraws
{
    /// <summary>
    /// x ~ Poisson(λ) elementwise, as floats of λ's dtype: libtorch's sampler (Knuth's product of uniforms for λ &lt; 10,
    /// Hörmann's transformed rejection PTRS from 10 on), exact in distribution.
    /// </summary>
    public static Tensor Poisson(Tensor rates, Generator generator)
    {
        ArgumentNullException.ThrowIfNull(generator);
        using var scope = NewDisposeScope();
        var host = rates.detach().to(CPU).contiguous();
        return Runtime.RandomDraws.Place(poisson(host, generator), rates.device).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// g ~ Gamma(α, 1) elementwise (shape α, unit scale): libtorch's Marsaglia–Tsang sampler (with the α + 1 boost and
    /// a U^{1/α} factor for α &lt; 1), exact in distribution.
    /// </summary>
    public static Tensor StandardGamma(Tensor concentration, Generator generator)
    {
        ArgumentNullException.ThrowIfNull(generator);
        using var scope = NewDisposeScope();
        var host = concentration.detach().to(CPU).contiguous();
        return Runtime.RandomDraws.Place(_standard_gamma(host, generator), concentration.device).MoveToOuterDisposeScope();
    }
}
