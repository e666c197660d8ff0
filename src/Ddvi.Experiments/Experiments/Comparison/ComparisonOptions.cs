using System.Globalization;
using Ddvi.Priors;

namespace Ddvi.Experiments.Comparison;

/// <summary>
/// A comparison: every model × prior × seed trained on one dataset with otherwise equal settings
/// (<see cref="BaseConfig"/>), each run in <c>OUT/runs/MODEL-PRIOR-sSEED</c>, summarised in OUT/results.md,
/// OUT/results.csv and OUT/panel.png. Immutable; <see cref="Validate"/> checks every list and every run's
/// configuration before anything is trained, naming the option at fault.
/// </summary>
public sealed record ComparisonOptions
{
    /// <summary>The methods of the paper's comparison table (VAE, IAF-VAE, H-IAF-VAE, AAE, DDVI).</summary>
    public static IReadOnlyList<string> PaperModels { get; } = ["vae", "iaf-vae", "h-iaf-vae", "aae", "ddvi"];

    /// <summary>The paper's methods that this build knows, in <see cref="ModelCatalog.Names"/> order.</summary>
    public static IReadOnlyList<string> DefaultModels => [.. ModelCatalog.Names.Where(PaperModels.Contains)];

    /// <summary>The paper's three priors.</summary>
    public static IReadOnlyList<string> DefaultPriors { get; } = [PriorCatalog.Pinwheel, PriorCatalog.SwissRoll, PriorCatalog.Square];

    public static IReadOnlyList<long> DefaultSeeds { get; } = [0, 1, 2];

    /// <summary>Settings shared by every run: dataset, epochs, device, network sizes, evaluation. Its model, prior, seed and threads are replaced per run.</summary>
    public ExperimentConfig BaseConfig { get; init; } = new();

    /// <summary>
    /// Settings for the runs of one prior in place of <see cref="BaseConfig"/> (a sweep file's <c>per_prior</c>), keyed by
    /// the prior's canonical name (<see cref="PriorCatalog.Names"/>); model, prior, seed and threads are replaced per run
    /// as for <see cref="BaseConfig"/>. A prior not listed uses <see cref="BaseConfig"/>.
    /// </summary>
    public IReadOnlyDictionary<string, ExperimentConfig> PriorConfigs { get; init; } = new Dictionary<string, ExperimentConfig>();

    /// <summary>The shared settings of the runs of <paramref name="prior"/> (any spelling <see cref="PriorCatalog"/> takes).</summary>
    public ExperimentConfig BaseConfigFor(string prior) =>
        PriorCatalog.CanonicalName(prior) is { } canonical && PriorConfigs.TryGetValue(canonical, out var config) ? config : BaseConfig;

    public IReadOnlyList<string> Models { get; init; } = DefaultModels;
    public IReadOnlyList<string> Priors { get; init; } = DefaultPriors;
    public IReadOnlyList<long> Seeds { get; init; } = DefaultSeeds;

    /// <summary>Folder of the comparison: runs/ below it, and the result files.</summary>
    public string OutputFolder { get; init; } = "";

    /// <summary>Runs trained at the same time (1 = one after another in this process; more = child processes; on a
    /// Slurm cluster, the array tasks running at once).</summary>
    public int Jobs { get; init; } = 1;

    /// <summary>libtorch threads for all jobs together, divided among them; 0 = libtorch's default (one job) or the cores divided among jobs.</summary>
    public int Threads { get; init; }

    /// <summary>
    /// Threads of every run when each run has machines of its own (a Slurm array task: its CPUs); null = runs share
    /// this machine and divide <see cref="Threads"/> (see <see cref="ThreadsPerRun"/>).
    /// </summary>
    public int? ThreadsEachRun { get; init; }

    /// <summary>Threads of each run: <see cref="ThreadsEachRun"/> when set; else all of <see cref="Threads"/> for one job; otherwise the total (or the core count when 0) divided by the jobs, at least one.</summary>
    public int ThreadsPerRun => ThreadsEachRun ?? (Jobs <= 1 ? Threads : Math.Max(1, (Threads > 0 ? Threads : Environment.ProcessorCount) / Jobs));

