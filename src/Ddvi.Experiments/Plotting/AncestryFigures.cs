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
        PngPath.ValidatedFullPath(path);
        LatentScatter.RequireImageSize(size, size);
        using var plot = LatentScatter.BuildPlot(title, x, y, labels, markerSize, legend: true, xLabel: "z₁", yLabel: "z₂", labelNames: labelNames);
        if (centres is { } c)
        {
            if (c.X.Length != c.Y.Length)
                throw new ArgumentException($"Ancestry figure '{title}': {c.X.Length} centre x values but {c.Y.Length} y values.", nameof(centres));
            plot.Add.Markers(c.X.Select(v => (double)v).ToArray(), c.Y.Select(v => (double)v).ToArray(), MarkerShape.Cross, 14, Colors.Black);
            plot.Legend.ManualItems.Add(new LegendItem { LabelText = "learned prior centres", MarkerShape = MarkerShape.Cross, MarkerSize = 12, MarkerColor = Colors.Black });
        }
        // A legend with many entries needs room: widen the image rather than squeeze the panel.
        int width = size + (labelNames.Count > 12 ? 260 : 160);
        Ddvi.IO.AtomicFile.WriteAllBytes(path, plot.GetImageBytes(width, size, ImageFormat.Png));
    }
}
