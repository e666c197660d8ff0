using Ddvi.Evaluation.Clustering;
using TorchSharp;
using static TorchSharp.torch;

namespace Ddvi.Tests.Evaluation.Clustering;

public class NeighbourAccuracyTests
{
    [Fact]
    public void SameSetCountsEachPointAsItsOwnNeighbour()
    {
        using var scope = NewDisposeScope();
        var generator = new Generator(1);
        var latents = randn(200, 2, generator: generator);
        int[] labels = randint(5, [200], generator: generator).data<long>().Select(l => (int)l).ToArray();
        // With k = 1 the only neighbour is the point itself, so even random labels score 1.
        Assert.Equal(1.0, NeighbourAccuracy.SameSet(latents, labels, k: 1));
        Assert.InRange(NeighbourAccuracy.SameSet(latents, labels, k: 50), 0.1, 0.35);
    }

    [Fact]
    public void HeldOutScoresSeparatedClassesPerfectlyAndChanceForRandomOnes()
    {
        using var scope = NewDisposeScope();
        var generator = new Generator(2);
        int[] labels = Enumerable.Range(0, 4).SelectMany(c => Enumerable.Repeat(c, 100)).ToArray();
        var centres = tensor(labels.Select(l => (float)(10 * l)).ToArray()).unsqueeze(1).expand(-1, 2);
        var latents = centres + randn(400, 2, generator: generator);
        Assert.Equal(1.0, NeighbourAccuracy.HeldOut(latents, labels, k: 20, testFraction: 0.25, seed: 3));

        int[] shuffled = labels.ToArray();
        new Random(4).Shuffle(shuffled);
        Assert.InRange(NeighbourAccuracy.HeldOut(latents, shuffled, k: 20, testFraction: 0.25, seed: 3), 0.05, 0.5);
    }

    [Fact]
    public void StratifiedSplitHoldsOutTheFractionOfEveryClassAndRepeatsForASeed()
    {
        int[] labels = [.. Enumerable.Repeat(0, 40), .. Enumerable.Repeat(1, 20), .. Enumerable.Repeat(2, 3), 3];
        var (train, test) = NeighbourAccuracy.StratifiedSplit(labels, 0.25, seed: 5);
        Assert.Equal(10, test.Count(i => labels[i] == 0));
        Assert.Equal(5, test.Count(i => labels[i] == 1));
        Assert.Equal(1, test.Count(i => labels[i] == 2)); // round(0.75) = 1
        Assert.Equal(0, test.Count(i => labels[i] == 3)); // a class of one stays in training
        Assert.Equal(labels.Length, train.Length + test.Length);
        Assert.Empty(train.Intersect(test));
        Assert.Equal(test, NeighbourAccuracy.StratifiedSplit(labels, 0.25, seed: 5).Test);
        Assert.NotEqual(test, NeighbourAccuracy.StratifiedSplit(labels, 0.25, seed: 6).Test);
    }

    [Fact]
    public void BadInputsSayWhatIsWrong()
    {
        using var scope = NewDisposeScope();
        var latents = randn(10, 2);
        int[] labels = [0, 1, 0, 1, 0, 1, 0, 1, 0, 1];
        var mismatch = Assert.Throws<ArgumentException>(() => NeighbourAccuracy.SameSet(latents, labels[..9], k: 3));
        Assert.Equal("labels", mismatch.ParamName);
        Assert.Contains("9 entries", mismatch.Message);
        Assert.Equal("k", Assert.Throws<ArgumentOutOfRangeException>(() => NeighbourAccuracy.SameSet(latents, labels, k: 11)).ParamName);
        Assert.Equal("k", Assert.Throws<ArgumentOutOfRangeException>(() => NeighbourAccuracy.HeldOut(latents, labels, k: 9, testFraction: 0.5, seed: 1)).ParamName);
        Assert.Equal("testFraction", Assert.Throws<ArgumentOutOfRangeException>(() => NeighbourAccuracy.HeldOut(latents, labels, k: 1, testFraction: 1, seed: 1)).ParamName);
        var negative = Assert.Throws<ArgumentException>(() => NeighbourAccuracy.SameSet(latents, [.. labels[..9], -1], k: 1));
        Assert.Contains("-1 at index 9", negative.Message);
    }
}
