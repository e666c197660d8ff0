using System.CommandLine;
using Ddvi.Experiments;

namespace Ddvi.Cli.Commands;

/// <summary><c>ddvi encode RUN_DIR --dataset D --out FILE.csv</c>: posterior latents of a dataset under a trained run.</summary>
internal static class EncodeCommand
{
    public static Command Create()
    {
        var runFolder = new Argument<string>("RUN_DIR") { Description = "Run folder of a finished ddvi train" };
        var dataset = CliOptions.Dataset();
        dataset.Description = "Dataset to encode: a name or a folder of MNIST-format files, with images of the run's size (default: synthetic)";
        var split = new Option<string>("--split") { Description = "Which split to encode", DefaultValueFactory = _ => "test" }.AcceptOnlyFromAmong("test", "train");
        var output = new Option<string>("--out") { Description = "CSV file to write: index,label,z1..zd (posterior means), then s1_z1..sK_zd with --samples", Required = true };
        var samples = new Option<int>("--samples") { Description = "K posterior samples per example, written after the means", DefaultValueFactory = _ => 0 };
        var meanDraws = new Option<int>("--mean-draws") { Description = "Posterior draws averaged into each mean (or K when larger)", DefaultValueFactory = _ => TrainedRun.DefaultMeanDraws };
        var seed = new Option<long?>("--seed") { Description = "Seed of the posterior draws (default: the run's seed)" };
        var dataDir = CliOptions.DataDirectory();
        var command = new Command("encode", "Write the posterior latents of every example of a dataset under a trained run to a CSV file (with labels)")
        {
            runFolder, dataset, split, output, samples, meanDraws, seed, dataDir,
        };
        command.SetAction(parse => CommandRunner.Run(() =>
        {
            string outPath = parse.GetValue(output)!;
            if (!outPath.EndsWith(".csv", StringComparison.OrdinalIgnoreCase))
                throw new ArgumentException($"--out {outPath}: expected a .csv file.");
            using var run = TrainedRun.Open(parse.GetValue(runFolder)!, parse.GetValue(dataDir), message => Console.Error.WriteLine($"warning: {message}"));
            using var data = run.LoadData(parse.GetValue(dataset)!);
            var chosen = parse.GetValue(split) == "train" ? data.Train : data.Test;
            long rows = run.EncodeToCsv(chosen, outPath, parse.GetValue(samples), parse.GetValue(meanDraws),
                parse.GetValue(seed) ?? run.Config.Seed, run.Config.Evaluation.BatchSize);
            Console.WriteLine($"encoded {rows} examples ({parse.GetValue(split)} split of {parse.GetValue(dataset)}): {Path.GetFullPath(outPath)}");
            return 0;
        }));
        return command;
    }
}
