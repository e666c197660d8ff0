using System.Text.Json;
using System.Text.Json.Nodes;
using Ddvi.Evaluation;
using Ddvi.FastPaths;
using Ddvi.IO;
using Ddvi.Likelihoods;
using Ddvi.Models;
using Ddvi.Objectives;
using Ddvi.Priors;
using Ddvi.Runtime;
using Ddvi.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace Ddvi.Inference;

/// <summary>
/// A model fitted by <see cref="DdviFit.Fit"/>: posterior samples and means of z for new data, new data from the model,
/// ELBO estimates, and one-file save and load. Every method works in batches of
/// <see cref="DdviOptions.EvaluationBatchSize"/> rows (memory bounded for any N), in eval mode under no_grad, and takes
/// a seed, so that the same call gives the same numbers on the CPU. Results are float tensors on the CPU.
/// </summary>
public sealed class FittedDdvi : IDisposable
{
    /// <summary>The version of the file layout <see cref="Save"/> writes and <see cref="Load"/> reads.</summary>
    public const int FormatVersion = 1;
    private const string Magic = "DDVIFIT1";

    private readonly FitState _state;

    internal FittedDdvi(FitState state, DdviOptions options, bool customNetworks, TrainerState? history)
    {
        _state = state;
        Options = options;
        CustomNetworks = customNetworks;
        History = history;
    }

    /// <summary>The model: encoder, likelihood, auxiliary encoder and posterior denoiser.</summary>
    public DdviModel Model => _state.Model;
    public Likelihood Likelihood => _state.Model.Likelihood;
    public IPrior Prior => _state.Prior;
    public DdviOptions Options { get; }

    /// <summary>The loss history of the fit (null for a loaded model).</summary>
    public TrainerState? History { get; }

    /// <summary>d.</summary>
    public int LatentDim => Model.LatentDim;

    /// <summary>D.</summary>
    public int DataDim => Model.InputDim;

    private bool CustomNetworks { get; }
    private Device Device => Model.PosteriorSchedule.Device;
    private ScalarType DataType => Model.parameters().First().dtype;

    /// <summary>
    /// <paramref name="samples"/> draws z ~ q(z | x) per row: <c>[S, N, d]</c>. NaN entries of x are read as 0.
    /// </summary>
    public Tensor PosteriorSamples(Tensor x, int samples = 1, long seed = 0)
    {
        if (samples < 1) throw new ArgumentOutOfRangeException(nameof(samples), samples, "PosteriorSamples: the number of samples must be at least 1.");
        CheckData(x, nameof(PosteriorSamples));
        using var generator = new Generator(unchecked((ulong)seed));
        var draws = Enumerable.Range(0, samples)
            .Select(_ => Batched(x, rows => Model.EncodeLatents(rows, generator)))
            .ToArray();
        var result = stack(draws);
        foreach (var draw in draws) draw.Dispose();
        return result;
    }

    /// <summary>
    /// E[z | x] estimated by the mean of <paramref name="samples"/> posterior draws per row, <c>[N, d]</c> (the chain's
    /// output has no closed-form mean).
    /// </summary>
    public Tensor PosteriorMean(Tensor x, int samples = 16, long seed = 0)
    {
        using var draws = PosteriorSamples(x, samples, seed);
        return draws.mean([0]);
    }

    /// <summary>One posterior draw per row, <c>[N, d]</c>.</summary>
    public Tensor Encode(Tensor x, long seed = 0)
    {
        using var draws = PosteriorSamples(x, 1, seed);
        return draws[0].clone();
    }

    /// <summary>New data from the model: z ~ p(z), then x ~ p(x | z) (or E[x | z] when <paramref name="means"/>), <c>[n, D]</c>.</summary>
    public Tensor SampleData(long n, long seed = 0, bool means = false)
    {
        if (n < 1) throw new ArgumentOutOfRangeException(nameof(n), n, "SampleData: the number of samples must be at least 1.");
        using var generator = new Generator(unchecked((ulong)seed));
        using var mode = new EvalMode(_state);
        var parts = new List<Tensor>();
        for (long start = 0; start < n; start += Options.EvaluationBatchSize)
        {
            using var scope = NewDisposeScope();
            long rows = Math.Min(Options.EvaluationBatchSize, n - start);
            var z = Prior.Sample(rows, generator).to(Device);
            var x = means ? Likelihood.Mean(z) : Likelihood.Sample(z, generator);
            parts.Add(x.cpu().MoveToOuterDisposeScope());
        }
        var result = cat(parts.ToArray(), 0);
        foreach (var part in parts) part.Dispose();
        return result;
    }

