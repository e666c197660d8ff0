using System.CommandLine;
using System.Globalization;
using Ddvi.Experiments.Ancestry;
using Ddvi.Experiments.Files;
using Ddvi.Experiments.Genomics;
using Ddvi.Models;
using Ddvi.Runtime;
using Ddvi.Training;

namespace Ddvi.Cli.Commands;

/// <summary>
/// <c>ddvi ancestry --genotypes FILE --panel FILE --out DIR</c>: 2-D ancestry maps of the samples by clustering DDVI and
/// the paper's baselines, scored against the population labels (<see cref="AncestryRunner"/>). The PCs are computed once,
/// then every method × seed is an entry of OUT/manifest.json, run here (<c>--jobs</c>) or as a Slurm job array
/// (<c>--launcher slurm</c>) by <c>ddvi run</c> (<see cref="AncestrySweep"/>).
/// </summary>
internal static class AncestryCommand
{
    public static Command Create()
    {
        var settings = new AncestrySettings();
        var filters = new GenotypeFilters();
        var pca = new GenotypePcaOptions();
        var genotypes = new Option<string>("--genotypes") { Description = "Genotypes: a VCF (.vcf, or gzip/BGZF .vcf.gz), or a PLINK 1 .bed with its .bim and .fam beside it (or their common prefix). Required, here or in the --sweep file" };
        var panel = new Option<string>("--panel") { Description = "Population panel, tab-separated with a header: sample pop super_pop gender (the 1000 Genomes layout). Required, here or in the --sweep file" };
        var output = new Option<string>("--out") { Description = "Study folder: cached PCs, one folder per method and seed, results.md/.csv, figures. Required, here or in the --sweep file" };
        var methods = new Option<string>("--methods") { Description = $"Comma-separated methods (default all): {string.Join(",", AncestryRunner.AllMethods)}", DefaultValueFactory = _ => string.Join(",", AncestryRunner.AllMethods) };
        var seeds = new Option<string>("--seeds") { Description = "Comma-separated seeds; every method runs once per seed (default 0,1,2,3,4)", DefaultValueFactory = _ => "0,1,2,3,4" };
        var epochs = new Option<int>("--epochs") { Description = $"Training epochs of ddvi, vae and aae (default {settings.Epochs})", DefaultValueFactory = _ => settings.Epochs };
        var passes = new Option<int>("--passes-per-epoch") { Description = $"Passes over the samples per epoch (default {settings.PassesPerEpoch}, the release's)", DefaultValueFactory = _ => settings.PassesPerEpoch };
        var hidden = new Option<int>("--hidden") { Description = $"Width of the networks' hidden layers (default {settings.Hidden})", DefaultValueFactory = _ => settings.Hidden };
        var hiddenLayers = new Option<int>("--hidden-layers") { Description = $"Hidden layers of every encoder and decoder (default {settings.HiddenLayers})", DefaultValueFactory = _ => settings.HiddenLayers };
        var batchSize = new Option<int>("--batch-size") { Description = $"Samples per training step of ddvi, vae and aae (default {settings.BatchSize})", DefaultValueFactory = _ => settings.BatchSize };
        var priorIterations = new Option<int>("--prior-diffusion-iterations") { Description = $"Steps of the clustering DDVI's first prior-diffusion fit (default {settings.PriorDiffusionIterations})", DefaultValueFactory = _ => settings.PriorDiffusionIterations };
        var components = new Option<int>("--components") { Description = $"K, principal components fed to the methods, capped at samples − 1 (default {pca.Components})", DefaultValueFactory = _ => pca.Components };
        var divisor = new Option<string>("--pc-divisor") { Description = $"What the PCs are divided by: auto (chosen from the data so that the kept PCs' mean variance is {GenotypePca.AutomaticMeanVariance}) or a positive number (30 is the release's, fixed for its 1000 Genomes PCs; 1 = off). Default {DivisorText(pca.Divisor)}", DefaultValueFactory = _ => DivisorText(pca.Divisor) };
        var noStandardise = new Option<bool>("--no-standardise") { Description = "Only centre each site before the PCA (default: centre and divide by √(2p(1−p)), Patterson et al. 2006)" };
        var everyNth = new Option<int>("--every-nth-site") { Description = $"Keep every n-th site that passes the other filters (default {filters.EveryNth}, the release's)", DefaultValueFactory = _ => filters.EveryNth };
        var maf = new Option<double>("--min-maf") { Description = $"Drop sites with minor-allele frequency below this (default {filters.MinMinorAlleleFrequency})", DefaultValueFactory = _ => filters.MinMinorAlleleFrequency };
        var missing = new Option<double>("--max-missing") { Description = $"Drop sites with a larger share of missing calls (default {filters.MaxMissingRate})", DefaultValueFactory = _ => filters.MaxMissingRate };
        var allChromosomes = new Option<bool>("--all-chromosomes") { Description = "Keep sites on every chromosome (default: autosomes 1–22 only)" };
        var anyAlleles = new Option<bool>("--any-alleles") { Description = "Keep sites whatever their alleles (default: single-base A/C/G/T alleles only)" };
        var anyFilter = new Option<bool>("--any-filter") { Description = "Keep sites whatever their VCF FILTER (default: PASS or '.' only)" };
        var perplexity = new Option<double>("--perplexity") { Description = $"t-SNE's perplexity (default {settings.TsnePerplexity})", DefaultValueFactory = _ => settings.TsnePerplexity };
        var neighbours = new Option<int>("--umap-neighbours") { Description = $"UMAP's neighbours (default {settings.UmapNeighbours})", DefaultValueFactory = _ => settings.UmapNeighbours };
        var minDist = new Option<double>("--umap-min-dist") { Description = $"UMAP's minimum distance (default {settings.UmapMinDist})", DefaultValueFactory = _ => settings.UmapMinDist };
        var precision = new Option<string>("--precision") { Description = $"Arithmetic of the learned methods' MLPs: float32 (default, the release's) or bfloat16 (also bf16; mixed precision: bfloat16 products, float32 weights and optimiser; products about twice as fast on CPUs with AVX-512 BF16, the clustering DDVI 1.35x)", DefaultValueFactory = _ => settings.Precision.Name() };
        var device = new Option<DeviceChoice>("--device") { Description = "Where the learned methods train (default auto: CUDA when present)", DefaultValueFactory = _ => DeviceChoice.Auto };
        var jobs = new Option<int?>("--jobs") { Description = "Runs at the same time (default 1); above 1 each method × seed is a child 'ddvi run' process. With --launcher slurm: array tasks running at once (default: all)" };
        var threads = new Option<int?>("--threads") { Description = "libtorch CPU threads of each run (default 0: libtorch's default with one job; with --jobs N, the cores divided among the N jobs). With --launcher slurm: default --cpus-per-task, else libtorch's default" };
        var sweep = new Option<string?>("--sweep") { Description = "A study file (YAML or JSON) with any of these options as keys, without the dashes (methods and seeds as lists, switches as true); options given here override it. configs/ancestry/ has examples" };
        var launch = new SweepLauncherOptions();
        var command = new Command("ancestry",
            "Latent ancestry from genotypes: PCA of a VCF or PLINK file, then 2-D maps by clustering DDVI, a clustering VAE, an AAE, PCA, t-SNE and UMAP, scored against the panel's populations (cluster purity, homogeneity, completeness, V-measure, NMI; KNN accuracy); resumable")
        {
            genotypes, panel, output, methods, seeds, epochs, passes, hidden, priorIterations, components, divisor, noStandardise,
            everyNth, maf, missing, allChromosomes, anyAlleles, anyFilter, perplexity, neighbours, minDist, device, precision, hiddenLayers, batchSize, jobs, threads,
            sweep,
        };
        launch.AddTo(command);
        command.SetAction(given => CommandRunner.Run(signals =>
        {
            var parse = WithStudyFile(command, given, given.GetValue(sweep));
            foreach (var required in new[] { genotypes, panel, output })
                if (string.IsNullOrWhiteSpace(parse.GetValue(required)))
                    throw new ArgumentException($"{required.Name} is required (on the command line or as '{required.Name.TrimStart('-')}' in a --sweep file).");
            var request = new AncestryRequest(
                parse.GetValue(genotypes)!,
                parse.GetValue(panel)!,
                List(parse.GetValue(methods)!, "--methods", s => s.Trim()),
                List(parse.GetValue(seeds)!, "--seeds", s => int.TryParse(s, NumberStyles.Integer, CultureInfo.InvariantCulture, out int v)
                    ? v : throw new ArgumentException($"--seeds: '{s}' is not an integer")),
                parse.GetValue(output)!,
                Filters(parse),
                Pca(parse),
                settings with
                {
                    Epochs = parse.GetValue(epochs),
                    PassesPerEpoch = parse.GetValue(passes),
                    Hidden = parse.GetValue(hidden),
                    HiddenLayers = parse.GetValue(hiddenLayers),
                    BatchSize = parse.GetValue(batchSize),
                    PriorDiffusionIterations = parse.GetValue(priorIterations),
                    TsnePerplexity = Finite(parse.GetValue(perplexity), "--perplexity"),
                    UmapNeighbours = parse.GetValue(neighbours),
                    UmapMinDist = Finite(parse.GetValue(minDist), "--umap-min-dist"),
                    Device = parse.GetValue(device),
                    Precision = NetworkPrecisions.Parse(parse.GetValue(precision)!),
                });
            bool slurm = launch.IsSlurm(parse);
            if (parse.GetValue(jobs) is < 1)
                throw new ArgumentException($"--jobs must be ≥ 1 (runs at the same time), got {parse.GetValue(jobs)}.");
            string study = Path.GetFullPath(request.Out);
            if (slurm)
            {
                // The PCs once, here, before submission; every task then loads them from the study's cache.
                var slurmOptions = launch.Slurm(parse, parse.GetValue(jobs) ?? request.Methods.Count * request.Seeds.Count);
                var commands = launch.RequireSlurm(parse);
                int threadsEachTask = parse.GetValue(threads) ?? parse.GetValue(launch.CpusPerTask) ?? 0;
                var (manifest, planned, manifestPath) = parse.GetValue(launch.DryRun)
                    ? AncestrySweep.WriteManifest(request, threadsEachTask)
                    : ConsoleProgress.Run(observer => AncestrySweep.Prepare(request, observer.Message, threadsEachTask));
                return launch.SubmitToSlurm(parse, commands, study, manifest, manifestPath, planned, slurmOptions, "ancestry", signals);
            }
            if (parse.GetValue(launch.DryRun))
            {
                var (_, planned, path) = AncestrySweep.WriteManifest(request, parse.GetValue(threads) ?? 0);
                Console.WriteLine($"manifest: {path} ({planned.Count} runs; run one with: ddvi run --manifest {path} --index N)");
                Console.WriteLine("dry run: the PCs are not computed yet; each run computes them into the study's cache when it finds none there");
                return 0;
            }
            ConsoleProgress.Run<object?>(observer =>
            {
                AncestrySweep.Run(request, parse.GetValue(jobs) ?? 1, observer.Message, observer, cancellationToken: signals.Token, threads: parse.GetValue(threads) ?? 0);
                return null;
            });
            Console.WriteLine($"study folder: {study}");
            return 0;
        }));
        return command;

        GenotypeFilters Filters(ParseResult parse)
        {
            try
            {
                return filters with
                {
                    AutosomesOnly = !parse.GetValue(allChromosomes),
                    SingleBaseAllelesOnly = !parse.GetValue(anyAlleles),
                    PassOnly = !parse.GetValue(anyFilter),
                    EveryNth = parse.GetValue(everyNth),
                    MinMinorAlleleFrequency = Finite(parse.GetValue(maf), "--min-maf"),
                    MaxMissingRate = Finite(parse.GetValue(missing), "--max-missing"),
                };
            }
            catch (ArgumentException e) when (e.Message.Contains(nameof(GenotypeFilters.EveryNth)) || e.Message.Contains("EveryNth"))
            {
                throw new ArgumentException($"--every-nth-site: {e.Message}", e);
            }
        }

        GenotypePcaOptions Pca(ParseResult parse) => pca with
        {
            Components = parse.GetValue(components),
            Divisor = ParseDivisor(parse.GetValue(divisor)!),
            Standardize = !parse.GetValue(noStandardise),
        };
    }

