using ScottPlot;

namespace Ddvi.Plotting;

/// <summary>
/// Training curves: one line per loss term against the epoch (1, 2, …, n for a series of n values), written
/// atomically as PNG. Non-finite values (a diverged step, a term not logged that epoch) are left out and the
/// line joins its neighbours; a series with one finite value shows as a single marker. Linear y axis.
/// </summary>
public static class LossCurves
{
    /// <param name="path">Output .png path.</param>
    /// <param name="seriesByName">Loss term name → value per epoch; at least one series, in legend order.</param>
    /// <param name="xLabel">x-axis label (e.g. "epoch").</param>
    /// <param name="title">Plot title.</param>
    /// <param name="width">Image width in pixels.</param>
    /// <param name="height">Image height in pixels.</param>
    public static void Save(string path, IReadOnlyDictionary<string, IReadOnlyList<double>> seriesByName, string xLabel,
        string title = "Training losses", int width = 900, int height = 600)
    {
        PngPath.ValidatedFullPath(path);
        ArgumentNullException.ThrowIfNull(seriesByName);
        if (seriesByName.Count == 0)
            throw new ArgumentException("Loss curves: no series given; need at least one loss term.", nameof(seriesByName));
        LatentScatter.RequireImageSize(width, height);

        using var plot = new Plot();
        plot.Title(title);
        plot.XLabel(xLabel);
        plot.YLabel("loss");
        int index = 0;
        foreach (var (name, values) in seriesByName)
        {
            if (values is null)
                throw new ArgumentException($"Loss curves: series '{name}' is null.", nameof(seriesByName));
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
            line.LegendText = name;
            line.MarkerSize = 4;
            line.LineWidth = 1.5f;
        }
        plot.ShowLegend(Edge.Right);
        Ddvi.IO.AtomicFile.WriteAllBytes(path, plot.GetImageBytes(width, height, ImageFormat.Png));
    }
}
