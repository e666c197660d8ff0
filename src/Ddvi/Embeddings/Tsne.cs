using Ddvi.Runtime;
using static TorchSharp.torch;

namespace Ddvi.Embeddings;

/// <summary>How t-SNE computes the repulsive forces.</summary>
public enum TsneMethod
{
    /// <summary>Barnes–Hut quadtree with opening angle θ, O(n log n) per iteration; P on the 3·perplexity neighbours.</summary>
    BarnesHut,
    /// <summary>All pairs, O(n²) per iteration; P over all other points. For small n and for checking Barnes–Hut.</summary>
    Exact,
}

/// <summary>Where the t-SNE embedding starts.</summary>
public enum TsneInitialisation
{
    /// <summary>The first two principal components, scaled so that the first has standard deviation 1e-4.</summary>
    Pca,
    /// <summary>Independent N(0, (1e-4)²) coordinates drawn from the seed.</summary>
    Random,
}

/// <summary>
/// Settings of <see cref="Tsne.Embed"/>; the defaults are scikit-learn's <c>TSNE</c> (1.2 and later), which the paper's
/// t-SNE baseline used with perplexity 30 (arXiv:2401.02739, 1000 Genomes). The embedding is two-dimensional.
/// </summary>
public sealed record TsneOptions
{
    /// <summary>Perplexity 2^H(P_i) of every conditional P_i, the effective number of neighbours; 0 &lt; perplexity &lt; n − 1.</summary>
    public double Perplexity { get; init; } = 30;

    /// <summary>Factor α on P during the first <see cref="ExaggerationIterations"/> iterations.</summary>
    public double EarlyExaggeration { get; init; } = 12;

    /// <summary>Iterations with exaggerated P and momentum <see cref="EarlyMomentum"/>.</summary>
    public int ExaggerationIterations { get; init; } = 250;

    /// <summary>Iterations in all, the exaggeration phase included (scikit-learn's <c>max_iter</c>).</summary>
    public int Iterations { get; init; } = 1000;

    /// <summary>Step size η; null for scikit-learn's "auto", max(n / α / 4, 50) (Belkina et al. 2019).</summary>
    public double? LearningRate { get; init; }

    /// <summary>Momentum during early exaggeration.</summary>
    public double EarlyMomentum { get; init; } = 0.5;

    /// <summary>Momentum afterwards.</summary>
    public double LateMomentum { get; init; } = 0.8;

    /// <summary>Floor of the delta-bar-delta gains (Jacobs 1988): +0.2 when the step changes sign, ×0.8 otherwise.</summary>
    public double MinGain { get; init; } = 0.01;

    /// <summary>Stop when the gradient's norm falls to this.</summary>
    public double MinGradientNorm { get; init; } = 1e-7;

    /// <summary>After exaggeration, stop when the KL divergence (checked every 50 iterations) has not improved for this many iterations.</summary>
    public int IterationsWithoutProgress { get; init; } = 300;

    /// <summary>Barnes–Hut opening angle θ: a cell of side s at distance r from a point acts through its centre of mass when s / r &lt; θ.</summary>
    public double Theta { get; init; } = 0.5;

    /// <summary>Repulsion by Barnes–Hut or exactly.</summary>
    public TsneMethod Method { get; init; } = TsneMethod.BarnesHut;

    /// <summary>Starting layout.</summary>
    public TsneInitialisation Initialisation { get; init; } = TsneInitialisation.Pca;

    /// <summary>Seed of the random initialisation (the only random draw).</summary>
    public int Seed { get; init; }

    /// <summary>Threads for the per-point force loops; −1 for the .NET default.</summary>
    public int MaxDegreeOfParallelism { get; init; } = -1;

