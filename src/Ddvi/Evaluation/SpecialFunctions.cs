namespace Ddvi.Evaluation;

/// <summary>
/// The special functions behind <see cref="Confidence"/>: ln Γ (Lanczos approximation, g = 7, nine
/// coefficients; about 1e-15 relative) and the regularised incomplete beta function I_x(a, b)
/// (continued fraction, modified Lentz method).
/// </summary>
public static class SpecialFunctions
{
    /// <summary>I_x(a, b) = B(x; a, b) / B(a, b) for 0 ≤ x ≤ 1, a, b &gt; 0.</summary>
    public static double RegularisedIncompleteBeta(double x, double a, double b)
    {
        if (!(a > 0) || !(b > 0) || double.IsNaN(x))
            throw new ArgumentOutOfRangeException(nameof(x), $"Incomplete beta: need a, b > 0 and a number x, got x = {x}, a = {a}, b = {b}.");
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
    public static double LogGamma(double z)
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
