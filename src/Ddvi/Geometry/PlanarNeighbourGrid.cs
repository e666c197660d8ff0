using static TorchSharp.torch;

namespace Ddvi.Geometry;

/// <summary>
/// Exact k-nearest-neighbour search among 2-D points through a uniform grid of buckets: a query scans the rings of cells
/// around its own until the k-th best distance is no larger than the distance to any cell not yet scanned. For the
/// 2-D latents of this project that visits a few dozen points per query instead of all N, so 10,000 queries against
/// 60,000 training latents take milliseconds instead of the seconds a full distance matrix costs.
/// </summary>
internal sealed class PlanarNeighbourGrid
{
    // About this many points per cell on average: fewer cells to visit against fewer points per cell.
    private const double PointsPerCell = 4;

    private readonly double[] _x, _y;
    private readonly double _minX, _minY, _cellSize;
    private readonly int _columns, _rows;
    private readonly int[] _cellStart; // points of cell c are _order[_cellStart[c] .. _cellStart[c + 1])
    private readonly int[] _order;
    private readonly double[] _sortedX, _sortedY; // coordinates in cell order: _sortedX[s] = _x[_order[s]]

    public PlanarNeighbourGrid(double[] x, double[] y)
    {
        if (x.Length != y.Length || x.Length == 0) throw new ArgumentException("need one or more points with two coordinates each");
        _x = x;
        _y = y;
        _minX = x.Min();
        _minY = y.Min();
        double width = Math.Max(x.Max() - _minX, 1e-12), height = Math.Max(y.Max() - _minY, 1e-12);
        // Square cells, sized so that the bounding box holds about N / PointsPerCell of them.
        _cellSize = Math.Sqrt(width * height * PointsPerCell / x.Length);
        _cellSize = Math.Max(_cellSize, Math.Max(width, height) / 4096);
        _columns = (int)Math.Floor(width / _cellSize) + 1;
        _rows = (int)Math.Floor(height / _cellSize) + 1;

        var cellOf = new int[x.Length];
        _cellStart = new int[_columns * _rows + 1];
        for (int i = 0; i < x.Length; i++)
        {
            cellOf[i] = Cell(Column(x[i]), Row(y[i]));
            _cellStart[cellOf[i] + 1]++;
        }
        for (int c = 0; c < _columns * _rows; c++) _cellStart[c + 1] += _cellStart[c];
        _order = new int[x.Length];
        var next = (int[])_cellStart.Clone();
        for (int i = 0; i < x.Length; i++) _order[next[cellOf[i]]++] = i;
        _sortedX = _order.Select(i => x[i]).ToArray();
        _sortedY = _order.Select(i => y[i]).ToArray();
    }

    public int Count => _x.Length;

    /// <summary>The columns of a <c>[n, 2]</c> tensor (any device, any floating type) as host arrays of x and y.</summary>
    public static (double[] X, double[] Y) Coordinates(Tensor points)
    {
        using var scope = NewDisposeScope();
        double[] flat = points.detach().to(float64).cpu().contiguous().data<double>().ToArray();
        var x = new double[flat.Length / 2];
        var y = new double[flat.Length / 2];
        for (int i = 0; i < x.Length; i++)
        {
            x[i] = flat[2 * i];
            y[i] = flat[2 * i + 1];
        }
        return (x, y);
    }

    private int Column(double x) => Math.Clamp((int)Math.Floor((x - _minX) / _cellSize), 0, _columns - 1);
    private int Row(double y) => Math.Clamp((int)Math.Floor((y - _minY) / _cellSize), 0, _rows - 1);
    private int Cell(int column, int row) => row * _columns + column;

