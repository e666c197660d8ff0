using System.Globalization;
using System.Text;
using System.Text.Json;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace Ddvi.Experiments.Files;

/// <summary>What a scalar of a configuration file is, as its format writes it.</summary>
public enum ScalarKind
{
    String,
    Number,
    Boolean,
    Null,
}

/// <summary>A value read from a YAML or JSON configuration file, with the 1-based line it starts on (for error messages).</summary>
public abstract record ConfigNode(int Line);

/// <summary>A scalar: its text as written and what kind of value the format makes of it.</summary>
public sealed record ConfigScalar(int Line, string Text, ScalarKind Kind) : ConfigNode(Line);

/// <summary>A list.</summary>
public sealed record ConfigSequence(int Line, IReadOnlyList<ConfigNode> Items) : ConfigNode(Line);

/// <summary>One key of a mapping, the line of the key and its value.</summary>
public sealed record ConfigEntry(string Key, int Line, ConfigNode Value);

/// <summary>A mapping of keys to values, in file order.</summary>
public sealed record ConfigMapping(int Line, IReadOnlyList<ConfigEntry> Entries) : ConfigNode(Line);

/// <summary>
/// Reads a configuration file into <see cref="ConfigNode"/>s that remember their lines: YAML (<c>.yaml</c>, <c>.yml</c>,
/// with YamlDotNet) or JSON (<c>.json</c>, with System.Text.Json). Syntax errors and repeated keys are
/// <see cref="ArgumentException"/>s naming the file and line.
/// </summary>
public static class ConfigTree
{
    /// <summary>The file extensions read, with their format.</summary>
    public static IReadOnlyList<string> Extensions { get; } = [".yaml", ".yml", ".json"];

    /// <summary>Reads <paramref name="path"/>; its top level must be a mapping.</summary>
    public static ConfigMapping Read(string path)
    {
        if (!File.Exists(path))
            throw new ArgumentException($"configuration file {Path.GetFullPath(path)} not found.");
        string extension = Path.GetExtension(path).ToLowerInvariant();
        string text = File.ReadAllText(path);
        ConfigNode root = extension switch
        {
            ".yaml" or ".yml" => ReadYaml(text, path),
            ".json" => ReadJson(text, path),
            _ => throw new ArgumentException(
                $"configuration file {path}: unknown extension '{extension}'; expected one of {string.Join(", ", Extensions)}."),
        };
        return root as ConfigMapping
               ?? throw new ArgumentException($"{path} line {root.Line}: the file must hold a mapping of keys to values at its top level.");
    }

    private static ConfigNode ReadYaml(string text, string path)
    {
        var stream = new YamlStream();
        try
        {
            stream.Load(new StringReader(text));
        }
        catch (YamlException e)
        {
            // YamlDotNet reports a repeated key as a YamlException with the key's position, like a syntax error.
            throw new ArgumentException($"{path} line {e.Start.Line}: {Innermost(e).Message}", e);
        }
        if (stream.Documents.Count == 0) return new ConfigMapping(1, []);
        if (stream.Documents.Count > 1)
            throw new ArgumentException($"{path} line {stream.Documents[1].RootNode.Start.Line}: the file holds {stream.Documents.Count} YAML documents; one is expected.");
        return FromYaml(stream.Documents[0].RootNode, path);
    }

    private static Exception Innermost(Exception e) => e.InnerException is { } inner ? Innermost(inner) : e;

