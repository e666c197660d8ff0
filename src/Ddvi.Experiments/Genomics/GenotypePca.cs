using Ddvi.Runtime;
using System.Diagnostics;
using System.Globalization;
using TorchSharp;
using static TorchSharp.torch;

namespace Ddvi.Experiments.Genomics;

/// <summary>Settings of <see cref="GenotypePca.Fit"/>, validated when set.</summary>
public sealed record GenotypePcaOptions
{
    /// <summary>Principal components kept, K; capped at n − 1 for n samples. Default 1000, the release's.</summary>
    public int Components
    {
        get;
        init => field = value >= 1 ? value : throw Invalid(nameof(Components), value, "must be at least 1");
    } = 1000;

    /// <summary>Divide each centred column by √(2p(1−p)), p = mean/2 (Patterson, Price &amp; Reich 2006, PLoS Genet
    /// 2:e190, eq. 3); false only centres. Default true.</summary>
    public bool Standardize { get; init; } = true;

    /// <summary>Columns per block added to the Gram matrix; memory grows with BlockColumns × n. Default 4096.</summary>
    public int BlockColumns
    {
        get;
        init => field = value >= 1 ? value : throw Invalid(nameof(BlockColumns), value, "must be at least 1");
    } = 4096;

    /// <summary>What the scores are divided by. null (the default): chosen from the data,
    /// <see cref="GenotypePca.AutomaticDivisor"/>, so that the kept components' mean variance is
    /// <see cref="GenotypePca.AutomaticMeanVariance"/> whatever the numbers of sites and samples. A number divides by it:
    /// 30 is the release's (fixed for its 1000 Genomes PCs), 1 gives the plain scores XV.</summary>
    public double? Divisor
    {
        get;
        init => field = value is null || value > 0 && double.IsFinite(value.Value) ? value : throw Invalid(nameof(Divisor), value, "must be a positive number (1 = no scaling) or null (chosen from the data)");
    }

    static ArgumentException Invalid(string property, object? value, string rule) =>
        new(string.Create(CultureInfo.InvariantCulture, $"GenotypePcaOptions.{property} {rule}; got {value}."), property);
}

/// <summary>
/// The principal components of the samples: <see cref="Scores"/> row-major <c>[SampleCount, Components]</c>, sample i's
/// score on component k at <c>i·Components + k</c>; <see cref="Eigenvalues"/> of the Gram matrix G = XXᵀ, descending;
/// <see cref="ExplainedVarianceFraction"/> = λ_k / trace(G); <see cref="Divisor"/> the number the scores were divided by.
/// </summary>
public sealed record GenotypePcaResult(
    IReadOnlyList<string> SampleIds,
    int Components,
    float[] Scores,
    double[] Eigenvalues,
    double[] ExplainedVarianceFraction,
    long ColumnsUsed,
    long ColumnsSkipped,
    GenotypeReadSummary Summary,
    double Divisor)
{
    public int SampleCount => SampleIds.Count;

    /// <summary>The scores as a float32 tensor <c>[SampleCount, Components]</c> (a copy; the caller disposes it).</summary>
    public Tensor ScoresTensor() => tensor(Scores, [SampleCount, Components]); // [n, K]

    /// <summary>Sample <paramref name="sample"/>'s score on component <paramref name="component"/>.</summary>
    public float Score(int sample, int component) => Scores[sample * Components + component];
}