    /// <summary>
    /// The command line with a study file's values added for every option the command line does not give: the file's
    /// keys become options, parsed and validated as if typed (an error names the file).
    /// </summary>
    static ParseResult WithStudyFile(Command command, ParseResult given, string? path)
    {
        if (path is null) return given;
        var file = AncestryFile.Load(path);
        var tokens = given.Tokens.Select(t => t.Value).ToList();
        if (tokens.Count > 0 && tokens[0] == command.Name) tokens.RemoveAt(0);
        var added = new List<string>();
        foreach (var (key, value) in file.Values)
        {
            var option = command.Options.FirstOrDefault(o => o.Name == "--" + key)
                ?? throw new InvalidOperationException($"ddvi ancestry has no option --{key} for the study-file key '{key}'");
            if (given.GetResult(option) is { Implicit: false }) continue; // the command line wins
            if (AncestryFile.Keys[key] == AncestryFile.ValueKind.Switch)
            {
                if (value.Text == "true") added.Add(option.Name);
            }
            else
            {
                added.Add(option.Name);
                added.Add(value.Text);
            }
        }
        var merged = command.Parse([.. added, .. tokens]);
        if (merged.Errors.Count > 0)
            throw new ArgumentException($"{path}: {string.Join("; ", merged.Errors.Select(e => e.Message))}");
        return merged;
    }

    static string DivisorText(double? divisor) => divisor is { } d ? d.ToString(CultureInfo.InvariantCulture) : AncestryFile.Auto;

    static double? ParseDivisor(string text)
    {
        if (string.Equals(text.Trim(), AncestryFile.Auto, StringComparison.OrdinalIgnoreCase)) return null;
        return double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out double value) && double.IsFinite(value) && value > 0
            ? value
            : throw new ArgumentException($"--pc-divisor: expected '{AncestryFile.Auto}' or a positive number, got '{text}'");
    }

    static double Finite(double value, string option) =>
        double.IsFinite(value) ? value : throw new ArgumentException($"{option} must be a finite number, got {value}");

    static List<T> List<T>(string text, string option, Func<string, T> parse)
    {
        var parts = text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        if (parts.Length == 0) throw new ArgumentException($"{option}: give at least one value, comma-separated");
        return [.. parts.Select(parse)];
    }
}
