using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization.Metadata;
using Ddvi.Data;
using Ddvi.Priors;

namespace Ddvi.Experiments.Files;

/// <summary>A key an experiment file sets: its config.json key (dotted), the key as the file writes it, and its line.</summary>
public sealed record FileKey(string Key, string Written, int Line);

/// <summary>
/// An experiment file (<c>ddvi train --config FILE</c>): the settings of a run in YAML or JSON, read into the shape of
/// config.json. Two spellings are accepted and may be mixed:
/// <list type="bullet">
/// <item>config.json's own keys (<c>dataset</c>, <c>epochs</c>, <c>ddvi: {kl_weight: …}</c>, …), so that a run's
/// config.json is an experiment file;</item>
/// <item>groups as a user writes them (<see cref="Groups"/>): <c>dataset: {name, data_directory}</c>,
/// <c>model: {name, settings: {…the model's own section…}}</c>, <c>prior: {name, noise, density}</c>,
/// <c>training: {epochs, batch_size, learning_rate, seed, checkpoint_every}</c>, <c>device: {name, threads}</c>.</item>
/// </list>
/// Unknown keys, values of the wrong type, unknown names and a key set twice are <see cref="ArgumentException"/>s naming
/// the file, the line, the key and what is valid there. Ranges are checked by <see cref="ExperimentConfig.Validate"/>.
/// </summary>
public sealed class ExperimentFile
{
    private ExperimentFile(string path, JsonObject values, IReadOnlyList<FileKey> keys)
    {
        Path = path;
        Values = values;
        Keys = keys;
    }

    /// <summary>The file.</summary>
    public string Path { get; }

    /// <summary>The values the file sets, in config.json's shape (only the keys it sets).</summary>
    public JsonObject Values { get; }

    /// <summary>Every leaf key the file sets.</summary>
    public IReadOnlyList<FileKey> Keys { get; }

    /// <summary>Reads and checks an experiment file.</summary>
    public static ExperimentFile Load(string path) => FromMapping(ConfigTree.Read(path), path);

    /// <summary>Checks a mapping already read (e.g. the <c>overrides</c> of a sweep file); <paramref name="path"/> names it in errors.</summary>
    public static ExperimentFile FromMapping(ConfigMapping root, string path, string prefix = "")
    {
        var builder = new Builder(path, prefix);
        builder.Top(root);
        return new ExperimentFile(path, builder.Values, builder.Keys);
    }

    /// <summary>
    /// The configuration: the defaults, then this file's values, then <paramref name="overrides"/> (config.json keys and
    /// values, as the command line gives them). Not validated.
    /// </summary>
    public ExperimentConfig ToConfig(IEnumerable<(string Key, JsonNode? Value)>? overrides = null)
    {
        var node = (JsonObject)Values.DeepClone();
        foreach (var (key, value) in overrides ?? []) Set(node, key, value?.DeepClone());
        try
        {
            return JsonSerializer.Deserialize<ExperimentConfig>(node.ToJsonString(), ExperimentConfig.JsonOptions)
                   ?? throw new ArgumentException($"{Path}: empty configuration");
        }
        catch (JsonException e)
        {
            // The checks above make this a bug rather than a user's mistake; still name the file.
            throw new ArgumentException($"{Path}: not a valid Ddvi configuration ({e.Message})", e);
        }
    }

    /// <summary>
    /// This file's settings with <paramref name="later"/>'s on top: a key both set takes <paramref name="later"/>'s value
    /// (a sweep's <c>per_prior</c> settings over its <c>overrides</c>). Errors of the result name <paramref name="later"/>'s file.
    /// </summary>
    public ExperimentFile Then(ExperimentFile later)
    {
        ArgumentNullException.ThrowIfNull(later);
        var values = (JsonObject)Values.DeepClone();
        foreach (var key in later.Keys)
        {
            JsonNode? node = later.Values;
            foreach (var part in key.Key.Split('.')) node = node?[part];
            Set(values, key.Key, node?.DeepClone());
        }
        var laterKeys = later.Keys.Select(k => k.Key).ToHashSet(StringComparer.Ordinal);
        return new ExperimentFile(later.Path, values, [.. Keys.Where(k => !laterKeys.Contains(k.Key)), .. later.Keys]);
    }

