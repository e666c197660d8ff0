using static TorchSharp.torch;

namespace Ddvi.Embeddings;

/// <summary>Where the UMAP layout starts.</summary>
public enum UmapInitialisation
{
    /// <summary>
    /// The normalised graph Laplacian's two smallest non-trivial eigenvectors; falls back to <see cref="Random"/> (and
    /// says so in the log) when the graph is disconnected or has more than <see cref="UmapOptions.MaxSpectralPoints"/> points.
    /// </summary>
    Spectral,
    /// <summary>Uniform coordinates in [−10, 10]² drawn from the seed.</summary>
    Random,
}

/// <summary>
/// Settings of <see cref="Umap.Embed"/>; the defaults are umap-learn's <c>UMAP</c> (Euclidean metric, two dimensions).
/// The paper's UMAP baseline used 15 neighbours and <c>MinDist = 0.5</c> (arXiv:2401.02739, 1000 Genomes): pass it.
/// </summary>
public sealed record UmapOptions
{
    /// <summary>Neighbourhood size k, the point itself counted as umap-learn counts it (so k − 1 other points); 2 ≤ k ≤ n.</summary>
    public int Neighbours { get; init; } = 15;

    /// <summary>Smallest distance between embedded points the low-dimensional curve treats as fully similar.</summary>
    public double MinDist { get; init; } = 0.1;

    /// <summary>Scale of the embedded points' spread; MinDist ≤ Spread.</summary>
    public double Spread { get; init; } = 1.0;

    /// <summary>SGD epochs; null for umap-learn's choice, 500 when n ≤ 10,000 and 200 above.</summary>
    public int? Epochs { get; init; }

    /// <summary>Negative samples per positive sample.</summary>
    public int NegativeSampleRate { get; init; } = 5;

    /// <summary>Initial SGD step α₀, decayed linearly to 0 over the epochs.</summary>
    public double LearningRate { get; init; } = 1.0;

    /// <summary>Weight γ of the repulsive term.</summary>
    public double RepulsionStrength { get; init; } = 1.0;

    /// <summary>Starting layout.</summary>
    public UmapInitialisation Initialisation { get; init; } = UmapInitialisation.Spectral;

    /// <summary>Largest n for the spectral start, which decomposes the dense n × n Laplacian (O(n³)).</summary>
    public int MaxSpectralPoints { get; init; } = 10_000;

    /// <summary>Seed of every random draw: initial noise or layout, and the negative samples.</summary>
    public int Seed { get; init; }

    /// <summary>Throws when a setting is out of range for <paramref name="points"/> points.</summary>
    public void Validate(long points)
    {
        const string Method = "UMAP";
        if (Neighbours < 2 || Neighbours > points)
            throw new ArgumentOutOfRangeException(nameof(Neighbours), Neighbours,
                $"{Method}: Neighbours must lie in [2, n] = [2, {points}] for n = {points} points (the point itself is one of them).");
        if (!(Spread > 0) || double.IsInfinity(Spread))
            throw new ArgumentOutOfRangeException(nameof(Spread), Spread, $"{Method}: Spread must be positive and finite.");
        if (!(MinDist >= 0) || MinDist > Spread)
            throw new ArgumentOutOfRangeException(nameof(MinDist), MinDist, $"{Method}: MinDist must lie in [0, Spread = {Spread}].");
        if (Epochs is int epochs && epochs < 1)
            throw new ArgumentOutOfRangeException(nameof(Epochs), epochs, $"{Method}: Epochs must be at least 1, or null for the default.");
        if (NegativeSampleRate < 0)
            throw new ArgumentOutOfRangeException(nameof(NegativeSampleRate), NegativeSampleRate, $"{Method}: NegativeSampleRate must be non-negative.");
        if (!(LearningRate > 0) || double.IsInfinity(LearningRate))
            throw new ArgumentOutOfRangeException(nameof(LearningRate), LearningRate, $"{Method}: LearningRate must be positive and finite.");
        if (!(RepulsionStrength >= 0) || double.IsInfinity(RepulsionStrength))
            throw new ArgumentOutOfRangeException(nameof(RepulsionStrength), RepulsionStrength, $"{Method}: RepulsionStrength must be finite and non-negative.");
        if (MaxSpectralPoints < 3)
            throw new ArgumentOutOfRangeException(nameof(MaxSpectralPoints), MaxSpectralPoints, $"{Method}: MaxSpectralPoints must be at least 3.");
    }
}

/// <summary>One entry of UMAP's symmetric fuzzy graph: membership strength <paramref name="Weight"/> in (0, 1].</summary>
public readonly record struct UmapEdge(int Head, int Tail, double Weight);

