using System.Buffers.Binary;
using System.Globalization;
using System.Text;
using Ddvi.Data;
using Ddvi.Experiments;
using Ddvi.Tests.Data;
using Ddvi.Tests.Experiments;
using Ddvi.Training;
using static TorchSharp.torch;

namespace Ddvi.Tests.Cli;

/// <summary>One tiny trained VAE run on the synthetic set, shared by the tests of the commands that use a trained run.</summary>
public sealed class TinyTrainedRun : IDisposable
{
    private readonly TempFolder _folder = new();

    public TinyTrainedRun()
    {
        new ExperimentRunner(SilentObserver.Instance).Train(ExperimentRunnerTests.Tiny("vae", epochs: 1), Folder, resume: false);
    }

    public string Folder => _folder["run"];

    public void Dispose() => _folder.Dispose();
}

/// <summary><c>ddvi encode</c>, <c>ddvi sample</c> and <c>ddvi show</c> on a trained run.</summary>
public class TrainedRunCommandsTests(TinyTrainedRun trained) : IClassFixture<TinyTrainedRun>
{
    private static string IdxFolder(TempFolder folder, string name, int height, int width, int testCount = 30)
    {
        string path = folder[name];
        Directory.CreateDirectory(path);
        foreach (var (file, content) in IdxTestFiles.MnistFormatGzipFiles(40, testCount, seed: 8, height: height, width: width))
            File.WriteAllBytes(Path.Combine(path, file), content);
        return path;
    }

    [Fact]
    public void EncodeWritesEveryExampleOfAnotherDatasetWithLabelsAndSamples()
    {
        using var folder = new TempFolder();
        string held = IdxFolder(folder, "held-out", 28, 28);
        var (code, output, error) = DdviProcess.Run("encode", trained.Folder, "--dataset", held, "--out", folder["z.csv"], "--samples", "2");
        Assert.True(code == 0, error);
        Assert.Contains("encoded 30 examples", output);
        var lines = File.ReadAllLines(folder["z.csv"]);
        Assert.Equal("index,label,z1,z2,s1_z1,s1_z2,s2_z1,s2_z2", lines[0]);
        Assert.Equal(31, lines.Length);
        using var data = DatasetCatalog.Load(held, new DatasetOptions(null, 0, AllowDownload: false));
        var labels = data.Test.Labels.data<long>().ToArray();
        for (int i = 0; i < 30; i++)
        {
            var cells = lines[i + 1].Split(',');
            Assert.Equal(i.ToString(CultureInfo.InvariantCulture), cells[0]);
            Assert.Equal(labels[i].ToString(CultureInfo.InvariantCulture), cells[1]);
            Assert.All(cells.Skip(2), c => Assert.True(double.IsFinite(double.Parse(c, CultureInfo.InvariantCulture))));
        }

        // --split train encodes the other split.
        (code, output, error) = DdviProcess.Run("encode", trained.Folder, "--dataset", held, "--split", "train", "--out", folder["train.csv"]);
        Assert.True(code == 0, error);
        Assert.Equal(41, File.ReadAllLines(folder["train.csv"]).Length);
    }

    [Fact]
    public void EncodeUsesEvaluationsEncodingAndRepeatsForASeed()
    {
        using var folder = new TempFolder();
        using var run = TrainedRun.Open(trained.Folder);
        using var data = run.LoadData("synthetic");
        run.EncodeToCsv(data.Test, folder["a.csv"], samples: 0, meanDraws: 1, seed: 5, batchSize: 50);
        run.EncodeToCsv(data.Test, folder["b.csv"], samples: 0, meanDraws: 1, seed: 5, batchSize: 50);
        Assert.Equal(File.ReadAllText(folder["a.csv"]), File.ReadAllText(folder["b.csv"]));

        // The same draws as evaluation's encoder given the same generator.
        using var noGrad = no_grad();
        using var generator = new Generator(5);
        using var expected = ModelEvaluator.Encode(run.Method, data.Test.Images, 50, generator);
        var rows = File.ReadAllLines(folder["a.csv"]).Skip(1).Select(l => l.Split(',')).ToArray();
        var z = expected.data<float>().ToArray();
        for (int i = 0; i < rows.Length; i++)
            for (int j = 0; j < 2; j++)
                Assert.Equal(z[i * 2 + j], float.Parse(rows[i][2 + j], CultureInfo.InvariantCulture));
    }

