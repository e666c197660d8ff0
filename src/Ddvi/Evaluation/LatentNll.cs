using Ddvi.Priors;
using Ddvi.Runtime;
using static TorchSharp.torch;

namespace Ddvi.Evaluation;

/// <summary>A latent NLL value with everything needed to reproduce it.</summary>
/// <param name="Value">E_{z∼p}[−log q̂(z)], in nats per latent; lower means the test latents cover the prior better.</param>
/// <param name="Bandwidths">The KDE bandwidths of q̂.</param>
/// <param name="SampleCount">Number S of prior samples averaged over.</param>
/// <param name="LatentCount">Number M of test latents (KDE centres).</param>
/// <param name="Description">One line for logs and metrics files.</param>
public sealed record LatentNllResult(double Value, IReadOnlyList<double> Bandwidths, long SampleCount, long LatentCount, string Description);

/// <summary>
/// The latent negative log-likelihood of the paper's metrics, as the release computes it (arXiv:2401.02739; the
/// authors' release): NLL = −(1/S) Σ_s log q̂(z_s), where
/// z_s ∼ p(z) are prior samples and q̂ is the <see cref="GaussianKernelDensity"/> of the M test latents,
/// q̂(z) = (1/H) Σ_h (1/M) Σ_i N(z; c_i, h² I). It measures how well the aggregate posterior covers the prior.
/// </summary>
/// <remarks>
/// log q̂ is clamped to [−1000, 1000] like the release, so a prior sample far from every test latent adds
/// at most 1000 nats. Runs under <c>no_grad</c> on the inputs' device, in blocks of prior samples.
/// </remarks>
public static class LatentNll
{
    public const int DefaultBlockRows = 256;

    const string Metric = "Latent NLL";

    /// <param name="testLatents">Test latents <c>[M, d]</c>, the KDE centres.</param>
    /// <param name="priorSamples">Prior samples <c>[S, d]</c> (the release uses S = 10,000), same device and dtype.</param>
    /// <param name="bandwidths">KDE bandwidths; null → <see cref="GaussianKernelDensity.DefaultBandwidths"/>.</param>
    /// <param name="blockRows">Prior samples per block; memory ≈ a few · blockRows · H · M values (256 · 5 · 10,000 float32 ≈ 50 MB each).</param>
    public static LatentNllResult Compute(Tensor testLatents, Tensor priorSamples, IReadOnlyList<double>? bandwidths = null,
        int blockRows = DefaultBlockRows)
    {
        TensorArguments.RequireMatrix(Metric, nameof(testLatents), testLatents);
        TensorArguments.RequireMatrix(Metric, nameof(priorSamples), priorSamples);
        TensorArguments.RequireSameDeviceAndType(Metric, nameof(testLatents), testLatents, nameof(priorSamples), priorSamples);
        if (priorSamples.shape[1] != testLatents.shape[1])
            throw new ArgumentException(
                $"{Metric}: prior samples have {priorSamples.shape[1]} dimensions but test latents have {testLatents.shape[1]}.",
                nameof(priorSamples));
        TensorArguments.RequirePositive(Metric, nameof(blockRows), blockRows);

        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        using var density = new GaussianKernelDensity(testLatents.detach(), bandwidths);
        long samples = priorSamples.shape[0];
        var logDensitySum = zeros(1, float64, priorSamples.device); // [1]
        for (long start = 0; start < samples; start += blockRows)
        {
            // One scope per block: the KDE's [b, H, M] temporaries are freed before the next block.
            using var blockScope = NewDisposeScope();
            var block = priorSamples.detach().narrow(0, start, Math.Min(blockRows, samples - start)); // [b, d]
            logDensitySum.add_(density.LogDensity(block, blockRows).sum(type: float64), Scalars.One);
        }
        double value = -logDensitySum.item<double>() / samples;
        return new LatentNllResult(value, density.Bandwidths, samples, density.CentreCount,
            $"−E_p[log q̂(z)] over {samples} prior samples, q̂ = {density.Description}");
    }
}