/// <summary>What <see cref="Umap.Embed"/> returns.</summary>
/// <param name="Embedding"><c>[n, 2]</c> float32 on the CPU, the caller's to dispose.</param>
/// <param name="Graph">The fuzzy union graph before the weak-edge pruning of the layout: each unordered pair
/// appears twice, as (i, j) and (j, i), ordered by head then tail.</param>
/// <param name="Rho">ρ_i, the distance to each point's nearest other point.</param>
/// <param name="Sigma">σ_i, each point's bandwidth.</param>
/// <param name="A">Fitted curve parameter a.</param>
/// <param name="B">Fitted curve parameter b.</param>
/// <param name="SpectralStart">Whether the layout started from the spectral embedding (false: random).</param>
public sealed record UmapResult(Tensor Embedding, IReadOnlyList<UmapEdge> Graph, double[] Rho, double[] Sigma, double A, double B,
    bool SpectralStart);

/// <summary>
/// Uniform manifold approximation and projection (McInnes, Healy &amp; Melville 2018, arXiv:1802.03426), following
/// umap-learn: the paper's UMAP baseline (arXiv:2401.02739).
/// </summary>
/// <remarks>
/// <para>Graph: the k nearest neighbours of each point (itself included, as umap-learn counts them; exact Euclidean
/// search), ρ_i the distance to the nearest other point and σ_i found by bisection (64 steps, tolerance 1e-5) so that
/// Σ_{j ≠ i} exp(−max(0, d_ij − ρ_i) / σ_i) = log₂ k, floored at 1e-3 × the mean distance of the row. Directed strengths
/// v_{j|i} = exp(−max(0, d_ij − ρ_i) / σ_i), fuzzy union w_ij = v_{j|i} + v_{i|j} − v_{j|i} v_{i|j}.</para>
/// <para>Curve: low-dimensional similarity 1 / (1 + a d^{2b}) with (a, b) fitted by Levenberg–Marquardt least squares to
/// 1 for d &lt; min_dist and exp(−(d − min_dist) / spread) beyond, on 300 points of [0, 3·spread] (umap-learn's
/// <c>find_ab_params</c>; a ≈ 1.577, b ≈ 0.895 for min_dist 0.1).</para>
/// <para>Layout: edges weaker than max w / epochs dropped; spectral start scaled so the largest coordinate is 10, plus
/// N(0, 1e-4²) noise; both starts rescaled to [0, 10] per axis. Then SGD on the fuzzy cross-entropy: each edge (both
/// directions) is sampled every max w / w_ij epochs, pulling its ends together with coefficient
/// −2ab d^{2(b−1)} / (1 + a d^{2b}) (d² the squared distance) and followed by 5 negative samples pushed apart with
/// 2γb / ((0.001 + d²)(1 + a d^{2b})), every gradient coordinate clipped to ±4, step α = α₀ (1 − (e − 1) / epochs) in epoch e ≥ 1 and α₀ in epoch 0.</para>
/// <para>Differences from umap-learn: a disconnected graph starts from a random layout instead of per-component spectral
/// layouts; the SGD runs single-threaded in float64 with <see cref="Random"/> for the negative samples, so a seed gives
/// one embedding.</para>
/// </remarks>
public static class Umap
{
    const string Method = "UMAP";

