// A model of your own on count data: a negative-binomial likelihood (with a size factor per row) around an MLP decoder,
// and a learnable 3-component Gaussian-mixture prior in d = 5, fitted by DDVI to simulated counts with cluster
// structure. Held-out rows are encoded, clusters are read off the learnt mixture, and the model is saved and loaded back.
// Exit code 0 means every figure is finite, the loaded model reproduces the fitted one and the clusters are recovered.
using System.Diagnostics;
using Ddvi.Inference;
using Ddvi.Likelihoods;
using Ddvi.Models;
using Ddvi.Priors;
using TorchSharp;
using static TorchSharp.torch;

const int d = 5, D = 30, K = 3, nTrain = 1500, nTest = 500;
var clock = Stopwatch.StartNew();
torch.random.manual_seed(0);   // the decoder below is built with libtorch's global generator (Fit seeds only its own networks)
var (x, clusters) = Simulation.Counts(nTrain + nTest, d, D, K, seed: 42);   // counts [N, D], true clusters [N]
using var xTrain = x[..nTrain];
using var xTest = x[nTrain..];
double referenceTotal = NegativeBinomialLikelihood.MedianTotal(xTrain);

// p(x | z) = Π_j NB(s · exp(MLP(z)_j), r_j), s = row total / median total; p(z) = Σ_k ⅓ N(μ_k, 0.5² I) with learnt means.
NegativeBinomialLikelihood Likelihood() => new(new Mlp(d, [64, 64], [D]), d, D, dispersion: 10.0, referenceTotal);
LearnableGaussianMixture Prior() => new(K, d, seed: 1, initScale: 1.0, initialStd: 0.5);
var options = new DdviOptions { Epochs = 40, LearningRate = 2e-3, HiddenWidths = [128, 128], DenoiserHidden = 64, Seed = 0 };

using var likelihood = Likelihood();
using var prior = Prior();
using var fitted = DdviFit.Fit(xTrain, likelihood, prior, options, new Progress<FitProgress>(p =>
{
    if (p.Epoch % 10 == 0) Console.WriteLine($"epoch {p.Epoch}/{p.Epochs}: wake loss {p.Losses["wake/loss"]:F2} nats per row");
}));
double fitSeconds = clock.Elapsed.TotalSeconds;

// Encode rows (posterior means of 16 draws) and assign held-out rows to the learnt mixture's most probable component.
using var zTrain = fitted.PosteriorMean(xTrain, samples: 16, seed: 7);
using var zTest = fitted.PosteriorMean(xTest, samples: 16, seed: 7);
using var responsibilities = prior.Responsibilities(zTest).detach();     // p(k | z) [nTest, K]
using var assigned = responsibilities.argmax(1);
using var elbo = fitted.Elbo(xTest, seed: 7);

// Save, load into freshly built parts, and check that the same seed gives the same posterior draws.
string path = Path.Combine(Path.GetTempPath(), $"count-model-{Environment.ProcessId}.ddvi");
fitted.Save(path);
using var loaded = FittedDdvi.Load(path, Likelihood(), Prior());
using var before = fitted.PosteriorSamples(xTest, samples: 4, seed: 11);
using var after = loaded.PosteriorSamples(xTest, samples: 4, seed: 11);
bool identical = before.shape.SequenceEqual(after.shape) && before.eq(after).all().item<bool>();
long fileBytes = new FileInfo(path).Length;
File.Delete(path);

return Report.Print(likelihood, zTrain, zTest, assigned, elbo, clusters, nTrain, K, identical, fileBytes,
    fitSeconds, clock.Elapsed.TotalSeconds);

/// <summary>Simulated counts with cluster structure.</summary>
static class Simulation
{
    /// <summary>
    /// n rows: a cluster c ~ U{0, …, K−1}; z ~ N(m_c, 0.5² I_d) with cluster centres m_c ~ N(0, 2² I_d); rates
    /// μ = s · 4 softplus(A z + b) with A ~ N(0, 0.5²) [D, d], b ~ N(0, 0.5²) [D] and a size factor s ~ LogNormal(0, 0.3²);
    /// x ~ NB(μ, dispersion 5), drawn as the gamma–Poisson mixture. Returns x [n, D] (float32 counts) and c [n] (int64).
    /// </summary>
    public static (Tensor X, Tensor Clusters) Counts(int n, int d, int D, int K, long seed)
    {
        const double dispersion = 5.0;
        using var g = new Generator((ulong)seed);
        using var scope = NewDisposeScope();
        var centres = 2.0 * randn([K, d], generator: g);
        var clusters = randint(K, [n], generator: g);
        var z = centres.index_select(0, clusters) + 0.5 * randn([n, d], generator: g);
        var A = 0.5 * randn([D, d], generator: g);
        var b = 0.5 * randn([D], generator: g);
        var sizeFactor = (0.3 * randn([n, 1], generator: g)).exp();
        var mean = sizeFactor * 4.0 * nn.functional.softplus(z.matmul(A.t()) + b);
        var rate = new TorchSharp.Modules.Gamma(full_like(mean, dispersion), dispersion / mean, g).sample();   // Gamma(r, scale μ/r)
        var x = poisson(rate, g);
        return (x.MoveToOuterDisposeScope(), clusters.MoveToOuterDisposeScope());
    }
}

