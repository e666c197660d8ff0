using System.Text.Json.Nodes;

namespace Ddvi.Experiments;

/// <summary>
/// Where a model's runs can be forked: a new run may reuse what an earlier run trained of the stages before
/// <paramref name="Stage"/> when the two configurations differ only in <paramref name="Keys"/> (which no earlier stage
/// reads), in the execution settings (<see cref="ResumeRequest.ExecutionKeys"/>) and in the evaluation settings.
/// Because every stage draws from generators seeded by the run's seed, the stage's name and the epoch
/// (<see cref="Training.Trainer.EpochSeed"/>), the forked run trains exactly what a new run with its configuration would.
/// </summary>
/// <param name="Stage">The first stage the fork trains itself.</param>
/// <param name="Reused">The stages before it, in order, whose checkpoints the fork takes over.</param>
/// <param name="Keys">The config.json keys (dotted) first read by <paramref name="Stage"/> or later.</param>
public sealed record ForkPoint(string Stage, IReadOnlyList<string> Reused, IReadOnlyList<string> Keys);

/// <summary>What the fork takes from its source: each reused stage's newest intact checkpoint.</summary>
public sealed record ForkedStage(string Stage, string Checkpoint, Training.TrainerState State);

/// <summary>
/// <c>ddvi train --fork-from SOURCE</c>: a new run with SOURCE's configuration and the options <paramref name="Given"/>,
/// which reuses SOURCE's training of the stages before the model's <see cref="ForkPoint"/> (DDVI's prior diffusion and
/// warm-up), so that stage-3 settings can be varied without training the earlier stages again.
/// </summary>
/// <param name="Source">The run folder to fork.</param>
/// <param name="Given">The options given with <c>--fork-from</c>, as for <see cref="ResumeRequest"/>.</param>
public sealed record ForkRequest(string Source, IReadOnlyList<GivenOption> Given)
{
    /// <summary>
    /// The fork's configuration and its changes against the source's; throws an <see cref="ArgumentException"/> naming
    /// each option that changes something a reused stage reads, and when the model has no stage to reuse.
    /// </summary>
    public (ExperimentConfig Config, ForkPoint Point, IReadOnlyList<ConfigChange> Changes) ApplyTo(ExperimentConfig saved)
    {
        var registration = ModelCatalog.Get(saved.Model);
        if (registration.Fork is not { } point)
            throw new ArgumentException(
                $"--fork-from {Source}: the model '{saved.Model}' trains in one stage, so a fork has nothing to reuse; start a new run instead " +
                $"(models that can be forked: {string.Join(", ", ModelCatalog.Models.Where(m => m.Fork is not null).Select(m => m.Name))}).");

        var node = JsonNode.Parse(saved.ToJson())!.AsObject();
        // Every option given sets its key as it would in a new run (--epochs too: schedules that default to a share of the
        // epochs, such as DDVI's frozen-decoder epochs, follow the new length as they would in a new run).
        foreach (var given in Given)
        {
            ResumeRequest.Find(node, given.Key, given.Option);
            ResumeRequest.Set(node, given.Key, given.Value?.DeepClone());
        }
        var config = ExperimentConfig.FromJson(node.ToJsonString(), "the forked configuration").Validate();

        var changes = ResumeRequest.ChangedKeys(saved, config, "").ToList();
        var allowed = new HashSet<string>(point.Keys, StringComparer.Ordinal);
        var conflicts = changes
            .Where(c => !allowed.Contains(c.Key) && !ResumeRequest.ExecutionKeys.Contains(c.Key) && !c.Key.StartsWith("evaluation.", StringComparison.Ordinal)
                        // resolved_epochs and the like are written for readers and follow the keys they resolve, checked themselves.
                        && !c.Key.StartsWith("resolved_", StringComparison.Ordinal))
            .Select(c => $"{OptionFor(c.Key)} ({c.Key}: {ResumeRequest.Show(c.From)} in the source, {ResumeRequest.Show(c.To)} here)")
            .ToList();
        if (conflicts.Count > 0)
            throw new ArgumentException(
                $"--fork-from {Source}: a fork reuses the source's stages {string.Join(" and ", point.Reused.Select(s => $"'{s}'"))}, so it may change only " +
                $"what stage '{point.Stage}' and the evaluation read ({string.Join(", ", point.Keys)}) and how to run (--device, --threads, " +
                $"--data-dir, --checkpoint-every, --tensorboard); these options change what the reused stages trained: {string.Join("; ", conflicts)}. " +
                "Start a new run to change them.");
        var reasons = changes.Select(c => c with { Reason = $"{OptionFor(c.Key)} given with --fork-from" }).ToList();
        return (config, point, reasons);
    }

    private string OptionFor(string key) => Given.FirstOrDefault(g => g.Key == key)?.Option ?? key;
}