    /// <summary>
    /// An ELBO estimate per row in nats, <c>[N]</c>, one posterior draw each: log p(x | z) − KL(q(y_T|x) ‖ N(0, I)) +
    /// log p(z) − Σ_{t≥2} ‖μ_φ,t − μ̃_t‖²/(2σ̃²_t), the authors' evaluation formula (see docs/elbo.md for how it differs from
    /// a strict bound; <see cref="LikelihoodBounds"/> gives true ones). NaN entries of x are missing and left out of log p(x | z).
    /// </summary>
    public Tensor Elbo(Tensor x, long seed = 0)
    {
        CheckData(x, nameof(Elbo));
        using var generator = new Generator(unchecked((ulong)seed));
        return Batched(x, rows =>
        {
            using var scope = NewDisposeScope();
            bool missing = rows.isnan().any().item<bool>();
            var mask = missing ? rows.isnan().logical_not() : null;
            var filled = missing ? rows.nan_to_num(0.0) : rows;
            var terms = DdviObjectives.ElboTerms(Model, filled, Prior, generator, mask);
            return terms.Combine().NatsPerImage.MoveToOuterDisposeScope();
        }, fillMissing: false);
    }

    /// <summary>
    /// Bounds on log p(x) per row, in nats: the true ELBO E_q[log p(x|z) + log p(z) − log q(z|x)] and the importance-weighted
    /// bound IWAE_K = E[log (1/K) Σ_k p(x, z_k)/q(z_k|x)] (arXiv:1509.00519), each from the same K =
    /// <paramref name="samples"/> posterior draws per row. log q(z|x) is the DDVI posterior's exact density by change of
    /// variables through its deterministic chain, log N(y_T; μ(x), σ²(x)) − log|det ∂z/∂y_T| (Jacobian by autograd), and
    /// log p(z) the prior's <see cref="IPrior.NormalisedLogDensity"/>; the summary counts injectivity violations (draws
    /// of one row whose determinants differ in sign). Unlike <see cref="Elbo"/>, both are true lower bounds on log p(x)
    /// wherever the chain is injective; see docs/elbo.md. NaN entries of x are missing and left out of log p(x | z).
    /// Dispose the result.
    /// </summary>
    public LikelihoodBoundsEstimate LikelihoodBounds(Tensor x, int samples = 100, long seed = 0)
    {
        if (samples < 1) throw new ArgumentOutOfRangeException(nameof(samples), samples, "LikelihoodBounds: the number of posterior samples per row must be at least 1.");
        CheckData(x, nameof(LikelihoodBounds));
        using var generator = new Generator(unchecked((ulong)seed));
        using var mode = new EvalMode(_state);
        using var scope = NewDisposeScope();
        var rows = x.to(DataType, Device);
        bool missing = rows.isnan().any().item<bool>();
        var mask = missing ? rows.isnan().logical_not() : null;
        return Ddvi.Evaluation.LikelihoodBounds.Estimate(Model, Prior, missing ? rows.nan_to_num(0.0) : rows, samples,
            Options.EvaluationBatchSize, generator, mask);
    }

