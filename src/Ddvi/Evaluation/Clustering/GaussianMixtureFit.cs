using static TorchSharp.torch;

namespace Ddvi.Evaluation.Clustering;

/// <summary>
/// Settings of <see cref="GaussianMixtureFit.Fit"/>. Defaults are the paper's 1000 Genomes scoring (20 components, 10
/// initialisations, at most 100 EM iterations, covariance regularisation 1e-2; arXiv:2401.02739 and the authors' release);
/// tolerance and the k-means start are scikit-learn's <c>GaussianMixture</c> defaults.
/// </summary>
public sealed record GaussianMixtureOptions
{
    /// <summary>Number of mixture components K.</summary>
    public int Components { get; init; } = 20;

    /// <summary>Independent starts; the one with the highest lower bound is kept (scikit-learn's <c>n_init</c>).</summary>
    public int Initialisations { get; init; } = 10;

    /// <summary>EM iterations per start at most.</summary>
    public int MaxIterations { get; init; } = 100;

    /// <summary>EM stops when the mean log-likelihood per point changes by less than this between iterations.</summary>
    public double Tolerance { get; init; } = 1e-3;

    /// <summary>
    /// Added to the diagonal of every covariance (scikit-learn's <c>reg_covar</c>, whose default is 1e-6; 1e-2 is the
    /// paper's value for 2-D latents).
    /// </summary>
    public double CovarianceRegularisation { get; init; } = 1e-2;

    /// <summary>Lloyd iterations of the k-means run that starts each EM at most (scikit-learn's KMeans default 300).</summary>
    public int KMeansIterations { get; init; } = 300;

    /// <summary>Seed of the one <see cref="Random"/> that draws every k-means++ start, in order.</summary>
    public int Seed { get; init; }

    /// <summary>Throws when a setting is out of range; <paramref name="points"/> is the number of points to fit.</summary>
    public void Validate(long points)
    {
        const string Model = "Gaussian mixture";
        if (Components < 1)
            throw new ArgumentOutOfRangeException(nameof(Components), Components, $"{Model}: Components must be at least 1.");
        if (points < Components)
            throw new ArgumentOutOfRangeException(nameof(Components), Components,
                $"{Model}: Components must not exceed the number of points ({points}).");
        if (Initialisations < 1)
            throw new ArgumentOutOfRangeException(nameof(Initialisations), Initialisations, $"{Model}: Initialisations must be at least 1.");
        if (MaxIterations < 1)
            throw new ArgumentOutOfRangeException(nameof(MaxIterations), MaxIterations, $"{Model}: MaxIterations must be at least 1.");
        if (KMeansIterations < 1)
            throw new ArgumentOutOfRangeException(nameof(KMeansIterations), KMeansIterations, $"{Model}: KMeansIterations must be at least 1.");
        if (!(Tolerance >= 0) || double.IsInfinity(Tolerance))
            throw new ArgumentOutOfRangeException(nameof(Tolerance), Tolerance, $"{Model}: Tolerance must be finite and non-negative.");
        if (!(CovarianceRegularisation >= 0) || double.IsInfinity(CovarianceRegularisation))
            throw new ArgumentOutOfRangeException(nameof(CovarianceRegularisation), CovarianceRegularisation,
                $"{Model}: CovarianceRegularisation must be finite and non-negative.");
    }
}

