using TorchSharp;
using static TorchSharp.torch;

namespace Ddvi.Diffusion;

/// <summary>How β_t grows over the T steps of the forward (noising) process.</summary>
public enum NoiseScheduleKind
{
    /// <summary>β_t linear from 1e-4 to 0.02 over T steps, as the DDVI release (Ho et al. 2020's range).</summary>
    Linear,

    /// <summary>Nichol &amp; Dhariwal (2021): ᾱ(t) = f(t)/f(0), f(t) = cos²(((t/T) + s)/(1 + s) · π/2), s = 0.008, β clipped at 0.999.</summary>
    Cosine,
}

/// <summary>
/// The variance schedule of the Gaussian forward process r(y_t | y_0) = N(√ᾱ_t y_0, (1 − ᾱ_t) I) and every table derived
/// from it, as DDVI's forward process uses them (arXiv:2401.02739; the authors' release):
/// β_t, α_t = 1 − β_t, ᾱ_t = ∏_{s≤t} α_s, √ᾱ_t, √(1 − ᾱ_t), ᾱ_{t−1}, √ᾱ_{t−1}, √(1 − ᾱ_{t−1})
/// and the forward posterior r(y_{t−1} | y_t, y_0) = N(w0_t y_0 + wt_t y_t, σ̃²_t) with
/// w0_t = β_t √ᾱ_{t−1}/(1 − ᾱ_t), wt_t = √α_t (1 − ᾱ_{t−1})/(1 − ᾱ_t), σ̃²_t = β_t (1 − ᾱ_{t−1})/(1 − ᾱ_t).
/// </summary>
/// <remarks>
/// <para>Every table has T + 1 rows and is indexed by the timestep itself: row t holds step t for t = 1..T. Row 0 holds
/// the noise-free state under the convention ᾱ_0 := 1 (β_0 = 0, α_0 = ᾱ_0 = √ᾱ_0 = 1, √(1 − ᾱ_0) = 0, w0_0 = 1,
/// wt_0 = σ̃²_0 = 0), so ᾱ_{t−1} at t = 1 is 1 and the last DDIM step returns ŷ_0. The functions of
/// <see cref="GaussianDiffusion"/> accept t in 1..T only.</para>
/// <para>The tables are computed in float64 on the host, then cast to <see cref="DType"/>, and registered as
/// non-persistent buffers: they follow the module through <c>.to(device)</c> but are not written to checkpoints,
/// because they are a function of (kind, T) alone.</para>
/// </remarks>
public sealed class NoiseSchedule : nn.Module
{
    /// <summary>The release's β range for <see cref="NoiseScheduleKind.Linear"/>.</summary>
    public const double LinearBetaStart = 1e-4;
    public const double LinearBetaEnd = 0.02;

    /// <summary>Offset s of the cosine schedule and the cap on its β_t (Nichol &amp; Dhariwal 2021).</summary>
    public const double CosineOffset = 0.008;
    public const double CosineMaxBeta = 0.999;

    // Field names are the buffer names: Module.to() finds the moved tensors' fields by these names.
    readonly (double KeepY, double KeepEps)[] _ddimCoefficients; // host copy, index t
    readonly Dictionary<string, double[]> _hostTables = new();     // every table's float64 values, by buffer name
    Tensor beta;                        // [T+1]
    Tensor alpha;                       // [T+1]
    Tensor alphaBar;                    // [T+1]
    Tensor sqrtAlphaBar;                // [T+1]
    Tensor sqrtOneMinusAlphaBar;        // [T+1]
    Tensor alphaBarPrev;                // [T+1]
    Tensor sqrtAlphaBarPrev;            // [T+1]
    Tensor sqrtOneMinusAlphaBarPrev;    // [T+1]
    Tensor posteriorW0;                 // [T+1]
    Tensor posteriorWt;                 // [T+1]
    Tensor posteriorVariance;           // [T+1]

