namespace Ddvi.Evaluation;

/// <summary>A mean with its 95% Student-t half width, as the paper's tables report results over seeds.</summary>
/// <param name="Mean">Sample mean.</param>
/// <param name="HalfWidth95">t_{0.975, n−1} · s / √n; NaN when <paramref name="Count"/> is 1 (no spread to estimate).</param>
/// <param name="Count">Number of values n.</param>
public readonly record struct ConfidenceInterval(double Mean, double HalfWidth95, int Count)
{
    public double Lower => Mean - HalfWidth95;
    public double Upper => Mean + HalfWidth95;

    /// <summary>"mean ± half width" with the given numeric format (default four significant decimals).</summary>
    public string Format(string numberFormat = "G4") =>
        $"{Mean.ToString(numberFormat, System.Globalization.CultureInfo.InvariantCulture)} ± " +
        $"{HalfWidth95.ToString(numberFormat, System.Globalization.CultureInfo.InvariantCulture)}";

    public override string ToString() => Format();
}

/// <summary>
/// Student-t confidence intervals (REFERENCE.md §7: tables give mean ± 95% interval over seeds):
/// mean ± t_{0.975, n−1} · s / √n with s the sample standard deviation (denominator n − 1).
/// </summary>
/// <remarks>
/// The t quantile is computed, not tabled: for p &gt; ½, F(t) = 1 − ½ I_{ν/(ν+t²)}(ν/2, ½) with I the
/// regularised incomplete beta function, so the quantile solves I_x(ν/2, ½) = 2(1 − p) for x by bisection
/// (I_x is increasing in x) and returns t = √(ν (1 − x) / x). I_x is evaluated by its continued fraction
/// with the modified Lentz method and ln Γ by the Lanczos approximation; agreement with exact values is
/// about 1e-12.
/// </remarks>
public static class Confidence
{
    /// <summary>Mean ± 95% Student-t half width of <paramref name="values"/> (finite, at least one).</summary>
    public static ConfidenceInterval StudentT(IReadOnlyList<double> values)
    {
        ArgumentNullException.ThrowIfNull(values);
        if (values.Count == 0)
            throw new ArgumentException("Confidence interval: no values given; need at least one.", nameof(values));
        if (values.Any(v => !double.IsFinite(v)))
            throw new ArgumentException($"Confidence interval: values must be finite, got [{string.Join(", ", values)}].", nameof(values));

        int n = values.Count;
        double mean = values.Average();
        if (n == 1)
            return new ConfidenceInterval(mean, double.NaN, 1);
        double variance = values.Sum(v => (v - mean) * (v - mean)) / (n - 1);
        double halfWidth = StudentTQuantile(0.975, n - 1) * Math.Sqrt(variance / n);
        return new ConfidenceInterval(mean, halfWidth, n);
    }

    /// <summary>The p-quantile of Student's t distribution with ν degrees of freedom (ν &gt; 0, real).</summary>
    public static double StudentTQuantile(double probability, double degreesOfFreedom)
    {
        if (!(probability > 0 && probability < 1))
            throw new ArgumentOutOfRangeException(nameof(probability), probability, "Student-t quantile: probability must lie in (0, 1).");
        if (!(degreesOfFreedom > 0) || double.IsInfinity(degreesOfFreedom))
            throw new ArgumentOutOfRangeException(nameof(degreesOfFreedom), degreesOfFreedom, "Student-t quantile: degrees of freedom must be positive and finite.");
        if (probability == 0.5)
            return 0;
        if (probability < 0.5)
            return -StudentTQuantile(1 - probability, degreesOfFreedom);

        double a = degreesOfFreedom / 2;
        double target = 2 * (1 - probability);
        double low = 0, high = 1;
        // Bisection to the last representable x: about 60 steps for the x of interest, never more than ~1100.
        while (true)
        {
            double middle = 0.5 * (low + high);
            if (middle <= low || middle >= high)
                break;
            if (RegularisedIncompleteBeta(middle, a, 0.5) < target)
                low = middle;
            else
                high = middle;
        }
        double x = 0.5 * (low + high);
        return Math.Sqrt(degreesOfFreedom * (1 - x) / x);
    }

    /// <summary>I_x(a, b) = B(x; a, b) / B(a, b) for 0 ≤ x ≤ 1, a, b &gt; 0.</summary>
    internal static double RegularisedIncompleteBeta(double x, double a, double b)
    {
        if (x <= 0) return 0;
        if (x >= 1) return 1;
        double logFront = LogGamma(a + b) - LogGamma(a) - LogGamma(b) + a * Math.Log(x) + b * Math.Log(1 - x);
        // The continued fraction converges fast for x < (a + 1)/(a + b + 2); use I_x(a, b) = 1 − I_{1−x}(b, a) beyond.
        return x < (a + 1) / (a + b + 2)
            ? Math.Exp(logFront) * BetaContinuedFraction(x, a, b) / a
            : 1 - Math.Exp(logFront) * BetaContinuedFraction(1 - x, b, a) / b;
    }

    /// <summary>The continued fraction of the incomplete beta function, modified Lentz method.</summary>
    static double BetaContinuedFraction(double x, double a, double b)
    {
        const double tiny = 1e-300;
        const double epsilon = 1e-16;
        double c = 1;
        double d = 1 - (a + b) * x / (a + 1);
        if (Math.Abs(d) < tiny) d = tiny;
        d = 1 / d;
        double result = d;
        for (int m = 1; m <= 10_000; m++)
        {
            // Even step: d_{2m} = m (b − m) x / ((a + 2m − 1)(a + 2m)).
            double numerator = m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m));
            d = 1 + numerator * d;
            if (Math.Abs(d) < tiny) d = tiny;
            c = 1 + numerator / c;
            if (Math.Abs(c) < tiny) c = tiny;
            d = 1 / d;
            result *= d * c;

            // Odd step: d_{2m+1} = −(a + m)(a + b + m) x / ((a + 2m)(a + 2m + 1)).
            numerator = -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1));
            d = 1 + numerator * d;
            if (Math.Abs(d) < tiny) d = tiny;
            c = 1 + numerator / c;
            if (Math.Abs(c) < tiny) c = tiny;
            d = 1 / d;
            double delta = d * c;
            result *= delta;
            if (Math.Abs(delta - 1) < epsilon)
                return result;
        }
        throw new InvalidOperationException($"Incomplete beta continued fraction did not converge for x = {x}, a = {a}, b = {b}.");
    }

    static readonly double[] LanczosCoefficients =
    [
        0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313,
        -176.61502916214059, 12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6,
        1.5056327351493116e-7,
    ];

    /// <summary>ln Γ(z) for z &gt; 0 (Lanczos, g = 7), using Γ(z)Γ(1 − z) = π / sin(πz) below ½.</summary>
    internal static double LogGamma(double z)
    {
        if (z < 0.5)
            return Math.Log(Math.PI / Math.Sin(Math.PI * z)) - LogGamma(1 - z);
        z -= 1;
        double series = LanczosCoefficients[0];
        for (int i = 1; i < LanczosCoefficients.Length; i++)
            series += LanczosCoefficients[i] / (z + i);
        double t = z + 7.5;
        return 0.5 * Math.Log(2 * Math.PI) + (z + 0.5) * Math.Log(t) - t + Math.Log(series);
    }
}
