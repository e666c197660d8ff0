using System.Globalization;

namespace Ddvi.Experiments.Files;

/// <summary>
/// A study file for <c>ddvi ancestry --sweep FILE</c> (YAML or JSON): every option of the command as a key, its name
/// without the leading dashes (<c>genotypes</c>, <c>panel</c>, <c>out</c>, <c>methods</c>, <c>seeds</c>, <c>epochs</c>,
/// <c>every-nth-site</c>, …; <c>_</c> may stand for <c>-</c>), lists for <c>methods</c> and <c>seeds</c>, <c>true</c> for
/// the switches. Options given on the command line override the file. Unknown keys and values of the wrong kind are
/// errors naming the file, the line and the key.
/// </summary>
public sealed class AncestryFile
{
    /// <summary>What each key holds.</summary>
    public enum ValueKind
    {
        Text,
        Integer,
        Number,
        /// <summary>A finite number or the word <see cref="Auto"/>.</summary>
        NumberOrAuto,
        Switch,
        List,
    }

    /// <summary>One key's value, as the text the option would take on the command line (lists joined by commas).</summary>
    public sealed record Value(string Key, string Text, int Line);

    /// <summary>Every key of a study file and its kind; the command maps each to its option <c>--KEY</c>.</summary>
    public static IReadOnlyDictionary<string, ValueKind> Keys { get; } = new Dictionary<string, ValueKind>
    {
        ["genotypes"] = ValueKind.Text, ["panel"] = ValueKind.Text, ["out"] = ValueKind.Text,
        ["methods"] = ValueKind.List, ["seeds"] = ValueKind.List,
        ["epochs"] = ValueKind.Integer, ["passes-per-epoch"] = ValueKind.Integer, ["hidden"] = ValueKind.Integer,
        ["hidden-layers"] = ValueKind.Integer, ["batch-size"] = ValueKind.Integer, ["prior-diffusion-iterations"] = ValueKind.Integer,
        ["components"] = ValueKind.Integer, ["pc-divisor"] = ValueKind.NumberOrAuto, ["no-standardise"] = ValueKind.Switch,
        ["every-nth-site"] = ValueKind.Integer, ["min-maf"] = ValueKind.Number, ["max-missing"] = ValueKind.Number,
        ["all-chromosomes"] = ValueKind.Switch, ["any-alleles"] = ValueKind.Switch, ["any-filter"] = ValueKind.Switch,
        ["perplexity"] = ValueKind.Number, ["umap-neighbours"] = ValueKind.Integer, ["umap-min-dist"] = ValueKind.Number,
        ["device"] = ValueKind.Text, ["precision"] = ValueKind.Text, ["jobs"] = ValueKind.Integer, ["threads"] = ValueKind.Integer,
    };

    /// <summary>The value of a <see cref="ValueKind.NumberOrAuto"/> key that leaves the number to the data.</summary>
    public const string Auto = "auto";

    public required string Path { get; init; }

    /// <summary>The file's values by key (canonical, with dashes).</summary>
    public required IReadOnlyDictionary<string, Value> Values { get; init; }

    public static AncestryFile Load(string path)
    {
        var root = ConfigTree.Read(path);
        var values = new Dictionary<string, Value>();
        foreach (var entry in root.Entries)
        {
            string key = entry.Key.Replace('_', '-').ToLowerInvariant();
            string where = $"{path} line {entry.Line}";
            if (!Keys.TryGetValue(key, out var kind))
                throw new ArgumentException($"{where}: unknown key '{entry.Key}'; valid keys of an ancestry study file: {string.Join(", ", Keys.Keys)}.");
            if (values.ContainsKey(key))
                throw new ArgumentException($"{where}: '{entry.Key}' is given twice.");
            values[key] = new Value(key, Text(entry, kind, where), entry.Line);
        }
        return new AncestryFile { Path = path, Values = values };
    }

    static string Text(ConfigEntry entry, ValueKind kind, string where)
    {
        if (kind == ValueKind.List)
        {
            var items = entry.Value switch
            {
                ConfigSequence list => list.Items,
                ConfigScalar one => [one],
                _ => throw new ArgumentException($"{where}: {entry.Key} must be a list, e.g. [a, b]."),
            };
            if (items.Count == 0) throw new ArgumentException($"{where}: {entry.Key} must not be empty.");
            return string.Join(',', items.Select(item => item is ConfigScalar s ? s.Text
                : throw new ArgumentException($"{where}: {entry.Key} must be a list of plain values.")));
        }
        if (entry.Value is not ConfigScalar scalar)
            throw new ArgumentException($"{where}: {entry.Key} must be a single value, not a list or a mapping.");
        string text = scalar.Text;
        bool ok = kind switch
        {
            ValueKind.Integer => scalar.Kind == ScalarKind.Number && int.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out _),
            ValueKind.Number => scalar.Kind == ScalarKind.Number && double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out double v) && double.IsFinite(v),
            ValueKind.NumberOrAuto => scalar.Kind == ScalarKind.Number ? double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out double n) && double.IsFinite(n)
                : string.Equals(text, Auto, StringComparison.OrdinalIgnoreCase),
            ValueKind.Switch => scalar.Kind == ScalarKind.Boolean,
            _ => scalar.Kind is ScalarKind.String or ScalarKind.Number,
        };
        if (!ok)
            throw new ArgumentException($"{where}: {entry.Key} must be {kind switch { ValueKind.Integer => "an integer", ValueKind.Number => "a finite number", ValueKind.NumberOrAuto => $"a finite number or {Auto}", ValueKind.Switch => "true or false", _ => "a text value" }}, got '{text}'.");
        return text.ToLowerInvariant() is "true" or "false" && kind == ValueKind.Switch ? text.ToLowerInvariant() : text;
    }
}