    /// <summary>Folder of one run.</summary>
    public string RunFolder(string model, string prior, long seed) =>
        Path.Combine(Path.GetFullPath(OutputFolder), "runs", RunName(model, prior, seed));

    public static string RunName(string model, string prior, long seed) =>
        string.Create(CultureInfo.InvariantCulture, $"{model}-{prior}-s{seed}");

    /// <summary>Every run of the comparison, prior by prior, then model, then seed.</summary>
    public IReadOnlyList<PlannedRun> Plan() =>
    [
        .. from prior in Priors
           from model in Models
           from seed in Seeds
           select new PlannedRun(RunName(model, prior, seed), RunFolder(model, prior, seed),
               BaseConfigFor(prior) with { Model = model, Prior = prior, Seed = seed, Threads = ThreadsPerRun }),
    ];

    /// <summary>Checks the lists, the job and thread counts and every run's configuration; messages name the option and the valid values.</summary>
    public ComparisonOptions Validate()
    {
        if (string.IsNullOrWhiteSpace(OutputFolder))
            throw new ArgumentException("--out is required: the folder of the comparison (its runs go to OUT/runs, the tables to OUT/results.md and OUT/results.csv).");
        RequireNames(Models, "--models", ModelCatalog.Names);
        RequireNames(Priors, "--priors", [.. PriorCatalog.Names, .. PriorCatalog.Aliases.Keys]);
        if (Seeds.Count == 0)
            throw new ArgumentException("--seeds is empty; give one or more integers ≥ 0, e.g. --seeds 0,1,2.");
        foreach (long seed in Seeds)
            if (seed < 0) throw new ArgumentException($"--seeds: {seed} is negative; seeds are integers ≥ 0, e.g. --seeds 0,1,2.");
        RequireDistinct(Seeds.Select(s => s.ToString(CultureInfo.InvariantCulture)).ToList(), "--seeds");
        if (Jobs < 1)
            throw new ArgumentException($"--jobs must be ≥ 1 (runs trained at the same time), got {Jobs}.");
        if (Threads < 0)
            throw new ArgumentException($"--threads must be ≥ 0 (0 = libtorch's default), got {Threads}.");
        if (ThreadsEachRun < 0)
            throw new ArgumentException($"--threads must be ≥ 0 (0 = libtorch's default), got {ThreadsEachRun}.");
        foreach (var run in Plan()) run.Config.Validate();
        return this;
    }

    /// <summary>Splits a comma-separated list ("vae, ddvi"), dropping blanks and lower-casing names.</summary>
    public static IReadOnlyList<string> ParseNames(string text) =>
        [.. text.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries).Select(n => n.ToLowerInvariant())];

    /// <summary>Parses "0,1,2"; throws naming --seeds for anything that is not an integer ≥ 0.</summary>
    public static IReadOnlyList<long> ParseSeeds(string text)
    {
        var seeds = new List<long>();
        foreach (var item in text.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
        {
            if (!long.TryParse(item, NumberStyles.Integer, CultureInfo.InvariantCulture, out long seed) || seed < 0)
                throw new ArgumentException($"--seeds: '{item}' is not an integer ≥ 0; expected comma-separated seeds such as 0,1,2.");
            seeds.Add(seed);
        }
        return seeds;
    }

    private static void RequireNames(IReadOnlyList<string> names, string option, IReadOnlyList<string> valid)
    {
        if (names.Count == 0)
            throw new ArgumentException($"{option} is empty; give one or more of: {string.Join(", ", valid)}.");
        foreach (var name in names)
            if (!valid.Contains(name))
                throw new ArgumentException($"{option}: '{name}' is not known; valid: {string.Join(", ", valid)}.");
        RequireDistinct(names, option);
    }

    private static void RequireDistinct(IReadOnlyList<string> items, string option)
    {
        if (items.GroupBy(i => i).FirstOrDefault(g => g.Count() > 1) is { } repeated)
            throw new ArgumentException($"{option} lists '{repeated.Key}' {repeated.Count()} times; each value may appear once.");
    }
}

/// <summary>One run of a comparison: its name (MODEL-PRIOR-sSEED), folder and full configuration.</summary>
public sealed record PlannedRun(string Name, string Folder, ExperimentConfig Config);