/// <summary>
/// PCA of samples from a streamed genotype matrix X (n samples × m columns), the samples' principal-component scores
/// computed from the n × n Gram matrix so that memory stays n² doubles plus one block, whatever m.
/// </summary>
/// <remarks>
/// Per column: a missing dosage is replaced by the column's mean over its called samples (mean imputation, so it adds
/// nothing after centring); the column is centred and, with <see cref="GenotypePcaOptions.Standardize"/>, divided by
/// √(2p(1−p)) with p = mean/2, the allele-frequency scaling of Patterson et al. 2006 (it assumes diploid 0/1/2 dosages).
/// A column with no call, or the same value in every called sample (p(1−p) = 0 included), is skipped. Then
/// G = Σ_blocks X_b X_bᵀ accumulates in float64 (<c>addmm_</c>; only the tiles on and above the diagonal, G being
/// symmetric), <c>torch.linalg.eigh(G)</c> gives G = UΛUᵀ, and the top
/// K = min(Components, n − 1) pairs give the scores U_K·√Λ_K = X·V_K (the usual PC scores, as from the SVD X = U S Vᵀ),
/// divided by <see cref="GenotypePcaOptions.Divisor"/> (or by <see cref="AutomaticDivisor"/> when it is null). Signs: each eigenvector is flipped so that its entry of largest
/// magnitude is positive, which makes repeated fits agree.
/// </remarks>
public static class GenotypePca
{
    public static GenotypePcaResult Fit(IGenotypeSource source, GenotypePcaOptions options, Action<string>? log = null)
    {
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(options);
        int n = source.SampleIds.Count;
        if (n < 2) throw new ArgumentException($"{source.Path}: PCA needs at least 2 samples, the file has {n}.", nameof(source));
        int k = Math.Min(options.Components, n - 1);
        var clock = Stopwatch.StartNew();
        long used = 0, skipped = 0, blocks = 0;

        using var gram = zeros(n, n, ScalarType.Float64); // [n, n], upper triangle filled until the end
        var tiles = Tiles(n);
        using (no_grad())
        {
            foreach (var block in source.ReadBlocks(options.BlockColumns))
            {
                using var scope = NewDisposeScope();
                var x = Prepare(block, options.Standardize, out long blockUsed); // [c, n]
                AddUpperProduct(gram, x, tiles);
                used += blockUsed;
                skipped += block.Columns - blockUsed;
                if (++blocks % 25 == 0)
                    log?.Invoke(string.Create(CultureInfo.InvariantCulture, $"PCA: {used + skipped:N0} columns read ({used:N0} used) in {clock.Elapsed.TotalSeconds:F0} s"));
            }
        }
        log?.Invoke(string.Create(CultureInfo.InvariantCulture, $"PCA: Gram matrix of {n:N0} samples over {used:N0} columns ({skipped:N0} skipped) in {clock.Elapsed.TotalSeconds:F1} s; {source.Summary}"));
        if (used == 0) throw new InvalidOperationException($"{source.Path}: every one of the {skipped:N0} columns is constant or uncalled; no PCA is possible.");

        using var outer = NewDisposeScope();
        var full = Symmetrize(gram);                                                // [n, n]
        var (values, vectors) = linalg.eigh(full);                                  // [n] ascending, [n, n]
        var top = values.flip(0)[..k].clamp_min(Scalars.Of(0));                                 // [K] descending
        var u = vectors.flip(1)[.., ..k];                                           // [n, K]
        var largest = u.abs().argmax(0, keepdim: true);                             // [1, K]
        var signs = u.gather(0, largest).sign();                                    // [1, K]
        signs = where(signs.eq(Scalars.Of(0)), ones_like(signs), signs);
        double trace = full.trace().item<double>();
        var eigenvalues = top.contiguous().data<double>().ToArray();
        double divisor = options.Divisor ?? AutomaticDivisor(eigenvalues, n);
        var scores = (u * signs * top.sqrt().unsqueeze(0) / Scalars.Of(divisor)).to(ScalarType.Float32).contiguous(); // [n, K]
        var explained = eigenvalues.Select(l => trace > 0 ? l / trace : 0).ToArray();
        log?.Invoke(string.Create(CultureInfo.InvariantCulture, $"PCA: top {k} of {n} eigenpairs in {clock.Elapsed.TotalSeconds:F1} s; PC1 explains {explained[0]:P2}; scores divided by {divisor:G4}{(options.Divisor is null ? $" (chosen from the data: mean variance {AutomaticMeanVariance})" : "")}"));
        return new GenotypePcaResult(source.SampleIds.ToArray(), k, scores.data<float>().ToArray(), eigenvalues, explained, used, skipped, source.Summary, divisor);
    }

    /// <summary>The kept components' mean variance after <see cref="AutomaticDivisor"/>: 10. Measured with the clustering
    /// DDVI (docs/genomics.md): inputs of mean variance 0.1 or less collapse its posterior, 1 trains it poorly, 7.5 to 30
    /// give its best scores.</summary>
    public const double AutomaticMeanVariance = 10;