    /// <summary>Throws when a setting is out of range for <paramref name="points"/> points.</summary>
    public void Validate(long points)
    {
        const string Name = "t-SNE";
        if (!(Perplexity > 0) || !(Perplexity < points - 1))
            throw new ArgumentOutOfRangeException(nameof(Perplexity), Perplexity,
                $"{Name}: Perplexity must lie in (0, n − 1) = (0, {points - 1}) for n = {points} points.");
        if (!(EarlyExaggeration >= 1) || double.IsInfinity(EarlyExaggeration))
            throw new ArgumentOutOfRangeException(nameof(EarlyExaggeration), EarlyExaggeration, $"{Name}: EarlyExaggeration must be finite and at least 1.");
        if (Iterations < 1)
            throw new ArgumentOutOfRangeException(nameof(Iterations), Iterations, $"{Name}: Iterations must be at least 1.");
        if (ExaggerationIterations < 0 || ExaggerationIterations > Iterations)
            throw new ArgumentOutOfRangeException(nameof(ExaggerationIterations), ExaggerationIterations,
                $"{Name}: ExaggerationIterations must lie in [0, Iterations = {Iterations}].");
        if (LearningRate is double rate && (!(rate > 0) || double.IsInfinity(rate)))
            throw new ArgumentOutOfRangeException(nameof(LearningRate), rate, $"{Name}: LearningRate must be positive and finite, or null for auto.");
        if (!(EarlyMomentum >= 0 && EarlyMomentum < 1))
            throw new ArgumentOutOfRangeException(nameof(EarlyMomentum), EarlyMomentum, $"{Name}: EarlyMomentum must lie in [0, 1).");
        if (!(LateMomentum >= 0 && LateMomentum < 1))
            throw new ArgumentOutOfRangeException(nameof(LateMomentum), LateMomentum, $"{Name}: LateMomentum must lie in [0, 1).");
        if (!(MinGain > 0 && MinGain <= 1))
            throw new ArgumentOutOfRangeException(nameof(MinGain), MinGain, $"{Name}: MinGain must lie in (0, 1].");
        if (!(MinGradientNorm >= 0))
            throw new ArgumentOutOfRangeException(nameof(MinGradientNorm), MinGradientNorm, $"{Name}: MinGradientNorm must be non-negative.");
        if (IterationsWithoutProgress < 1)
            throw new ArgumentOutOfRangeException(nameof(IterationsWithoutProgress), IterationsWithoutProgress, $"{Name}: IterationsWithoutProgress must be at least 1.");
        if (!(Theta >= 0) || double.IsInfinity(Theta))
            throw new ArgumentOutOfRangeException(nameof(Theta), Theta, $"{Name}: Theta must be finite and non-negative.");
        if (MaxDegreeOfParallelism == 0 || MaxDegreeOfParallelism < -1)
            throw new ArgumentOutOfRangeException(nameof(MaxDegreeOfParallelism), MaxDegreeOfParallelism, $"{Name}: MaxDegreeOfParallelism must be −1 or positive.");
    }
}

/// <summary>The KL divergence KL(P ‖ Q) at one iteration of t-SNE (after that many updates).</summary>
public readonly record struct TsneCheckpoint(int Iteration, double KlDivergence);

/// <summary>What <see cref="Tsne.Embed"/> returns.</summary>
/// <param name="Embedding"><c>[n, 2]</c> float32 on the CPU, the caller's to dispose.</param>
/// <param name="KlHistory">KL(P ‖ Q) with the true (not exaggerated) P, every 50 iterations and at the last.</param>
/// <param name="LearningRate">The step size used (resolved when "auto").</param>
/// <param name="Iterations">Iterations run (fewer than asked when a stopping rule fired).</param>
public sealed record TsneResult(Tensor Embedding, IReadOnlyList<TsneCheckpoint> KlHistory, double LearningRate, int Iterations)
{
    /// <summary>The last KL divergence recorded.</summary>
    public double KlDivergence => KlHistory[^1].KlDivergence;
}

