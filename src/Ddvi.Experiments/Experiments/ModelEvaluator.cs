using Ddvi.Runtime;
using System.Diagnostics;
using Ddvi.Data;
using Ddvi.Evaluation;
using Ddvi.FastPaths;
using Ddvi.Models;
using Ddvi.Priors;
using static TorchSharp.torch;

namespace Ddvi.Experiments;

/// <summary>Latents and images that the plots and the latent CSV are made from, on the CPU.</summary>
/// <param name="TestChainStarts">y_T of each test latent for diffusion posteriors, else null.</param>
public sealed record EvaluationArtifacts(
    Tensor TestLatents, Tensor TestLabels, Tensor PriorSamples, Tensor PriorClasses, Tensor DecodedByClass, Tensor? TestChainStarts) : IDisposable
{
    public void Dispose()
    {
        TestChainStarts?.Dispose();
        TestLatents.Dispose();
        TestLabels.Dispose();
        PriorSamples.Dispose();
        PriorClasses.Dispose();
        DecodedByClass.Dispose();
    }
}

/// <summary>
/// Computes the paper's metrics (arXiv:2401.02739; the authors' release)
/// for any trained method: KNN accuracy on latents, latent NLL,
/// the test ELBO (when the method has one) and the MMD between decoded prior samples and test images.
/// Runs under no_grad with the model in eval mode (dropout off), in large batches.
/// </summary>
public static class ModelEvaluator
{
    /// <summary>Images decoded per prior class for the sample grid.</summary>
    public const int SamplesPerClass = 10;

    /// <param name="budget">The run's label budget: when given, the semi-supervised metrics are measured too.</param>
    public static (MetricsReport Report, EvaluationArtifacts Artifacts) Evaluate(
        IExperimentMethod method, DatasetSplits data, ILabelledPrior prior, ExperimentConfig config, Device device, LabelBudget? budget = null)
    {
        var clock = Stopwatch.StartNew();
        var settings = config.Evaluation;
        method.Module.eval();
        using var noGrad = no_grad();
        using var generator = new Generator((ulong)Training.Trainer.EpochSeed(config.Seed, "evaluation", 0));
        using var scope = NewDisposeScope();

        var trainLatents = Encode(method, data.Train.Images, settings.BatchSize, generator);
        Tensor testLatents;
        Tensor? testChainStarts = null;
        if (method.Model is IDiffusionPosterior diffusion)
            (testChainStarts, testLatents) = EncodeWithStart(diffusion, data.Test.Images, settings.BatchSize, generator);
        else
            testLatents = Encode(method, data.Test.Images, settings.BatchSize, generator);
        double knn = KNearestNeighbours.Accuracy(trainLatents, data.Train.Labels, testLatents, data.Test.Labels,
            data.Train.ClassCount, settings.KnnNeighbours);
        NativeHeap.Trim();

        var (priorSamples, priorClasses) = prior.SampleLabelled(settings.PriorSamples, generator);
        var nll = LatentNll.Compute(testLatents, priorSamples, settings.NllBandwidths);
        double nllReference = PriorSampleReferenceNll(prior, testLatents.shape[0], priorSamples, config);
        NativeHeap.Trim();

        ElboMetric elbo;
        if (method.HasElbo)
        {
            var perImage = zeros([], dtype: float64, device: device);
            var perPixel = zeros([], dtype: float64, device: device);
            for (long start = 0; start < data.Test.Count; start += settings.BatchSize)
            {
                long rows = Math.Min(settings.BatchSize, data.Test.Count - start);
                var estimate = method.EstimateElbo(data.Test.Images.narrow(0, start, rows), generator);
                perImage.add_(estimate.NatsPerImage.sum().to(float64), Scalars.One);
                perPixel.add_(estimate.ReleasePerPixelScale.sum().to(float64), Scalars.One);
            }
            elbo = new ElboMetric(true, perImage.item<double>() / data.Test.Count, perPixel.item<double>() / data.Test.Count, method.ElboDefinition);
        }
        else
        {
            elbo = new ElboMetric(false, null, null, method.ElboDefinition);
        }

        var bounds = method.HasElbo && method.Model is IPosteriorDensity density
            ? EstimateBounds(density, data.Test.Images, prior, config)
            : null;
        NativeHeap.Trim();

        int mmdCount = (int)Math.Min(Math.Min(settings.MmdSamples, data.Test.Count), priorSamples.shape[0]);
        var decoded = Decode(method, priorSamples.narrow(0, 0, mmdCount), settings.BatchSize);
        double mmdSquared = MaximumMeanDiscrepancy.Compute(decoded, data.Test.Images.narrow(0, 0, mmdCount), settings.MmdSigmas);
        NativeHeap.Trim();

        var byClass = DecodeByClass(method, prior, SamplesPerClass, generator);
        var semi = budget is null ? null : SemiSupervised(method, data, prior, config, budget, trainLatents, testLatents);

        var report = new MetricsReport
        {
            Model = config.Model,
            Dataset = config.Dataset,
            Prior = prior.Name,
            PriorDensity = prior.DensityDescription,
            Seed = config.Seed,
            Epochs = config.ResolvedEpochs,
            TrainExamples = data.Train.Count,
            TestExamples = data.Test.Count,
            KnnAccuracy = new KnnMetric(knn, settings.KnnNeighbours,
                $"{settings.KnnNeighbours}-nearest-neighbour majority vote on {testLatents.shape[1]}-D latents, fit on train latents with train labels, scored on test latents"),
            LatentNll = new LatentNllMetric(nll.Value, settings.NllBandwidths, settings.PriorSamples,
                "mean over prior samples z of −log q̂(z), q̂ a Gaussian KDE of the test latents (mixture over the bandwidths); lower means the latents cover the prior",
                nllReference),
            Elbo = elbo,
            LikelihoodBounds = bounds,
            Mmd = new MmdMetric(Math.Sqrt(Math.Max(0, mmdSquared)), mmdSquared, settings.MmdSigmas, mmdCount,
                "√ of the biased squared MMD with a sum of RBF kernels exp(−‖a−b‖²/(2σ²)) between decoded prior samples (the likelihood's means) and test images, pixels as the data hold them ([0, 1] or [−1, 1])"),
            SemiSupervised = semi,
            EvaluationSeconds = clock.Elapsed.TotalSeconds,
            Device = device.ToString(),
        };
        var artifacts = new EvaluationArtifacts(
            testLatents.cpu().DetachFromDisposeScope(), data.Test.Labels.cpu().DetachFromDisposeScope(),
            priorSamples.cpu().DetachFromDisposeScope(), priorClasses.cpu().DetachFromDisposeScope(),
            byClass.cpu().DetachFromDisposeScope(), testChainStarts?.cpu().DetachFromDisposeScope());
        return (report, artifacts);
    }