    /// <param name="kind">How β grows over the steps.</param>
    /// <param name="steps">T, the number of diffusion steps (≥ 1).</param>
    /// <param name="dtype">Element type of the tables (float32 by default, float64 for exact tests).</param>
    public NoiseSchedule(NoiseScheduleKind kind, int steps, ScalarType dtype = ScalarType.Float32) : base(nameof(NoiseSchedule))
    {
        if (steps < 1)
            throw new ArgumentOutOfRangeException(nameof(steps), steps, "Diffusion steps T must be at least 1.");
        if (!is_floating_point(dtype))
            throw new ArgumentException($"Noise schedule tables must have a floating-point dtype, got {dtype}.", nameof(dtype));
        if (!Enum.IsDefined(kind))
            throw new ArgumentOutOfRangeException(nameof(kind), kind, $"Unknown noise schedule; expected one of {string.Join(", ", Enum.GetNames<NoiseScheduleKind>())}.");

        Kind = kind;
        Steps = steps;
        _ddimCoefficients = new (double, double)[steps + 1];

        var b = new double[steps + 1];
        var betasFromOne = kind == NoiseScheduleKind.Linear ? LinearBetas(steps) : CosineBetas(steps);
        Array.Copy(betasFromOne, 0, b, 1, steps);

        var a = new double[steps + 1];
        var ab = new double[steps + 1];
        var abPrev = new double[steps + 1];
        var w0 = new double[steps + 1];
        var wt = new double[steps + 1];
        var variance = new double[steps + 1];
        a[0] = ab[0] = abPrev[0] = w0[0] = 1.0;
        for (int t = 1; t <= steps; t++)
        {
            a[t] = 1.0 - b[t];
            ab[t] = ab[t - 1] * a[t];
            abPrev[t] = ab[t - 1];
            w0[t] = b[t] * Math.Sqrt(abPrev[t]) / (1.0 - ab[t]);
            wt[t] = Math.Sqrt(a[t]) * (1.0 - abPrev[t]) / (1.0 - ab[t]);
            variance[t] = b[t] * (1.0 - abPrev[t]) / (1.0 - ab[t]);
            double keepY = Math.Sqrt(abPrev[t] / ab[t]);
            _ddimCoefficients[t] = (keepY, Math.Sqrt(1.0 - abPrev[t]) - keepY * Math.Sqrt(1.0 - ab[t]));
        }

        beta = Table(nameof(beta), b, dtype);
        alpha = Table(nameof(alpha), a, dtype);
        alphaBar = Table(nameof(alphaBar), ab, dtype);
        sqrtAlphaBar = Table(nameof(sqrtAlphaBar), ab.Select(Math.Sqrt), dtype);
        sqrtOneMinusAlphaBar = Table(nameof(sqrtOneMinusAlphaBar), ab.Select(v => Math.Sqrt(1.0 - v)), dtype);
        alphaBarPrev = Table(nameof(alphaBarPrev), abPrev, dtype);
        sqrtAlphaBarPrev = Table(nameof(sqrtAlphaBarPrev), abPrev.Select(Math.Sqrt), dtype);
        sqrtOneMinusAlphaBarPrev = Table(nameof(sqrtOneMinusAlphaBarPrev), abPrev.Select(v => Math.Sqrt(1.0 - v)), dtype);
        posteriorW0 = Table(nameof(posteriorW0), w0, dtype);
        posteriorWt = Table(nameof(posteriorWt), wt, dtype);
        posteriorVariance = Table(nameof(posteriorVariance), variance, dtype);

        RegisterComponents();
    }

    public NoiseScheduleKind Kind { get; }

    /// <summary>T, the number of diffusion steps.</summary>
    public int Steps { get; }

    /// <summary>Element type of the tables (changes with <c>.to(dtype)</c>).</summary>
    public ScalarType DType => alphaBar.dtype;

    /// <summary>Device of the tables (changes with <c>.to(device)</c>).</summary>
    public Device Device => alphaBar.device;

    /// <summary>β_t, <c>[T+1]</c>, row 0 = 0.</summary>
    public Tensor Beta => beta;

    /// <summary>α_t = 1 − β_t, <c>[T+1]</c>.</summary>
    public Tensor Alpha => alpha;

    /// <summary>ᾱ_t = ∏_{s≤t} α_s, <c>[T+1]</c>, row 0 = 1.</summary>
    public Tensor AlphaBar => alphaBar;

    /// <summary>√ᾱ_t, <c>[T+1]</c>.</summary>
    public Tensor SqrtAlphaBar => sqrtAlphaBar;

    /// <summary>√(1 − ᾱ_t), <c>[T+1]</c>.</summary>
    public Tensor SqrtOneMinusAlphaBar => sqrtOneMinusAlphaBar;

