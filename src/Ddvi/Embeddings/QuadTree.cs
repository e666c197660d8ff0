namespace Ddvi.Embeddings;

/// <summary>
/// A region quadtree over 2-D points for Barnes–Hut repulsion (Barnes &amp; Hut 1986; van der Maaten 2014): each cell
/// holds its square, its point count and its centre of mass; leaves hold up to <see cref="LeafCapacity"/> points.
/// Built once per t-SNE iteration, read concurrently.
/// </summary>
internal sealed class QuadTree
{
    const int LeafCapacity = 8;
    const int MaxDepth = 48;
    /// <summary>Depth-first traversal keeps at most 3 pending siblings per level plus the root.</summary>
    public const int StackSize = 4 * MaxDepth + 8;

    readonly double[] points; // [n·2]
    readonly int[] order;     // point indices grouped by leaf

    // Per node: square (min corner and side), mass and centre of mass, first of 4 consecutive children (−1: a leaf),
    // and for leaves the range of order[] they hold.
    double[] minX = new double[64], minY = new double[64], side = new double[64], massX = new double[64], massY = new double[64];
    int[] count = new int[64], firstChild = new int[64], start = new int[64], end = new int[64];
    int nodes;

    public QuadTree(double[] points)
    {
        this.points = points;
        int n = points.Length / 2;
        order = new int[n];
        for (int i = 0; i < n; i++) order[i] = i;
        double lowX = double.PositiveInfinity, lowY = double.PositiveInfinity, highX = double.NegativeInfinity, highY = double.NegativeInfinity;
        for (int i = 0; i < n; i++)
        {
            lowX = Math.Min(lowX, points[2 * i]); highX = Math.Max(highX, points[2 * i]);
            lowY = Math.Min(lowY, points[2 * i + 1]); highY = Math.Max(highY, points[2 * i + 1]);
        }
        // A square a little larger than the bounding box, so the largest coordinates fall strictly inside.
        double width = Math.Max(highX - lowX, highY - lowY);
        width = width > 0 ? width * (1 + 1e-9) + 1e-12 : 1;
        var scratch = new int[n];
        Build(Allocate(), 0, n, lowX, lowY, width, 0, scratch);
    }

    int Allocate()
    {
        if (nodes == count.Length)
        {
            int size = 2 * nodes;
            Array.Resize(ref minX, size); Array.Resize(ref minY, size); Array.Resize(ref side, size);
            Array.Resize(ref massX, size); Array.Resize(ref massY, size);
            Array.Resize(ref count, size); Array.Resize(ref firstChild, size); Array.Resize(ref start, size); Array.Resize(ref end, size);
        }
        return nodes++;
    }

    void Build(int node, int from, int to, double x0, double y0, double width, int depth, int[] scratch)
    {
        minX[node] = x0; minY[node] = y0; side[node] = width;
        count[node] = to - from;
        start[node] = from; end[node] = to;
        firstChild[node] = -1;
        double sx = 0, sy = 0;
        for (int t = from; t < to; t++) { sx += points[2 * order[t]]; sy += points[2 * order[t] + 1]; }
        if (to > from) { massX[node] = sx / (to - from); massY[node] = sy / (to - from); }
        if (to - from <= LeafCapacity || depth >= MaxDepth) return;

        double half = width / 2, midX = x0 + half, midY = y0 + half;
        Span<int> quadrantCount = stackalloc int[4];
        for (int t = from; t < to; t++) quadrantCount[Quadrant(order[t], midX, midY)]++;
        Span<int> offset = stackalloc int[4];
        offset[0] = from;
        for (int q = 1; q < 4; q++) offset[q] = offset[q - 1] + quadrantCount[q - 1];
        Span<int> cursor = stackalloc int[4];
        offset.CopyTo(cursor);
        for (int t = from; t < to; t++) scratch[cursor[Quadrant(order[t], midX, midY)]++] = order[t];
        Array.Copy(scratch, from, order, from, to - from);

        int first = Allocate();
        for (int q = 1; q < 4; q++) Allocate();
        firstChild[node] = first;
        int o0 = offset[0], o1 = offset[1], o2 = offset[2], o3 = offset[3];
        Build(first, o0, o1, x0, y0, half, depth + 1, scratch);
        Build(first + 1, o1, o2, midX, y0, half, depth + 1, scratch);
        Build(first + 2, o2, o3, x0, midY, half, depth + 1, scratch);
        Build(first + 3, o3, to, midX, midY, half, depth + 1, scratch);
    }

    int Quadrant(int i, double midX, double midY) =>
        (points[2 * i] >= midX ? 1 : 0) + (points[2 * i + 1] >= midY ? 2 : 0);

    /// <summary>
    /// Σ_j w_ij² (y_i − y_j) and Σ_j w_ij over j ≠ i with w = 1/(1 + r²), cells with side / r &lt; θ taken as their
    /// centre of mass; a cell containing y_i is always opened, and leaves are summed point by point without i.
    /// </summary>
    public void Repulsion(int i, double theta, int[] stack, out double forceX, out double forceY, out double z)
    {
        double px = points[2 * i], py = points[2 * i + 1];
        double fx = 0, fy = 0, sum = 0;
        double theta2 = theta * theta;
        int top = 0;
        stack[top++] = 0;
        while (top > 0)
        {
            int node = stack[--top];
            if (count[node] == 0) continue;
            bool containsPoint = px >= minX[node] && px < minX[node] + side[node] && py >= minY[node] && py < minY[node] + side[node];
            if (!containsPoint)
            {
                double dx = px - massX[node], dy = py - massY[node];
                double r2 = dx * dx + dy * dy;
                if (side[node] * side[node] < theta2 * r2)
                {
                    double w = 1 / (1 + r2);
                    double m = count[node];
                    sum += m * w;
                    fx += m * w * w * dx;
                    fy += m * w * w * dy;
                    continue;
                }
            }
            if (firstChild[node] < 0)
            {
                for (int t = start[node]; t < end[node]; t++)
                {
                    int j = order[t];
                    if (j == i) continue;
                    double dx = px - points[2 * j], dy = py - points[2 * j + 1];
                    double w = 1 / (1 + dx * dx + dy * dy);
                    sum += w;
                    fx += w * w * dx;
                    fy += w * w * dy;
                }
                continue;
            }
            int first = firstChild[node];
            for (int q = 0; q < 4; q++) stack[top++] = first + q;
        }
        forceX = fx;
        forceY = fy;
        z = sum;
    }
}