    /// <summary>Sets a dotted config.json key in <paramref name="root"/>, creating sections on the way.</summary>
    public static void Set(JsonObject root, string key, JsonNode? value)
    {
        var parts = key.Split('.');
        var obj = root;
        foreach (var part in parts[..^1])
        {
            if (obj[part] is not JsonObject inner) obj[part] = inner = new JsonObject();
            obj = inner;
        }
        obj[parts[^1]] = value;
    }

    /// <summary>The grouped keys and the config.json key each stands for; a group's scalar form (<c>model: vae</c>) is its <c>name</c>.</summary>
    public static IReadOnlyDictionary<string, IReadOnlyDictionary<string, string>> Groups { get; } =
        new Dictionary<string, IReadOnlyDictionary<string, string>>
        {
            ["dataset"] = new Dictionary<string, string>
            {
                ["name"] = "dataset", ["data_directory"] = "data_directory", ["train_images"] = "train_images",
                ["synthetic_train_count"] = "synthetic_train_count", ["synthetic_test_count"] = "synthetic_test_count",
            },
            ["model"] = new Dictionary<string, string> { ["name"] = "model", ["settings"] = "" },
            ["prior"] = new Dictionary<string, string> { ["name"] = "prior", ["noise"] = "prior_noise", ["density"] = "prior_density" },
            ["training"] = new Dictionary<string, string>
            {
                ["epochs"] = "epochs", ["batch_size"] = "batch_size", ["learning_rate"] = "learning_rate", ["seed"] = "seed",
                ["checkpoint_every"] = "checkpoint_every", ["labels"] = "labels",
            },
            ["device"] = new Dictionary<string, string> { ["name"] = "device", ["threads"] = "threads", ["precision"] = "precision" },
        };

    /// <summary>The config.json section holding each model's own settings (<c>model.settings</c>).</summary>
    public static IReadOnlyDictionary<string, string> ModelSections { get; } = new Dictionary<string, string>
    {
        ["ddvi"] = "ddvi", ["vae"] = "vae", ["iaf-vae"] = "iaf", ["h-iaf-vae"] = "hierarchical_iaf", ["aae"] = "aae",
        ["ddvi-semi"] = "semi", ["vae-semi"] = "semi", ["iaf-vae-semi"] = "semi", ["aae-semi"] = "semi",
    };

    /// <summary>The accepted spelling of an enumeration value: lower case, words joined by '-' (StandardNormal → standard-normal).</summary>
    public static string Spelling(string enumName) =>
        string.Concat(enumName.Select((c, i) => char.IsUpper(c) && i > 0 && !char.IsDigit(enumName[i - 1]) ? "-" + char.ToLowerInvariant(c) : char.ToLowerInvariant(c).ToString()));

    private sealed class Builder(string path, string prefix)
    {
        public JsonObject Values { get; } = new();
        public List<FileKey> Keys { get; } = [];
        private readonly Dictionary<string, FileKey> _set = [];

        private string Where(int line) => $"{path} line {line}";

        public void Top(ConfigMapping root)
        {
            string? modelName = null;
            ConfigEntry? settings = null;
            foreach (var entry in root.Entries)
            {
                if (Groups.TryGetValue(entry.Key, out var group) && (entry.Value is ConfigMapping || entry.Key == "training"))
                {
                    if (entry.Value is not ConfigMapping mapping)
                        throw new ArgumentException($"{Where(entry.Line)}: {prefix}{entry.Key} must be a mapping of {string.Join(", ", group.Keys)}.");
                    foreach (var child in mapping.Entries)
                    {
                        string written = $"{entry.Key}.{child.Key}";
                        if (!group.TryGetValue(child.Key, out var target))
                            throw new ArgumentException($"{Where(child.Line)}: unknown key '{prefix}{written}'; valid keys under {entry.Key}: {string.Join(", ", group.Keys)}.");
                        if (target.Length == 0)
                        {
                            settings = child; // model.settings: checked once the model's name is known
                            continue;
                        }
                        Value(target, written, child);
                        if (target == "model") modelName = Text(child);
                    }
                    continue;
                }
                Value(entry.Key, entry.Key, entry);
                if (entry.Key == "model") modelName = Text(entry);
            }
            if (settings is not null)
            {
                if (modelName is null || !ModelSections.TryGetValue(modelName, out var section))
                    throw new ArgumentException(
                        $"{Where(settings.Line)}: {prefix}model.settings needs the model's name in the same file (model.name: one of " +
                        $"{string.Join(", ", ModelCatalog.Names)}), to know which settings are valid; or write them under the model's own section " +
                        $"({string.Join(", ", ModelSections.Select(s => $"{s.Value}: for {s.Key}"))}).");
                Value(section, "model.settings", settings);
            }
        }

