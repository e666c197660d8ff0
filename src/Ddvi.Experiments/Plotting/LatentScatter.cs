using ScottPlot;
using Tensor = TorchSharp.torch.Tensor;

namespace Ddvi.Plotting;

/// <summary>
/// Scatter plots of latents coloured by class, as the paper's latent-space figures show them
/// (prior samples next to the encoded test set). 2-D latents are drawn as they are; latents of another dimension
/// through a <see cref="LatentProjection"/> (principal components, or z against a jitter for d = 1), which the
/// tensor overloads fit themselves and name in the title and on the axes. Labels 0–9 take the Category10 palette, as the
/// paper's figures do; a panel with labels outside 0–9 (EMNIST's 26 letters or 47 classes) spreads the Turbo colour
/// map over its label range instead, so no two labels share a colour; axes have equal units so shapes are not distorted; points with a
/// non-finite coordinate are left out. Files are written atomically as PNG.
/// </summary>
public static class LatentScatter
{
    public const int DefaultPanelSize = 800;
    public const float DefaultMarkerSize = 2;

    /// <summary>One panel: points (x_i, y_i) with integer labels.</summary>
    /// <param name="axes">The projection the points come from, for its axis labels; null (or 2-D) → no axis labels.</param>
    public static void Save(string path, float[] x, float[] y, int[] labels, string title,
        int width = DefaultPanelSize, int height = DefaultPanelSize, float markerSize = DefaultMarkerSize, LatentProjection? axes = null)
    {
        PngPath.ValidatedFullPath(path);
        RequireImageSize(width, height);
        using var plot = BuildPlot(title, x, y, labels, markerSize, xLabel: axes?.XLabel, yLabel: axes?.YLabel);
        Ddvi.IO.AtomicFile.WriteAllBytes(path, plot.GetImageBytes(width, height, ImageFormat.Png));
    }

    /// <summary>Two panels side by side in one PNG (e.g. prior samples left, learned latents right); each panel is <paramref name="panelSize"/> square.</summary>
    /// <param name="axes">The projection both panels' points come from, for the axis labels; null (or 2-D) → none.</param>
    public static void SaveSideBySide(string path,
        (string Title, float[] X, float[] Y, int[] Labels) left,
        (string Title, float[] X, float[] Y, int[] Labels) right,
        int panelSize = DefaultPanelSize, float markerSize = DefaultMarkerSize, LatentProjection? axes = null)
    {
        PngPath.ValidatedFullPath(path);
        RequireImageSize(panelSize, panelSize);
        using var leftPlot = BuildPlot(left.Title, left.X, left.Y, left.Labels, markerSize, xLabel: axes?.XLabel, yLabel: axes?.YLabel);
        using var rightPlot = BuildPlot(right.Title, right.X, right.Y, right.Labels, markerSize, xLabel: axes?.XLabel, yLabel: axes?.YLabel);
        // The Multiplot(Plot) constructor: the parameterless one starts with an empty plot of its own.
        var figure = new Multiplot(leftPlot) { Layout = new ScottPlot.MultiplotLayouts.Columns() };
        figure.AddPlot(rightPlot);
        using var image = figure.Render(2 * panelSize, panelSize);
        Ddvi.IO.AtomicFile.WriteAllBytes(path, image.GetImageBytes(ImageFormat.Png));
    }

    /// <summary>
    /// Tensor overload: latents <c>[N, d]</c> of any dimension and labels <c>[N]</c>, copied to the CPU once. For d ≠ 2
    /// the points are those of <see cref="LatentProjection.Fit"/> on these latents, and the title and axes say so.
    /// </summary>
    public static void Save(string path, Tensor latents, Tensor labels, string title,
        int width = DefaultPanelSize, int height = DefaultPanelSize, float markerSize = DefaultMarkerSize)
    {
        PngPath.ValidatedFullPath(path);
        RequireImageSize(width, height);
        using var plot = BuildPlot(latents, labels, title, markerSize);
        Ddvi.IO.AtomicFile.WriteAllBytes(path, plot.GetImageBytes(width, height, ImageFormat.Png));
    }

    /// <summary>The panel of the tensor overloads: latents <c>[N, d]</c> through <see cref="LatentProjection.Fit"/>, titled and labelled by it.</summary>
    internal static Plot BuildPlot(Tensor latents, Tensor labels, string title, float markerSize)
    {
        RequireLabels(latents, labels);
        var projection = LatentProjection.Fit(latents);
        var (x, y) = projection.Apply(latents);
        return BuildPlot(projection.Title(title), x, y, ToLabels(labels), markerSize, xLabel: projection.XLabel, yLabel: projection.YLabel);
    }