/// <summary>
/// t-distributed stochastic neighbour embedding (van der Maaten &amp; Hinton 2008, JMLR 9) with Barnes–Hut repulsion
/// (van der Maaten 2014, JMLR 15), following scikit-learn's <c>TSNE</c>: the paper's t-SNE baseline (arXiv:2401.02739).
/// </summary>
/// <remarks>
/// <para>Input affinities: for each point i, p_{j|i} = exp(−β_i d_ij²) / Σ_k exp(−β_i d_ik²) over its
/// ⌊3·perplexity + 1⌋ nearest neighbours (all other points in <see cref="TsneMethod.Exact"/>), β_i = 1/(2σ_i²) found
/// by bisection on β so that the entropy H(P_i) = −Σ_j p_{j|i} ln p_{j|i} equals ln(perplexity) within 1e-5 (at most
/// 100 steps). Then p_ij = (p_{j|i} + p_{i|j}) / (2n).</para>
/// <para>Output similarities: w_ij = (1 + ‖y_i − y_j‖²)⁻¹, Z = Σ_{k≠l} w_kl, q_ij = w_ij / Z. The objective
/// KL(P ‖ Q) = Σ p_ij ln(p_ij / q_ij) has gradient ∂/∂y_i = 4 Σ_j (α p_ij − q_ij) w_ij (y_i − y_j), α the exaggeration:
/// the attractive part runs over the sparse P, the repulsive part Σ_j w_ij² (y_i − y_j) / Z either exactly or through a
/// quadtree whose cells of side s at distance r from y_i act as one point of their mass and centre of mass when s/r &lt; θ
/// (a cell holding y_i itself is always opened, so no point repels itself).</para>
/// <para>Optimisation, as scikit-learn: gradient descent with momentum (0.5 during the 250 exaggerated iterations, 0.8
/// after), delta-bar-delta gains (Jacobs 1988) floored at 0.01, learning rate "auto" = max(n / α / 4, 50); the momentum
/// buffer and gains restart when the exaggeration ends; stopping as scikit-learn (gradient norm ≤ 1e-7, or no KL progress
/// for 300 iterations after exaggeration). PCA start: the centred data's first two principal axes (an exact
/// eigendecomposition, signs fixed so that each column's largest-magnitude score is positive), scaled so that the first
/// coordinate has standard deviation 1e-4.</para>
/// <para>Everything except the input distances is float64 on the host; the force loops run in parallel over points and
/// write per-point results, so a seed gives the same embedding whatever the thread count.</para>
/// </remarks>
public static class Tsne
{
    const string Method = "t-SNE";
    const int CheckEvery = 50;
    const double Float32Tiny = 1.1754943508222875e-38; // smallest normal float32: the floor scikit-learn puts under p and q in the KL

