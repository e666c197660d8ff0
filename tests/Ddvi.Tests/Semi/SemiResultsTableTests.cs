using Ddvi.Experiments;
using Ddvi.Experiments.Comparison;
using Ddvi.Tests.Comparison;

namespace Ddvi.Tests.Semi;

public class SemiResultsTableTests
{
    private static RunResult Semi(string model, long seed, int labels, double? accuracy, double knnLabelled) =>
        ComparisonFixtures.Run(ComparisonFixtures.Metrics(model, "pinwheel", seed, null, 1.0, 0.5, 0.1, 10) with
        {
            SemiSupervised = new SemiSupervisedMetrics(labels, accuracy is null ? null : new ClassificationMetric(accuracy.Value, "q(c|x)"),
                new KnnMetric(knnLabelled, 20, "labelled only"), new LatentNllMetric(2.0, [0.05], 100, "class")),
        });

    [Fact]
    public void SemiSupervisedRunsGetAccuracyColumnsAndArePooledByLabelBudget()
    {
        var table = ResultsTable.Build(
        [
            Semi("ddvi-semi", 0, 1000, 0.9, 0.8), Semi("ddvi-semi", 1, 1000, 0.7, 0.6), Semi("ddvi-semi", 0, 100, 0.5, 0.4),
            Semi("aae-semi", 0, 1000, null, 0.3),
        ]);
        Assert.Equal(["aae-semi (1000 labels)", "ddvi-semi (100 labels)", "ddvi-semi (1000 labels)"], table.Rows.Select(r => r.Model).Order().ToArray());
        int accuracy = table.TableColumns.Select(c => c.Key).ToList().IndexOf("classification_accuracy");
        int knn = table.TableColumns.Select(c => c.Key).ToList().IndexOf("knn_labelled_accuracy");
        Assert.True(accuracy > 0 && knn > 0);
        var pooled = table.Rows.Single(r => r.Model == "ddvi-semi (1000 labels)");
        Assert.Equal(0.8, pooled.Cells[accuracy].Interval!.Value.Mean, 12);
        Assert.Null(table.Rows.Single(r => r.Model.StartsWith("aae-semi", StringComparison.Ordinal)).Cells[accuracy].Interval);
        Assert.Contains("q(c|x) test accuracy", table.ToMarkdown());
        Assert.Contains("fit on the labelled examples only", table.ToMarkdown());
        Assert.Contains("classification_accuracy_mean", table.ToCsv());

        // An unsupervised comparison keeps its columns.
        var plain = ResultsTable.Build([ComparisonFixtures.Run(ComparisonFixtures.Metrics("vae", "pinwheel", 0, -100, 1.0, 0.5, 0.1, 10))]);
        Assert.Equal(ResultsTable.Columns.Count, plain.TableColumns.Count);
    }
}
