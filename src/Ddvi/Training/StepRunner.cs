using Ddvi.Runtime;
using Ddvi.FastPaths;
using TorchSharp;
using static TorchSharp.torch;

namespace Ddvi.Training;

/// <summary>
/// Runs the phases of one stage on one batch, each with its own Adam optimiser (<see cref="FusedAdam"/>): zero_grad / loss / backward / step
/// per phase repeat, with running sums of the loss terms kept on the device (no host read per step). The trainer
/// repeats it over epochs; the benchmark times it, so what is measured is what trains.
/// </summary>
public sealed class StepRunner : IDisposable
{
    private readonly IReadOnlyList<TrainingPhase> _phases;
    private readonly Dictionary<string, optim.Optimizer> _optimizers;
    private readonly LossSums _sums = new();
    private IReadOnlyList<TrainingPhase> _active;

    public StepRunner(IReadOnlyList<TrainingPhase> phases)
    {
        if (phases.Count == 0) throw new ArgumentException("at least one training phase is needed", nameof(phases));
        if (phases.Select(p => p.Name).Distinct().Count() != phases.Count)
            throw new ArgumentException("training phase names must be distinct: " + string.Join(", ", phases.Select(p => p.Name)));
        foreach (var phase in phases) phase.Clip?.Validate(phase.Name);
        _phases = phases;
        _optimizers = phases.ToDictionary(p => p.Name, p => (optim.Optimizer)new FusedAdam(p.Parameters, lr: p.LearningRate));
        _active = phases;
    }

    /// <summary>The optimiser of each phase, by phase name (checkpoint keys).</summary>
    public IReadOnlyDictionary<string, optim.Optimizer> Optimizers => _optimizers;

    /// <summary>The device the phases' parameters live on (CPU when they have none).</summary>
    public Device Device => _phases.SelectMany(p => p.Parameters).Select(p => p.device).FirstOrDefault() ?? CPU;

    /// <summary>Running loss sums since the last <see cref="LossSums.Clear"/>.</summary>
    public LossSums Sums => _sums;

    /// <summary>Selects the phases active in <paramref name="epoch"/> and sets their learning rates.</summary>
    public void BeginEpoch(int epoch)
    {
        _active = _phases.Where(p => p.IsActive(epoch)).ToList();
        foreach (var phase in _active)
            foreach (var group in _optimizers[phase.Name].ParamGroups)
                group.LearningRate = phase.LearningRate * phase.LearningRateFactor(epoch);
    }

    /// <summary>One optimisation step of every active phase (its repeats included) on <paramref name="batch"/>.</summary>
    public void Step(TrainingBatch batch, int epoch, Generator generator)
    {
        foreach (var phase in _active)
            if (phase.OnBatches)
                RunPhase(phase, _optimizers[phase.Name], batch, epoch, generator, phase.RepeatsPerBatch);
    }

    /// <summary>The steps the active phases take after the epoch's batches (<see cref="TrainingPhase.StepsAfterEpoch"/>),
    /// phase by phase, with no data batch.</summary>
    public void AfterEpoch(int epoch, Generator generator)
    {
        foreach (var phase in _active)
        {
            int steps = phase.StepsAfterEpoch(epoch);
            if (steps < 0)
                throw new InvalidOperationException($"training phase '{phase.Name}' asked for {steps} steps after epoch {epoch + 1}; expected ≥ 0.");
            if (steps > 0)
                RunPhase(phase, _optimizers[phase.Name], TrainingBatch.Empty, epoch, generator, steps);
        }
    }

