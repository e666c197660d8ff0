using Ddvi.Runtime;
using Ddvi.Data;
using Ddvi.Models;
using Ddvi.Plotting;
using Ddvi.Priors;
using Ddvi.Training;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Ddvi.Experiments;

/// <summary>
/// Writes a run's progress as TensorBoard event files with TorchSharp's own <c>SummaryWriter</c>
/// (<c>torch.utils.tensorboard</c>), into <c>DIR/RUN_NAME</c> so that one folder holds many runs. Tags:
/// <list type="bullet">
/// <item><c>STAGE/step/PHASE/TERM</c>: running loss means at each logging interval (x: the stage's step);</item>
/// <item><c>STAGE/epoch/PHASE/TERM</c>: each epoch's loss means (x: epoch, from 1);</item>
/// <item><c>STAGE/learning_rate/PHASE</c>: each phase's learning rate in that epoch;</item>
/// <item><c>STAGE/latents</c>, <c>STAGE/samples</c>: at every checkpoint epoch, a scatter of test latents and the grid of
/// decoded prior samples per class (images);</item>
/// <item><c>STAGE/encoder_variance</c> (and <c>…_level2</c> for the hierarchical model): at every checkpoint epoch, a
/// histogram of the encoder's posterior variances σ²(x) on test images (the AAE's encoder has none);</item>
/// <item><c>eval/METRIC</c>: the evaluation's metrics (x: the last stage's epochs).</item>
/// </list>
/// Images and histograms are computed under no_grad and eval mode with a generator of their own, so training's random
/// draws, and so resumed runs, are unchanged.
/// </summary>
internal sealed class TensorBoardLog : ITrainingObserver
{
    /// <summary>Test images whose latents are drawn and whose encoder variances are histogrammed at each checkpoint.</summary>
    public const int ImagesPerCheckpoint = 500;

    private readonly SummaryWriter _writer;
    private readonly IExperimentMethod _method;
    private readonly DatasetSplits _data;
    private readonly ILabelledPrior _prior;
    private readonly ExperimentConfig _config;
    private readonly Dictionary<string, int> _stepsPerEpoch = [];

    public TensorBoardLog(string folder, string runName, IExperimentMethod method, DatasetSplits data, ILabelledPrior prior, ExperimentConfig config)
    {
        Folder = Path.Combine(folder, runName);
        Directory.CreateDirectory(Folder);
        _writer = utils.tensorboard.SummaryWriter(Folder);
        _method = method;
        _data = data;
        _prior = prior;
        _config = config;
    }

    /// <summary>Where the event files go.</summary>
    public string Folder { get; }

    public void StageStarted(string stage, int firstEpoch, int epochs, int stepsPerEpoch) => _stepsPerEpoch[stage] = stepsPerEpoch;

    public void StepCompleted(string stage, int epoch, int step, IReadOnlyDictionary<string, double>? runningLosses)
    {
        if (runningLosses is null) return;
        int global = epoch * _stepsPerEpoch.GetValueOrDefault(stage, 0) + step;
        foreach (var (term, value) in runningLosses) _writer.add_scalar($"{stage}/step/{term}", (float)value, global);
    }

    public void EpochCompleted(string stage, EpochRecord record, int epochs)
    {
        int epoch = record.Epoch + 1;
        foreach (var (term, value) in record.Losses) _writer.add_scalar($"{stage}/epoch/{term}", (float)value, epoch);
        var trained = _method.Stages.FirstOrDefault(s => s.Name == stage);
        foreach (var phase in trained?.Phases ?? [])
            _writer.add_scalar($"{stage}/learning_rate/{phase.Name}", (float)(phase.LearningRate * phase.LearningRateFactor(record.Epoch)), epoch);
        if (epoch % _config.CheckpointEvery == 0 || epoch == epochs) Snapshot(stage, epoch);
    }

    public void Message(string text) { }