/// <summary>
/// A full-covariance Gaussian mixture p(x) = Σ_k π_k N(x; μ_k, Σ_k) fitted by expectation–maximisation (Dempster, Laird
/// &amp; Rubin 1977), as scikit-learn's <c>GaussianMixture(covariance_type="full", init_params="kmeans")</c>; the paper
/// clusters 2-D latents with it (arXiv:2401.02739, 1000 Genomes).
/// </summary>
/// <remarks>
/// <para>E-step: log r_ik = log π_k + log N(x_i; μ_k, Σ_k) − log Σ_j π_j N(x_i; μ_j, Σ_j) (log-sum-exp), with
/// log N = −½ (d ln 2π + ln|Σ_k| + ‖L_k⁻¹(x_i − μ_k)‖²) through the Cholesky factor Σ_k = L_k L_kᵀ.
/// M-step: n_k = Σ_i r_ik + 10ε, π_k = n_k / N, μ_k = Σ_i r_ik x_i / n_k,
/// Σ_k = Σ_i r_ik (x_i − μ_k)(x_i − μ_k)ᵀ / n_k + λ I with λ = <see cref="GaussianMixtureOptions.CovarianceRegularisation"/>.
/// EM stops when the mean log-likelihood ℓ = (1/N) Σ_i log p(x_i) moves by less than the tolerance; ℓ never decreases.</para>
/// <para>Start (scikit-learn's 'kmeans' init): k-means++ seeding (Arthur &amp; Vassilevskii 2007, greedy with 2 + ⌊ln K⌋
/// candidates per centre, as scikit-learn) and Lloyd iterations until no label changes or the squared centre shift
/// falls under 1e-4 × the mean feature variance; the hard k-means labels are the first responsibilities, then an M-step.
/// A k-means cluster that empties is moved to the point farthest from its centre.</para>
/// <para>An EM component that loses all its points is kept as scikit-learn keeps it: weight 10ε/N (ε = 2⁻⁵²), mean
/// Σ r x / (10ε) ≈ 0 and covariance λ I; it wins no point unless the others are far worse.</para>
/// <para>Arithmetic is float64 on the host, O(N K d²) per iteration: meant for low-dimensional latents.</para>
/// </remarks>
public sealed class GaussianMixtureFit
{
    const string Model = "Gaussian mixture";
    const double MachineEpsilon = 2.220446049250313e-16;

    /// <summary>Mixture weights π_k, <c>[K]</c>, summing to 1.</summary>
    public double[] Weights { get; }

    /// <summary>Component means μ_k, <c>[K, d]</c>.</summary>
    public double[,] Means { get; }

    /// <summary>Component covariances Σ_k (regularisation included), <c>[K, d, d]</c>.</summary>
    public double[,,] Covariances { get; }

    /// <summary>Mean log-likelihood per point, (1/N) Σ_i log p(x_i), of the fitted points under these parameters.</summary>
    public double LogLikelihood { get; }

    /// <summary>
    /// scikit-learn's <c>lower_bound_</c>: ℓ at the last E-step of the kept start, i.e. at the parameters one M-step
    /// before those returned, so at most <see cref="LogLikelihood"/>; the starts compete on it, and the authors' release
    /// reports it as the mixture's "ELBO".
    /// </summary>
    public double LowerBound { get; }

    /// <summary>Whether the kept start met the tolerance within <see cref="GaussianMixtureOptions.MaxIterations"/>.</summary>
    public bool Converged { get; }

    /// <summary>EM iterations of the kept start.</summary>
    public int Iterations { get; }

    /// <summary>
    /// ℓ at each E-step of the kept start (entry t is evaluated at the parameters after t M-steps, the first after the
    /// k-means start): non-decreasing up to rounding.
    /// </summary>
    public IReadOnlyList<double> LogLikelihoodHistory { get; }

    /// <summary>The options the model was fitted with.</summary>
    public GaussianMixtureOptions Options { get; }

    readonly double[][] choleskyFactors; // lower triangles of Σ_k, row-major d × d
    readonly double[] logDeterminants;   // ln |Σ_k|

    public int ComponentCount => Weights.Length;
    public int Dimensions => Means.GetLength(1);

    GaussianMixtureFit(Parameters p, double logLikelihood, double lowerBound, bool converged, int iterations, List<double> history, GaussianMixtureOptions options)
    {
        int k = p.Weights.Length, d = p.Dimensions;
        Weights = (double[])p.Weights.Clone();
        Means = new double[k, d];
        Covariances = new double[k, d, d];
        for (int c = 0; c < k; c++)
            for (int a = 0; a < d; a++)
            {
                Means[c, a] = p.Means[c * d + a];
                for (int b = 0; b < d; b++) Covariances[c, a, b] = p.Covariances[c][a * d + b];
            }
        choleskyFactors = p.Cholesky.Select(l => (double[])l.Clone()).ToArray();
        logDeterminants = (double[])p.LogDeterminants.Clone();
        LogLikelihood = logLikelihood;
        LowerBound = lowerBound;
        Converged = converged;
        Iterations = iterations;
        LogLikelihoodHistory = history.AsReadOnly();
        Options = options;
    }