    /// <summary>ᾱ_{t−1}, <c>[T+1]</c> (ᾱ_0 := 1).</summary>
    public Tensor AlphaBarPrev => alphaBarPrev;

    /// <summary>√ᾱ_{t−1}, <c>[T+1]</c>.</summary>
    public Tensor SqrtAlphaBarPrev => sqrtAlphaBarPrev;

    /// <summary>√(1 − ᾱ_{t−1}), <c>[T+1]</c>.</summary>
    public Tensor SqrtOneMinusAlphaBarPrev => sqrtOneMinusAlphaBarPrev;

    /// <summary>w0_t = β_t √ᾱ_{t−1}/(1 − ᾱ_t), the forward posterior mean's weight on y_0, <c>[T+1]</c>.</summary>
    public Tensor PosteriorW0 => posteriorW0;

    /// <summary>wt_t = √α_t (1 − ᾱ_{t−1})/(1 − ᾱ_t), the forward posterior mean's weight on y_t, <c>[T+1]</c>.</summary>
    public Tensor PosteriorWt => posteriorWt;

    /// <summary>σ̃²_t = β_t (1 − ᾱ_{t−1})/(1 − ᾱ_t), the forward posterior variance, <c>[T+1]</c>; σ̃²_1 = 0.</summary>
    public Tensor PosteriorVariance => posteriorVariance;

    /// <summary>
    /// The DDIM update of step <paramref name="t"/> written as y_{t−1} = KeepY·y_t + KeepEps·ε̂, with
    /// KeepY = √(ᾱ_{t−1}/ᾱ_t) and KeepEps = √(1 − ᾱ_{t−1}) − KeepY·√(1 − ᾱ_t), computed in float64 on the host: a chain
    /// whose rows share t needs no table lookups on the device.
    /// </summary>
    public (double KeepY, double KeepEps) DdimCoefficients(int t)
    {
        if (t < 1 || t > Steps)
            throw new ArgumentOutOfRangeException(nameof(t), t, $"NoiseSchedule.DdimCoefficients: t must lie in 1..{Steps}.");
        return _ddimCoefficients[t];
    }

    /// <summary>
    /// Rows <paramref name="t"/> of a table as a column <c>[B, 1]</c>, ready to broadcast against <c>[B, d]</c>
    /// (improved-diffusion's <c>extract</c>). <paramref name="t"/> is an int64 vector <c>[B]</c> of timesteps in 1..T.
    /// </summary>
    /// <remarks>
    /// The range of t is checked when t lives on the CPU (a cheap read of its min and max). On an accelerator the check
    /// would be a host sync per call, so it is skipped there and an out-of-range t fails inside libtorch instead.
    /// </remarks>
    public Tensor Extract(Tensor table, Tensor t) // [T+1], [B] → [B, 1]
    {
        if (table.dim() != 1 || table.shape[0] != Steps + 1)
            throw new ArgumentException($"NoiseSchedule.Extract: the table must be one of this schedule's [{Steps + 1}] tables, got [{string.Join(", ", table.shape)}].", nameof(table));
        CheckTimesteps(t, nameof(Extract));
        return Column(table, t);
    }

    /// <summary><see cref="Extract"/> without the checks, for callers that validated t once already.</summary>
    internal static Tensor Column(Tensor table, Tensor t) => table.index_select(0, t).unsqueeze(1); // [T+1], [B] → [B, 1]

    /// <summary>Throws unless <paramref name="t"/> is an int64 vector of timesteps in 1..T (range checked on the CPU only).</summary>
    internal void CheckTimesteps(Tensor t, string caller)
    {
        if (t.dtype != ScalarType.Int64 || t.dim() != 1)
            throw new ArgumentException($"{caller}: timesteps t must be an int64 vector [B], got {t.dtype} [{string.Join(", ", t.shape)}].", nameof(t));
        if (t.device_type == DeviceType.CPU && t.shape[0] > 0)
        {
            long min = t.min().item<long>();
            long max = t.max().item<long>();
            if (min < 1 || max > Steps)
                throw new ArgumentOutOfRangeException(nameof(t), $"{caller}: timesteps must lie in 1..{Steps} (T = {Steps}), got values in {min}..{max}.");
        }
    }