    [Fact]
    public void EncodeRejectsADatasetOfAnotherImageSizeAndBadOptions()
    {
        using var folder = new TempFolder();
        string small = IdxFolder(folder, "small", 12, 16);
        var (code, _, error) = DdviProcess.Run("encode", trained.Folder, "--dataset", small, "--out", folder["z.csv"]);
        Assert.Equal(2, code);
        Assert.Contains("1×12×16", error);
        Assert.Contains("1×28×28", error);
        (code, _, error) = DdviProcess.Run("encode", trained.Folder, "--out", folder["z.txt"]);
        Assert.Equal(2, code);
        Assert.Contains("expected a .csv file", error);
        (code, _, error) = DdviProcess.Run("encode", folder.Path, "--out", folder["z.csv"]);
        Assert.Equal(1, code);
        Assert.Contains("config.json", error);
    }

    private static (long[] Shape, float[] Values) ReadNpy(string path)
    {
        var bytes = File.ReadAllBytes(path);
        Assert.Equal([0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y', 1, 0], bytes[..8]);
        int headerLength = BinaryPrimitives.ReadUInt16LittleEndian(bytes.AsSpan(8));
        Assert.Equal(0, (10 + headerLength) % 64);
        string header = Encoding.ASCII.GetString(bytes, 10, headerLength);
        Assert.StartsWith("{'descr': '<f4', 'fortran_order': False, 'shape': (", header);
        Assert.EndsWith("\n", header);
        string dims = header[(header.IndexOf("'shape': (", StringComparison.Ordinal) + 10)..header.IndexOf(')')];
        var shape = dims.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(long.Parse).ToArray();
        var values = new float[(bytes.Length - 10 - headerLength) / 4];
        for (int i = 0; i < values.Length; i++) values[i] = BinaryPrimitives.ReadSingleLittleEndian(bytes.AsSpan(10 + headerLength + 4 * i));
        return (shape, values);
    }

    [Fact]
    public void SampleWritesOneRowPerPriorClassRepeatablyForASeed()
    {
        using var folder = new TempFolder();
        var (code, _, error) = DdviProcess.Run("sample", trained.Folder, "-n", "3", "--out", folder["a.npy"], "--seed", "7");
        Assert.True(code == 0, error);
        var (shape, values) = ReadNpy(folder["a.npy"]);
        Assert.Equal([30L, 1, 28, 28], shape);
        Assert.Equal(30 * 784, values.Length);
        Assert.All(values, v => Assert.InRange(v, 0f, 1f));

        (code, _, error) = DdviProcess.Run("sample", trained.Folder, "-n", "3", "--out", folder["b.npy"], "--seed", "7");
        Assert.True(code == 0, error);
        Assert.Equal(File.ReadAllBytes(folder["a.npy"]), File.ReadAllBytes(folder["b.npy"]));
        (code, _, error) = DdviProcess.Run("sample", trained.Folder, "-n", "3", "--out", folder["c.npy"], "--seed", "8");
        Assert.True(code == 0, error);
        Assert.NotEqual(File.ReadAllBytes(folder["a.npy"]), File.ReadAllBytes(folder["c.npy"]));

        (code, _, error) = DdviProcess.Run("sample", trained.Folder, "-n", "4", "--out", folder["grid.png"]);
        Assert.True(code == 0, error);
        var png = File.ReadAllBytes(folder["grid.png"]);
        Assert.Equal(new byte[] { 0x89, (byte)'P', (byte)'N', (byte)'G' }, png[..4]);
        // Width: 4 columns, height: 10 class rows of 28-pixel images (ImageGrid draws each pixel as scale × scale).
        int width = BinaryPrimitives.ReadInt32BigEndian(png.AsSpan(16)), height = BinaryPrimitives.ReadInt32BigEndian(png.AsSpan(20));
        Assert.True(height > width * 2, $"{width}×{height}");
    }

    [Fact]
    public void SampleDecodesGivenLatentPointsAndNamesBadOnes()
    {
        using var folder = new TempFolder();
        File.WriteAllText(folder["z.csv"], "label,z1,z2\n0,0.1,0.2\n1,-1,2\n2,0,0\n");
        var (code, _, error) = DdviProcess.Run("sample", trained.Folder, "--latents", folder["z.csv"], "--out", folder["z.npy"]);
        Assert.True(code == 0, error);
        Assert.Equal([3L, 1, 28, 28], ReadNpy(folder["z.npy"]).Shape);

        using var run = TrainedRun.Open(trained.Folder);
        using var z = tensor(new float[] { 0.1f, 0.2f, -1, 2, 0, 0 }, [3, 2]);
        using var direct = run.Decode(z);
        Assert.Equal(direct.data<float>().ToArray(), ReadNpy(folder["z.npy"]).Values);

        File.WriteAllText(folder["bad.csv"], "z1,z2\n0.1,x\n");
        (code, _, error) = DdviProcess.Run("sample", trained.Folder, "--latents", folder["bad.csv"], "--out", folder["x.png"]);
        Assert.Equal(2, code);
        Assert.Contains("line 2: column z2 must be a finite number, got 'x'", error);
        File.WriteAllText(folder["one.csv"], "z1\n0.1\n");
        (code, _, error) = DdviProcess.Run("sample", trained.Folder, "--latents", folder["one.csv"], "--out", folder["x.png"]);
        Assert.Equal(2, code);
        Assert.Contains("z1..z2", error);
        (code, _, error) = DdviProcess.Run("sample", trained.Folder, "--out", folder["x.jpg"]);
        Assert.Equal(2, code);
        Assert.Contains(".png", error);
    }

    private static void CopyFolder(string from, string to)
    {
        foreach (var directory in Directory.GetDirectories(from, "*", SearchOption.AllDirectories))
            Directory.CreateDirectory(directory.Replace(from, to));
        Directory.CreateDirectory(to);
        foreach (var file in Directory.GetFiles(from, "*", SearchOption.AllDirectories)) File.Copy(file, file.Replace(from, to));
    }

    [Fact]
    public void ShowDescribesFinishedUnfinishedAndFailedRuns()
    {
        var (code, output, error) = DdviProcess.Run("show", trained.Folder);
        Assert.True(code == 0, error);
        Assert.Contains("model     vae, latent prior pinwheel", output);
        Assert.Contains("data      synthetic", output);
        Assert.Contains("networks in float32", output);
        Assert.Contains("vae              finished, 1 epoch", output);
        Assert.Contains("state     finished", output);
        Assert.Contains("metrics   knn_accuracy=", output);
        Assert.Contains("prior-vs-latents.png", output);

        using var folder = new TempFolder();
        string unfinished = folder["unfinished"];
        CopyFolder(trained.Folder, unfinished);
        File.Delete(Path.Combine(unfinished, "metrics.json"));
        var config = ExperimentConfig.FromJson(File.ReadAllText(Path.Combine(unfinished, "config.json")), "test") with { Epochs = 4 };
        File.WriteAllText(Path.Combine(unfinished, "config.json"), config.ToJson());
        var (state, text) = RunSummary.Describe(unfinished);
        Assert.Equal(RunSummary.RunState.Unfinished, state);
        Assert.Contains("1/4 epochs", text);
        Assert.Contains("ddvi train --resume", text);

        string failed = folder["failed"];
        CopyFolder(unfinished, failed);
        File.AppendAllText(Path.Combine(failed, "train.log"), "2025-01-01T00:00:00Z error: vae: loss is NaN at epoch 2\n");
        (state, text) = RunSummary.Describe(failed);
        Assert.Equal(RunSummary.RunState.Failed, state);
        Assert.Contains("failed: vae: loss is NaN at epoch 2", text);

        (code, _, error) = DdviProcess.Run("show", folder.Path);
        Assert.Equal(1, code);
        Assert.Contains("not a Ddvi run folder", error);
    }

    [Fact]
    public void ShowsPlannedStagesAreTheMethodsStages()
    {
        using var data = DatasetCatalog.Load("synthetic", new DatasetOptions(null, 0, SyntheticTrainCount: 64, SyntheticTestCount: 32));
        foreach (var model in ModelCatalog.Names)
        {
            var config = ExperimentRunnerTests.Tiny(model);
            var prior = global::Ddvi.Priors.PriorCatalog.Create(config.Prior, config.PriorNoise, 0, CPU, config.PriorDensity);
            var method = ModelCatalog.Create(new MethodContext(config, data.Train, prior, CPU));
            using var module = method.Module;
            (prior as IDisposable)?.Dispose();
            Assert.Equal(method.Stages.Select(s => (s.Name, s.Epochs)), RunSummary.PlannedStages(config));
        }
    }
}