    private void RunPhase(TrainingPhase phase, optim.Optimizer optimizer, TrainingBatch batch, int epoch, Generator generator, int repeats)
    {
        var frozen = phase.FrozenParameters(epoch);
        foreach (var p in frozen) p.requires_grad_(false);
        try
        {
            for (int repeat = 0; repeat < repeats; repeat++)
            {
                using var scope = NewDisposeScope();
                ClearGradients(phase);
                var terms = phase.Loss(new PhaseStep(batch, epoch, repeat, generator));
                terms.Total.backward();
                if (phase.Clip is { } clip) ClipGradients(clip);
                optimizer.step();
                _sums.Add($"{phase.Name}/loss", terms.Total);
                foreach (var (name, value) in terms.Terms) _sums.Add($"{phase.Name}/{name}", value);
            }
        }
        finally
        {
            foreach (var p in frozen) p.requires_grad_(true);
        }
    }

    // PyTorch's clip_grad_norm_ without a host read: the factor min(1, bound / (‖g‖ + 1e-6)) stays a device tensor.
    private static void ClipGradients(GradientNormClip clip)
    {
        using var scope = NewDisposeScope();
        var gradients = clip.Parameters.Select(p => p.grad).Where(g => g is not null).Cast<Tensor>().ToList();
        if (gradients.Count == 0) return;
        var squares = stack(gradients.Select(g => g.detach().to(float64).pow(Scalars.Of(2)).sum()).ToArray()).sum();
        var factor = (Scalars.Of(clip.MaxNorm) / squares.sqrt().add(Scalars.Of(1e-6), Scalars.One)).clamp_max(Scalars.Of(1.0));
        foreach (var g in gradients) g.mul_(factor.to(g.dtype));
    }

    // Drops the gradients instead of zeroing them (PyTorch's set_to_none): backward then writes fresh gradients instead of
    // adding to zeros, which saves two passes over every gradient, and parameters frozen for the phase have none to step.
    private static void ClearGradients(TrainingPhase phase)
    {
        foreach (var parameter in phase.Parameters)
            parameter.grad = null;
    }

    public void Dispose()
    {
        foreach (var optimizer in _optimizers.Values) optimizer.Dispose();
        _sums.Dispose();
    }
}

/// <summary>Running sums of named scalar losses, accumulated in place on the device and read only when asked.</summary>
public sealed class LossSums : IDisposable
{
    private readonly Dictionary<string, Tensor> _sums = new();
    private readonly Dictionary<string, int> _counts = new();

    public void Add(string key, Tensor value)
    {
        if (!_sums.TryGetValue(key, out var sum))
        {
            sum = zeros([], dtype: float64, device: value.device).DetachFromDisposeScope();
            _sums[key] = sum;
            _counts[key] = 0;
        }
        // In place, so the accumulator outlives the step's dispose scope and no host sync happens here.
        sum.add_(value.detach().to(float64), Scalars.One);
        _counts[key]++;
    }

    /// <summary>The mean of every term since the last clear; each read synchronises with the device.</summary>
    public Dictionary<string, double> Means() => _sums.ToDictionary(kv => kv.Key, kv => kv.Value.item<double>() / _counts[kv.Key]);

    /// <summary>The running sums themselves (not means), read from the device: with <see cref="Counts"/>, what
    /// <see cref="Restore"/> needs to continue them exactly.</summary>
    public Dictionary<string, double> Totals() => _sums.ToDictionary(kv => kv.Key, kv => kv.Value.item<double>());

    /// <summary>How many values each sum holds.</summary>
    public Dictionary<string, int> Counts() => new(_counts);

    /// <summary>Replaces the sums with saved ones (see <see cref="Totals"/>); float64 values round-trip exactly.</summary>
    public void Restore(IReadOnlyDictionary<string, double> totals, IReadOnlyDictionary<string, int> counts, Device device)
    {
        Clear();
        foreach (var (key, total) in totals)
        {
            _sums[key] = tensor(total, dtype: float64, device: device).DetachFromDisposeScope();
            _counts[key] = counts.TryGetValue(key, out int count) ? count
                : throw new InvalidDataException($"saved running losses have a sum but no count for '{key}'");
        }
    }

    public void Clear()
    {
        foreach (var sum in _sums.Values) sum.Dispose();
        _sums.Clear();
        _counts.Clear();
    }

    public void Dispose() => Clear();
}