    /// <summary>Embeds the rows of <paramref name="data"/> in two dimensions.</summary>
    /// <param name="data"><c>[n, D]</c> floating point, finite, n ≥ 3.</param>
    /// <param name="options">Settings; null for the defaults.</param>
    /// <param name="log">Receives the graph summary, the start used, and progress every 50 epochs.</param>
    public static UmapResult Embed(Tensor data, UmapOptions? options = null, Action<string>? log = null)
    {
        options ??= new UmapOptions();
        ExactNeighbours.Validate(Method, data, nameof(data));
        int n = (int)data.shape[0];
        if (n < 3)
            throw new ArgumentException($"{Method}: data needs at least 3 rows for a 2-D layout, got {n}.", nameof(data));
        options.Validate(n);
        int others = options.Neighbours - 1;
        var (neighbours, distances) = ExactNeighbours.Compute(data, others);
        var (sigma, rho) = SmoothKnnDistances(distances, n, others, options.Neighbours);
        var directed = MembershipStrengths(distances, n, others, sigma, rho);
        var graph = FuzzyUnion(neighbours, directed, n, others);
        var (a, b) = FitCurve(options.MinDist, options.Spread);
        int epochs = options.Epochs ?? (n <= 10_000 ? 500 : 200);
        log?.Invoke($"{Method}: n = {n}, {options.Neighbours} neighbours, {graph.Count / 2} graph edges, a = {a:G5}, b = {b:G5}, {epochs} epochs.");

        double maxWeight = graph.Max(e => e.Weight);
        var kept = graph.Where(e => e.Weight >= maxWeight / epochs).ToArray();
        var random = new Random(options.Seed);
        bool spectral = false;
        double[]? y = null;
        if (options.Initialisation == UmapInitialisation.Spectral)
        {
            if (n > options.MaxSpectralPoints)
                log?.Invoke($"{Method}: {n} points exceed MaxSpectralPoints = {options.MaxSpectralPoints}; starting from a random layout.");
            else if (ComponentCount(kept, n) is int components && components > 1)
                log?.Invoke($"{Method}: the graph has {components} connected components; starting from a random layout instead of a spectral one.");
            else
            {
                y = SpectralStart(kept, n, random);
                spectral = true;
            }
        }
        if (y is null)
        {
            y = new double[2 * n];
            for (int t = 0; t < y.Length; t++) y[t] = 20 * random.NextDouble() - 10;
        }
        RescaleToTen(y);
        Optimise(y, kept, n, a, b, epochs, options, random, log);

        var embedding = tensor(y.Select(v => (float)v).ToArray(), [n, 2], ScalarType.Float32);
        return new UmapResult(embedding, graph, rho, sigma, a, b, spectral);
    }

    /// <summary>
    /// σ_i and ρ_i from each row's distances to its <paramref name="others"/> nearest other points <c>[n, others]</c>
    /// (ascending), so that Σ_j exp(−max(0, d_ij − ρ_i) / σ_i) = log₂ <paramref name="k"/>.
    /// </summary>
    internal static (double[] Sigma, double[] Rho) SmoothKnnDistances(double[] distances, int n, int others, int k)
    {
        const double Tolerance = 1e-5, MinScale = 1e-3;
        double target = Math.Log2(k);
        double meanAll = distances.Sum() / ((double)n * (others + 1)); // the self distances (0) count, as in umap-learn
        var sigma = new double[n];
        var rho = new double[n];
        for (int i = 0; i < n; i++)
        {
            int offset = i * others;
            double r = 0;
            for (int j = 0; j < others; j++)
                if (distances[offset + j] > 0) { r = distances[offset + j]; break; }
            rho[i] = r;

            double low = 0, high = double.PositiveInfinity, mid = 1;
            for (int step = 0; step < 64; step++)
            {
                double sum = 0;
                for (int j = 0; j < others; j++)
                {
                    double d = distances[offset + j] - r;
                    sum += d > 0 ? Math.Exp(-d / mid) : 1;
                }
                if (Math.Abs(sum - target) < Tolerance) break;
                if (sum > target)
                {
                    high = mid;
                    mid = (low + high) / 2;
                }
                else
                {
                    low = mid;
                    mid = double.IsPositiveInfinity(high) ? mid * 2 : (low + high) / 2;
                }
            }
            double meanRow = 0;
            for (int j = 0; j < others; j++) meanRow += distances[offset + j];
            meanRow /= others + 1;
            sigma[i] = Math.Max(mid, MinScale * (r > 0 ? meanRow : meanAll));
        }
        return (sigma, rho);
    }

    /// <summary>Directed strengths v_{j|i} = exp(−max(0, d_ij − ρ_i) / σ_i), row-major <c>[n, others]</c>.</summary>
    internal static double[] MembershipStrengths(double[] distances, int n, int others, double[] sigma, double[] rho)
    {
        var strengths = new double[n * others];
        for (int i = 0; i < n; i++)
            for (int j = 0; j < others; j++)
            {
                double d = distances[i * others + j] - rho[i];
                strengths[i * others + j] = d <= 0 || sigma[i] == 0 ? 1 : Math.Exp(-d / sigma[i]);
            }
        return strengths;
    }

    /// <summary>w_ij = v_{j|i} + v_{i|j} − v_{j|i} v_{i|j} over every pair that is a neighbour either way; zeros dropped.</summary>
    internal static List<UmapEdge> FuzzyUnion(int[] neighbours, double[] strengths, int n, int others)
    {
        var directed = new Dictionary<long, double>(n * others);
        for (int i = 0; i < n; i++)
            for (int t = 0; t < others; t++)
            {
                int j = neighbours[i * others + t];
                long key = (long)i * n + j;
                directed[key] = Math.Max(directed.GetValueOrDefault(key), strengths[i * others + t]);
            }
        var edges = new List<UmapEdge>(2 * directed.Count);
        foreach (var (key, forward) in directed)
        {
            int i = (int)(key / n), j = (int)(key % n);
            bool mutual = directed.TryGetValue((long)j * n + i, out double backward);
            if (mutual && j < i) continue; // the pair was emitted from its other direction
            double w = forward + backward - forward * backward;
            if (w <= 0) continue;
            edges.Add(new UmapEdge(i, j, w));
            edges.Add(new UmapEdge(j, i, w));
        }
        edges.Sort((x, y) => x.Head != y.Head ? x.Head.CompareTo(y.Head) : x.Tail.CompareTo(y.Tail));
        return edges;
    }