        private static string? Text(ConfigEntry entry) => entry.Value is ConfigScalar { Kind: ScalarKind.String } s ? s.Text : null;

        /// <summary>Sets the config.json key <paramref name="key"/> (a section or a leaf) from <paramref name="entry"/>.</summary>
        private void Value(string key, string written, ConfigEntry entry)
        {
            var properties = Schema.Properties;
            var parts = key.Split('.');
            JsonPropertyInfo? property = null;
            for (int i = 0; i < parts.Length; i++)
            {
                if (properties is null || !properties.TryGetValue(parts[i], out property))
                {
                    var valid = properties?.Where(p => p.Value.Set is not null).Select(p => p.Key).ToList() ?? [];
                    throw new ArgumentException(
                        $"{Where(entry.Line)}: unknown key '{prefix}{written}'; valid keys {(i == 0 && prefix.Length == 0 ? "at the top level" : "here")}: " +
                        $"{string.Join(", ", i == 0 ? [.. Groups.Keys.Where(g => !valid.Contains(g)), .. valid] : valid)}.");
                }
                properties = Schema.Of(property.PropertyType);
            }
            // A value config.json writes but derives (resolved_epochs, …): ignored on reading, as ExperimentConfig.FromJson does.
            if (property!.Set is null) return;
            if (properties is not null)
            {
                // A section (ddvi:, evaluation:, …): every key inside it.
                if (entry.Value is not ConfigMapping mapping)
                    throw new ArgumentException($"{Where(entry.Value.Line)}: {prefix}{written} must be a mapping of {string.Join(", ", properties.Where(p => p.Value.Set is not null).Select(p => p.Key))}.");
                foreach (var child in mapping.Entries) Value($"{key}.{child.Key}", $"{written}.{child.Key}", child);
                return;
            }
            if (_set.TryGetValue(key, out var earlier))
                throw new ArgumentException(
                    $"{Where(entry.Line)}: {prefix}{written} sets '{key}', which line {earlier.Line} already sets as {prefix}{earlier.Written}; give it once.");
            var fileKey = new FileKey(key, prefix + written, entry.Line);
            _set[key] = fileKey;
            Keys.Add(fileKey);
            Set(Values, key, Convert(key, written, property!.PropertyType, entry.Value));
        }