    /// <summary>
    /// The semi-supervised metrics: q(c|x)'s test accuracy (for a classifying model), KNN fit on the labelled training
    /// latents only, and the class-conditional latent NLL (its prior samples from a generator of its own).
    /// </summary>
    private static SemiSupervisedMetrics SemiSupervised(IExperimentMethod method, DatasetSplits data, ILabelledPrior prior,
        ExperimentConfig config, LabelBudget budget, Tensor trainLatents, Tensor testLatents)
    {
        var settings = config.Evaluation;
        using var scope = NewDisposeScope();
        ClassificationMetric? accuracy = null;
        if (method.Model is IClassifyingModel { ClassCount: > 0 } classifier)
        {
            var correct = zeros([], dtype: int64, device: data.Test.Images.device);
            for (long start = 0; start < data.Test.Count; start += settings.BatchSize)
            {
                long rows = Math.Min(settings.BatchSize, data.Test.Count - start);
                var predicted = classifier.ClassLogits(data.Test.Images.narrow(0, start, rows)).argmax(1);
                correct.add_(predicted.eq(data.Test.Labels.narrow(0, start, rows)).sum(), Scalars.One);
            }
            accuracy = new ClassificationMetric(correct.item<long>() / (double)data.Test.Count,
                "test accuracy of argmax_c q(c|x), the encoder's class prediction (dropout off)");
        }
        var labelled = tensor(budget.Indices.ToArray(), dtype: int64, device: trainLatents.device);
        int k = Math.Min(settings.KnnNeighbours, budget.Count);
        double knnLabelled = KNearestNeighbours.Accuracy(trainLatents.index_select(0, labelled), data.Train.Labels.index_select(0, labelled),
            testLatents, data.Test.Labels, data.Train.ClassCount, k);

        using var generator = new Generator((ulong)Training.Trainer.EpochSeed(config.Seed, "evaluation-classes", 0));
        int perClass = Math.Max(1, settings.PriorSamples / prior.ClassCount);
        var testLabels = data.Test.Labels.to(testLatents.device);
        var values = new List<double>();
        for (int c = 0; c < prior.ClassCount; c++)
        {
            var rows = testLabels.eq(Scalars.Of(c)).nonzero().squeeze(1);
            if (rows.shape[0] == 0) continue;
            var samples = prior.SampleClass(c, perClass, generator);
            values.Add(LatentNll.Compute(testLatents.index_select(0, rows), samples, settings.NllBandwidths).Value);
        }
        var classNll = new LatentNllMetric(values.Count == 0 ? double.NaN : values.Average(), settings.NllBandwidths, perClass * prior.ClassCount,
            "mean over classes c of the mean over prior samples z ~ p(z|c) of −log q̂_c(z), q̂_c a Gaussian KDE of the test latents of true class c; " +
            "lower means each class covers its own prior segment");
        return new SemiSupervisedMetrics(budget.Count, accuracy,
            new KnnMetric(knnLabelled, k, $"{k}-nearest-neighbour majority vote on latents, fit on the {budget.Count} labelled training examples only, scored on test latents"),
            classNll);
    }