    // TorchSharp 0.107's Module.to() and Dispose() walk only persistent buffers, so the tables are moved and freed here.
    protected override void _toEpilog(ScalarType? dtype, Device? device, bool non_blocking)
    {
        base._toEpilog(dtype, device, non_blocking);
        beta = MovedTable(nameof(beta), beta, dtype, device);
        alpha = MovedTable(nameof(alpha), alpha, dtype, device);
        alphaBar = MovedTable(nameof(alphaBar), alphaBar, dtype, device);
        sqrtAlphaBar = MovedTable(nameof(sqrtAlphaBar), sqrtAlphaBar, dtype, device);
        sqrtOneMinusAlphaBar = MovedTable(nameof(sqrtOneMinusAlphaBar), sqrtOneMinusAlphaBar, dtype, device);
        alphaBarPrev = MovedTable(nameof(alphaBarPrev), alphaBarPrev, dtype, device);
        sqrtAlphaBarPrev = MovedTable(nameof(sqrtAlphaBarPrev), sqrtAlphaBarPrev, dtype, device);
        sqrtOneMinusAlphaBarPrev = MovedTable(nameof(sqrtOneMinusAlphaBarPrev), sqrtOneMinusAlphaBarPrev, dtype, device);
        posteriorW0 = MovedTable(nameof(posteriorW0), posteriorW0, dtype, device);
        posteriorWt = MovedTable(nameof(posteriorWt), posteriorWt, dtype, device);
        posteriorVariance = MovedTable(nameof(posteriorVariance), posteriorVariance, dtype, device);
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            beta.Dispose();
            alpha.Dispose();
            alphaBar.Dispose();
            sqrtAlphaBar.Dispose();
            sqrtOneMinusAlphaBar.Dispose();
            alphaBarPrev.Dispose();
            sqrtAlphaBarPrev.Dispose();
            sqrtOneMinusAlphaBarPrev.Dispose();
            posteriorW0.Dispose();
            posteriorWt.Dispose();
            posteriorVariance.Dispose();
        }
        base.Dispose(disposing);
    }

    Tensor MovedTable(string name, Tensor table, ScalarType? dtype, Device? device)
    {
        var targetType = dtype ?? table.dtype;
        var targetDevice = device ?? table.device;
        if (table.dtype == targetType && SameDevice(table.device, targetDevice)) return table;
        // Rebuilt from the float64 host values, so a float32 schedule cast to float64 is exact, not float32-rounded.
        using var float64Table = tensor(_hostTables[name], dtype: ScalarType.Float64);
        var moved = float64Table.to(targetType, targetDevice).DetachFromDisposeScope();
        table.Dispose();
        ConditionallyRegisterBuffer(name, moved, persistent: false);
        return moved;
    }

    /// <summary>Device equality up to the CPU index and CUDA's "current device" index −1 ≡ 0 (Device has no equality of its own).</summary>
    internal static bool SameDevice(Device a, Device b)
        => a.type == b.type && (a.type != DeviceType.CUDA || Math.Max(a.index, 0) == Math.Max(b.index, 0));

    Tensor Table(string name, IEnumerable<double> values, ScalarType dtype)
    {
        _hostTables[name] = values.ToArray();
        using var float64Table = tensor(_hostTables[name], dtype: ScalarType.Float64);
        var table = float64Table.to(dtype).DetachFromDisposeScope();
        register_buffer(name, table, persistent: false);
        return table;
    }

    static double[] LinearBetas(int steps)
    {
        // torch.linspace(1e-4, 0.02, T) in float64: a single step takes the start value.
        var betas = new double[steps];
        for (int i = 0; i < steps; i++)
            betas[i] = steps == 1 ? LinearBetaStart : LinearBetaStart + (LinearBetaEnd - LinearBetaStart) * i / (steps - 1);
        return betas;
    }

    static double[] CosineBetas(int steps)
    {
        double F(double t) => Math.Pow(Math.Cos((t / steps + CosineOffset) / (1 + CosineOffset) * Math.PI / 2), 2);
        var betas = new double[steps];
        for (int t = 1; t <= steps; t++)
            betas[t - 1] = Math.Min(1.0 - F(t) / F(t - 1), CosineMaxBeta);
        return betas;
    }
}