    /// <summary>Fits the mixture to <paramref name="points"/> <c>[N, d]</c> (floating point, finite, N ≥ K).</summary>
    /// <param name="points"><c>[N, d]</c> points, any floating dtype and device; read once into float64 on the host.</param>
    /// <param name="options">Settings; null for the defaults.</param>
    /// <param name="log">Receives one line per start.</param>
    public static GaussianMixtureFit Fit(Tensor points, GaussianMixtureOptions? options = null, Action<string>? log = null)
    {
        options ??= new GaussianMixtureOptions();
        var (x, n, d) = ReadPoints(points, nameof(points), expectedDimensions: null);
        options.Validate(n);

        var random = new Random(options.Seed);
        Parameters? best = null;
        double bestLowerBound = double.NegativeInfinity, bestLogLikelihood = double.NegativeInfinity;
        bool bestConverged = false;
        int bestIterations = 0;
        List<double> bestHistory = [];
        var responsibilities = new double[n * options.Components];
        for (int start = 0; start < options.Initialisations; start++)
        {
            int[] labels = KMeans(x, n, d, options.Components, options.KMeansIterations, random);
            Array.Clear(responsibilities);
            for (int i = 0; i < n; i++) responsibilities[i * options.Components + labels[i]] = 1;
            var parameters = MStep(x, n, d, responsibilities, options.Components, options.CovarianceRegularisation);

            var history = new List<double>();
            double previous = double.NegativeInfinity;
            bool converged = false;
            int iteration = 0;
            while (iteration < options.MaxIterations)
            {
                iteration++;
                double logLikelihood = EStep(x, n, parameters, responsibilities);
                parameters = MStep(x, n, d, responsibilities, options.Components, options.CovarianceRegularisation);
                history.Add(logLikelihood);
                if (Math.Abs(logLikelihood - previous) < options.Tolerance)
                {
                    converged = true;
                    break;
                }
                previous = logLikelihood;
            }
            double lowerBound = history[^1];
            log?.Invoke($"{Model} start {start + 1}/{options.Initialisations}: {iteration} EM iterations, " +
                        $"lower bound {lowerBound:G6}{(converged ? "" : ", not converged")}.");
            if (best is null || lowerBound > bestLowerBound)
            {
                best = parameters;
                bestLowerBound = lowerBound;
                // ℓ at the parameters returned, one E-step past the last in the loop.
                bestLogLikelihood = EStep(x, n, parameters, responsibilities);
                bestConverged = converged;
                bestIterations = iteration;
                bestHistory = history;
            }
        }
        return new GaussianMixtureFit(best!, bestLogLikelihood, bestLowerBound, bestConverged, bestIterations, bestHistory, options);
    }

    /// <summary>Most probable component of each point, argmax_k π_k N(x; μ_k, Σ_k) → <c>[M]</c>.</summary>
    /// <param name="points"><c>[M, d]</c> with the fitted d.</param>
    public int[] Predict(Tensor points)
    {
        var (x, m, _) = ReadPoints(points, nameof(points), Dimensions);
        var parameters = AsParameters();
        var labels = new int[m];
        var scratch = new double[ComponentCount];
        for (int i = 0; i < m; i++)
        {
            WeightedLogDensities(x, i, parameters, scratch);
            int best = 0;
            for (int c = 1; c < scratch.Length; c++)
                if (scratch[c] > scratch[best]) best = c;
            labels[i] = best;
        }
        return labels;
    }