        private JsonNode? Convert(string key, string written, Type type, ConfigNode node)
        {
            var underlying = Nullable.GetUnderlyingType(type);
            bool nullable = underlying is not null || !type.IsValueType;
            type = underlying ?? type;
            string name = prefix + written;
            if (node is ConfigScalar { Kind: ScalarKind.Null })
            {
                if (nullable) return null;
                throw new ArgumentException($"{Where(node.Line)}: {name} needs a value ({Expected(type)}); it has no default to fall back to here.");
            }
            if (type.IsArray)
            {
                if (node is not ConfigSequence list)
                    throw new ArgumentException($"{Where(node.Line)}: {name} must be a list of {Expected(type.GetElementType()!)}s, e.g. [1, 2].");
                return new JsonArray([.. list.Items.Select((item, i) => Convert(key, $"{written}[{i}]", type.GetElementType()!, item))]);
            }
            if (node is not ConfigScalar scalar)
                throw new ArgumentException($"{Where(node.Line)}: {name} must be {Expected(type)}, got a {(node is ConfigSequence ? "list" : "mapping")}.");
            string Wrong() => $"{Where(node.Line)}: {name} must be {Expected(type)}, got '{scalar.Text}'.";
            if (type == typeof(int) || type == typeof(long))
            {
                if (scalar.Kind != ScalarKind.Number || !long.TryParse(scalar.Text, NumberStyles.Integer, CultureInfo.InvariantCulture, out long whole)
                    || (type == typeof(int) && whole is < int.MinValue or > int.MaxValue))
                    throw new ArgumentException(Wrong());
                return type == typeof(int) ? JsonValue.Create((int)whole) : JsonValue.Create(whole);
            }
            if (type == typeof(double))
            {
                if (scalar.Kind != ScalarKind.Number || !double.TryParse(scalar.Text, NumberStyles.Float, CultureInfo.InvariantCulture, out double number)
                    || !double.IsFinite(number))
                    throw new ArgumentException(Wrong());
                return JsonValue.Create(number);
            }
            if (type == typeof(bool))
            {
                if (scalar.Kind != ScalarKind.Boolean) throw new ArgumentException(Wrong());
                return JsonValue.Create(scalar.Text.Equals("true", StringComparison.OrdinalIgnoreCase));
            }
            if (type.IsEnum)
            {
                string given = scalar.Text.Replace("-", "").Replace("_", "");
                var match = Enum.GetNames(type).FirstOrDefault(n => n.Equals(given, StringComparison.OrdinalIgnoreCase));
                if (scalar.Kind != ScalarKind.String || match is null) throw new ArgumentException(Wrong());
                return JsonValue.Create(match);
            }
            if (type == typeof(string))
            {
                if (scalar.Kind == ScalarKind.Boolean) throw new ArgumentException(Wrong());
                return JsonValue.Create(key switch
                {
                    "model" when !ModelCatalog.Names.Contains(scalar.Text) => throw new ArgumentException(
                        $"{Where(node.Line)}: {name}: '{scalar.Text}' is not a known model; valid: {string.Join(", ", ModelCatalog.Names)}."),
                    "prior" when !PriorCatalog.Names.Contains(scalar.Text.ToLowerInvariant()) && !PriorCatalog.Aliases.ContainsKey(scalar.Text.ToLowerInvariant()) =>
                        throw new ArgumentException(
                            $"{Where(node.Line)}: {name}: '{scalar.Text}' is not a known prior; valid: {string.Join(", ", PriorCatalog.Names)} " +
                            $"(the release's spellings {string.Join(", ", PriorCatalog.Aliases.Keys)} also work)."),
                    "dataset" when string.IsNullOrWhiteSpace(scalar.Text) => throw new ArgumentException(
                        $"{Where(node.Line)}: {name} must name a dataset ({string.Join(", ", DatasetCatalog.Names)}) or a folder of MNIST-format files."),
                    "dataset" => DatasetCatalog.Canonical(scalar.Text),
                    "data_directory" or "tensorboard" => System.IO.Path.GetFullPath(scalar.Text),
                    _ => scalar.Text,
                });
            }
            throw new InvalidOperationException($"{name}: values of type {type.Name} cannot be read from a file (a bug in Ddvi).");
        }

        private static string Expected(Type type)
        {
            type = Nullable.GetUnderlyingType(type) ?? type;
            if (type == typeof(int) || type == typeof(long)) return "an integer";
            if (type == typeof(double)) return "a finite number";
            if (type == typeof(bool)) return "true or false";
            if (type == typeof(string)) return "a string";
            if (type.IsEnum) return $"one of {string.Join(", ", Enum.GetNames(type).Select(Spelling))}";
            return type.Name;
        }
    }

    /// <summary>The keys of config.json and their types, from the serializer's own view of <see cref="ExperimentConfig"/>.</summary>
    private static class Schema
    {
        public static IReadOnlyDictionary<string, JsonPropertyInfo> Properties { get; } = Of(typeof(ExperimentConfig))!;

        /// <summary>The properties of a section type, or null for a value type (a leaf). Derived values that config.json writes
    /// (no setter) are listed too, and ignored on reading.</summary>
        public static IReadOnlyDictionary<string, JsonPropertyInfo>? Of(Type type)
        {
            // The options gain their reflection-based resolver when first used; make sure they have it.
            ExperimentConfig.JsonOptions.MakeReadOnly(populateMissingResolver: true);
            var info = ExperimentConfig.JsonOptions.GetTypeInfo(type);
            if (info.Kind != JsonTypeInfoKind.Object) return null;
            // prior_kde is only read from configurations written before prior_density existed; files use prior_density.
            return info.Properties.Where(p => p.Name != "prior_kde").ToDictionary(p => p.Name);
        }
    }
}
