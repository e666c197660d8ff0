using Ddvi.Data;
using Ddvi.Experiments;
using static TorchSharp.torch;

namespace Ddvi.Tests.Semi;

public class LabelBudgetTests
{
    /// <summary>Labels of 6,000 examples over 10 classes of unequal sizes (class c holds 400 + 40c examples, shuffled).</summary>
    private static Tensor UnequalLabels()
    {
        var labels = Enumerable.Range(0, 10).SelectMany(c => Enumerable.Repeat((long)c, 420 + 40 * c - 20)).ToArray();
        var rng = new Random(5);
        rng.Shuffle(labels);
        return tensor(labels, dtype: int64);
    }

    [Theory]
    [InlineData(1000)]
    [InlineData(1005)]
    [InlineData(10)]
    [InlineData(7)]
    public void KeepsExactlyNLabelsBalancedOverTheClasses(int n)
    {
        using var labels = UnequalLabels();
        var budget = LabelBudget.Choose(labels, 10, n, seed: 11);
        Assert.Equal(n, budget.Indices.Count);
        Assert.Equal(n, budget.Indices.Distinct().Count());
        Assert.Equal(n, budget.PerClass.Sum());
        Assert.All(budget.PerClass, k => Assert.InRange(k, n / 10, n / 10 + 1));
        Assert.Equal(n % 10, budget.PerClass.Count(k => k == n / 10 + 1));
        var all = labels.data<long>().ToArray();
        for (int i = 0; i < n; i++) Assert.Equal(all[budget.Indices[i]], budget.Labels[i]);
        for (int c = 0; c < 10; c++) Assert.Equal(budget.PerClass[c], budget.Labels.Count(l => l == c));
    }

    [Fact]
    public void IsStableForASeedAndDiffersAcrossSeeds()
    {
        using var labels = UnequalLabels();
        var a = LabelBudget.Choose(labels, 10, 1005, seed: 3);
        var b = LabelBudget.Choose(labels, 10, 1005, seed: 3);
        var c = LabelBudget.Choose(labels, 10, 1005, seed: 4);
        Assert.Equal(a.Indices, b.Indices);
        Assert.Equal(a.ToCsv(), b.ToCsv());
        Assert.NotEqual(a.Indices, c.Indices);
    }

    [Fact]
    public void MaskedLabelsKeepOnlyTheBudgetAndLeakNothing()
    {
        using var labels = UnequalLabels();
        var budget = LabelBudget.Choose(labels, 10, 250, seed: 2);
        using var masked = budget.MaskLabels(labels);
        var m = masked.data<long>().ToArray();
        var all = labels.data<long>().ToArray();
        var chosen = budget.Indices.ToHashSet();
        Assert.Equal(250, m.Count(v => v != LabelBudget.Unlabelled));
        for (int i = 0; i < m.Length; i++)
            Assert.Equal(chosen.Contains(i) ? all[i] : LabelBudget.Unlabelled, m[i]);
    }

    [Fact]
    public void FileRoundTripsAndARunWithOtherLabelsIsRefused()
    {
        using var folder = new TempFolder();
        using var labels = UnequalLabels();
        var budget = LabelBudget.Choose(labels, 10, 100, seed: 1);
        budget.WriteTo(folder.Path);
        budget.WriteTo(folder.Path); // the same list again (a resumed run): accepted
        var read = LabelBudget.Read(folder[LabelBudget.FileName]);
        Assert.Equal(budget.Indices, read.Select(r => r.Index));
        Assert.Equal(budget.Labels, read.Select(r => r.Label));
        var other = LabelBudget.Choose(labels, 10, 100, seed: 2);
        Assert.Throws<InvalidDataException>(() => other.WriteTo(folder.Path));
    }

    [Fact]
    public void BadBudgetsGiveErrorsNamingTheOption()
    {
        using var labels = UnequalLabels();
        Assert.Contains("--labels", Assert.Throws<ArgumentOutOfRangeException>(() => LabelBudget.Choose(labels, 10, 0, 1)).Message);
        Assert.Contains("--labels", Assert.Throws<ArgumentOutOfRangeException>(() => LabelBudget.Choose(labels, 10, 7000, 1)).Message);
        // 5,000 labels need 500 of class 0, which has only 400.
        Assert.Contains("class 0", Assert.Throws<ArgumentException>(() => LabelBudget.Choose(labels, 10, 5000, 1)).Message);
        Assert.Contains("--labels", Assert.Throws<ArgumentException>(() => new ExperimentConfig { Labels = 0 }.Validate()).Message);
    }
}
