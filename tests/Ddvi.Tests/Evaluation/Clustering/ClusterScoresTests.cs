using Ddvi.Evaluation.Clustering;

namespace Ddvi.Tests.Evaluation.Clustering;

public class ClusterScoresTests
{
    // The 3 × 3 example, N = 10 (rows: classes 0, 1, 2; columns: clusters 0, 1, 2):
    //        k0 k1 k2 | n_c
    //   c0    3  1  0 |  4
    //   c1    0  2  0 |  2
    //   c2    1  0  3 |  4
    //   n_k   4  3  3
    static readonly int[] ExampleClasses = [0, 0, 0, 0, 1, 1, 2, 2, 2, 2];
    static readonly int[] ExampleClusters = [0, 0, 0, 1, 1, 1, 0, 2, 2, 2];

    [Fact]
    public void ContingencyTableCountsClassesAgainstClusters()
    {
        var table = ClusterScores.Contingency(ExampleClusters, ExampleClasses);
        Assert.Equal(new long[,] { { 3, 1, 0 }, { 0, 2, 0 }, { 1, 0, 3 } }, table);
    }

    [Fact]
    public void ThreeByThreeExampleMatchesHandArithmetic()
    {
        var scores = ClusterScores.Score(ExampleClusters, ExampleClasses);
        // Purity: (3 + 2 + 3) / 10 = 0.8.
        Assert.Equal(0.8, scores.Purity, 12);
        // H(C) = −(2 · 0.4 ln 0.4 + 0.2 ln 0.2) = 0.733032586 + 0.321887582 = 1.054920168
        // H(K) = −(0.4 ln 0.4 + 2 · 0.3 ln 0.3) = 0.366516293 + 0.722383683 = 1.088899976
        // I = 0.3 ln(30/16) + 0.1 ln(10/12) + 0.2 ln(20/6) + 0.1 ln(10/16) + 0.3 ln(30/12)
        //   = 0.188582598 − 0.018232156 + 0.240794561 − 0.047000363 + 0.274887220 = 0.639031860
        // h = I / H(C) = 0.605763246, c = I / H(K) = 0.586860018,
        // V = 2hc / (h + c) = 0.59616182, NMI = I / ((H(C) + H(K)) / 2) = 0.639031860 / 1.071910072 = 0.59616182
        // (V with β = 1 and the arithmetic NMI are the same number: 2hc/(h+c) = 2I/(H(C)+H(K))).
        Assert.Equal(0.605763246, scores.Homogeneity, 6);
        Assert.Equal(0.586860018, scores.Completeness, 6);
        Assert.Equal(0.59616182, scores.VMeasure, 6);
        Assert.Equal(0.59616182, scores.NormalisedMutualInformation, 6);
    }

    [Fact]
    public void ScoresDependOnlyOnThePartitionNotOnTheIds()
    {
        var relabelledClusters = ExampleClusters.Select(k => new[] { 40, -3, 7 }[k]).ToArray();
        var relabelledClasses = ExampleClasses.Select(c => new[] { 2, 0, 1 }[c]).ToArray();
        // Equal up to the order of the floating-point sums.
        Assert.Equal(Round(ClusterScores.Score(ExampleClusters, ExampleClasses)), Round(ClusterScores.Score(relabelledClusters, relabelledClasses)));
    }

    [Fact]
    public void PerfectClusteringScoresOneEverywhere()
    {
        int[] classes = [0, 0, 1, 1, 2, 2, 2];
        int[] clusters = [5, 5, 9, 9, 1, 1, 1];
        Assert.Equal(new ClusterScoreSet(1, 1, 1, 1, 1), Round(ClusterScores.Score(clusters, classes)));
    }

    [Fact]
    public void PerfectClusteringsNeverScoreAboveOneThroughRounding()
    {
        // Classes of 38, 7 and 21 points: summed term by term, I(C; K) comes out 2⁻⁵² above H(C) (a study's homogeneity
        // read 1.0000000000000002); every score is capped at 1.
        var sizes = new List<int[]> { new[] { 38, 7, 21 } };
        var random = new Random(1);
        for (int trial = 0; trial < 300; trial++)
            sizes.Add(Enumerable.Range(0, random.Next(2, 6)).Select(_ => random.Next(1, 41)).ToArray());
        foreach (var size in sizes)
        {
            int[] classes = size.SelectMany((count, c) => Enumerable.Repeat(c, count)).ToArray();
            var set = ClusterScores.Score(classes.Select(c => 10 - c).ToArray(), classes);
            foreach (double score in new[] { set.Homogeneity, set.Completeness, set.VMeasure, set.NormalisedMutualInformation })
            {
                Assert.True(score <= 1.0, $"sizes {string.Join(",", size)}: {score:R}");
                Assert.Equal(1.0, score, 1e-14);
            }
        }
    }

    [Fact]
    public void IndependentLabellingsScoreZeroInformation()
    {
        // Each class is spread evenly over both clusters: I(C; K) = 0. Purity: (1 + 1) / 4 = 0.5.
        var scores = ClusterScores.Score(clusters: [0, 1, 0, 1], classes: [0, 0, 1, 1]);
        Assert.Equal(new ClusterScoreSet(0.5, 0, 0, 0, 0), scores);
    }

    [Fact]
    public void EdgeCasesFollowScikitLearnsConventions()
    {
        // One class, several clusters: H(C) = 0 so h = 1; c = 0 / H(K) = 0; V = 0; NMI = 0 (I = 0, not the 1-and-1 case).
        Assert.Equal(new ClusterScoreSet(1, 1, 0, 0, 0), ClusterScores.Score(clusters: [0, 1, 2, 2], classes: [4, 4, 4, 4]));
        // One cluster, several classes: h = 0, c = 1, V = 0, NMI = 0; purity = the largest class, 3 of 4.
        Assert.Equal(new ClusterScoreSet(0.75, 0, 1, 0, 0), ClusterScores.Score(clusters: [3, 3, 3, 3], classes: [0, 0, 0, 1]));
        // One class and one cluster: the data are not split at all, a perfect match.
        Assert.Equal(new ClusterScoreSet(1, 1, 1, 1, 1), ClusterScores.Score(clusters: [2, 2, 2], classes: [0, 0, 0]));
        // A single point.
        Assert.Equal(new ClusterScoreSet(1, 1, 1, 1, 1), ClusterScores.Score(clusters: [0], classes: [0]));
    }

    [Fact]
    public void PurityAloneMatchesTheScoreSet()
    {
        Assert.Equal(0.8, ClusterScores.Purity(ExampleClusters, ExampleClasses), 12);
    }

    [Fact]
    public void BadInputsSayWhatIsWrong()
    {
        var mismatch = Assert.Throws<ArgumentException>(() => ClusterScores.Score(clusters: [0, 1, 2], classes: [0, 1]));
        Assert.Equal("classes", mismatch.ParamName);
        Assert.Contains("2 labels", mismatch.Message);
        Assert.Contains("3 ids", mismatch.Message);

        var empty = Assert.Throws<ArgumentException>(() => ClusterScores.Score(clusters: [], classes: []));
        Assert.Equal("clusters", empty.ParamName);
        Assert.Throws<ArgumentNullException>(() => ClusterScores.Score(null!, [0]));
    }

    static ClusterScoreSet Round(ClusterScoreSet s) =>
        new(Math.Round(s.Purity, 12), Math.Round(s.Homogeneity, 12), Math.Round(s.Completeness, 12), Math.Round(s.VMeasure, 12),
            Math.Round(s.NormalisedMutualInformation, 12));
}
