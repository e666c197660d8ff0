using System.Globalization;
using System.Text;
using System.Text.Json;
using Ddvi.Experiments.Methods;
using Ddvi.Models;
using Ddvi.Training;

namespace Ddvi.Experiments;

/// <summary>What a run folder holds, read without loading data or weights (<c>ddvi show</c>).</summary>
public static class RunSummary
{
    /// <summary>Where a run stands.</summary>
    public enum RunState
    {
        /// <summary>Every stage trained and metrics.json written.</summary>
        Finished,

        /// <summary>Stopped or still training; <c>ddvi train --resume</c> continues it.</summary>
        Unfinished,

        /// <summary>Its last log entry is an error.</summary>
        Failed,
    }

    /// <summary>The stages a run of <paramref name="config"/> trains, with their lengths in epochs, as its method builds them
    /// (a test checks them against the methods).</summary>
    public static IReadOnlyList<(string Name, int Epochs)> PlannedStages(ExperimentConfig config)
    {
        if (config.Model == "ddvi-semi")
        {
            int semiIterations = config.ResolvedSemiPriorDiffusionIterations;
            int semiPerEpoch = Math.Min(config.Semi.PriorDiffusionStepsPerEpoch, semiIterations);
            return
            [
                (SemiDdviMethod.PriorDiffusionStage, (semiIterations + semiPerEpoch - 1) / semiPerEpoch),
                (SemiDdviMethod.WarmupStage, config.ResolvedSemiWarmupEpochs),
                (SemiDdviMethod.StageName, config.ResolvedEpochs),
            ];
        }
        if (config.Model != "ddvi") return [(config.Model, config.ResolvedEpochs)];
        int iterations = config.ResolvedPriorDiffusionIterations;
        int stepsPerEpoch = Math.Min(config.Ddvi.PriorDiffusionStepsPerEpoch, iterations);
        return
        [
            (DdviMethod.PriorDiffusionStage, (iterations + stepsPerEpoch - 1) / stepsPerEpoch),
            (DdviMethod.WarmupStage, config.ResolvedWarmupEpochs),
            (DdviMethod.DdviStageName, config.ResolvedEpochs),
        ];
    }

    /// <summary>"forked from SOURCE: reused …" when config-history.json says the run is a fork (<c>ddvi train --fork-from</c>);
    /// null otherwise or when the history cannot be read.</summary>
    private static string? ForkedFrom(RunDirectory run)
    {
        if (!File.Exists(run.ConfigHistory)) return null;
        try
        {
            using var history = JsonDocument.Parse(File.ReadAllText(run.ConfigHistory));
            foreach (var entry in history.RootElement.EnumerateArray())
                foreach (var change in entry.GetProperty("changes").EnumerateArray())
                    if (change.TryGetProperty("reason", out var reason) && reason.GetString() is { } text && text.StartsWith("forked from ", StringComparison.Ordinal))
                        return text;
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException or KeyNotFoundException)
        {
        }
        return null;
    }