    /// <summary>log p(x) = log Σ_k π_k N(x; μ_k, Σ_k) of each point → <c>[M]</c>.</summary>
    /// <param name="points"><c>[M, d]</c> with the fitted d.</param>
    public double[] LogDensity(Tensor points)
    {
        var (x, m, _) = ReadPoints(points, nameof(points), Dimensions);
        var parameters = AsParameters();
        var result = new double[m];
        var scratch = new double[ComponentCount];
        for (int i = 0; i < m; i++)
        {
            WeightedLogDensities(x, i, parameters, scratch);
            result[i] = LogSumExp(scratch);
        }
        return result;
    }

    Parameters AsParameters()
    {
        int k = ComponentCount, d = Dimensions;
        var means = new double[k * d];
        for (int c = 0; c < k; c++)
            for (int a = 0; a < d; a++) means[c * d + a] = Means[c, a];
        return new Parameters(d, Weights, means, [], choleskyFactors, logDeterminants);
    }

    /// <summary>One component set; means and covariances flat per component.</summary>
    sealed record Parameters(int Dimensions, double[] Weights, double[] Means, double[][] Covariances, double[][] Cholesky,
        double[] LogDeterminants);

    /// <summary>Responsibilities in place; returns the mean log-likelihood.</summary>
    static double EStep(double[] x, int n, Parameters p, double[] responsibilities)
    {
        int k = p.Weights.Length;
        double total = 0;
        var scratch = new double[k];
        for (int i = 0; i < n; i++)
        {
            WeightedLogDensities(x, i, p, scratch);
            double logNormaliser = LogSumExp(scratch);
            total += logNormaliser;
            for (int c = 0; c < k; c++) responsibilities[i * k + c] = Math.Exp(scratch[c] - logNormaliser);
        }
        return total / n;
    }

    /// <summary>log π_k + log N(x_i; μ_k, Σ_k) for every k into <paramref name="result"/>.</summary>
    static void WeightedLogDensities(double[] x, int i, Parameters p, double[] result)
    {
        int d = p.Dimensions;
        double constant = d * Math.Log(2 * Math.PI);
        Span<double> y = d <= 64 ? stackalloc double[d] : new double[d];
        for (int c = 0; c < result.Length; c++)
        {
            // Forward substitution L y = x − μ, so ‖y‖² is the Mahalanobis distance.
            double[] l = p.Cholesky[c];
            double squared = 0;
            for (int a = 0; a < d; a++)
            {
                double s = x[i * d + a] - p.Means[c * d + a];
                for (int b = 0; b < a; b++) s -= l[a * d + b] * y[b];
                y[a] = s / l[a * d + a];
                squared += y[a] * y[a];
            }
            result[c] = Math.Log(p.Weights[c]) - 0.5 * (constant + p.LogDeterminants[c] + squared);
        }
    }

    static Parameters MStep(double[] x, int n, int d, double[] r, int k, double regularisation)
    {
        var weights = new double[k];
        var means = new double[k * d];
        var covariances = new double[k][];
        var cholesky = new double[k][];
        var logDeterminants = new double[k];
        for (int c = 0; c < k; c++)
        {
            double nk = 10 * MachineEpsilon;
            for (int i = 0; i < n; i++) nk += r[i * k + c];
            weights[c] = nk;
            for (int i = 0; i < n; i++)
            {
                double w = r[i * k + c];
                if (w == 0) continue;
                for (int a = 0; a < d; a++) means[c * d + a] += w * x[i * d + a];
            }
            for (int a = 0; a < d; a++) means[c * d + a] /= nk;

            var covariance = new double[d * d];
            var difference = new double[d];
            for (int i = 0; i < n; i++)
            {
                double w = r[i * k + c];
                if (w == 0) continue;
                for (int a = 0; a < d; a++) difference[a] = x[i * d + a] - means[c * d + a];
                for (int a = 0; a < d; a++)
                    for (int b = 0; b <= a; b++) covariance[a * d + b] += w * difference[a] * difference[b];
            }
            for (int a = 0; a < d; a++)
            {
                for (int b = 0; b <= a; b++)
                {
                    covariance[a * d + b] /= nk;
                    covariance[b * d + a] = covariance[a * d + b];
                }
                covariance[a * d + a] += regularisation;
            }
            covariances[c] = covariance;
            (cholesky[c], logDeterminants[c]) = Cholesky(covariance, d, c);
        }
        double sum = weights.Sum();
        for (int c = 0; c < k; c++) weights[c] /= sum;
        return new Parameters(d, weights, means, covariances, cholesky, logDeterminants);
    }