    /// <summary>What the true ELBO and the importance-weighted bound are, for metrics.json.</summary>
    public const string BoundsDefinition =
        "true lower bounds on log p(x), nats per image, over the first `examples` test images, each from the same `samples` " +
        "posterior draws z_k ~ q(z|x) per image with w_k = p(x|z_k) p(z_k) / q(z_k|x): true_elbo = mean of log w_k; iwae[k] = " +
        "mean over disjoint groups of k draws of log (1/k) Σ w (Burda et al., arXiv:1509.00519), rising with k towards log p(x); " +
        "log_likelihood = iwae with every draw. log p(x|z) sums the likelihood over pixels; log p(z) is prior_density " +
        "(a KDE without the release's clamp, a proper density); log q(z|x) as posterior_density. Unlike the release-formula " +
        "elbo these are bounds; see docs/elbo.md";

    /// <summary>
    /// The true ELBO and IWAE bounds on the first <see cref="EvaluationSettings.IwaeExamples"/> test images, from a generator
    /// of their own so that the other metrics' draws are those of runs made before the bounds existed.
    /// </summary>
    private static LikelihoodBoundsMetric EstimateBounds(IPosteriorDensity posterior, Tensor testImages, ILabelledPrior prior, ExperimentConfig config)
    {
        var clock = Stopwatch.StartNew();
        var settings = config.Evaluation;
        using var generator = new Generator((ulong)Training.Trainer.EpochSeed(config.Seed, "evaluation-bounds", 0));
        int examples = (int)Math.Min(settings.IwaeExamples, testImages.shape[0]);
        using var estimate = LikelihoodBounds.Estimate(posterior, prior, testImages.narrow(0, 0, examples), settings.IwaeSamples,
            settings.BatchSize, generator);
        var summary = estimate.Summary;
        static BoundValue Value(ImportanceWeightedBound b) =>
            new(b.K, b.Mean, double.IsFinite(b.StandardError) ? b.StandardError : null);
        string priorDensity = prior.HasExactDensity
            ? prior.DensityDescription
            : prior.DensityDescription + "; the bounds use the KDE without its clamp (a proper mixture density), and prior_clamped_draws " +
              "counts the draws where the clamp would have raised log p(z) to −1000";
        var injectivity = summary.Injectivity is { } check
            ? new InjectivityMetric(check.Draws, check.NegativeDraws, check.SingularDraws, check.ExamplesWithSignChange)
            : null;
        return new LikelihoodBoundsMetric(examples, summary.Samples, Value(summary.TrueElbo), Value(summary.LogLikelihood),
            [.. summary.Bounds.Select(Value)], priorDensity, posterior.PosteriorDensityDescription, summary.PriorClampedDraws, injectivity,
            clock.Elapsed.TotalSeconds, BoundsDefinition);
    }

