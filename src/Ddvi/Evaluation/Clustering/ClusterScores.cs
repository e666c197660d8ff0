namespace Ddvi.Evaluation.Clustering;

/// <summary>
/// Agreement between a clustering and the true classes, the five cluster scores of the paper's 1000 Genomes table
/// (arXiv:2401.02739, Table 3; the authors' release scores a 20-component Gaussian mixture fitted on the latents against
/// the 26 population labels).
/// </summary>
/// <param name="Purity">Σ_k max_c n_ck / N: each cluster votes for its most frequent class.</param>
/// <param name="Homogeneity">h = I(C; K) / H(C): 1 when every cluster holds one class.</param>
/// <param name="Completeness">c = I(C; K) / H(K): 1 when every class lies in one cluster.</param>
/// <param name="VMeasure">(1 + β) h c / (β h + c) with β = 1, the harmonic mean of h and c.</param>
/// <param name="NormalisedMutualInformation">I(C; K) / ((H(C) + H(K)) / 2), the arithmetic-mean normalisation.</param>
public sealed record ClusterScoreSet(double Purity, double Homogeneity, double Completeness, double VMeasure,
    double NormalisedMutualInformation);

/// <summary>
/// Cluster scores from predicted cluster ids and true class labels (Rosenberg &amp; Hirschberg 2007, "V-Measure: a
/// conditional entropy-based external cluster evaluation measure"; Strehl &amp; Ghosh 2002 for NMI), with
/// scikit-learn's conventions so that numbers compare with the paper's.
/// </summary>
/// <remarks>
/// <para>With n_ck the number of points of class c in cluster k, N the total, and natural logarithms:
/// H(C) = −Σ_c (n_c/N) ln(n_c/N), H(K) likewise over clusters, and
/// I(C; K) = Σ_ck (n_ck/N) ln(N n_ck / (n_c n_k)), clipped below at 0 (terms under machine ε are rounding).</para>
/// <para>Edge cases follow scikit-learn (<c>sklearn.metrics.cluster</c>): a single class has H(C) = 0 and then
/// homogeneity = 1; a single cluster has H(K) = 0 and then completeness = 1; V = 0 when h + c = 0; NMI = 1 when
/// there is one class and one cluster (the data are not split, a perfect match), otherwise NMI = 0 when I(C; K) = 0.</para>
/// <para>Ids and labels are arbitrary integers (negative ones included): only equality matters.</para>
/// </remarks>
public static class ClusterScores
{
    const string Metric = "Cluster scores";
    /// <summary>float64 machine ε, 2⁻⁵²: mutual-information terms below it are rounding, as scikit-learn drops them.</summary>
    const double MachineEpsilon = 2.220446049250313e-16;

    /// <summary>All five scores of <paramref name="clusters"/> against <paramref name="classes"/>.</summary>
    /// <param name="clusters">Predicted cluster id per point, length N ≥ 1.</param>
    /// <param name="classes">True class label per point, same length.</param>
    public static ClusterScoreSet Score(IReadOnlyList<int> clusters, IReadOnlyList<int> classes)
    {
        var table = Contingency(clusters, classes);
        double n = clusters.Count;
        double hClasses = Entropy(RowSums(table), n);
        double hClusters = Entropy(ColumnSums(table), n);
        double mi = MutualInformation(table, n);

        // I(C; K) ≤ min(H(C), H(K)); summed in another order than the entropies it can exceed them by rounding, so the
        // ratios are capped at 1 (scikit-learn's can reach 1 + 2⁻⁵²).
        double homogeneity = hClasses == 0 ? 1.0 : Math.Min(mi / hClasses, 1.0);
        double completeness = hClusters == 0 ? 1.0 : Math.Min(mi / hClusters, 1.0);
        double v = homogeneity + completeness == 0 ? 0.0 : 2 * homogeneity * completeness / (homogeneity + completeness);

        int classCount = table.GetLength(0), clusterCount = table.GetLength(1);
        double nmi = classCount == 1 && clusterCount == 1 ? 1.0
            : mi == 0 ? 0.0
            : Math.Min(mi / Math.Max(0.5 * (hClasses + hClusters), double.Epsilon), 1.0);
        return new ClusterScoreSet(Purity(table, n), homogeneity, completeness, v, nmi);
    }

    /// <summary>
    /// The contingency table n_ck → <c>[classes, clusters]</c> counts; rows follow the distinct class labels in
    /// ascending order, columns the distinct cluster ids in ascending order.
    /// </summary>
    public static long[,] Contingency(IReadOnlyList<int> clusters, IReadOnlyList<int> classes)
    {
        ArgumentNullException.ThrowIfNull(clusters);
        ArgumentNullException.ThrowIfNull(classes);
        if (clusters.Count == 0)
            throw new ArgumentException($"{Metric}: no points given; need at least one cluster id.", nameof(clusters));
        if (classes.Count != clusters.Count)
            throw new ArgumentException(
                $"{Metric}: classes has {classes.Count} labels but clusters has {clusters.Count} ids; need one of each per point.",
                nameof(classes));

        var classIndex = Dense(classes);
        var clusterIndex = Dense(clusters);
        var table = new long[classIndex.Count, clusterIndex.Count];
        for (int i = 0; i < clusters.Count; i++)
            table[classIndex[classes[i]], clusterIndex[clusters[i]]]++;
        return table;
    }

    /// <summary>Purity Σ_k max_c n_ck / N of a contingency table <c>[classes, clusters]</c>.</summary>
    public static double Purity(IReadOnlyList<int> clusters, IReadOnlyList<int> classes) =>
        Purity(Contingency(clusters, classes), clusters.Count);

    static double Purity(long[,] table, double n)
    {
        long sum = 0;
        for (int k = 0; k < table.GetLength(1); k++)
        {
            long best = 0;
            for (int c = 0; c < table.GetLength(0); c++) best = Math.Max(best, table[c, k]);
            sum += best;
        }
        return sum / n;
    }

    static double MutualInformation(long[,] table, double n)
    {
        long[] rows = RowSums(table), columns = ColumnSums(table);
        double mi = 0;
        for (int c = 0; c < rows.Length; c++)
            for (int k = 0; k < columns.Length; k++)
            {
                long count = table[c, k];
                if (count == 0) continue;
                double term = count / n * Math.Log(n * count / ((double)rows[c] * columns[k]));
                if (Math.Abs(term) >= MachineEpsilon) mi += term;
            }
        return Math.Max(mi, 0.0);
    }

    static double Entropy(long[] counts, double n)
    {
        if (counts.Length == 1) return 0.0;
        double h = 0;
        foreach (long count in counts)
            if (count > 0) h -= count / n * Math.Log(count / n);
        return h;
    }

    static long[] RowSums(long[,] table)
    {
        var sums = new long[table.GetLength(0)];
        for (int c = 0; c < sums.Length; c++)
            for (int k = 0; k < table.GetLength(1); k++) sums[c] += table[c, k];
        return sums;
    }

    static long[] ColumnSums(long[,] table)
    {
        var sums = new long[table.GetLength(1)];
        for (int k = 0; k < sums.Length; k++)
            for (int c = 0; c < table.GetLength(0); c++) sums[k] += table[c, k];
        return sums;
    }

    /// <summary>Each distinct value → its rank among the distinct values.</summary>
    static Dictionary<int, int> Dense(IReadOnlyList<int> values)
    {
        var distinct = values.Distinct().Order().ToArray();
        var index = new Dictionary<int, int>(distinct.Length);
        for (int i = 0; i < distinct.Length; i++) index[distinct[i]] = i;
        return index;
    }
}