    /// <summary>Embeds the rows of <paramref name="data"/> in two dimensions.</summary>
    /// <param name="data"><c>[n, D]</c> floating point, finite, n ≥ 2 (and perplexity &lt; n − 1).</param>
    /// <param name="options">Settings; null for the defaults.</param>
    /// <param name="log">Receives the affinity summary and a line every 50 iterations.</param>
    public static TsneResult Embed(Tensor data, TsneOptions? options = null, Action<string>? log = null)
    {
        options ??= new TsneOptions();
        ExactNeighbours.Validate(Method, data, nameof(data));
        int n = (int)data.shape[0];
        options.Validate(n);

        int k = options.Method == TsneMethod.Exact ? n - 1 : Math.Min(n - 1, (int)(3 * options.Perplexity + 1));
        var (neighbours, distances) = ExactNeighbours.Compute(data, k);
        var squared = distances.Select(d => d * d).ToArray();
        var parallel = new ParallelOptions { MaxDegreeOfParallelism = options.MaxDegreeOfParallelism };
        var (conditional, _) = ConditionalAffinities(squared, n, k, options.Perplexity, parallel);
        var p = SparseAffinities.Symmetrise(neighbours, conditional, n, k);
        log?.Invoke($"{Method}: n = {n}, {k} neighbours per point, {p.Values.Length} nonzero affinities, perplexity {options.Perplexity}.");

        double[] y = options.Initialisation == TsneInitialisation.Pca ? PcaStart(data) : RandomStart(n, options.Seed);
        double learningRate = options.LearningRate ?? Math.Max(n / options.EarlyExaggeration / 4, 50);
        double theta = options.Method == TsneMethod.Exact ? -1 : options.Theta;

        var history = new List<TsneCheckpoint>();
        var gradient = new double[2 * n];
        var update = new double[2 * n];
        var gains = new double[2 * n];
        int iteration = 0;
        bool stopped = false;
        foreach (var phase in new[] { (Exaggerated: true, End: options.ExaggerationIterations), (Exaggerated: false, End: options.Iterations) })
        {
            if (stopped || iteration >= phase.End) continue;
            Array.Clear(update);
            Array.Fill(gains, 1.0);
            double momentum = phase.Exaggerated ? options.EarlyMomentum : options.LateMomentum;
            double exaggeration = phase.Exaggerated ? options.EarlyExaggeration : 1.0;
            double bestError = double.MaxValue;
            int bestIteration = iteration;
            for (; iteration < phase.End; iteration++)
            {
                bool check = (iteration + 1) % CheckEvery == 0 || iteration == options.Iterations - 1;
                double z = Gradient(p, y, exaggeration, theta, gradient, parallel);
                double kl = check ? KlDivergence(p, y, z) : double.NaN;

                double norm = 0;
                for (int a = 0; a < gradient.Length; a++)
                {
                    norm += gradient[a] * gradient[a];
                    bool sameDirection = update[a] * gradient[a] < 0; // the step keeps descending along this coordinate
                    gains[a] = Math.Max(sameDirection ? gains[a] + 0.2 : gains[a] * 0.8, options.MinGain);
                    update[a] = momentum * update[a] - learningRate * gains[a] * gradient[a];
                    y[a] += update[a];
                }
                norm = Math.Sqrt(norm);

                if (check)
                {
                    history.Add(new TsneCheckpoint(iteration + 1, kl));
                    log?.Invoke($"{Method} iteration {iteration + 1}: KL {kl:F4}, gradient norm {norm:G3}{(phase.Exaggerated ? " (exaggerated)" : "")}.");
                    bool noProgress = false;
                    if (kl < bestError) { bestError = kl; bestIteration = iteration; }
                    else if (iteration - bestIteration > (phase.Exaggerated ? options.ExaggerationIterations : options.IterationsWithoutProgress))
                        noProgress = true;
                    if (noProgress || norm <= options.MinGradientNorm)
                    {
                        // As scikit-learn, a stop ends the current phase: the exaggeration phase hands over to the next.
                        log?.Invoke($"{Method}: {(phase.Exaggerated ? "exaggeration phase" : "optimisation")} stopped at iteration {iteration + 1} " +
                                    $"({(noProgress ? "no KL progress" : "gradient norm below the minimum")}).");
                        iteration++;
                        stopped = !phase.Exaggerated;
                        break;
                    }
                }
            }
        }
        if (history.Count == 0 || history[^1].Iteration != iteration)
            history.Add(new TsneCheckpoint(iteration, KlDivergence(p, y, Gradient(p, y, 1.0, theta, gradient, parallel))));

        var embedding = tensor(y.Select(v => (float)v).ToArray(), [n, 2], ScalarType.Float32);
        return new TsneResult(embedding, history.AsReadOnly(), learningRate, iteration);
    }

    /// <summary>
    /// Row-wise conditional affinities p_{j|i} over each row's k neighbours from squared distances <c>[n, k]</c>, and
    /// the precisions β_i, by bisection on β so that H(P_i) = ln(perplexity).
    /// </summary>
    internal static (double[] Conditional, double[] Beta) ConditionalAffinities(double[] squaredDistances, int n, int k, double perplexity,
        ParallelOptions? parallel = null)
    {
        var conditional = new double[n * k];
        var betas = new double[n];
        double target = Math.Log(perplexity);
        Parallel.For(0, n, parallel ?? new ParallelOptions(), i =>
        {
            double beta = 1, low = double.NegativeInfinity, high = double.PositiveInfinity;
            int offset = i * k;
            for (int step = 0; step < 100; step++)
            {
                double sum = 0, weighted = 0;
                for (int j = 0; j < k; j++)
                {
                    double value = Math.Exp(-squaredDistances[offset + j] * beta);
                    conditional[offset + j] = value;
                    sum += value;
                }
                if (sum == 0) sum = 1e-8;
                for (int j = 0; j < k; j++)
                {
                    conditional[offset + j] /= sum;
                    weighted += squaredDistances[offset + j] * conditional[offset + j];
                }
                double entropy = Math.Log(sum) + beta * weighted;
                double difference = entropy - target;
                if (Math.Abs(difference) <= 1e-5) break;
                if (difference > 0)
                {
                    low = beta;
                    beta = double.IsPositiveInfinity(high) ? beta * 2 : (beta + high) / 2;
                }
                else
                {
                    high = beta;
                    beta = double.IsNegativeInfinity(low) ? beta / 2 : (beta + low) / 2;
                }
            }
            betas[i] = beta;
        });
        return (conditional, betas);
    }

