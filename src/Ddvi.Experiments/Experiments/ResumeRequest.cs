using System.Globalization;
using System.Text.Json.Nodes;

namespace Ddvi.Experiments;

/// <summary>An option given on the command line together with <c>--resume</c>: its name, the config.json key it sets
/// (dotted for nested settings, e.g. <c>ddvi.kl_weight</c>) and the value given, as config.json writes it.</summary>
public sealed record GivenOption(string Option, string Key, JsonNode? Value);

/// <summary>One change a resume made to a run's configuration, for its log and config-history.json.</summary>
public sealed record ConfigChange(string Key, JsonNode? From, JsonNode? To, string Reason);

/// <summary>
/// What a resumed run may change. Options that say only how to run (<see cref="ExecutionKeys"/>: device, threads,
/// data folder, checkpoint interval, TensorBoard folder) apply to the resumed run; <c>--epochs</c> changes the last stage's length (a
/// finished run is extended; schedules measured in epochs keep their epochs, see <see cref="ExperimentConfig.WithEpochs"/>);
/// every other option must repeat the run's own value, or it is an error naming each conflicting option with both
/// values: the run would no longer be what its checkpoints trained.
/// </summary>
public sealed record ResumeRequest(IReadOnlyList<GivenOption> Given)
{
    /// <summary>The config.json keys of the execution settings.</summary>
    public static IReadOnlySet<string> ExecutionKeys { get; } = new HashSet<string>(StringComparer.Ordinal) { "device", "threads", "data_directory", "checkpoint_every", "tensorboard" };

    /// <summary>The key of <c>--epochs</c>.</summary>
    public const string EpochsKey = "epochs";

    /// <summary>
    /// The configuration to resume with and the changes made to <paramref name="saved"/>; throws an
    /// <see cref="ArgumentException"/> naming every conflicting option. The result is validated.
    /// </summary>
    public (ExperimentConfig Config, IReadOnlyList<ConfigChange> Changes) ApplyTo(ExperimentConfig saved)
    {
        var node = JsonNode.Parse(saved.ToJson())!.AsObject();
        var changes = new List<ConfigChange>();
        var conflicts = new List<string>();
        int? epochs = null;
        foreach (var given in Given)
        {
            if (given.Key == EpochsKey)
            {
                int requested = given.Value?.GetValue<int>() ?? saved.ResolvedEpochs;
                if (requested != saved.ResolvedEpochs) epochs = requested;
                continue;
            }
            var current = Find(node, given.Key, given.Option);
            if (JsonNode.DeepEquals(current, given.Value)) continue;
            if (ExecutionKeys.Contains(given.Key))
            {
                changes.Add(new ConfigChange(given.Key, current?.DeepClone(), given.Value?.DeepClone(), $"{given.Option} given with --resume"));
                Set(node, given.Key, given.Value?.DeepClone());
            }
            else
            {
                conflicts.Add($"{given.Option}: the run has {Show(current)}, the command line gives {Show(given.Value)}");
            }
        }
        if (conflicts.Count > 0)
            throw new ArgumentException(
                "--resume continues a run as it was configured; these options would change what it trains: " + string.Join("; ", conflicts) +
                ". Leave them out to resume (options that only say how to run — --device, --threads, --data-dir, --checkpoint-every — " +
                "and a new --epochs may be given), or start a new run in another --out.");

        var config = ExperimentConfig.FromJson(node.ToJsonString(), "the resumed configuration");
        if (epochs is int length)
        {
            var lengthened = config.WithEpochs(length);
            changes.AddRange(ChangedKeys(config, lengthened, $"--epochs {length} given with --resume (was {saved.ResolvedEpochs})"));
            config = lengthened.Validate();
        }
        return (config, changes);
    }

    /// <summary>The keys (dotted) in which two configurations differ, as changes.</summary>
    internal static IEnumerable<ConfigChange> ChangedKeys(ExperimentConfig before, ExperimentConfig after, string reason)
    {
        var a = JsonNode.Parse(before.ToJson())!.AsObject();
        var b = JsonNode.Parse(after.ToJson())!.AsObject();
        return Leaves(a, "").Zip(Leaves(b, ""))
            .Where(pair => !JsonNode.DeepEquals(pair.First.Value, pair.Second.Value))
            .Select(pair => new ConfigChange(pair.First.Key, pair.First.Value?.DeepClone(), pair.Second.Value?.DeepClone(), reason))
            .ToList();
    }

    private static IEnumerable<(string Key, JsonNode? Value)> Leaves(JsonObject node, string prefix)
    {
        foreach (var (key, value) in node)
        {
            if (value is JsonObject inner)
                foreach (var leaf in Leaves(inner, prefix + key + ".")) yield return leaf;
            else yield return (prefix + key, value);
        }
    }

    internal static JsonNode? Find(JsonObject root, string key, string option)
    {
        JsonNode? node = root;
        foreach (var part in key.Split('.'))
        {
            if (node is not JsonObject obj || !obj.TryGetPropertyValue(part, out node))
                throw new InvalidOperationException($"{option}: config.json has no key '{key}' (a bug: the option's key is wrong).");
        }
        return node;
    }

    internal static void Set(JsonObject root, string key, JsonNode? value)
    {
        var parts = key.Split('.');
        var obj = root;
        foreach (var part in parts[..^1]) obj = obj[part]!.AsObject();
        obj[parts[^1]] = value;
    }

    /// <summary>A config value as the errors show it: a string bare, null as "(default)", anything else as JSON.</summary>
    internal static string Show(JsonNode? value) => value switch
    {
        null => "(default)",
        JsonValue v when v.TryGetValue(out string? s) => s,
        _ => value.ToJsonString(),
    };
}
