using ScottPlot;

namespace Ddvi.Plotting;

/// <summary>One cell of a panel figure: a title and labelled 2-D points; a cell without points draws only its title.</summary>
public sealed record PanelCell(string Title, float[] X, float[] Y, int[] Labels)
{
    public static PanelCell Empty(string title) => new(title, [], [], []);
}

/// <summary>
/// A grid of latent scatter plots in one PNG, like the paper's latent-space figure (rows = priors, columns = the
/// prior itself and each method's test latents). A point's colour is its label's entry in the Category10 palette
/// (label mod 10), the same in every cell so classes can be followed across the grid; axes have equal units;
/// non-finite points are left out. Written atomically.
/// </summary>
public static class PanelFigure
{
    public const int DefaultCellSize = 360;
    public const float DefaultMarkerSize = 1.5f;

    /// <summary>Draws <paramref name="rows"/> (each with the same number of cells) as a grid of square cells of <paramref name="cellSize"/> pixels.</summary>
    public static void Save(string path, IReadOnlyList<IReadOnlyList<PanelCell>> rows, int cellSize = DefaultCellSize, float markerSize = DefaultMarkerSize)
    {
        PngPath.ValidatedFullPath(path);
        ArgumentNullException.ThrowIfNull(rows);
        if (rows.Count == 0 || rows[0].Count == 0)
            throw new ArgumentException("Panel figure: no cells to draw; need at least one row with one cell.", nameof(rows));
        int columns = rows[0].Count;
        if (rows.FirstOrDefault(r => r.Count != columns) is { } ragged)
            throw new ArgumentException($"Panel figure: every row must have {columns} cells, got a row with {ragged.Count}.", nameof(rows));
        if (!(markerSize > 0))
            throw new ArgumentOutOfRangeException(nameof(markerSize), markerSize, "Panel figure: marker size must be positive.");
        LatentScatter.RequireImageSize(cellSize * columns, cellSize * rows.Count);

        var plots = rows.SelectMany(r => r).Select(cell => BuildCell(cell, markerSize)).ToList();
        try
        {
            var figure = new Multiplot(plots[0]) { Layout = new ScottPlot.MultiplotLayouts.Grid(rows.Count, columns) };
            foreach (var plot in plots.Skip(1)) figure.AddPlot(plot);
            using var image = figure.Render(cellSize * columns, cellSize * rows.Count);
            Ddvi.IO.AtomicFile.WriteAllBytes(path, image.GetImageBytes(ImageFormat.Png));
        }
        finally
        {
            foreach (var plot in plots) plot.Dispose();
        }
    }

    private static Plot BuildCell(PanelCell cell, float markerSize)
    {
        var plot = LatentScatter.BuildPlot(cell.Title, cell.X, cell.Y, cell.Labels, markerSize, legend: false);
        plot.Title(WrapTitle(cell.Title), size: 14);
        return plot;
    }

    /// <summary>Characters of a 14-point bold title that fit the width of a default cell.</summary>
    public const int TitleLineLength = 40;

    /// <summary>
    /// A title broken into lines of at most <paramref name="lineLength"/> characters at spaces (a word longer than that
    /// keeps its own line), so long labels such as "ddvi [ddvi.sleep_steps 10, epochs 300] (seed 0)" do not run into the
    /// next cell's title.
    /// </summary>
    public static string WrapTitle(string title, int lineLength = TitleLineLength)
    {
        ArgumentNullException.ThrowIfNull(title);
        if (title.Length <= lineLength) return title;
        var lines = new List<string>();
        var line = new System.Text.StringBuilder();
        foreach (var word in title.Split(' ', StringSplitOptions.RemoveEmptyEntries))
        {
            if (line.Length > 0 && line.Length + 1 + word.Length > lineLength)
            {
                lines.Add(line.ToString());
                line.Clear();
            }
            if (line.Length > 0) line.Append(' ');
            line.Append(word);
        }
        if (line.Length > 0) lines.Add(line.ToString());
        return string.Join('\n', lines);
    }
}