    /// <summary>
    /// The indices of the k = indices.Length points nearest to (<paramref name="qx"/>, <paramref name="qy"/>) written to
    /// <paramref name="indices"/> (order unspecified); <paramref name="squaredDistances"/> is scratch of the same length k.
    /// </summary>
    public void Nearest(double qx, double qy, Span<int> indices, Span<double> squaredDistances)
    {
        int k = indices.Length;
        int found = 0;
        int worst = 0; // position of the largest distance kept, once k are kept
        int column = Column(qx), row = Row(qy);
        int maxRing = Math.Max(Math.Max(column, _columns - 1 - column), Math.Max(row, _rows - 1 - row));
        for (int ring = 0; ring <= maxRing; ring++)
        {
            for (int r = row - ring; r <= row + ring; r++)
            {
                if (r < 0 || r >= _rows) continue;
                bool edgeRow = r == row - ring || r == row + ring;
                int step = edgeRow ? 1 : Math.Max(1, 2 * ring);
                for (int c = column - ring; c <= column + ring; c += step)
                {
                    if (c < 0 || c >= _columns) continue;
                    int cell = Cell(c, r);
                    for (int s = _cellStart[cell]; s < _cellStart[cell + 1]; s++)
                    {
                        int i = _order[s];
                        double dx = _x[i] - qx, dy = _y[i] - qy;
                        double d = dx * dx + dy * dy;
                        if (found < k)
                        {
                            indices[found] = i;
                            squaredDistances[found] = d;
                            if (++found == k) worst = IndexOfMax(squaredDistances);
                        }
                        else if (d < squaredDistances[worst])
                        {
                            indices[worst] = i;
                            squaredDistances[worst] = d;
                            worst = IndexOfMax(squaredDistances);
                        }
                    }
                }
            }
            if (found == k)
            {
                // Any cell outside the rings scanned so far lies beyond the square they cover, on a side where the
                // square has not yet reached the grid's edge (a query outside the grid starts from the edge cell, and
                // the side it lies beyond has no cells left to scan).
                double reach = Math.Min(
                    Math.Min(column - ring <= 0 ? double.PositiveInfinity : qx - (_minX + (column - ring) * _cellSize),
                             column + ring >= _columns - 1 ? double.PositiveInfinity : _minX + (column + ring + 1) * _cellSize - qx),
                    Math.Min(row - ring <= 0 ? double.PositiveInfinity : qy - (_minY + (row - ring) * _cellSize),
                             row + ring >= _rows - 1 ? double.PositiveInfinity : _minY + (row + ring + 1) * _cellSize - qy));
                if (reach > 0 && squaredDistances[worst] <= reach * reach) return;
            }
        }
    }

    /// <summary>The squared distance from (<paramref name="qx"/>, <paramref name="qy"/>) to the nearest point.</summary>
    public double NearestSquaredDistance(double qx, double qy)
    {
        Span<int> index = stackalloc int[1];
        Span<double> squaredDistance = stackalloc double[1];
        Nearest(qx, qy, index, squaredDistance);
        return squaredDistance[0];
    }

    /// <summary>
    /// Hands <paramref name="visitor"/> every point within <paramref name="radius"/> of (<paramref name="qx"/>,
    /// <paramref name="qy"/>), as runs of coordinates: one run per row of grid cells the disc touches (the cells of a row
    /// are contiguous in cell order). Runs also hold points of those cells that lie outside the disc; the visitor filters.
    /// Contiguous runs let it work on whole vectors of points.
    /// </summary>
    public void VisitRuns<TVisitor>(double qx, double qy, double radius, ref TVisitor visitor) where TVisitor : struct, IPointRunVisitor
    {
        int c0 = Column(qx - radius), c1 = Column(qx + radius), r0 = Row(qy - radius), r1 = Row(qy + radius);
        for (int r = r0; r <= r1; r++)
        {
            int start = _cellStart[Cell(c0, r)], end = _cellStart[Cell(c1, r) + 1];
            if (end > start) visitor.Visit(_sortedX.AsSpan(start, end - start), _sortedY.AsSpan(start, end - start));
        }
    }

    private static int IndexOfMax(Span<double> values)
    {
        int best = 0;
        for (int i = 1; i < values.Length; i++)
            if (values[i] > values[best]) best = i;
        return best;
    }
}

/// <summary>Receives the runs of points a <see cref="PlanarNeighbourGrid.VisitRuns"/> query finds: their x and y coordinates.</summary>
internal interface IPointRunVisitor
{
    void Visit(ReadOnlySpan<double> x, ReadOnlySpan<double> y);
}
