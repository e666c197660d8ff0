using ScottPlot;

namespace Ddvi.Plotting;

/// <summary>
/// The figures of <c>ddvi ancestry</c>: one method's 2-D latents coloured by a labelling (super-population, population
/// or fitted cluster) with the labels' names in the legend, optionally with a model's learned prior centres drawn over
/// them as black crosses. Written atomically as PNG.
/// </summary>
public static class AncestryFigures
{
    /// <param name="path">The PNG to write.</param>
    /// <param name="x">First latent coordinate of each sample.</param>
    /// <param name="y">Second latent coordinate of each sample.</param>
    /// <param name="labels">Each sample's label, an index into <paramref name="labelNames"/>.</param>
    /// <param name="labelNames">The legend's names of the labels.</param>
    /// <param name="title">The panel's title.</param>
    /// <param name="centres">Points to mark with crosses (e.g. learned prior centres), or null.</param>
    public static void SaveLatents(string path, float[] x, float[] y, int[] labels, IReadOnlyList<string> labelNames, string title,
        (float[] X, float[] Y)? centres = null, int size = 900, float markerSize = 3)
    {
        ArgumentNullException.ThrowIfNull(labelNames);
        ArgumentNullException.ThrowIfNull(x);
        ArgumentNullException.ThrowIfNull(y);
        PngPath.ValidatedFullPath(path);
        LatentScatter.RequireImageSize(size, size);
        // A few far samples (an encoder's outliers) would shrink the rest into a corner: the axes span the bulk, and each
        // sample beyond them is drawn on the edge it lies past, as an open circle in its colour, and counted in the legend.
        var (xLow, xHigh) = ViewLimits(x);
        var (yLow, yHigh) = ViewLimits(y);
        var beyond = new bool[x.Length];
        var shownX = new float[x.Length];
        var shownY = new float[y.Length];
        for (int i = 0; i < x.Length && i < y.Length; i++)
        {
            shownX[i] = Math.Clamp(x[i], (float)xLow, (float)xHigh);
            shownY[i] = Math.Clamp(y[i], (float)yLow, (float)yHigh);
            beyond[i] = float.IsFinite(x[i]) && float.IsFinite(y[i]) && (shownX[i] != x[i] || shownY[i] != y[i]);
        }
        int outside = beyond.Count(b => b);
        using var plot = LatentScatter.BuildPlot(title,
            [.. x.Select((v, i) => i < beyond.Length && beyond[i] ? float.NaN : v)], y, labels, markerSize, legend: true,
            xLabel: "z₁", yLabel: "z₂", labelNames: labelNames);
        if (outside > 0)
        {
            var colours = LatentScatter.LabelColours(labels);
            foreach (int label in labels.Where((_, i) => beyond[i]).Distinct())
            {
                var members = Enumerable.Range(0, x.Length).Where(i => beyond[i] && labels[i] == label).ToArray();
                plot.Add.Markers(members.Select(i => (double)shownX[i]).ToArray(), members.Select(i => (double)shownY[i]).ToArray(),
                    MarkerShape.OpenCircle, markerSize * 2.5f, colours(label));
            }
            plot.Legend.ManualItems.Add(new LegendItem
            {
                LabelText = $"{outside} beyond the axes, on the edge", MarkerShape = MarkerShape.OpenCircle, MarkerSize = 10, MarkerColor = Colors.Gray,
            });
        }
        if (centres is { } c)
        {
            if (c.X.Length != c.Y.Length)
                throw new ArgumentException($"Ancestry figure '{title}': {c.X.Length} centre x values but {c.Y.Length} y values.", nameof(centres));
            plot.Add.Markers(c.X.Select(v => (double)v).ToArray(), c.Y.Select(v => (double)v).ToArray(), MarkerShape.Cross, 14, Colors.Black);
            plot.Legend.ManualItems.Add(new LegendItem { LabelText = "learned prior centres", MarkerShape = MarkerShape.Cross, MarkerSize = 12, MarkerColor = Colors.Black });
        }
        if (outside > 0)
        {
            double xPad = (xHigh - xLow) * 0.02, yPad = (yHigh - yLow) * 0.02;
            plot.Axes.SetLimits(xLow - xPad, xHigh + xPad, yLow - yPad, yHigh + yPad);
        }
        // A legend with many entries needs room: widen the image rather than squeeze the panel.
        int width = size + (labelNames.Count > 12 ? 260 : 160);
        Ddvi.IO.AtomicFile.WriteAllBytes(path, plot.GetImageBytes(width, size, ImageFormat.Png));
    }

    /// <summary>
    /// The span of one coordinate the figure shows: every finite value when none lies far out; otherwise the 0.5th to the
    /// 99.5th percentile widened by a quarter of its width on each side (a value beyond that is an outlier drawn on the
    /// edge). Far out means beyond that widened span.
    /// </summary>
    public static (double Low, double High) ViewLimits(IReadOnlyList<float> values)
    {
        var finite = values.Where(float.IsFinite).Select(v => (double)v).Order().ToArray();
        if (finite.Length == 0) return (-1, 1);
        double Quantile(double q)
        {
            double position = q * (finite.Length - 1);
            int below = (int)Math.Floor(position);
            int above = Math.Min(below + 1, finite.Length - 1);
            return finite[below] + (position - below) * (finite[above] - finite[below]);
        }
        double low = Quantile(0.005), high = Quantile(0.995), margin = (high - low) * 0.25;
        if (!(margin > 0) || (finite[0] >= low - margin && finite[^1] <= high + margin)) return (finite[0], finite[^1]);
        return (Math.Max(finite[0], low - margin), Math.Min(finite[^1], high + margin));
    }
}
