using System.Globalization;
using System.Text;
using Ddvi.Data;
using Ddvi.IO;
using Ddvi.Plotting;
using static TorchSharp.torch;

namespace Ddvi.Experiments;

/// <summary>
/// A finished run opened for use: its configuration, data, prior and method with the weights it ended with, built
/// exactly as <c>ddvi evaluate</c> builds them. <see cref="EncodeToCsv"/> and <see cref="DecodeByClass"/> go through
/// <see cref="ModelEvaluator"/>'s own encoding and decoding, so <c>ddvi encode</c> and <c>ddvi sample</c> give what
/// evaluation computes. Reads the run folder and writes nothing in it.
/// </summary>
public sealed class TrainedRun : IDisposable
{
    /// <summary>Posterior draws per example averaged into the posterior mean that <c>ddvi encode</c> writes (the chain's
    /// output has no closed-form mean).</summary>
    public const int DefaultMeanDraws = 16;

    private readonly ExperimentRunner.Session _session;

    private TrainedRun(RunDirectory run, ExperimentRunner.Session session)
    {
        Run = run;
        _session = session;
    }

    public RunDirectory Run { get; }
    public ExperimentConfig Config => _session.Config;
    public IExperimentMethod Method => _session.Method;
    public Priors.ILabelledPrior Prior => _session.Prior;

    /// <summary>The image shape the run was trained on.</summary>
    public ImageShape Shape => _session.Data.Train.Shape;