    /// <summary>
    /// The latent NLL that latents distributed exactly as the prior reach: <paramref name="latentCount"/> fresh prior samples
    /// as the KDE's centres, scored on the same prior samples. Drawn from a generator of its own, so the other metrics'
    /// random numbers are those of runs made before this reference existed.
    /// </summary>
    private static double PriorSampleReferenceNll(ILabelledPrior prior, long latentCount, Tensor priorSamples, ExperimentConfig config)
    {
        using var scope = NewDisposeScope();
        using var generator = new Generator((ulong)Training.Trainer.EpochSeed(config.Seed, "evaluation-reference", 0));
        var centres = prior.SampleLabelled(latentCount, generator).Z;
        return LatentNll.Compute(centres, priorSamples, config.Evaluation.NllBandwidths).Value;
    }

    /// <summary>KNN accuracy and latent NLL of the model's current posterior: a cheap measurement taken as a stage ends.</summary>
    public static StageSnapshot Snapshot(string stage, IExperimentMethod method, DatasetSplits data, ILabelledPrior prior, ExperimentConfig config)
    {
        var settings = config.Evaluation;
        bool wasTraining = method.Module.training;
        method.Module.eval();
        try
        {
            using var noGrad = no_grad();
            using var generator = new Generator((ulong)Training.Trainer.EpochSeed(config.Seed, "evaluation", 0));
            using var scope = NewDisposeScope();
            var trainLatents = Encode(method, data.Train.Images, settings.BatchSize, generator);
            var testLatents = Encode(method, data.Test.Images, settings.BatchSize, generator);
            double knn = KNearestNeighbours.Accuracy(trainLatents, data.Train.Labels, testLatents, data.Test.Labels,
                data.Train.ClassCount, settings.KnnNeighbours);
            var (priorSamples, _) = prior.SampleLabelled(settings.PriorSamples, generator);
            return new StageSnapshot(stage, knn, LatentNll.Compute(testLatents, priorSamples, settings.NllBandwidths).Value);
        }
        finally
        {
            method.Module.train(wasTraining);
        }
    }

    /// <summary>Posterior latents of every row of <paramref name="images"/>, batch by batch: <c>[N, D]</c> → <c>[N, d]</c>.</summary>
    public static Tensor Encode(IExperimentMethod method, Tensor images, int batchSize, Generator generator) =>
        cat(EncodeBatches(method, images, batchSize, generator).ToList(), 0);

    /// <summary>
    /// One posterior draw z ~ q(z|x) per row of <paramref name="images"/>, a batch at a time (<c>[B, d]</c> each), as
    /// evaluation draws them; <c>ddvi encode</c> streams these. Call under no_grad with the module in eval mode.
    /// </summary>
    public static IEnumerable<Tensor> EncodeBatches(IExperimentMethod method, Tensor images, int batchSize, Generator generator)
    {
        for (long start = 0; start < images.shape[0]; start += batchSize)
            yield return method.Model.EncodeLatents(images.narrow(0, start, Math.Min(batchSize, images.shape[0] - start)), generator);
    }

    /// <summary>
    /// Decoder means of <paramref name="perClass"/> prior samples of each prior class, class by class:
    /// <c>[ClassCount · perClass, D]</c> (the sample grid's rows). Call under no_grad with the module in eval mode.
    /// </summary>
    public static Tensor DecodeByClass(IExperimentMethod method, ILabelledPrior prior, int perClass, Generator generator) =>
        cat(Enumerable.Range(0, prior.ClassCount)
            .Select(c => method.Model.DecodeMeans(prior.SampleClass(c, perClass, generator))).ToArray(), 0);

    private static (Tensor YT, Tensor Z) EncodeWithStart(IDiffusionPosterior model, Tensor images, int batchSize, Generator generator)
    {
        var starts = new List<Tensor>();
        var outputs = new List<Tensor>();
        for (long start = 0; start < images.shape[0]; start += batchSize)
        {
            var (yT, z) = model.EncodeWithStart(images.narrow(0, start, Math.Min(batchSize, images.shape[0] - start)), generator);
            starts.Add(yT);
            outputs.Add(z);
        }
        return (cat(starts, 0), cat(outputs, 0));
    }

    /// <summary>Decoder means of latents <c>[N, d]</c> → <c>[N, D]</c>, batch by batch. Under no_grad, eval mode.</summary>
    public static Tensor Decode(IExperimentMethod method, Tensor z, int batchSize)
    {
        var parts = new List<Tensor>();
        for (long start = 0; start < z.shape[0]; start += batchSize)
            parts.Add(method.Model.DecodeMeans(z.narrow(0, start, Math.Min(batchSize, z.shape[0] - start))));
        return cat(parts, 0);
    }
}
