using static TorchSharp.torch;

namespace Ddvi.Priors;

/// <summary>A prior resolved from a command-line name: its canonical name and the noise it is built with (null when it has none).</summary>
/// <param name="Name">Canonical name, one of <see cref="PriorCatalog.Names"/>.</param>
/// <param name="Noise">Swiss-roll noise std or square noise level; null for priors without a noise setting.</param>
public sealed record PriorSettings(string Name, double? Noise);

/// <summary>
/// Builds the paper's 2-D priors by name (arXiv:2401.02739; the authors' release).
/// Canonical names: <c>pinwheel</c>, <c>swiss-roll</c> (noise std, default 0),
/// <c>square</c> (noise level, default 3 = the paper's square), <c>gaussian</c>, <c>gaussian-mixture</c>.
/// The release's names are accepted as aliases: <c>pin_wheel</c>, <c>swiss_roll</c>, <c>less_noisy_swiss_roll</c>
/// (swiss roll with noise 0.1), <c>less_noisy_square</c> (square with level 3), <c>gaussian_mixture</c>.
/// The release's plain <c>square</c> is level 1: <c>square</c> with <c>--prior-noise 1</c>. Names are case-insensitive.
/// </summary>
public static class PriorCatalog
{
    public const string Pinwheel = "pinwheel";
    public const string SwissRoll = "swiss-roll";
    public const string Square = "square";
    public const string Gaussian = "gaussian";
    public const string GaussianMixture = "gaussian-mixture";

    public const double DefaultSwissRollNoise = 0.0;
    public const double LessNoisySwissRollNoise = 0.1;

    /// <summary>Canonical names.</summary>
    public static IReadOnlyList<string> Names { get; } = [Pinwheel, SwissRoll, Square, Gaussian, GaussianMixture];

    /// <summary>Alias → canonical name.</summary>
    public static IReadOnlyDictionary<string, string> Aliases { get; } = new Dictionary<string, string>
    {
        ["pin_wheel"] = Pinwheel,
        ["swiss_roll"] = SwissRoll,
        ["less_noisy_swiss_roll"] = SwissRoll,
        ["less_noisy_square"] = Square,
        ["gaussian_mixture"] = GaussianMixture,
    };

    // Aliases that fix the noise, as the release's names do.
    static readonly Dictionary<string, double> AliasNoise = new()
    {
        ["less_noisy_swiss_roll"] = LessNoisySwissRollNoise,
        ["less_noisy_square"] = SquarePrior.DefaultNoiseLevel,
    };

    /// <summary>The canonical name of <paramref name="name"/> (any case, a canonical name or an alias); null for an unknown name.</summary>
    public static string? CanonicalName(string? name)
    {
        string key = (name ?? "").Trim().ToLowerInvariant();
        return Names.Contains(key) ? key : Aliases.TryGetValue(key, out var target) ? target : null;
    }

    /// <summary>
    /// Canonical name and effective noise for <paramref name="name"/> and the <c>--prior-noise</c> value
    /// <paramref name="noise"/> (null: the prior's default). Throws for an unknown name, a negative or non-finite noise,
    /// a noise given to a prior that has none, or a noise that contradicts an alias that fixes it.
    /// </summary>
    public static PriorSettings Resolve(string name, double? noise)
    {
        string key = (name ?? "").Trim().ToLowerInvariant();
        string canonical = CanonicalName(key)
            ?? throw new ArgumentException(
                $"--prior '{name}' is not known. Valid names: {string.Join(", ", Names)}; " +
                $"aliases: {string.Join(", ", Aliases.Select(a => $"{a.Key} (= {Describe(a.Key, a.Value)})"))}.", nameof(name));

        if (noise is { } given && !(double.IsFinite(given) && given >= 0))
            throw new ArgumentOutOfRangeException(nameof(noise), given, $"--prior-noise for prior '{name}' must be finite and ≥ 0.");

        if (canonical is Pinwheel or Gaussian or GaussianMixture)
        {
            if (noise is not null)
                throw new ArgumentException(
                    $"--prior-noise {noise} was given, but the '{canonical}' prior has no noise setting " +
                    $"(only {SwissRoll} and {Square} take one).", nameof(noise));
            return new PriorSettings(canonical, null);
        }

        if (AliasNoise.TryGetValue(key, out double fixedNoise))
        {
            if (noise is { } explicitNoise && explicitNoise != fixedNoise)
                throw new ArgumentException(
                    $"Prior '{key}' fixes the noise at {fixedNoise}, but --prior-noise {explicitNoise} was given; " +
                    $"use '{canonical}' with --prior-noise {explicitNoise} instead.", nameof(noise));
            return new PriorSettings(canonical, fixedNoise);
        }

        double defaultNoise = canonical == SwissRoll ? DefaultSwissRollNoise : SquarePrior.DefaultNoiseLevel;
        return new PriorSettings(canonical, noise ?? defaultNoise);
    }

    /// <summary>
    /// The prior named <paramref name="name"/> (see <see cref="Resolve"/>) on <paramref name="device"/>, with the log density
    /// <paramref name="density"/> asks for (see <see cref="PriorDensityChoice"/>). KDE densities draw their centres from a
    /// generator seeded by <paramref name="seed"/>. Priors holding KDE tensors implement <see cref="IDisposable"/>.
    /// Throws when <see cref="PriorDensityChoice.Exact"/> is asked of a prior without a closed-form density.
    /// </summary>
    public static ILabelledPrior Create(string name, double? noise, long seed, Device device, PriorDensityChoice density = PriorDensityChoice.Auto)
    {
        var settings = Resolve(name, noise);
        RequireDensity(settings.Name, density);
        ILabelledPrior prior = settings.Name switch
        {
            Pinwheel => new PinwheelPrior(device),
            SwissRoll => new SwissRollPrior(settings.Noise!.Value, seed, device),
            Square => new SquarePrior(settings.Noise!.Value, seed, device),
            Gaussian => new GaussianPrior(device),
            _ => new GaussianMixturePrior(device),
        };
        return prior.HasExactDensity && UsesKde(settings.Name, density) ? new KernelDensityPrior(prior, seed, device) : prior;
    }

    /// <summary>Whether the canonical prior <paramref name="canonicalName"/> has a closed-form log density.</summary>
    public static bool HasExactDensity(string canonicalName) => canonicalName is Pinwheel or Gaussian or GaussianMixture;

    /// <summary>Throws when <paramref name="density"/> is <see cref="PriorDensityChoice.Exact"/> and the prior has no exact density.</summary>
    public static void RequireDensity(string canonicalName, PriorDensityChoice density)
    {
        if (density == PriorDensityChoice.Exact && !HasExactDensity(canonicalName))
            throw new ArgumentException(
                $"--prior-density exact: the '{canonicalName}' prior has no closed-form density (only {Pinwheel}, {Gaussian} and " +
                $"{GaussianMixture} have one); use auto or kde.");
    }

    // Auto keeps the exact density only for the smooth Gaussian priors: the exact pinwheel density's thin arms make the origin an
    // attractor for gradient training, where the release's clamped KDE has no gradient far from its samples.
    static bool UsesKde(string canonicalName, PriorDensityChoice density) => density switch
    {
        PriorDensityChoice.Kde => true,
        PriorDensityChoice.Exact => false,
        _ => canonicalName is not (Gaussian or GaussianMixture),
    };

    static string Describe(string alias, string canonical) =>
        AliasNoise.TryGetValue(alias, out double fixedNoise) ? $"{canonical}, noise {fixedNoise}" : canonical;
}