    /// <summary>The state of the run in <paramref name="folder"/> and a description of it for people.</summary>
    public static (RunState State, string Text) Describe(string folder)
    {
        var run = new RunDirectory(folder);
        if (!File.Exists(run.Config))
            throw new FileNotFoundException($"{run.Config} not found: {run.Root} is not a Ddvi run folder (expected config.json and checkpoints/).", run.Config);
        var config = ExperimentConfig.FromJson(File.ReadAllText(run.Config), run.Config);
        var text = new StringBuilder();
        void Line(string s) => text.Append(s).Append('\n');

        Line($"run       {run.Root}");
        Line($"model     {config.Model}, latent prior {config.Prior}{(config.PriorNoise is { } noise ? $" (noise {noise.ToString(CultureInfo.InvariantCulture)})" : "")}, prior density {config.PriorDensity.ToString().ToLowerInvariant()}");
        Line($"data      {config.Dataset}{(config.DataDirectory is { } dir ? $" (data folder {dir})" : "")}");
        Line($"training  seed {config.Seed}, batch size {config.ResolvedBatchSize}, learning rate {config.ResolvedLearningRate.ToString("G4", CultureInfo.InvariantCulture)}, device {config.Device.ToString().ToLowerInvariant()}, networks in {config.Precision.Name()}");

        if (ForkedFrom(run) is { } fork) Line($"origin    {fork}");

        bool allDone = true;
        Line("stages");
        foreach (var (name, epochs) in PlannedStages(config))
        {
            var (done, note) = StageState(run, name);
            allDone &= done?.Partial is null && done?.EpochsCompleted >= epochs;
            string progress = done is null ? "not started"
                : done.Partial is { } partial ? $"{done.EpochsCompleted}/{Counted(epochs, "epoch")} and {Counted(partial.Steps, "step")} of the next (stopped mid-epoch)"
                : done.EpochsCompleted >= epochs ? $"finished, {Counted(epochs, "epoch")}"
                : $"{done.EpochsCompleted}/{Counted(epochs, "epoch")}";
            string time = done is null ? "" : $", {done.SecondsElapsed:F0} s";
            string last = done?.History.LastOrDefault() is { } record
                ? "; last epoch " + string.Join(' ', record.Losses.Select(kv => $"{kv.Key}={kv.Value.ToString("G4", CultureInfo.InvariantCulture)}"))
                : "";
            Line($"  {name,-16} {progress}{time}{last}{note}");
        }

        string? error = LastError(run);
        bool hasMetrics = File.Exists(run.Metrics);
        var state = error is not null ? RunState.Failed : allDone && hasMetrics ? RunState.Finished : RunState.Unfinished;
        Line($"state     {state switch
        {
            RunState.Finished => "finished",
            RunState.Failed => $"failed: {error}",
            _ => allDone ? "trained, not evaluated (ddvi evaluate RUN_DIR evaluates it)" : "unfinished (ddvi train --resume --out RUN_DIR continues it)",
        }}");
        if (state == RunState.Failed) Line("          ddvi train --resume --out RUN_DIR continues from the last checkpoint once the cause is fixed; train.log has the details");

        if (hasMetrics)
        {
            try
            {
                var report = JsonSerializer.Deserialize<MetricsReport>(File.ReadAllText(run.Metrics), ExperimentConfig.JsonOptions)!;
                Line($"metrics   {ExperimentRunner.Summary(report)}");
            }
            catch (JsonException e)
            {
                Line($"metrics   {run.Metrics} cannot be read ({e.Message})");
            }
        }
        if (Directory.Exists(run.Plots))
        {
            Line("plots");
            foreach (var plot in Directory.GetFiles(run.Plots, "*.png").Order(StringComparer.Ordinal)) Line($"  {plot}");
        }
        foreach (var file in new[] { run.Metrics, run.TestLatents, run.Log })
            if (File.Exists(file)) Line($"file      {file}");
        return (state, text.ToString());
    }

    /// <summary>"1 epoch", "3 epochs": the count with its noun in the number it takes.</summary>
    private static string Counted(int count, string noun) => count == 1 ? $"1 {noun}" : $"{count} {noun}s";

    /// <summary>The newest checkpoint's state of a stage (damaged ones named, never moved: show changes nothing).</summary>
    private static (TrainerState? State, string Note) StageState(RunDirectory run, string stage)
    {
        string note = "";
        foreach (var path in Checkpoint.List(run.Checkpoints(stage)).Reverse())
        {
            if (Checkpoint.Problem(path) is { } problem)
            {
                note += $" (damaged checkpoint {Path.GetFileName(path)}: {problem})";
                continue;
            }
            return (Checkpoint.ReadHeader(path).State, note);
        }
        return (null, note);
    }

    /// <summary>The run's last log message when it is an error (the runner logs every error that ends a run).</summary>
    private static string? LastError(RunDirectory run)
    {
        if (!File.Exists(run.Log)) return null;
        string? last = File.ReadLines(run.Log).LastOrDefault(l => l.Length > 0);
        if (last is null) return null;
        int space = last.IndexOf(' ');
        string message = space >= 0 ? last[(space + 1)..] : last;
        return message.StartsWith("error: ", StringComparison.Ordinal) ? message["error: ".Length..] : null;
    }
}