    /// <summary>
    /// Tensor overload of <see cref="SaveSideBySide(string, ValueTuple{string, float[], float[], int[]}, ValueTuple{string, float[], float[], int[]}, int, float, LatentProjection)"/>:
    /// latents <c>[N, d]</c>, labels <c>[N]</c>. For d ≠ 2 both panels share one projection, fitted on their points together, and say so.
    /// </summary>
    public static void SaveSideBySide(string path,
        (string Title, Tensor Latents, Tensor Labels) left,
        (string Title, Tensor Latents, Tensor Labels) right,
        int panelSize = DefaultPanelSize, float markerSize = DefaultMarkerSize)
    {
        RequireLabels(left.Latents, left.Labels);
        RequireLabels(right.Latents, right.Labels);
        if (left.Latents.shape[1] != right.Latents.shape[1])
            throw new ArgumentException(
                $"Latent scatter: the panels' latents have {left.Latents.shape[1]} and {right.Latents.shape[1]} dimensions; side-by-side panels share their axes.");
        LatentProjection projection;
        using (TorchSharp.torch.NewDisposeScope())
        {
            var both = TorchSharp.torch.cat([left.Latents.detach().cpu().to(TorchSharp.torch.float64), right.Latents.detach().cpu().to(TorchSharp.torch.float64)], 0);
            projection = LatentProjection.Fit(both, "latents, both panels");
        }
        var (leftX, leftY) = projection.Apply(left.Latents);
        var (rightX, rightY) = projection.Apply(right.Latents);
        SaveSideBySide(path, (projection.Title(left.Title), leftX, leftY, ToLabels(left.Labels)),
            (projection.Title(right.Title), rightX, rightY, ToLabels(right.Labels)), panelSize, markerSize, projection);
    }

    /// <summary>A scatter of latents coloured by label value (see <see cref="LabelColours"/>); axis labels only when given.</summary>
    internal static Plot BuildPlot(string title, float[] x, float[] y, int[] labels, float markerSize, bool legend = true,
        string? xLabel = null, string? yLabel = null, IReadOnlyList<string>? labelNames = null)
    {
        ArgumentNullException.ThrowIfNull(x);
        ArgumentNullException.ThrowIfNull(y);
        ArgumentNullException.ThrowIfNull(labels);
        if (x.Length != y.Length || x.Length != labels.Length)
            throw new ArgumentException(
                $"Latent scatter '{title}': x, y and labels must have the same length, got {x.Length}, {y.Length} and {labels.Length}.");
        if (!(markerSize > 0))
            throw new ArgumentOutOfRangeException(nameof(markerSize), markerSize, "Latent scatter: marker size must be positive.");

        var plot = BundledFont.NewPlot();
        plot.Title(title);
        if (xLabel is not null) plot.XLabel(xLabel);
        if (yLabel is not null) plot.YLabel(yLabel);
        var legendItems = new List<LegendItem>();
        var colours = LabelColours(labels);
        foreach (int label in labels.Distinct().Order())
        {
            var xs = new List<double>();
            var ys = new List<double>();
            for (int i = 0; i < labels.Length; i++)
            {
                if (labels[i] != label || !float.IsFinite(x[i]) || !float.IsFinite(y[i]))
                    continue;
                xs.Add(x[i]);
                ys.Add(y[i]);
            }
            var colour = colours(label);
            if (xs.Count > 0)
                plot.Add.Markers(xs.ToArray(), ys.ToArray(), MarkerShape.FilledCircle, markerSize, colour);
            // Manual legend entries: the plotted markers are too small to read in a legend.
            legendItems.Add(new LegendItem
            {
                LabelText = labelNames is not null && label >= 0 && label < labelNames.Count
                    ? labelNames[label]
                    : label.ToString(System.Globalization.CultureInfo.InvariantCulture),
                MarkerShape = MarkerShape.FilledCircle,
                MarkerSize = 10,
                MarkerFillColor = colour,
                MarkerColor = colour,
            });
        }
        if (legend && legendItems.Count > 0)
        {
            plot.ShowLegend(Edge.Right);
            plot.Legend.ManualItems.AddRange(legendItems);
        }
        plot.Axes.SquareUnits();
        return plot;
    }

    static void RequireLabels(Tensor latents, Tensor labels)
    {
        if (latents.dim() != 2 || latents.shape[1] < 1)
            throw new ArgumentException($"Latent scatter: latents must be [N, d], got [{string.Join(", ", latents.shape)}].", nameof(latents));
        if (labels.dim() != 1 || labels.shape[0] != latents.shape[0])
            throw new ArgumentException(
                $"Latent scatter: labels must be [{latents.shape[0]}], got [{string.Join(", ", labels.shape)}].", nameof(labels));
    }

    static int[] ToLabels(Tensor labels)
    {
        using var scope = TorchSharp.torch.NewDisposeScope();
        return labels.detach().cpu().to(TorchSharp.torch.int32).contiguous().data<int>().ToArray();
    }

    /// <summary>
    /// The colour of each label of one panel: Category10's when every label lies in 0–9 (so a label keeps its colour
    /// from figure to figure), else the Turbo colour map from the smallest label to the largest, where Category10 would
    /// give labels ten apart the same colour.
    /// </summary>
    internal static Func<int, Color> LabelColours(int[] labels)
    {
        if (labels.Length == 0 || (labels.Min() >= 0 && labels.Max() < 10))
            return label => Colors.Category10[label];
        int lowest = labels.Min(), range = Math.Max(1, labels.Max() - lowest);
        var turbo = new ScottPlot.Colormaps.Turbo();
        // Both ends of Turbo are nearly black, hard to tell apart: keep to 0.05–0.95.
        return label => turbo.GetColor(0.05 + 0.9 * (label - lowest) / range);
    }

    internal static void RequireImageSize(int width, int height)
    {
        if (width < 16 || height < 16 || width > 16_384 || height > 16_384)
            throw new ArgumentOutOfRangeException(nameof(width), $"Plot size {width}×{height} px: each side must be between 16 and 16384.");
    }
}