    /// <summary>
    /// The KL gradient with attraction scaled by <paramref name="exaggeration"/> into <paramref name="gradient"/>
    /// <c>[n·2]</c>; repulsion exact when <paramref name="theta"/> &lt; 0, otherwise Barnes–Hut. Returns Z.
    /// </summary>
    internal static double Gradient(SparseAffinities p, double[] y, double exaggeration, double theta, double[] gradient,
        ParallelOptions? parallel = null)
    {
        int n = y.Length / 2;
        parallel ??= new ParallelOptions();
        var repulsion = new double[2 * n];
        var zParts = new double[n];
        if (theta < 0)
        {
            Parallel.For(0, n, parallel, i =>
            {
                double yx = y[2 * i], yy = y[2 * i + 1], fx = 0, fy = 0, z = 0;
                for (int j = 0; j < n; j++)
                {
                    if (j == i) continue;
                    double dx = yx - y[2 * j], dy = yy - y[2 * j + 1];
                    double w = 1 / (1 + dx * dx + dy * dy);
                    z += w;
                    fx += w * w * dx;
                    fy += w * w * dy;
                }
                repulsion[2 * i] = fx;
                repulsion[2 * i + 1] = fy;
                zParts[i] = z;
            });
        }
        else
        {
            var tree = new QuadTree(y);
            Parallel.For(0, n, parallel, () => new int[QuadTree.StackSize], (i, _, stack) =>
            {
                tree.Repulsion(i, theta, stack, out repulsion[2 * i], out repulsion[2 * i + 1], out zParts[i]);
                return stack;
            }, _ => { });
        }
        double zTotal = 0;
        for (int i = 0; i < n; i++) zTotal += zParts[i];

        Parallel.For(0, n, parallel, i =>
        {
            double yx = y[2 * i], yy = y[2 * i + 1], fx = 0, fy = 0;
            for (int e = p.RowStart[i]; e < p.RowStart[i + 1]; e++)
            {
                int j = p.Columns[e];
                double dx = yx - y[2 * j], dy = yy - y[2 * j + 1];
                double pw = p.Values[e] / (1 + dx * dx + dy * dy);
                fx += pw * dx;
                fy += pw * dy;
            }
            gradient[2 * i] = 4 * (exaggeration * fx - repulsion[2 * i] / zTotal);
            gradient[2 * i + 1] = 4 * (exaggeration * fy - repulsion[2 * i + 1] / zTotal);
        });
        return zTotal;
    }

    /// <summary>KL(P ‖ Q) = Σ p_ij ln(p_ij / q_ij) over the nonzero p_ij, with q_ij = w_ij / Z.</summary>
    internal static double KlDivergence(SparseAffinities p, double[] y, double z)
    {
        double kl = 0;
        for (int i = 0; i < p.RowStart.Length - 1; i++)
            for (int e = p.RowStart[i]; e < p.RowStart[i + 1]; e++)
            {
                int j = p.Columns[e];
                double dx = y[2 * i] - y[2 * j], dy = y[2 * i + 1] - y[2 * j + 1];
                double q = 1 / (1 + dx * dx + dy * dy) / z;
                double pij = p.Values[e];
                kl += pij * Math.Log(Math.Max(pij, Float32Tiny) / Math.Max(q, Float32Tiny));
            }
        return kl;
    }