    private static ConfigNode FromYaml(YamlNode node, string path)
    {
        int line = (int)node.Start.Line;
        switch (node)
        {
            case YamlMappingNode mapping:
                var entries = new List<ConfigEntry>();
                foreach (var (key, value) in mapping.Children)
                {
                    if (key is not YamlScalarNode { Value: { } name })
                        throw new ArgumentException($"{path} line {key.Start.Line}: keys must be plain names.");
                    entries.Add(new ConfigEntry(name, (int)key.Start.Line, FromYaml(value, path)));
                }
                return new ConfigMapping(line, RequireDistinct(entries, path));
            case YamlSequenceNode sequence:
                return new ConfigSequence(line, [.. sequence.Children.Select(child => FromYaml(child, path))]);
            case YamlScalarNode scalar:
                string text = scalar.Value ?? "";
                if (scalar.Style is ScalarStyle.SingleQuoted or ScalarStyle.DoubleQuoted or ScalarStyle.Literal or ScalarStyle.Folded)
                    return new ConfigScalar(line, text, ScalarKind.String);
                return new ConfigScalar(line, text, PlainKind(text));
            default:
                throw new ArgumentException($"{path} line {line}: aliases and anchors are not supported in configuration files.");
        }
    }

    /// <summary>The YAML 1.2 core schema's reading of an unquoted scalar.</summary>
    private static ScalarKind PlainKind(string text) => text switch
    {
        "" or "~" or "null" or "Null" or "NULL" => ScalarKind.Null,
        "true" or "True" or "TRUE" or "false" or "False" or "FALSE" => ScalarKind.Boolean,
        _ when double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out _) => ScalarKind.Number,
        _ => ScalarKind.String,
    };

    private static ConfigNode ReadJson(string text, string path)
    {
        var bytes = Encoding.UTF8.GetBytes(text);
        var lineStarts = new List<long> { 0 };
        for (int i = 0; i < bytes.Length; i++)
            if (bytes[i] == (byte)'\n') lineStarts.Add(i + 1);
        int LineOf(long offset)
        {
            int index = lineStarts.BinarySearch(offset);
            return (index >= 0 ? index : ~index - 1) + 1;
        }
        var reader = new Utf8JsonReader(bytes, new JsonReaderOptions { CommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true });
        try
        {
            if (!reader.Read()) return new ConfigMapping(1, []);
            return FromJson(ref reader, path, LineOf);
        }
        catch (JsonException e)
        {
            throw new ArgumentException($"{path} line {(e.LineNumber ?? 0) + 1}: not valid JSON ({e.Message})", e);
        }
    }

    private static ConfigNode FromJson(ref Utf8JsonReader reader, string path, Func<long, int> lineOf)
    {
        int line = lineOf(reader.TokenStartIndex);
        switch (reader.TokenType)
        {
            case JsonTokenType.StartObject:
                var entries = new List<ConfigEntry>();
                while (reader.Read() && reader.TokenType != JsonTokenType.EndObject)
                {
                    string key = reader.GetString()!;
                    int keyLine = lineOf(reader.TokenStartIndex);
                    reader.Read();
                    entries.Add(new ConfigEntry(key, keyLine, FromJson(ref reader, path, lineOf)));
                }
                return new ConfigMapping(line, RequireDistinct(entries, path));
            case JsonTokenType.StartArray:
                var items = new List<ConfigNode>();
                while (reader.Read() && reader.TokenType != JsonTokenType.EndArray) items.Add(FromJson(ref reader, path, lineOf));
                return new ConfigSequence(line, items);
            case JsonTokenType.String:
                return new ConfigScalar(line, reader.GetString()!, ScalarKind.String);
            case JsonTokenType.Number:
                return new ConfigScalar(line, Encoding.UTF8.GetString(reader.ValueSpan), ScalarKind.Number);
            case JsonTokenType.True or JsonTokenType.False:
                return new ConfigScalar(line, reader.GetBoolean() ? "true" : "false", ScalarKind.Boolean);
            case JsonTokenType.Null:
                return new ConfigScalar(line, "null", ScalarKind.Null);
            default:
                throw new ArgumentException($"{path} line {line}: unexpected JSON token {reader.TokenType}.");
        }
    }

    private static List<ConfigEntry> RequireDistinct(List<ConfigEntry> entries, string path)
    {
        foreach (var group in entries.GroupBy(e => e.Key).Where(g => g.Count() > 1))
            throw new ArgumentException(
                $"{path} line {group.ElementAt(1).Line}: key '{group.Key}' is given again (first on line {group.First().Line}); each key may appear once.");
        return entries;
    }
}