    /// <summary>Lower-triangular L with Σ = L Lᵀ, and ln |Σ| = 2 Σ ln L_aa.</summary>
    static (double[] L, double LogDeterminant) Cholesky(double[] covariance, int d, int component)
    {
        var l = new double[d * d];
        double logDeterminant = 0;
        for (int a = 0; a < d; a++)
        {
            for (int b = 0; b <= a; b++)
            {
                double s = covariance[a * d + b];
                for (int c = 0; c < b; c++) s -= l[a * d + c] * l[b * d + c];
                if (a == b)
                {
                    if (!(s > 0))
                        throw new InvalidOperationException(
                            $"{Model}: the covariance of component {component} is not positive definite (pivot {s:G3} in row {a}); " +
                            "raise CovarianceRegularisation or scale the points.");
                    l[a * d + a] = Math.Sqrt(s);
                    logDeterminant += 2 * Math.Log(l[a * d + a]);
                }
                else
                {
                    l[a * d + b] = s / l[b * d + b];
                }
            }
        }
        return (l, logDeterminant);
    }

    /// <summary>k-means++ seeding then Lloyd iterations → a label per point.</summary>
    static int[] KMeans(double[] x, int n, int d, int k, int maxIterations, Random random)
    {
        var centres = KMeansPlusPlus(x, n, d, k, random);
        var labels = new int[n];
        Array.Fill(labels, -1);
        double tolerance = 1e-4 * MeanVariance(x, n, d);
        var counts = new int[k];
        var sums = new double[k * d];
        for (int iteration = 0; iteration < maxIterations; iteration++)
        {
            bool changed = false;
            for (int i = 0; i < n; i++)
            {
                int best = 0;
                double bestDistance = double.PositiveInfinity;
                for (int c = 0; c < k; c++)
                {
                    double distance = SquaredDistance(x, i * d, centres, c * d, d);
                    if (distance < bestDistance) { bestDistance = distance; best = c; }
                }
                if (labels[i] != best) { labels[i] = best; changed = true; }
            }
            if (!changed) break;

            Array.Clear(counts);
            Array.Clear(sums);
            for (int i = 0; i < n; i++)
            {
                counts[labels[i]]++;
                for (int a = 0; a < d; a++) sums[labels[i] * d + a] += x[i * d + a];
            }
            double shift = 0;
            for (int c = 0; c < k; c++)
            {
                if (counts[c] == 0)
                {
                    // An empty cluster restarts at the point farthest from its own centre.
                    int farthest = 0;
                    double farthestDistance = -1;
                    for (int i = 0; i < n; i++)
                    {
                        double distance = SquaredDistance(x, i * d, centres, labels[i] * d, d);
                        if (distance > farthestDistance) { farthestDistance = distance; farthest = i; }
                    }
                    for (int a = 0; a < d; a++) sums[c * d + a] = x[farthest * d + a];
                    counts[c] = 1;
                    labels[farthest] = c;
                }
                for (int a = 0; a < d; a++)
                {
                    double updated = sums[c * d + a] / counts[c];
                    shift += (updated - centres[c * d + a]) * (updated - centres[c * d + a]);
                    centres[c * d + a] = updated;
                }
            }
            if (shift <= tolerance)
            {
                // Final assignment to the moved centres, as Lloyd's algorithm ends.
                for (int i = 0; i < n; i++)
                {
                    int best = 0;
                    double bestDistance = double.PositiveInfinity;
                    for (int c = 0; c < k; c++)
                    {
                        double distance = SquaredDistance(x, i * d, centres, c * d, d);
                        if (distance < bestDistance) { bestDistance = distance; best = c; }
                    }
                    labels[i] = best;
                }
                break;
            }
        }
        return labels;
    }