    /// <summary>Opens the finished run in <paramref name="folder"/>; <paramref name="dataDirectory"/> replaces the run's data folder.</summary>
    public static TrainedRun Open(string folder, string? dataDirectory = null, Action<string>? warn = null)
    {
        var run = new RunDirectory(folder);
        if (!File.Exists(run.Config))
            throw new FileNotFoundException($"{run.Config} not found: {run.Root} is not a Ddvi run folder (expected config.json and checkpoints/).", run.Config);
        var config = ExperimentConfig.FromJson(File.ReadAllText(run.Config), run.Config);
        if (dataDirectory is not null) config = config with { DataDirectory = dataDirectory };
        var session = ExperimentRunner.Session.Open(config);
        try
        {
            ExperimentRunner.LoadFinished(session, run, warn ?? (_ => { }));
            session.Method.Module.eval();
            return new TrainedRun(run, session);
        }
        catch
        {
            session.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Loads <paramref name="dataset"/> (a name or a folder of MNIST-format files, with the run's data options) and
    /// checks that its images have the run's shape.
    /// </summary>
    public DatasetSplits LoadData(string dataset)
    {
        var data = DatasetCatalog.Load(DatasetCatalog.Canonical(dataset), new DatasetOptions(Config.DataDirectory, Config.Seed,
            SyntheticTrainCount: Config.SyntheticTrainCount, SyntheticTestCount: Config.SyntheticTestCount));
        if (data.Train.Dimension != _session.Data.Train.Dimension)
        {
            var shape = data.Train.Shape;
            data.Dispose();
            throw new ArgumentException(
                $"--dataset {dataset}: its images are {shape} ({shape.Size} values), but the run in {Run.Root} was trained on " +
                $"{Shape} images ({Shape.Size} values); encode a dataset of the same image size.");
        }
        return data;
    }

    /// <summary>
    /// Writes <c>index,label,z1..zd</c> for every example of <paramref name="data"/> to <paramref name="path"/> (atomically),
    /// batch by batch: z is the posterior mean estimated from <paramref name="meanDraws"/> draws z ~ q(z|x) (or from
    /// <paramref name="samples"/> draws when more), and with <paramref name="samples"/> &gt; 0 the first
    /// <paramref name="samples"/> draws follow as <c>s1_z1 … sK_zd</c>. Draws come from a generator seeded with
    /// <paramref name="seed"/>. Returns the number of rows written.
    /// </summary>
    public long EncodeToCsv(ImageDataset data, string path, int samples, int meanDraws, long seed, int batchSize)
    {
        if (samples < 0) throw new ArgumentException($"--samples must be ≥ 0, got {samples}");
        if (meanDraws < 1) throw new ArgumentException($"--mean-draws must be ≥ 1, got {meanDraws}");
        if (batchSize < 1) throw new ArgumentException($"--batch-size must be ≥ 1, got {batchSize}");
        int draws = Math.Max(samples, meanDraws);
        int d = Prior.Dimension;
        var device = _session.Device;
        var labels = data.Labels.cpu().to(int64).contiguous().data<long>().ToArray();
        using var noGrad = no_grad();
        using var generator = new Generator(unchecked((ulong)seed));
        AtomicFile.Write(path, stream =>
        {
            using var writer = new StreamWriter(stream, new UTF8Encoding(false), 1 << 16, leaveOpen: true);
            var header = new List<string> { "index", "label" };
            header.AddRange(Enumerable.Range(1, d).Select(j => $"z{j}"));
            for (int k = 1; k <= samples; k++) header.AddRange(Enumerable.Range(1, d).Select(j => $"s{k}_z{j}"));
            writer.Write(string.Join(',', header));
            writer.Write('\n');
            for (long start = 0; start < data.Count; start += batchSize)
            {
                using var scope = NewDisposeScope();
                long rows = Math.Min(batchSize, data.Count - start);
                var images = data.Images.narrow(0, start, rows).to(device);
                // Each draw is ModelEvaluator's encoding of the batch, as evaluation makes it.
                var all = stack(Enumerable.Range(0, draws).Select(_ => ModelEvaluator.EncodeBatches(Method, images, batchSize, generator).Single()).ToArray());
                var mean = all.mean([0]).cpu().to(float32).contiguous().data<float>().ToArray();
                var each = samples > 0 ? all.narrow(0, 0, samples).cpu().to(float32).contiguous().data<float>().ToArray() : [];
                var line = new StringBuilder();
                for (long i = 0; i < rows; i++)
                {
                    line.Clear();
                    line.Append(CultureInfo.InvariantCulture, $"{start + i},{labels[start + i]}");
                    for (int j = 0; j < d; j++) line.Append(CultureInfo.InvariantCulture, $",{mean[i * d + j]:R}");
                    for (int k = 0; k < samples; k++)
                        for (int j = 0; j < d; j++) line.Append(CultureInfo.InvariantCulture, $",{each[(k * rows + i) * d + j]:R}");
                    line.Append('\n');
                    writer.Write(line);
                }
            }
        });
        return data.Count;
    }

    /// <summary>Decoder means of <paramref name="perClass"/> prior samples of each prior class, class by class:
    /// <c>[ClassCount · perClass, D]</c> on the CPU, drawn with a generator seeded with <paramref name="seed"/>.</summary>
    public Tensor DecodeByClass(int perClass, long seed)
    {
        if (perClass < 1) throw new ArgumentException($"-n must be ≥ 1 (samples per prior class), got {perClass}");
        using var noGrad = no_grad();
        using var generator = new Generator(unchecked((ulong)seed));
        using var scope = NewDisposeScope();
        return ModelEvaluator.DecodeByClass(Method, Prior, perClass, generator).cpu().MoveToOuterDisposeScope();
    }

    /// <summary>Decoder means of the latents <c>[N, d]</c>, <c>[N, D]</c> on the CPU.</summary>
    public Tensor Decode(Tensor latents)
    {
        if (latents.dim() != 2 || latents.shape[1] != Prior.Dimension)
            throw new ArgumentException($"latent points must have {Prior.Dimension} coordinates (the run's latent dimension), got {latents.shape[^1]}.");
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        return ModelEvaluator.Decode(Method, latents.to(float32).to(_session.Device), Config.Evaluation.BatchSize).cpu().MoveToOuterDisposeScope();
    }

    /// <summary>Writes images <c>[N, D]</c> of the run's shape as a PNG grid (<paramref name="columns"/> per row) or a
    /// float32 .npy array <c>[N, C, H, W]</c>, by the extension of <paramref name="path"/>.</summary>
    public void SaveImages(Tensor images, string path, int columns)
    {
        var shape = Shape;
        string extension = Path.GetExtension(path).ToLowerInvariant();
        var pixels = images.cpu().to(float32).contiguous().data<float>().ToArray();
        int count = (int)images.shape[0];
        switch (extension)
        {
            case ".png":
                ImageGrid.Save(path, pixels, count, shape.Channels, shape.Height, shape.Width, columns);
                break;
            case ".npy":
                NpyFile.WriteFloat32(path, pixels, [count, shape.Channels, shape.Height, shape.Width]);
                break;
            default:
                throw new ArgumentException($"--out {path}: expected a .png (an image grid) or .npy (a float32 array [N, C, H, W]) file.");
        }
    }

    public void Dispose() => _session.Dispose();
}