    /// <summary>
    /// Writes the fitted model to one file, atomically: a header (format version, options, the likelihood's kind and
    /// sizes, the prior's name and dimension, the networks) and every weight (networks, likelihood, a learnable prior).
    /// </summary>
    public void Save(string path)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        string header = Header(_state, Options, CustomNetworks).ToJsonString(DdviFit.Json);
        AtomicFile.Write(path, stream =>
        {
            using var writer = new BinaryWriter(stream, System.Text.Encoding.UTF8, leaveOpen: true);
            writer.Write(Magic);
            writer.Write(header);
            _state.save(writer);
        });
    }

    /// <summary>
    /// Reads a model written by <see cref="Save"/> into freshly built <paramref name="likelihood"/> and
    /// <paramref name="prior"/> of the same kinds and sizes (and the same <paramref name="networks"/> if the fit was given
    /// its own). A file of another format version, likelihood, dimension or network layout is a clear error.
    /// </summary>
    public static FittedDdvi Load(string path, Likelihood likelihood, IPrior prior, DdviNetworks? networks = null,
        DeviceChoice device = DeviceChoice.Cpu)
    {
        CpuRuntime.Configure(); // as DdviFit.Fit: Ddvi's process-wide CPU settings, once
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        DdviFit.CheckParts(likelihood, prior);
        if (!File.Exists(path)) throw new FileNotFoundException($"{path}: no such fitted-model file.", path);
        using var reader = new BinaryReader(File.OpenRead(path), System.Text.Encoding.UTF8);
        JsonNode header;
        try
        {
            if (reader.ReadString() != Magic)
                throw new InvalidDataException($"{path}: not a fitted Ddvi model (expected header {Magic}).");
            header = JsonNode.Parse(reader.ReadString()) ?? throw new InvalidDataException($"{path}: empty header.");
        }
        catch (Exception e) when (e is EndOfStreamException or JsonException or IOException and not FileNotFoundException)
        {
            throw new InvalidDataException($"{path}: not a fitted Ddvi model or truncated ({e.Message}).", e);
        }

        int version = header["format_version"]?.GetValue<int>() ?? -1;
        if (version != FormatVersion)
            throw new InvalidDataException($"{path}: written in fitted-model format version {version}; this Ddvi reads version {FormatVersion}.");
        Expect(path, "likelihood kind", header["likelihood"]?["kind"]?.GetValue<string>(), likelihood.Kind);
        Expect(path, "data dimension D", header["likelihood"]?["data_dim"]?.GetValue<int>().ToString(), likelihood.DataDim.ToString());
        Expect(path, "latent dimension d", header["likelihood"]?["latent_dim"]?.GetValue<int>().ToString(), likelihood.LatentDim.ToString());
        Expect(path, "prior dimension", header["prior"]?["dimension"]?.GetValue<int>().ToString(), prior.Dimension.ToString());
        Expect(path, "prior", header["prior"]?["name"]?.GetValue<string>(), prior.Name);
        bool custom = header["custom_networks"]?.GetValue<bool>() ?? false;
        if (custom && networks is null)
            throw new ArgumentException($"{path}: the model was fitted with networks of its own; pass the same networks (DdviNetworks) to Load.", nameof(networks));

        var options = header["options"].Deserialize<DdviOptions>(DdviFit.Json)
                      ?? throw new InvalidDataException($"{path}: the header has no options.");
        var state = DdviFit.Assemble(likelihood, prior, options, networks, ComputeDevice.Resolve(device));
        try
        {
            Expect(path, "networks", header["networks"]?.ToJsonString(), Networks(state.Model).ToJsonString());
            Checkpoint.LoadWeightsInPlace(state, reader);
        }
        catch (Exception e) when (e is ArgumentException or EndOfStreamException or InvalidOperationException)
        {
            state.Dispose();
            throw new InvalidDataException($"{path}: the saved weights do not fit these parts ({e.Message}).", e);
        }
        catch
        {
            state.Dispose();
            throw;
        }
        return new FittedDdvi(state, options, custom, history: null);
    }

    public void Dispose() => _state.Dispose();

    internal static JsonObject Header(FitState state, DdviOptions options, bool customNetworks) => new()
    {
        ["format"] = "ddvi-fitted-model",
        ["format_version"] = FormatVersion,
        ["likelihood"] = new JsonObject
        {
            ["kind"] = state.Model.Likelihood.Kind,
            ["data_dim"] = state.Model.Likelihood.DataDim,
            ["latent_dim"] = state.Model.Likelihood.LatentDim,
            ["description"] = state.Model.Likelihood.Describe(),
        },
        ["prior"] = new JsonObject
        {
            ["name"] = state.Prior.Name,
            ["dimension"] = state.Prior.Dimension,
            ["learnable"] = state.Prior is nn.Module,
            ["density"] = state.Prior.DensityDescription,
        },
        ["custom_networks"] = customNetworks,
        ["networks"] = Networks(state.Model),
        ["options"] = JsonSerializer.SerializeToNode(options, DdviFit.Json),
    };

    private static JsonObject Networks(DdviModel model) => new()
    {
        ["encoder"] = Describe(model.Encoder),
        ["likelihood"] = Describe(model.Likelihood),
        ["auxiliary_encoder"] = Describe(model.AuxiliaryEncoder),
        ["posterior_denoiser"] = Describe(model.PosteriorDenoiser),
    };

    // A network's type and parameter shapes: enough to tell a mismatched layout before reading any weight.
    private static string Describe(nn.Module module)
        => module.GetType().Name + " " + string.Join("; ", module.named_parameters().Select(p => $"{p.name} [{string.Join("×", p.parameter.shape)}]"));

    private static void Expect(string path, string what, string? saved, string given)
    {
        if (saved != given)
            throw new InvalidDataException($"{path}: the file's {what} is '{saved}', the parts given to Load have '{given}'.");
    }

    private void CheckData(Tensor x, string caller)
    {
        ArgumentNullException.ThrowIfNull(x);
        if (x.dim() != 2 || x.shape[1] != DataDim || x.shape[0] < 1)
            throw new ArgumentException($"FittedDdvi.{caller}: data must be [N, {DataDim}] with N ≥ 1, got [{string.Join(", ", x.shape)}].", nameof(x));
        if (!x.is_floating_point())
            throw new ArgumentException($"FittedDdvi.{caller}: data must be float32 or float64, got {x.dtype}.", nameof(x));
    }

    // Runs f on row blocks of x (moved to the model's device; NaN read as 0 unless asked not to) and concatenates the results on the CPU.
    private Tensor Batched(Tensor x, Func<Tensor, Tensor> f, bool fillMissing = true)
    {
        using var mode = new EvalMode(_state);
        using var noGrad = no_grad();
        var parts = new List<Tensor>();
        for (long start = 0; start < x.shape[0]; start += Options.EvaluationBatchSize)
        {
            using var scope = NewDisposeScope();
            var rows = x.narrow(0, start, Math.Min(Options.EvaluationBatchSize, x.shape[0] - start)).to(DataType, Device);
            if (fillMissing) rows = rows.nan_to_num(0.0);
            parts.Add(f(rows).cpu().MoveToOuterDisposeScope());
        }
        var result = cat(parts.ToArray(), 0);
        foreach (var part in parts) part.Dispose();
        return result;
    }

    // eval() for the duration, then back to the mode the module was in.
    private sealed class EvalMode : IDisposable
    {
        private readonly nn.Module _module;
        private readonly bool _wasTraining;

        public EvalMode(nn.Module module)
        {
            _module = module;
            _wasTraining = module.training;
            module.eval();
        }

        public void Dispose()
        {
            if (_wasTraining) _module.train();
        }
    }
}