    /// <summary>
    /// The divisor that gives the K kept components a mean variance of <see cref="AutomaticMeanVariance"/>:
    /// √(Σ_k λ_k / (n·K) / AutomaticMeanVariance), the score of component k having variance λ_k / n (the scores are
    /// centred). The relative sizes of the components, which carry the structure, are kept; only the overall scale is
    /// set. Why it matters: the clustering objectives score the reconstruction as a mean over the K features against
    /// β·KL, so whether encoding a sample pays at all depends on the features' variance, which grows with the number of
    /// sites (docs/genomics.md).
    /// </summary>
    public static double AutomaticDivisor(IReadOnlyList<double> eigenvalues, int samples)
    {
        ArgumentNullException.ThrowIfNull(eigenvalues);
        if (eigenvalues.Count == 0 || samples < 1)
            throw new ArgumentException($"GenotypePca.AutomaticDivisor: needs at least one eigenvalue and one sample, got {eigenvalues.Count} and {samples}.");
        double meanVariance = eigenvalues.Sum() / ((double)samples * eigenvalues.Count);
        return meanVariance > 0 ? Math.Sqrt(meanVariance / AutomaticMeanVariance) : 1;
    }

    /// <summary>Sample ranges whose tiles G[a, b], a ≤ b, cover the upper triangle of G: with t tiles a side, a block costs
    /// t(t+1)/2 products of (n/t)² instead of one of n², 62.5% of the work for t = 4; one tile below 1,024 samples.</summary>
    internal static (int Start, int Length)[] Tiles(int n)
    {
        int t = n >= 1024 ? 4 : 1;
        return Enumerable.Range(0, t).Select(a => (a * n / t, (a + 1) * n / t - a * n / t)).ToArray();
    }

    /// <summary>Adds xᵀx to the tiles of <paramref name="gram"/> on and above the diagonal.</summary>
    internal static void AddUpperProduct(Tensor gram, Tensor x, (int Start, int Length)[] tiles) // [n, n], [c, n]
    {
        if (tiles.Length == 1)
        {
            gram.addmm_(x.t(), x);
            return;
        }
        var parts = tiles.Select(r => x.narrow(1, r.Start, r.Length).contiguous()).ToArray(); // [c, n_a]
        for (int a = 0; a < tiles.Length; a++)
            for (int b = a; b < tiles.Length; b++)
                gram.narrow(0, tiles[a].Start, tiles[a].Length).narrow(1, tiles[b].Start, tiles[b].Length).addmm_(parts[a].t(), parts[b]);
    }

    /// <summary>G from its upper triangle, in place: the diagonal tiles are full, their strict lower part is replaced.</summary>
    internal static Tensor Symmetrize(Tensor gram) // [n, n]
    {
        gram.triu_();
        using var upper = gram.triu(1);
        return gram.add_(upper.t(), Scalars.One);
    }

    /// <summary>A block as float64 <c>[c, n]</c>: imputed, centred, scaled, and zero in its skipped columns.</summary>
    internal static Tensor Prepare(GenotypeBlock block, bool standardize, out long usedColumns)
    {
        var x = tensor(block.Dosages, [block.Columns, block.SampleCount]).to(ScalarType.Float64); // [c, n]
        var missing = x.isnan();
        var count = missing.logical_not().sum(1, keepdim: true, type: ScalarType.Float64);       // [c, 1]
        var mean = x.nan_to_num(0).sum(1, keepdim: true).div_(count);                            // [c, 1], NaN when nothing is called
        // Centre, then put 0 (= the mean, centred) where the call is missing: mean imputation.
        x.sub_(mean).masked_fill_(missing, Scalars.Of(0));
        var dims = new long[] { 1 };
        var usable = count.gt(Scalars.Of(0)).logical_and_(x.amax(dims, keepdim: true).gt(x.amin(dims, keepdim: true))); // [c, 1]
        if (standardize)
        {
            var p = mean / Scalars.Of(2);
            var variance = p * p.neg().add(Scalars.Of(1), Scalars.One) * Scalars.Of(2);
            usable.logical_and_(variance.gt(Scalars.Of(0)));
            x.div_(variance.sqrt_());
        }
        usedColumns = usable.sum().item<long>();
        return x.masked_fill_(usable.logical_not(), Scalars.Of(0));
    }
}