    /// <summary>Greedy k-means++: each new centre is the best of 2 + ⌊ln K⌋ candidates drawn ∝ D².</summary>
    static double[] KMeansPlusPlus(double[] x, int n, int d, int k, Random random)
    {
        var centres = new double[k * d];
        int trials = 2 + (int)Math.Log(k);
        int first = random.Next(n);
        Array.Copy(x, first * d, centres, 0, d);
        var closest = new double[n];
        for (int i = 0; i < n; i++) closest[i] = SquaredDistance(x, i * d, centres, 0, d);
        var candidateClosest = new double[n];
        var bestClosest = new double[n];
        for (int c = 1; c < k; c++)
        {
            double potential = closest.Sum();
            int bestCandidate = -1;
            double bestPotential = double.PositiveInfinity;
            for (int t = 0; t < trials; t++)
            {
                int candidate = SampleProportional(closest, potential, random);
                double candidatePotential = 0;
                for (int i = 0; i < n; i++)
                {
                    candidateClosest[i] = Math.Min(closest[i], SquaredDistance(x, i * d, x, candidate * d, d));
                    candidatePotential += candidateClosest[i];
                }
                if (candidatePotential < bestPotential)
                {
                    bestPotential = candidatePotential;
                    bestCandidate = candidate;
                    Array.Copy(candidateClosest, bestClosest, n);
                }
            }
            Array.Copy(x, bestCandidate * d, centres, c * d, d);
            Array.Copy(bestClosest, closest, n);
        }
        return centres;
    }

    static int SampleProportional(double[] weights, double total, Random random)
    {
        if (!(total > 0)) return random.Next(weights.Length); // every point already is a centre
        double u = random.NextDouble() * total;
        double cumulative = 0;
        for (int i = 0; i < weights.Length; i++)
        {
            cumulative += weights[i];
            if (u < cumulative) return i;
        }
        return Array.FindLastIndex(weights, w => w > 0);
    }

    static double MeanVariance(double[] x, int n, int d)
    {
        double total = 0;
        for (int a = 0; a < d; a++)
        {
            double mean = 0, square = 0;
            for (int i = 0; i < n; i++) mean += x[i * d + a];
            mean /= n;
            for (int i = 0; i < n; i++) square += (x[i * d + a] - mean) * (x[i * d + a] - mean);
            total += square / n;
        }
        return total / d;
    }

    static double SquaredDistance(double[] x, int xOffset, double[] y, int yOffset, int d)
    {
        double s = 0;
        for (int a = 0; a < d; a++)
        {
            double difference = x[xOffset + a] - y[yOffset + a];
            s += difference * difference;
        }
        return s;
    }

    static double LogSumExp(double[] values)
    {
        double max = values.Max();
        if (double.IsNegativeInfinity(max)) return max;
        double sum = 0;
        foreach (double v in values) sum += Math.Exp(v - max);
        return max + Math.Log(sum);
    }

    static (double[] Values, int Rows, int Columns) ReadPoints(Tensor points, string name, int? expectedDimensions)
    {
        ArgumentNullException.ThrowIfNull(points, name);
        TensorArguments.RequireMatrix(Model, name, points);
        if (expectedDimensions is int d && points.shape[1] != d)
            throw new ArgumentException($"{Model}: {name} must have {d} columns as the fitted points, got {TensorArguments.Shape(points)}.", name);
        if (points.shape[0] > int.MaxValue / Math.Max(1, points.shape[1]))
            throw new ArgumentException($"{Model}: {name} is too large for the host arrays, got {TensorArguments.Shape(points)}.", name);
        double[] values;
        using (NewDisposeScope())
        using (no_grad())
            values = points.detach().to(ScalarType.Float64).cpu().contiguous().data<double>().ToArray();
        int bad = Array.FindIndex(values, v => !double.IsFinite(v));
        if (bad >= 0)
            throw new ArgumentException(
                $"{Model}: {name} must be finite, got {values[bad]} at row {bad / points.shape[1]}, column {bad % points.shape[1]}.", name);
        return (values, (int)points.shape[0], (int)points.shape[1]);
    }
}