    /// <summary>
    /// (a, b) minimising Σ (1/(1 + a x^{2b}) − f(x))² over 300 points x of [0, 3·spread], f = 1 below min_dist and
    /// exp(−(x − min_dist)/spread) above: Levenberg–Marquardt from (1, 1).
    /// </summary>
    public static (double A, double B) FitCurve(double minDist, double spread)
    {
        if (!(spread > 0) || double.IsInfinity(spread))
            throw new ArgumentOutOfRangeException(nameof(spread), spread, $"{Method}: spread must be positive and finite.");
        if (!(minDist >= 0) || minDist > spread)
            throw new ArgumentOutOfRangeException(nameof(minDist), minDist, $"{Method}: minDist must lie in [0, spread = {spread}].");
        const int Points = 300;
        var x = new double[Points];
        var target = new double[Points];
        for (int t = 0; t < Points; t++)
        {
            x[t] = 3 * spread * t / (Points - 1);
            target[t] = x[t] < minDist ? 1 : Math.Exp(-(x[t] - minDist) / spread);
        }
        double Loss(double a, double b)
        {
            double s = 0;
            for (int t = 0; t < Points; t++)
            {
                double r = 1 / (1 + a * Math.Pow(x[t], 2 * b)) - target[t];
                s += r * r;
            }
            return s;
        }

        double aa = 1, bb = 1, lambda = 1e-3, loss = Loss(aa, bb);
        for (int iteration = 0; iteration < 1000; iteration++)
        {
            // Normal equations JᵀJ δ = −Jᵀr of the residuals r_t = f_t(a, b) − target_t.
            double jaa = 0, jab = 0, jbb = 0, ga = 0, gb = 0;
            for (int t = 0; t < Points; t++)
            {
                if (x[t] == 0) continue; // f = 1 whatever a and b: no residual change
                double power = Math.Pow(x[t], 2 * bb);
                double f = 1 / (1 + aa * power);
                double r = f - target[t];
                double da = -power * f * f;
                double db = -aa * power * 2 * Math.Log(x[t]) * f * f;
                jaa += da * da; jab += da * db; jbb += db * db;
                ga += da * r; gb += db * r;
            }
            bool improved = false;
            while (lambda < 1e12)
            {
                double m11 = jaa * (1 + lambda), m22 = jbb * (1 + lambda), det = m11 * m22 - jab * jab;
                double stepA = -(m22 * ga - jab * gb) / det;
                double stepB = -(m11 * gb - jab * ga) / det;
                double candidate = Loss(aa + stepA, bb + stepB);
                if (aa + stepA > 0 && candidate <= loss)
                {
                    bool small = Math.Abs(stepA) < 1e-12 * (1 + aa) && Math.Abs(stepB) < 1e-12 * (1 + bb);
                    aa += stepA; bb += stepB; loss = candidate;
                    lambda = Math.Max(lambda / 10, 1e-12);
                    improved = !small;
                    break;
                }
                lambda *= 10;
            }
            if (!improved) break;
        }
        return (aa, bb);
    }

    static int ComponentCount(UmapEdge[] edges, int n)
    {
        var parent = new int[n];
        for (int i = 0; i < n; i++) parent[i] = i;
        int Find(int i)
        {
            while (parent[i] != i) { parent[i] = parent[parent[i]]; i = parent[i]; }
            return i;
        }
        int components = n;
        foreach (var e in edges)
        {
            int ri = Find(e.Head), rj = Find(e.Tail);
            if (ri != rj) { parent[ri] = rj; components--; }
        }
        return components;
    }