    /// <summary>The evaluation's metrics, as <c>eval/NAME</c> scalars.</summary>
    public void Metrics(MetricsReport report)
    {
        int step = _config.ResolvedEpochs;
        void Add(string name, double? value)
        {
            if (value is double v && double.IsFinite(v)) _writer.add_scalar($"eval/{name}", (float)v, step);
        }
        Add("knn_accuracy", report.KnnAccuracy.Value);
        Add("latent_nll", report.LatentNll.Value);
        Add("elbo_release_formula", report.Elbo.NatsPerImage);
        Add("true_elbo", report.LikelihoodBounds?.TrueElbo.NatsPerImage);
        Add("log_px_iwae", report.LikelihoodBounds?.LogLikelihood.NatsPerImage);
        Add("mmd", report.Mmd.Value);
    }

    /// <summary>
    /// An image written by <paramref name="save"/> to a temporary PNG file beside the event files, added, then deleted.
    /// Images go in as files: TorchSharp's add_img of a tensor makes temporary scalars (<c>Ddvi.Runtime.Scalars</c>).
    /// </summary>
    private void AddPng(string tag, int epoch, Action<string> save)
    {
        string path = Path.Combine(Folder, $".{tag.Replace('/', '-')}-{Environment.ProcessId}.png");
        try
        {
            save(path);
            _writer.add_img(tag, path, epoch);
        }
        finally
        {
            File.Delete(path);
        }
    }

    /// <summary>Latent scatter, sample grid and encoder-variance histograms of the model as it is now.</summary>
    private void Snapshot(string stage, int epoch)
    {
        bool wasTraining = _method.Module.training;
        _method.Module.eval();
        try
        {
            using var noGrad = no_grad();
            using var scope = NewDisposeScope();
            using var generator = new Generator((ulong)Trainer.EpochSeed(_config.Seed, "tensorboard-" + stage, epoch));
            long count = Math.Min(ImagesPerCheckpoint, _data.Test.Count);
            var images = _data.Test.Images.narrow(0, 0, count);
            var latents = ModelEvaluator.Encode(_method, images, _config.Evaluation.BatchSize, generator);
            var labels = _data.Test.Labels.narrow(0, 0, count).cpu().to(int32).contiguous().data<int>().ToArray();
            var view = LatentProjection.Fit(latents, "test latents");
            var (zx, zy) = view.Apply(latents);
            AddPng($"{stage}/latents", epoch,
                path => LatentScatter.Save(path, zx, zy, labels, view.Title($"{stage}, epoch {epoch}: test latents"), axes: view));

            var decoded = ModelEvaluator.DecodeByClass(_method, _prior, ModelEvaluator.SamplesPerClass, generator);
            var shape = _data.Test.Shape;
            using var shown = _data.Test.Range.ToUnitInterval(decoded.cpu().to(float32)).contiguous();
            AddPng($"{stage}/samples", epoch, path => ImageGrid.Save(path, shown.data<float>().ToArray(), (int)decoded.shape[0],
                shape.Channels, shape.Height, shape.Width, columns: ModelEvaluator.SamplesPerClass, scale: 1));

            // TorchSharp's histogram makes temporary scalars inside (Scalars) and its writer takes no histogram made
            // elsewhere: called here on the training thread, once per checkpoint, left as it is.
#pragma warning disable RS0030
            foreach (var (suffix, logVariance) in EncoderLogVariances(_method.Model, images, generator))
                _writer.add_histogram($"{stage}/encoder_variance{suffix}", logVariance.exp().cpu(), epoch);
#pragma warning restore RS0030
        }
        finally
        {
            _method.Module.train(wasTraining);
        }
    }

    /// <summary>log σ²(x) of each Gaussian the model's encoder outputs; none for a deterministic encoder.</summary>
    private static IEnumerable<(string Suffix, Tensor LogVariance)> EncoderLogVariances(ILatentVariableModel model, Tensor x, Generator generator)
    {
        switch (model)
        {
            case DdviModel ddvi:
                yield return ("", ddvi.Encode(x).LogVariance);
                break;
            case GaussianVae vae:
                yield return ("", vae.Posterior(x).LogVariance);
                break;
            case IafVae iaf:
                yield return ("", iaf.SamplePosterior(x, generator).LogVariance);
                break;
            case HierarchicalIafVae hierarchical:
                var (level1, level2) = hierarchical.SamplePosterior(x, generator);
                yield return ("", level1.LogVariance);
                yield return ("_level2", level2.LogVariance);
                break;
        }
    }
}
