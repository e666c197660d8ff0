using System.CommandLine;
using Ddvi.Data;
using Ddvi.Experiments;
using Ddvi.Models;
using Ddvi.Priors;

namespace Ddvi.Cli.Commands;

/// <summary>Options shared by several commands, with their accepted values listed in --help.</summary>
internal static class CliOptions
{
    public static readonly string[] Devices = ["auto", "cpu", "cuda"];

    public static Option<string> Dataset() => new Option<string>("--dataset")
    {
        Description = $"Dataset: {string.Join(", ", DatasetCatalog.Names)}, or the path of a folder holding the four MNIST-format files " +
                      $"({string.Join(", ", MnistFormat.FileNames)}, each raw or .gz; grey images of any size, the same in both splits, and byte labels), " +
                      $"CIFAR-10 binary batches ({CifarBinary.TestBatchName} and any of data_batch_1.bin … data_batch_5.bin, in it or in its {CifarBinary.BatchFolderName} folder), " +
                      $"or image files in class folders ({ImageFolder.TrainFolder}/CLASS/*.png|jpg and {ImageFolder.TestFolder}/CLASS/*)",
        DefaultValueFactory = _ => "synthetic",
        // A folder is kept as its full path, so that --resume from another working directory finds it again.
        CustomParser = result =>
        {
            string value = result.Tokens.Count == 0 ? DatasetCatalog.Synthetic : result.Tokens[^1].Value;
            if (!string.IsNullOrWhiteSpace(value)) return DatasetCatalog.Canonical(value);
            result.AddError("--dataset must not be empty: give a dataset name or a dataset folder.");
            return null;
        },
    };

    public static Option<string> Networks() => new Option<string>("--networks")
    {
        Description = "The models' networks: auto (the paper's CIFAR-10 conv networks for colour images of at least 28×28, its MLPs otherwise), mlp or conv",
        DefaultValueFactory = _ => "auto",
    }.AcceptOnlyFromAmong("auto", "mlp", "conv");

    public static Option<string> Model() => new Option<string>("--model")
    {
        Description = $"Model: {string.Join(", ", ModelCatalog.Names)}",
        DefaultValueFactory = _ => "ddvi",
    }.AcceptOnlyFromAmong([.. ModelCatalog.Names]);

    // The placeholder names the canonical priors only; the release's spellings are accepted too and named in the description.
    public static Option<string> Prior() => new Option<string>("--prior")
    {
        Description = $"Latent prior: {string.Join(", ", PriorCatalog.Names)} (the release's spellings {string.Join(", ", PriorCatalog.Aliases.Keys)} also work)",
        DefaultValueFactory = _ => "pinwheel",
        HelpName = string.Join("|", PriorCatalog.Names),
    }.AcceptOnlyFromAmong([.. PriorCatalog.Names, .. PriorCatalog.Aliases.Keys]);

    public static Option<string> PriorDensity() => new Option<string>("--prior-density")
    {
        Description = "log p(z) for training and the ELBO: auto (the release's KDE for pinwheel, swiss-roll and square; exact for gaussian and gaussian-mixture), " +
                      "exact (closed form: pinwheel, gaussian, gaussian-mixture) or kde (the release's KDE everywhere)",
        DefaultValueFactory = _ => "auto",
    }.AcceptOnlyFromAmong("auto", "exact", "kde");

    public static Option<string> Device() => new Option<string>("--device")
    {
        Description = "Where to compute: auto (CUDA if available), cpu, cuda",
        DefaultValueFactory = _ => "auto",
    }.AcceptOnlyFromAmong(Devices);

    public static Option<int> Threads() => new("--threads")
    {
        Description = "libtorch CPU threads (0 = libtorch's default)",
        DefaultValueFactory = _ => 0,
    };

    public static Option<string?> DataDirectory() => new("--data-dir")
    {
        Description = "Folder with (or for downloading) dataset files; default: ~/.cache/ddvi/datasets",
    };

    public static Option<string> Precision() => new Option<string>("--precision")
    {
        Description = "Arithmetic of the networks (MLPs, conv trunks and decoders): float32 (default, the release's) or bfloat16 (also bf16; mixed precision: bfloat16 products with float32 weights, optimiser and losses; products about twice as fast on CPUs with AVX-512 BF16, MNIST steps 1.3-1.4x, CIFAR-10 steps 1.6x). Denoisers and flows stay float32",
        DefaultValueFactory = _ => NetworkPrecisions.Default.Name(),
    };

    public static Option<int?> TrainImages() => new("--train-images")
    {
        Description = "Train on the dataset's first N training examples only, in its own order (the test split stays whole); default: all",
        HelpName = "N",
    };

    public static Option<int?> PriorDiffusionIterations() => new("--prior-diffusion-iterations")
    {
        Description = "DDVI stage 1: optimiser steps of the prior diffusion (default 100000; 3000 on synthetic)",
    };

    public static Option<int?> WarmupEpochs() => new("--warmup-epochs")
    {
        Description = "DDVI stage 2: epochs of the warm-up model (default 100; 8 on synthetic)",
    };

    private static readonly DdviSettings DdviDefaults = new();

    public static Option<double> PriorDiffusionLearningRate() => new("--prior-diffusion-lr")
    {
        Description = "DDVI stage 1: Adam learning rate of the prior diffusion; the default is the release's",
        DefaultValueFactory = _ => DdviDefaults.PriorDiffusionLearningRate,
    };

    public static Option<double> WarmupLearningRate() => new("--warmup-lr")
    {
        Description = "DDVI stage 2: Adam learning rate of the warm-up model; the default is the release's",
        DefaultValueFactory = _ => DdviDefaults.WarmupLearningRate,
    };
}