    /// <summary>
    /// Eigenvectors 2 and 3 (ascending eigenvalue) of L = I − D^{−½} W D^{−½}, scaled so that the largest coordinate
    /// is 10, plus N(0, 1e-4²) noise.
    /// </summary>
    static double[] SpectralStart(UmapEdge[] edges, int n, Random random)
    {
        double[] layout;
        using (no_grad())
        using (NewDisposeScope())
        {
            var degree = new double[n];
            foreach (var e in edges) degree[e.Head] += e.Weight;
            var laplacian = new double[(long)n * n];
            for (int i = 0; i < n; i++) laplacian[(long)i * n + i] = 1;
            foreach (var e in edges)
                laplacian[(long)e.Head * n + e.Tail] -= e.Weight / Math.Sqrt(degree[e.Head] * degree[e.Tail]);
            var (_, vectors) = linalg.eigh(tensor(laplacian, [n, n], ScalarType.Float64)); // ascending eigenvalues
            layout = vectors.narrow(1, 1, 2).contiguous().data<double>().ToArray();
        }
        double largest = layout.Max(Math.Abs);
        double expansion = largest > 0 ? 10 / largest : 1;
        for (int t = 0; t < layout.Length; t++) layout[t] = layout[t] * expansion + 1e-4 * Normal(random);
        return layout;
    }

    static double Normal(Random random) =>
        Math.Sqrt(-2 * Math.Log(1 - random.NextDouble())) * Math.Cos(2 * Math.PI * random.NextDouble());

    static void RescaleToTen(double[] y)
    {
        for (int axis = 0; axis < 2; axis++)
        {
            double low = double.PositiveInfinity, high = double.NegativeInfinity;
            for (int t = axis; t < y.Length; t += 2) { low = Math.Min(low, y[t]); high = Math.Max(high, y[t]); }
            double range = high - low;
            for (int t = axis; t < y.Length; t += 2) y[t] = range > 0 ? 10 * (y[t] - low) / range : 0;
        }
    }

    static void Optimise(double[] y, UmapEdge[] edges, int n, double a, double b, int epochs, UmapOptions options, Random random,
        Action<string>? log)
    {
        const double Clip = 4;
        double maxWeight = edges.Max(e => e.Weight);
        int m = edges.Length;
        var epochsPerSample = new double[m];
        var nextSample = new double[m];
        var epochsPerNegative = new double[m];
        var nextNegative = new double[m];
        for (int e = 0; e < m; e++)
        {
            epochsPerSample[e] = maxWeight / edges[e].Weight;
            nextSample[e] = epochsPerSample[e];
            epochsPerNegative[e] = options.NegativeSampleRate > 0 ? epochsPerSample[e] / options.NegativeSampleRate : double.PositiveInfinity;
            nextNegative[e] = epochsPerNegative[e];
        }
        double gamma = options.RepulsionStrength;
        for (int epoch = 0; epoch < epochs; epoch++)
        {
            // umap-learn lowers the step after each epoch from the epoch just run, so epochs 0 and 1 both take α₀.
            double alpha = options.LearningRate * (1 - Math.Max(0, epoch - 1) / (double)epochs);
            for (int e = 0; e < m; e++)
            {
                if (nextSample[e] > epoch) continue;
                int j = edges[e].Head, k = edges[e].Tail;
                double dx = y[2 * j] - y[2 * k], dy = y[2 * j + 1] - y[2 * k + 1];
                double d2 = dx * dx + dy * dy;
                if (d2 > 0)
                {
                    double coefficient = -2 * a * b * Math.Pow(d2, b - 1) / (a * Math.Pow(d2, b) + 1);
                    double gx = Math.Clamp(coefficient * dx, -Clip, Clip), gy = Math.Clamp(coefficient * dy, -Clip, Clip);
                    y[2 * j] += gx * alpha; y[2 * j + 1] += gy * alpha;
                    y[2 * k] -= gx * alpha; y[2 * k + 1] -= gy * alpha;
                }
                nextSample[e] += epochsPerSample[e];

                int negatives = (int)((epoch - nextNegative[e]) / epochsPerNegative[e]);
                for (int s = 0; s < negatives; s++)
                {
                    int other = random.Next(n);
                    double nx = y[2 * j] - y[2 * other], ny = y[2 * j + 1] - y[2 * other + 1];
                    double nd2 = nx * nx + ny * ny;
                    if (nd2 <= 0) continue; // the point itself, or a coincident one: no defined direction
                    double coefficient = 2 * gamma * b / ((0.001 + nd2) * (a * Math.Pow(nd2, b) + 1));
                    y[2 * j] += Math.Clamp(coefficient * nx, -Clip, Clip) * alpha;
                    y[2 * j + 1] += Math.Clamp(coefficient * ny, -Clip, Clip) * alpha;
                }
                nextNegative[e] += negatives * epochsPerNegative[e];
            }
            if ((epoch + 1) % 50 == 0) log?.Invoke($"{Method}: epoch {epoch + 1}/{epochs}.");
        }
    }
}
