using ScottPlot;
using SkiaSharp;

namespace Ddvi.Plotting;

/// <summary>
/// The typeface of every figure: DejaVu Sans, regular and bold, shipped inside this assembly (Plotting/Fonts, with its
/// licence). ScottPlot otherwise asks the system, and on a machine with no fonts installed (headless GPU servers,
/// minimal containers) it draws no text at all: no titles, tick labels or legends. The bundled typeface also makes a
/// figure look the same on every machine.
/// </summary>
internal static class BundledFont
{
    public const string Name = "DejaVu Sans";

    static readonly Lazy<SKTypeface> RegularTypeface = new(() => Load("DejaVuSans.ttf"));
    static readonly Lazy<SKTypeface> BoldTypeface = new(() => Load("DejaVuSans-Bold.ttf"));
    static readonly Lazy<bool> Registration = new(Register);

    public static SKTypeface Regular => RegularTypeface.Value;
    public static SKTypeface Bold => BoldTypeface.Value;

    /// <summary>A new plot whose text uses the bundled typeface (registered with ScottPlot on first use).</summary>
    public static Plot NewPlot()
    {
        _ = Registration.Value;
        return new Plot();
    }

    static bool Register()
    {
        // First in the list, so the name resolves to these files even where the system has its own DejaVu Sans.
        Fonts.FontResolvers.Insert(0, new Resolver());
        // ScottPlot's default is process-wide: other plots made in this process after Ddvi's use the same face.
        Fonts.Default = Name;
        return true;
    }

    static SKTypeface Load(string fileName)
    {
        string resource = $"Ddvi.Plotting.Fonts.{fileName}";
        using var stream = typeof(BundledFont).Assembly.GetManifestResourceStream(resource)
            ?? throw new InvalidOperationException($"The font resource '{resource}' is missing from {typeof(BundledFont).Assembly.GetName().Name}; the build should embed Plotting/Fonts/{fileName}.");
        return SKTypeface.FromStream(stream)
            ?? throw new InvalidDataException($"The font resource '{resource}' is not a font SkiaSharp can read.");
    }

    sealed class Resolver : IFontResolver
    {
        public SKTypeface? CreateTypeface(string fontName, FontWeight weight, FontSlant slant, FontSpacing spacing) =>
            Matches(fontName) ? (weight >= FontWeight.SemiBold ? Bold : Regular) : null;

        public SKTypeface? CreateTypeface(string fontName, bool bold, bool italic) =>
            Matches(fontName) ? (bold ? Bold : Regular) : null;

        static bool Matches(string fontName) => string.Equals(fontName, Name, StringComparison.OrdinalIgnoreCase);
    }
}