    static double[] RandomStart(int n, int seed)
    {
        var random = new Random(seed);
        var y = new double[2 * n];
        for (int a = 0; a < y.Length; a += 2)
        {
            // Box–Muller: two independent standard normals from two uniforms.
            double radius = Math.Sqrt(-2 * Math.Log(1 - random.NextDouble()));
            double angle = 2 * Math.PI * random.NextDouble();
            y[a] = 1e-4 * radius * Math.Cos(angle);
            y[a + 1] = 1e-4 * radius * Math.Sin(angle);
        }
        return y;
    }

    /// <summary>First two principal-component scores, scaled so that the first has standard deviation 1e-4.</summary>
    static double[] PcaStart(Tensor data)
    {
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        var x = data.detach().to(ScalarType.Float64).cpu();
        x = x - x.mean([0], keepdim: true);                                  // [n, D]
        long n = x.shape[0], features = x.shape[1];
        Tensor scores;                                                       // [n, 2]
        if (features <= n)
        {
            var (_, vectors) = linalg.eigh(x.t().matmul(x));                 // ascending eigenvalues
            var axes = features >= 2 ? vectors.narrow(1, features - 2, 2).flip(1) : cat([vectors, zeros_like(vectors)], 1);
            scores = x.matmul(axes);
        }
        else
        {
            var (values, vectors) = linalg.eigh(x.matmul(x.t()));           // Gram matrix: scores are √λ · u
            scores = vectors.narrow(1, n - 2, 2).flip(1) * values.narrow(0, n - 2, 2).flip(0).clamp_min(Scalars.Of(0)).sqrt();
        }
        // Each column's sign: its largest-magnitude score positive, so the start does not depend on the eigensolver.
        var largest = scores.abs().argmax(0);                                // [2]
        var signs = scores.gather(0, largest.unsqueeze(0)).sign();
        signs = where(signs.eq(Scalars.Of(0)), ones_like(signs), signs);
        scores = scores * signs;
        double std = scores.select(1, 0).std(unbiased: false).item<double>(); // population deviation, as NumPy's std
        scores = std > 0 ? scores * Scalars.Of(1e-4 / std) : scores;
        return scores.contiguous().data<double>().ToArray();
    }
}

/// <summary>A symmetric sparse affinity matrix in compressed rows: row i's entries are Columns/Values[RowStart[i]..RowStart[i+1]).</summary>
internal sealed record SparseAffinities(int[] RowStart, int[] Columns, double[] Values)
{
    /// <summary>p_ij = (p_{j|i} + p_{i|j}) / Σ (both), from row-major conditional affinities over neighbour lists <c>[n, k]</c>.</summary>
    public static SparseAffinities Symmetrise(int[] neighbours, double[] conditional, int n, int k)
    {
        var rows = new Dictionary<int, double>[n];
        for (int i = 0; i < n; i++) rows[i] = new Dictionary<int, double>(2 * k);
        for (int i = 0; i < n; i++)
            for (int t = 0; t < k; t++)
            {
                int j = neighbours[i * k + t];
                double value = conditional[i * k + t];
                rows[i][j] = rows[i].GetValueOrDefault(j) + value;
                rows[j][i] = rows[j].GetValueOrDefault(i) + value;
            }
        double total = 0;
        foreach (var row in rows)
            foreach (double v in row.Values) total += v;
        total = Math.Max(total, 2.220446049250313e-16);
        var rowStart = new int[n + 1];
        for (int i = 0; i < n; i++) rowStart[i + 1] = rowStart[i] + rows[i].Count;
        var columns = new int[rowStart[n]];
        var values = new double[rowStart[n]];
        for (int i = 0; i < n; i++)
        {
            int e = rowStart[i];
            foreach (var (j, v) in rows[i].OrderBy(pair => pair.Key))
            {
                columns[e] = j;
                values[e++] = v / total;
            }
        }
        return new SparseAffinities(rowStart, columns, values);
    }
}
