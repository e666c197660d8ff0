using System.CommandLine;
using System.Globalization;
using Ddvi.Experiments;
using static TorchSharp.torch;

namespace Ddvi.Cli.Commands;

/// <summary><c>ddvi sample RUN_DIR -n N --out FILE.png|.npy</c>: decoded prior samples (per prior class) or decoded latent points.</summary>
internal static class SampleCommand
{
    public static Command Create()
    {
        var runFolder = new Argument<string>("RUN_DIR") { Description = "Run folder of a finished ddvi train" };
        var count = new Option<int>("-n", "--samples-per-class") { Description = "Prior samples decoded per prior class (one grid row per class)", DefaultValueFactory = _ => ModelEvaluator.SamplesPerClass };
        var output = new Option<string>("--out") { Description = "Output: FILE.png (an image grid) or FILE.npy (float32 [N, C, H, W])", Required = true };
        var latents = new Option<string?>("--latents") { Description = "Decode these latent points instead: a CSV with a header naming columns z1..zd (ddvi encode's output works)" };
        var seed = new Option<long?>("--seed") { Description = "Seed of the prior draws (default: the run's seed)" };
        var dataDir = CliOptions.DataDirectory();
        var command = new Command("sample", "Decode prior samples of a trained run, per prior class (or given latent points), to a PNG grid or a .npy array")
        {
            runFolder, count, output, latents, seed, dataDir,
        };
        command.SetAction(parse => CommandRunner.Run(() =>
        {
            string outPath = parse.GetValue(output)!;
            using var run = TrainedRun.Open(parse.GetValue(runFolder)!, parse.GetValue(dataDir), message => Console.Error.WriteLine($"warning: {message}"));
            Tensor images;
            int columns;
            if (parse.GetValue(latents) is { } csv)
            {
                using var z = ReadLatents(csv, run.Prior.Dimension);
                images = run.Decode(z);
                columns = (int)Math.Min(10, images.shape[0]);
            }
            else
            {
                int n = parse.GetValue(count);
                images = run.DecodeByClass(n, parse.GetValue(seed) ?? run.Config.Seed);
                columns = n;
            }
            long written = images.shape[0];
            using (images) run.SaveImages(images, outPath, columns);
            Console.WriteLine($"wrote {written} images: {Path.GetFullPath(outPath)}");
            return 0;
        }));
        return command;
    }

    /// <summary>Reads the z1..zd columns of a CSV with a header into <c>[N, d]</c>; errors name the file, line and column.</summary>
    internal static Tensor ReadLatents(string path, int dimension)
    {
        if (!File.Exists(path)) throw new ArgumentException($"--latents {path}: file not found.");
        using var reader = new StreamReader(path);
        var header = (reader.ReadLine() ?? throw new ArgumentException($"--latents {path}: the file is empty; expected a header with z1..z{dimension}.")).Split(',');
        var columns = Enumerable.Range(1, dimension).Select(j => Array.IndexOf(header, $"z{j}")).ToArray();
        if (columns.Any(c => c < 0))
            throw new ArgumentException($"--latents {path}: the header must name the columns z1..z{dimension} (the run's latent dimension is {dimension}); it has: {string.Join(",", header)}.");
        var values = new List<float>();
        int line = 1;
        while (reader.ReadLine() is { } text)
        {
            line++;
            if (text.Length == 0) continue;
            var cells = text.Split(',');
            foreach (int c in columns)
            {
                if (c >= cells.Length || !float.TryParse(cells[c], NumberStyles.Float, CultureInfo.InvariantCulture, out float v) || !float.IsFinite(v))
                    throw new ArgumentException($"--latents {path} line {line}: column {header[c]} must be a finite number, got '{(c < cells.Length ? cells[c] : "")}'.");
                values.Add(v);
            }
        }
        if (values.Count == 0) throw new ArgumentException($"--latents {path}: no latent points after the header.");
        return tensor(values.ToArray(), [values.Count / dimension, dimension]);
    }
}
