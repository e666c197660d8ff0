using Ddvi.Runtime;
using System.Globalization;
using System.Text;
using Ddvi.IO;
using static TorchSharp.torch;

namespace Ddvi.Data;

/// <summary>
/// Which training examples keep their label in a semi-supervised run (<c>--labels N</c>): exactly N, balanced over the
/// C classes (⌊N/C⌋ each, the N mod C extra labels given to classes drawn by the seed), the examples of each class drawn
/// by the seed. Every other training example is unlabelled (<see cref="Unlabelled"/>). The chosen indices are written to
/// the run folder (<see cref="FileName"/>) so a run can be audited and repeated.
/// </summary>
/// <remarks>The authors' release masks labels among the first 50,000 of MNIST's 60,000 training images only, so its
/// "1,000 labels" keep 11,000; this budget draws from every training example and keeps exactly N.</remarks>
public sealed class LabelBudget
{
    /// <summary>The label value of an unlabelled example in <see cref="MaskLabels"/>.</summary>
    public const long Unlabelled = -1;

    /// <summary>The file in the run folder that lists the labelled examples.</summary>
    public const string FileName = "labelled-indices.csv";

    /// <summary>The release's budgets: its defaults for MNIST-format data and CIFAR-10, and the other values it ran.</summary>
    public const int MnistDefault = 1_000;
    public const int Cifar10Default = 10_000;
    public static IReadOnlyList<int> ReleaseBudgets { get; } = [10, 50, 100, 250, 500, 1_000, 2_500, 10_000];

    private LabelBudget(int count, long seed, long[] indices, long[] labels, int[] perClass)
    {
        Count = count;
        Seed = seed;
        Indices = indices;
        Labels = labels;
        PerClass = perClass;
    }

    /// <summary>N, the number of labelled training examples.</summary>
    public int Count { get; }

    /// <summary>The seed the choice was drawn from.</summary>
    public long Seed { get; }

    /// <summary>The labelled training rows, ascending.</summary>
    public IReadOnlyList<long> Indices { get; }

    /// <summary>The label of each row of <see cref="Indices"/>.</summary>
    public IReadOnlyList<long> Labels { get; }

    /// <summary>Labelled examples per class.</summary>
    public IReadOnlyList<int> PerClass { get; }

    /// <summary>
    /// Chooses <paramref name="count"/> labelled examples among <paramref name="labels"/> (<c>[N]</c> int64 in
    /// 0..<paramref name="classCount"/>−1), balanced over the classes, from a generator seeded by <paramref name="seed"/>.
    /// </summary>
    public static LabelBudget Choose(Tensor labels, int classCount, int count, long seed)
    {
        if (labels.dim() != 1)
            throw new ArgumentException($"--labels: the training labels must be a vector, got shape [{string.Join(", ", labels.shape)}].", nameof(labels));
        if (classCount < 1)
            throw new ArgumentOutOfRangeException(nameof(classCount), classCount, "--labels: the dataset has no classes.");
        long n = labels.shape[0];
        if (count < 1 || count > n)
            throw new ArgumentOutOfRangeException(nameof(count), count, $"--labels {count}: must be between 1 and the {n} training examples.");
        var all = labels.cpu().to(int64).contiguous().data<long>().ToArray();
        var byClass = Enumerable.Range(0, classCount).Select(_ => new List<long>()).ToArray();
        for (long i = 0; i < all.Length; i++)
        {
            long c = all[i];
            if (c < 0 || c >= classCount)
                throw new ArgumentException($"--labels: training label {c} at row {i} lies outside 0..{classCount - 1}.", nameof(labels));
            byClass[c].Add(i);
        }

        using var generator = new Generator(unchecked((ulong)seed));
        var perClass = Enumerable.Repeat(count / classCount, classCount).ToArray();
        int remainder = count % classCount;
        if (remainder > 0)
        {
            using var order = randperm(classCount, generator: generator);
            foreach (long c in order.data<long>().ToArray().Take(remainder)) perClass[c]++;
        }
        var chosen = new List<long>(count);
        for (int c = 0; c < classCount; c++)
        {
            if (perClass[c] > byClass[c].Count)
                throw new ArgumentException($"--labels {count}: class {c} needs {perClass[c]} labelled examples but the training set has only {byClass[c].Count} of it.");
            using var order = randperm(byClass[c].Count, generator: generator);
            chosen.AddRange(order.data<long>().ToArray().Take(perClass[c]).Select(j => byClass[c][(int)j]));
        }
        chosen.Sort();
        return new LabelBudget(count, seed, [.. chosen], [.. chosen.Select(i => all[i])], perClass);
    }

    /// <summary>The training labels with every example outside the budget set to <see cref="Unlabelled"/>: <c>[N]</c> int64
    /// on the labels' device.</summary>
    public Tensor MaskLabels(Tensor labels)
    {
        using var scope = NewDisposeScope();
        var masked = full(labels.shape[0], Scalars.Of(Unlabelled), dtype: int64, device: labels.device);
        var rows = tensor(Indices.ToArray(), dtype: int64, device: labels.device);
        masked.index_copy_(0, rows, labels.to(int64).index_select(0, rows));
        return masked.MoveToOuterDisposeScope();
    }

    /// <summary>The file's text: a comment line with N, the seed and the per-class counts, then <c>index,label</c> rows.</summary>
    public string ToCsv()
    {
        var text = new StringBuilder();
        text.Append(CultureInfo.InvariantCulture, $"# {Count} labelled training examples, seed {Seed}, per class {string.Join(' ', PerClass)}\n");
        text.Append("index,label\n");
        for (int i = 0; i < Indices.Count; i++) text.Append(CultureInfo.InvariantCulture, $"{Indices[i]},{Labels[i]}\n");
        return text.ToString();
    }

    /// <summary>
    /// Writes the list into <paramref name="runFolder"/> (atomically); when the folder already holds one (a resumed run), it
    /// must list the same examples, else the run's labels changed underneath it and that is an error.
    /// </summary>
    public void WriteTo(string runFolder)
    {
        string path = Path.Combine(runFolder, FileName);
        string text = ToCsv();
        if (File.Exists(path))
        {
            if (File.ReadAllText(path) != text)
                throw new InvalidDataException($"{path} lists other labelled examples than this run's --labels {Count} with seed {Seed} draws: the training data or the labels changed since the run started.");
            return;
        }
        AtomicFile.WriteAllText(path, text);
    }

    /// <summary>Reads the labelled rows of a file written by <see cref="WriteTo"/>.</summary>
    public static IReadOnlyList<(long Index, long Label)> Read(string path) =>
        [.. File.ReadLines(path).Where(l => l.Length > 0 && l[0] != '#' && l != "index,label")
            .Select(l => l.Split(','))
            .Select(p => (long.Parse(p[0], CultureInfo.InvariantCulture), long.Parse(p[1], CultureInfo.InvariantCulture)))];
}
