using Ddvi.Runtime;
using static TorchSharp.torch;

namespace Ddvi.Plotting;

/// <summary>
/// How latents of any dimension d are drawn on a 2-D scatter, and what the figure must then say about it.
/// <list type="bullet">
/// <item>d = 2 (the paper's latents): the two coordinates as they are, and nothing added to titles or axes, so these
/// figures are exactly those drawn before latents of other dimensions existed.</item>
/// <item>d ≥ 3: the projection on the first two principal components of the points it was fitted on (centred, from the
/// eigenvectors of their covariance, computed in float64 with <c>torch.linalg.eigh</c>); the axes are labelled
/// "PC1 (x% of variance)", "PC2 (y% of variance)" and the title gets a second line "PCA of 8-D latents".</item>
/// <item>d = 1: z on the horizontal axis against a random vertical jitter (a fixed seed, so reruns draw the same
/// figure), which only spreads the points so that their density shows; the axes say so, and the title gets a second
/// line "1-D latents, vertical jitter".</item>
/// </list>
/// The note is a second title line, short enough for the comparison panel's small cells.
/// Fit once and apply to every set that should share the axes (prior samples next to test latents).
/// </summary>
public sealed class LatentProjection
{
    /// <summary>Width of the d = 1 jitter band, as a fraction of the range of the fitted z (1 when that range is 0).</summary>
    public const double JitterFraction = 0.1;

    const ulong JitterSeed = 0x5EED;

    readonly double[]? _mean;          // [d], d ≥ 3
    readonly double[]? _components;    // [d, 2] row-major, d ≥ 3
    readonly double _jitterHalfWidth;  // d = 1

    LatentProjection(int dimension, string? note, string? xLabel, string? yLabel, double[]? mean = null,
        double[]? components = null, double jitterHalfWidth = 0)
    {
        Dimension = dimension;
        Note = note;
        XLabel = xLabel;
        YLabel = yLabel;
        _mean = mean;
        _components = components;
        _jitterHalfWidth = jitterHalfWidth;
    }

    /// <summary>d, the dimension of the latents this projection takes.</summary>
    public int Dimension { get; }

    /// <summary>What the figure shows when it is not the latents themselves (null for d = 2), e.g. "PCA of 8-D latents".</summary>
    public string? Note { get; }

    /// <summary>Horizontal axis label (null for d = 2: no label, as the paper's figures).</summary>
    public string? XLabel { get; }

    /// <summary>Vertical axis label (null for d = 2).</summary>
    public string? YLabel { get; }

    /// <summary><paramref name="title"/> with <see cref="Note"/> as a second line; unchanged for d = 2.</summary>
    public string Title(string title) => Note is null ? title : string.IsNullOrEmpty(title) ? Note : $"{title}\n{Note}";

    /// <summary>
    /// The projection for latents <c>[N, d]</c> (any floating type and device); rows with a non-finite coordinate are
    /// ignored in the fit. <paramref name="what"/> names the fitted points in the note ("latents", "test latents").
    /// </summary>
    public static LatentProjection Fit(Tensor latents, string what = "latents")
    {
        RequireLatents(latents);
        int d = (int)latents.shape[1];
        if (d == 2) return new LatentProjection(2, null, null, null);
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var points = latents.detach().cpu().to(float64);
        var finite = points.index_select(0, points.isfinite().all(1).nonzero().flatten()); // [N', d]
        if (d == 1)
        {
            double range = finite.shape[0] == 0 ? 0 : (finite.max() - finite.min()).item<double>();
            double width = JitterFraction * (range > 0 ? range : 1);
            return new LatentProjection(1, $"1-D {what}, vertical jitter", "z", "random jitter (no meaning)",
                jitterHalfWidth: width / 2);
        }

        var mean = finite.shape[0] == 0 ? zeros(d, float64) : finite.mean([0L]);
        var centred = finite - mean;
        var covariance = centred.t().matmul(centred) / Scalars.Of(Math.Max(1, finite.shape[0] - 1)); // [d, d]
        var (values, vectors) = linalg.eigh(covariance);                                  // ascending eigenvalues
        var top = vectors.index_select(1, tensor(new long[] { d - 1, d - 2 }));           // [d, 2]
        // An eigenvector's sign is arbitrary: make each one's largest entry positive, so refits agree.
        var largest = top.abs().argmax(0);                                                 // [2]
        var signs = top.gather(0, largest.unsqueeze(0)).ge(Scalars.Of(0)).to(float64) * Scalars.Of(2) - Scalars.Of(1);          // [1, 2] of ±1
        top = top * signs;
        double total = values.clamp_min(Scalars.Of(0)).sum().item<double>();
        double Share(long index) => total > 0 ? values[index].clamp_min(Scalars.Of(0)).item<double>() / total : 0;
        string Percent(double share) => (100 * share).ToString("F0", System.Globalization.CultureInfo.InvariantCulture);
        return new LatentProjection(d, $"PCA of {d}-D {what}",
            $"PC1 ({Percent(Share(d - 1))}% of variance)", $"PC2 ({Percent(Share(d - 2))}% of variance)",
            mean.data<double>().ToArray(), top.contiguous().data<double>().ToArray());
    }

    /// <summary>The horizontal and vertical coordinate of each row of <paramref name="latents"/> <c>[N, d]</c>.</summary>
    public (float[] X, float[] Y) Apply(Tensor latents)
    {
        RequireLatents(latents);
        if (latents.shape[1] != Dimension)
            throw new ArgumentException(
                $"Latent projection: fitted on {Dimension}-D latents, given [{string.Join(", ", latents.shape)}].", nameof(latents));
        using var scope = NewDisposeScope();
        long n = latents.shape[0];
        var x = new float[n];
        var y = new float[n];
        if (Dimension == 2)
        {
            float[] flat = latents.detach().cpu().to(float32).contiguous().data<float>().ToArray();
            for (long i = 0; i < n; i++)
            {
                x[i] = flat[2 * i];
                y[i] = flat[2 * i + 1];
            }
            return (x, y);
        }
        if (Dimension == 1)
        {
            float[] z = latents.detach().cpu().to(float32).contiguous().data<float>().ToArray();
            using var generator = new Generator(JitterSeed);
            double[] u = rand([n], float64, generator: generator).data<double>().ToArray();
            for (long i = 0; i < n; i++)
            {
                x[i] = z[i];
                y[i] = (float)((2 * u[i] - 1) * _jitterHalfWidth);
            }
            return (x, y);
        }
        var mean = tensor(_mean!, float64);
        var components = tensor(_components!, [Dimension, 2], float64);
        float[] projected = ((latents.detach().cpu().to(float64) - mean).matmul(components)).to(float32).contiguous().data<float>().ToArray();
        for (long i = 0; i < n; i++)
        {
            x[i] = projected[2 * i];
            y[i] = projected[2 * i + 1];
        }
        return (x, y);
    }

    static void RequireLatents(Tensor latents)
    {
        ArgumentNullException.ThrowIfNull(latents);
        if (latents.dim() != 2 || latents.shape[1] < 1)
            throw new ArgumentException($"Latent projection: latents must be [N, d] with d ≥ 1, got [{string.Join(", ", latents.shape)}].", nameof(latents));
        if (!latents.is_floating_point())
            throw new ArgumentException($"Latent projection: latents must be floating point, got {latents.dtype}.", nameof(latents));
    }
}
