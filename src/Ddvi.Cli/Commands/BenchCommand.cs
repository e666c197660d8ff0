using System.CommandLine;
using Ddvi.Benchmarking;
using Ddvi.Models;
using Ddvi.Runtime;

namespace Ddvi.Cli.Commands;

/// <summary><c>ddvi bench</c>: steady-state speed, memory and arithmetic floor of every model, DDVI stage and evaluation.</summary>
internal static class BenchCommand
{
    public static Command Create()
    {
        var cases = new Option<string[]>("--cases")
        {
            Description = $"Benchmarks to run (default all): {string.Join(", ", BenchmarkCases.Names)}",
            AllowMultipleArgumentsPerToken = true,
        };
        var output = new Option<string>("--out") { Description = "Folder for bench.json and bench.md", DefaultValueFactory = _ => "bench" };
        var device = CliOptions.Device();
        var threads = new Option<int[]>("--threads")
        {
            Description = "libtorch thread counts to measure, one full run each (0 = libtorch's default)",
            AllowMultipleArgumentsPerToken = true,
            DefaultValueFactory = _ => [0],
        };
        var backgroundLoad = new Option<int[]>("--background-load")
        {
            Description = "After the idle run, run again with N busy processes of the bench's own for each N given, and report each benchmark's slowdown against the idle run",
            AllowMultipleArgumentsPerToken = true,
        };
        var batchSize = new Option<int>("--batch-size") { Description = "Mini-batch size", DefaultValueFactory = _ => 128 };
        var repetitions = new Option<int>("--repetitions") { Description = "Timed repetitions per training benchmark", DefaultValueFactory = _ => 7 };
        var evaluationRepetitions = new Option<int>("--evaluation-repetitions") { Description = "Timed repetitions per evaluation benchmark", DefaultValueFactory = _ => 3 };
        var warmupSteps = new Option<int>("--warmup-steps") { Description = "Untimed steps before measuring (for training steps at least 3 s of them, and more until .NET's JIT has compiled nothing for 1 s, 60 s at most)", DefaultValueFactory = _ => new BenchmarkOptions().WarmupSteps };
        var dataset = new Option<string>("--dataset")
        {
            Description = "Shape of the seeded random data, and with it the networks: mnist (1×28×28 in [0, 1], MLPs) or cifar10 (3×32×32 in [−1, 1], conv networks, Gaussian likelihood); " +
                          $"genotypes: the genomics targets ({string.Join(", ", GenomicsBenchmarkOptions.AllCases)}) on a generated PLINK file of --samples × --sites",
            DefaultValueFactory = _ => new BenchmarkOptions().Dataset.Name(),
        };
        var trainImages = new Option<int?>("--train-images")
        {
            Description = $"Images of a training epoch (and of the KNN fit in evaluation); default the dataset's training set ({BenchmarkDataset.Mnist.TrainingImages():N0} for mnist, {BenchmarkDataset.Cifar10.TrainingImages():N0} for cifar10)",
        };
        var testImages = new Option<int>("--test-images") { Description = "Test images evaluated", DefaultValueFactory = _ => 10_000 };
        var seed = new Option<long>("--seed") { Description = "Seed of the random data and weights", DefaultValueFactory = _ => 0 };
        var precision = new Option<string>("--precision")
        {
            Description = "Arithmetic of the models' MLPs (mnist, cifar10): float32 (default) or bfloat16 (also bf16; bfloat16 products, float32 weights); the floor then uses the best of the float32 and bfloat16 product rates. --dataset genotypes measures both (clustering-ddvi, clustering-ddvi-bf16)",
            DefaultValueFactory = _ => NetworkPrecisions.Default.Name(),
        };
        var genomics = new GenomicsBenchmarkOptions();
        var samples = new Option<int>("--samples") { Description = $"--dataset genotypes: samples of the generated PLINK file (default {genomics.Samples:N0})", DefaultValueFactory = _ => genomics.Samples };
        var sites = new Option<long>("--sites") { Description = $"--dataset genotypes: sites of the generated PLINK file (default {genomics.Sites:N0})", DefaultValueFactory = _ => genomics.Sites };
        var genotypePrefix = new Option<string?>("--genotype-file") { Description = $"--dataset genotypes: prefix of the generated PLINK file, made once and reused (default {genomics.GenotypePrefix}; the size is in the default name only)" };

        var command = new Command("bench", "Measure time per step and per epoch, examples/s, peak memory and the arithmetic floor of every model, DDVI stage and evaluation")
        {
            cases, dataset, output, device, threads, backgroundLoad, batchSize, repetitions, evaluationRepetitions, warmupSteps, trainImages, testImages, seed, precision,
            samples, sites, genotypePrefix,
        };
        command.SetAction(parse => CommandRunner.Run(() =>
        {
            if (string.Equals(parse.GetValue(dataset), "genotypes", StringComparison.OrdinalIgnoreCase))
            {
                int count = parse.GetValue(samples);
                long length = parse.GetValue(sites);
                var genotypeOptions = new GenomicsBenchmarkOptions
                {
                    Cases = parse.GetValue(cases) ?? [],
                    Samples = count,
                    Sites = length,
                    GenotypePrefix = parse.GetValue(genotypePrefix)
                        ?? Path.Combine(Path.GetTempPath(), "ddvi-bench-genotypes", $"genotypes-{count}x{length}"),
                    Seed = parse.GetValue(seed),
                    Device = Enum.Parse<DeviceChoice>(parse.GetValue(device)!, ignoreCase: true),
                }.Validate();
                var results = GenomicsBenchmarks.Run(genotypeOptions, Console.WriteLine);
                var (genotypeJson, genotypeTable) = GenomicsBenchmarks.Write(results, genotypeOptions, parse.GetValue(output)!);
                Console.WriteLine();
                Console.Write(File.ReadAllText(genotypeTable));
                Console.WriteLine($"\nwrote {genotypeJson} and {genotypeTable}");
                return 0;
            }
            var options = new BenchmarkOptions
            {
                Cases = parse.GetValue(cases) ?? [],
                Dataset = BenchmarkDatasets.Parse(parse.GetValue(dataset)!),
                Device = Enum.Parse<DeviceChoice>(parse.GetValue(device)!, ignoreCase: true),
                Threads = parse.GetValue(threads) ?? [0],
                BackgroundLoads = parse.GetValue(backgroundLoad) ?? [],
                BatchSize = parse.GetValue(batchSize),
                Repetitions = parse.GetValue(repetitions),
                EvaluationRepetitions = parse.GetValue(evaluationRepetitions),
                WarmupSteps = parse.GetValue(warmupSteps),
                TrainImages = parse.GetValue(trainImages),
                TestImages = parse.GetValue(testImages),
                Seed = parse.GetValue(seed),
                Precision = NetworkPrecisions.Parse(parse.GetValue(precision)!),
            }.Validate();
            var report = BenchmarkSuite.Run(options, Console.WriteLine);
            var (json, table) = BenchmarkSuite.Write(report, parse.GetValue(output)!);
            Console.WriteLine();
            Console.Write(File.ReadAllText(table));
            Console.WriteLine($"\nwrote {json} and {table}");
            return 0;
        }));
        return command;
    }
}