/// <summary>Cluster-recovery figures and the printed report.</summary>
static class Report
{
    public static int Print(NegativeBinomialLikelihood likelihood, Tensor zTrain, Tensor zTest, Tensor assigned, Tensor elbo,
        Tensor clusters, int nTrain, int K, bool identical, long fileBytes, double fitSeconds, double totalSeconds)
    {
        using var trainClusters = clusters[..nTrain];
        using var testClusters = clusters[nTrain..];
        using var dispersion = likelihood.Dispersion();
        double mixtureAccuracy = AccuracyUpToPermutation(assigned, testClusters, K);
        double knnAccuracy = KnnAccuracy(zTrain, trainClusters, zTest, testClusters, k: 5);
        double chance = MajorityFraction(testClusters, K);
        bool finite = zTrain.isfinite().all().item<bool>() && zTest.isfinite().all().item<bool>()
                      && elbo.isfinite().all().item<bool>() && dispersion.isfinite().all().item<bool>();

        Console.WriteLine($"fitted {likelihood.Describe()} to {nTrain} rows in {fitSeconds:F1} s");
        Console.WriteLine($"learnt dispersion r: median {dispersion.median().item<float>():F2} over features (simulated: 5)");
        Console.WriteLine($"held-out ELBO: {elbo.mean().item<float>():F2} nats per row ({zTest.shape[0]} rows)");
        Console.WriteLine($"cluster recovery on held-out rows (chance = the largest cluster's share, {chance:F3}):");
        Console.WriteLine($"  learnt mixture's most probable component, up to label permutation: {mixtureAccuracy:F3}");
        Console.WriteLine($"  5-nearest-neighbour vote among the training rows' latents:         {knnAccuracy:F3}");
        Console.WriteLine("  rows of true cluster c per component k:");
        for (int c = 0; c < K; c++)
        {
            using var ofCluster = assigned.masked_select(testClusters.eq(c));
            using var counts = ofCluster.bincount(null, minlength: K);
            Console.WriteLine($"    c = {c}: {string.Join(" ", counts.data<long>().ToArray().Select(v => $"{v,4}"))}");
        }
        Console.WriteLine($"saved ({fileBytes / 1024.0:F0} KiB) and loaded: posterior samples {(identical ? "identical" : "DIFFER")} for a fixed seed");
        Console.WriteLine($"total {totalSeconds:F1} s");

        bool recovered = mixtureAccuracy > chance + 0.1 && knnAccuracy > chance + 0.2;
        string verdict = !finite ? "non-finite values" : !identical ? "the loaded model differs" : !recovered ? "clusters not recovered" : "ok";
        Console.WriteLine($"CountModel: {verdict}");
        return verdict == "ok" ? 0 : 1;
    }

    /// <summary>The share of rows whose assigned label is the true one, under the best relabelling of the K labels.</summary>
    static double AccuracyUpToPermutation(Tensor assigned, Tensor truth, int K)
    {
        long[] a = assigned.data<long>().ToArray(), t = truth.data<long>().ToArray();
        return Permutations(Enumerable.Range(0, K).ToArray())
            .Max(p => (double)a.Zip(t).Count(pair => p[pair.First] == pair.Second) / a.Length);
    }

    /// <summary>The accuracy of a k-nearest-neighbour vote (Euclidean) of the query latents among the reference latents.</summary>
    static double KnnAccuracy(Tensor reference, Tensor referenceLabels, Tensor query, Tensor queryLabels, int k)
    {
        using var scope = NewDisposeScope();
        var neighbours = cdist(query, reference).topk(k, dim: 1, largest: false).indexes;      // [Q, k]
        var votes = referenceLabels.index_select(0, neighbours.flatten()).reshape(neighbours.shape);
        return votes.mode(1).values.eq(queryLabels).to(float64).mean().item<double>();
    }

    /// <summary>The share of the most frequent label: the accuracy of always guessing it.</summary>
    static double MajorityFraction(Tensor labels, int K)
    {
        using var counts = labels.bincount(null, minlength: K);
        return counts.max().item<long>() / (double)labels.shape[0];
    }

    static IEnumerable<int[]> Permutations(int[] items) => items.Length <= 1
        ? [items]
        : items.SelectMany(first => Permutations(items.Where(i => i != first).ToArray()).Select(rest => new[] { first }.Concat(rest).ToArray()));
}
