using ScottPlot;

namespace Ddvi.Plotting;

/// <summary>
/// Training curves: one small panel per loss term against the epoch (1, 2, …, n for a series of n values), each
/// with its own y scale (terms differ by orders of magnitude), in a grid, written atomically as PNG.
/// Non-finite values (a diverged step, a term not logged that epoch) are left out and the line joins its
/// neighbours; a series with one finite value shows as a single marker.
/// </summary>
public static class LossCurves
{
    /// <param name="path">Output .png path.</param>
    /// <param name="seriesByName">Loss term name → value per epoch; at least one series, in panel order.</param>
    /// <param name="xLabel">x-axis label (e.g. "epoch").</param>
    /// <param name="title">Prefix of every panel's title.</param>
    /// <param name="width">Width of one panel in pixels.</param>
    /// <param name="height">Height of one panel in pixels.</param>
    public static void Save(string path, IReadOnlyDictionary<string, IReadOnlyList<double>> seriesByName, string xLabel,
        string title = "", int width = 450, int height = 300)
    {
        PngPath.ValidatedFullPath(path);
        ArgumentNullException.ThrowIfNull(seriesByName);
        if (seriesByName.Count == 0)
            throw new ArgumentException("Loss curves: no series given; need at least one loss term.", nameof(seriesByName));
        LatentScatter.RequireImageSize(width, height);

        var plots = new List<Plot>();
        try
        {
            int index = 0;
            foreach (var (name, values) in seriesByName)
            {
                if (values is null)
                    throw new ArgumentException($"Loss curves: series '{name}' is null.", nameof(seriesByName));
                var plot = BundledFont.NewPlot();
                plots.Add(plot);
                plot.Title(string.IsNullOrEmpty(title) ? name : $"{title}: {name}", size: 12);
                plot.XLabel(xLabel, size: 11);
                var xs = new List<double>();
                var ys = new List<double>();
                for (int epoch = 0; epoch < values.Count; epoch++)
                {
                    if (!double.IsFinite(values[epoch]))
                        continue;
                    xs.Add(epoch + 1);
                    ys.Add(values[epoch]);
                }
                var colour = Colors.Category10[index++ % Colors.Category10.Length];
                if (xs.Count == 0)
                    continue;
                var line = plot.Add.Scatter(xs.ToArray(), ys.ToArray(), colour);
                line.MarkerSize = 4;
                line.LineWidth = 1.5f;
            }

            int columns = Math.Min(3, plots.Count);
            int rows = (plots.Count + columns - 1) / columns;
            var figure = new Multiplot(plots[0]) { Layout = new ScottPlot.MultiplotLayouts.Grid(rows, columns) };
            foreach (var plot in plots.Skip(1)) figure.AddPlot(plot);
            using var image = figure.Render(columns * width, rows * height);
            Ddvi.IO.AtomicFile.WriteAllBytes(path, image.GetImageBytes(ImageFormat.Png));
        }
        finally
        {
            foreach (var plot in plots) plot.Dispose();
        }
    }
}
