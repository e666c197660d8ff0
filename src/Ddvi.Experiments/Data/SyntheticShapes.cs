using Ddvi.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace Ddvi.Data;

/// <summary>
/// A built-in MNIST-shaped dataset (28×28, 10 classes, pixels in [0, 1]) that needs no files: each class is a
/// distinct line drawing, rendered with continuous per-image variation, so a 2-D latent can separate the classes
/// and arrange each class by its pose.
/// </summary>
/// <remarks>
/// <para>Recipe, on the square [-1, 1]² with y up (one pixel is 1/14 wide; pixel centres
/// <c>u_j = (j + ½)/14 − 1</c>):</para>
/// <list type="number">
/// <item>Labels: <c>randperm(N) mod 10</c>, so every class has ⌊N/10⌋ or ⌈N/10⌉ images, in random order.</item>
/// <item>Class shapes, as up to four line segments and an optional ring: 0 ring (r 0.55), 1 vertical bar,
/// 2 horizontal bar, 3 plus, 4 cross (×), 5 L, 6 triangle, 7 square, 8 T, 9 ring (r 0.4) crossed by a vertical bar.</item>
/// <item>Per-image pose, each uniform and independent: angle θ ∈ [−0.35, 0.35] rad, scales s_x, s_y ∈ [0.65, 0.95],
/// shift t ∈ [−0.12, 0.12]², stroke half-width w ∈ [0.05, 0.12], ink intensity a ∈ [0.8, 1].
/// Segment end points map as <c>p ↦ R(θ) diag(s_x, s_y) p + t</c>; ring centres likewise, radii by √(s_x s_y).</item>
/// <item>Rendering: with d(u) the distance from a pixel centre u to the nearest segment or ring,
/// <c>x(u) = a · clamp(½ + (w − d(u)) · 14, 0, 1)</c>, a box-filter anti-aliasing of a stroke of width 2w.</item>
/// </list>
/// <para>All of it is tensor arithmetic: distances are computed for all images of a class and all pixels at once,
/// one class at a time, and every draw comes from the generator passed in.</para>
/// </remarks>
public static class SyntheticShapes
{
    public const int ClassCount = 10;
    const float PixelsPerUnit = 14f;

    /// <summary>What each class draws, in label order.</summary>
    public static IReadOnlyList<string> ClassNames { get; } =
        ["ring", "vertical bar", "horizontal bar", "plus", "cross", "L", "triangle", "square", "T", "crossed ring"];

    // Segments (x0, y0, x1, y1) per class, in the class frame.
    static readonly float[][] Segments =
    [
        [],
        [0f, -0.7f, 0f, 0.7f],
        [-0.7f, 0f, 0.7f, 0f],
        [0f, -0.7f, 0f, 0.7f, -0.7f, 0f, 0.7f, 0f],
        [-0.6f, -0.6f, 0.6f, 0.6f, -0.6f, 0.6f, 0.6f, -0.6f],
        [-0.45f, 0.7f, -0.45f, -0.6f, -0.45f, -0.6f, 0.5f, -0.6f],
        [0f, 0.7f, -0.65f, -0.5f, -0.65f, -0.5f, 0.65f, -0.5f, 0.65f, -0.5f, 0f, 0.7f],
        [-0.55f, -0.55f, 0.55f, -0.55f, 0.55f, -0.55f, 0.55f, 0.55f, 0.55f, 0.55f, -0.55f, 0.55f, -0.55f, 0.55f, -0.55f, -0.55f],
        [-0.6f, 0.6f, 0.6f, 0.6f, 0f, 0.6f, 0f, -0.7f],
        [0f, -0.75f, 0f, 0.75f],
    ];

    // Ring radius per class; 0 means no ring. Rings are centred at the origin of the class frame.
    static readonly float[] RingRadius = [0.55f, 0, 0, 0, 0, 0, 0, 0, 0, 0.4f];

    /// <summary>
    /// <paramref name="count"/> images drawn with <paramref name="generator"/>, as an <see cref="ImageDataset"/> named
    /// <paramref name="name"/> (<see cref="ImageShape.Mnist"/>, 10 classes).
    /// </summary>
    public static ImageDataset Generate(string name, int count, Generator generator)
    {
        if (count <= 0) throw new ArgumentOutOfRangeException(nameof(count), count, "the synthetic dataset needs a positive number of images.");
        using var scope = NewDisposeScope();
        using var _ = no_grad();

        var labels = randperm(count, generator: generator).remainder_(Scalars.Of(ClassCount)); // [N]
        var pose = rand(count, 6, generator: generator); // [N, 6]
        var angle = Uniform(pose[.., 0], -0.35f, 0.35f).unsqueeze(1); // [N, 1]
        var scaleX = Uniform(pose[.., 1], 0.65f, 0.95f).unsqueeze(1);
        var scaleY = Uniform(pose[.., 2], 0.65f, 0.95f).unsqueeze(1);
        var shiftX = Uniform(pose[.., 3], -0.12f, 0.12f).unsqueeze(1);
        var shiftY = Uniform(pose[.., 4], -0.12f, 0.12f).unsqueeze(1);
        var halfWidth = Uniform(pose[.., 5], 0.05f, 0.12f).unsqueeze(1); // [N, 1]
        var ink = Uniform(rand(count, generator: generator), 0.8f, 1f).unsqueeze(1); // [N, 1]

        var cos = angle.cos();
        var sin = angle.sin();
        var (pixelX, pixelY) = PixelCentres(); // [1, P] each
        var images = empty(count, ImageShape.Mnist.Size); // [N, P]
        // One pass per class: its images share one set of strokes, so no slot is padded and no ring is masked.
        for (int c = 0; c < ClassCount; c++)
        {
            using var classScope = NewDisposeScope();
            var rows = (labels == Scalars.Of(c)).nonzero().squeeze(1); // [n]
            if (rows.shape[0] == 0) continue;
            Tensor Rows(Tensor t) => t.index_select(0, rows); // [n, 1]
            var (rowCos, rowSin, rowScaleX, rowScaleY, rowShiftX, rowShiftY) =
                (Rows(cos), Rows(sin), Rows(scaleX), Rows(scaleY), Rows(shiftX), Rows(shiftY));
            Tensor MapX(float x, float y) => (rowCos * rowScaleX * Scalars.Of(x) - rowSin * rowScaleY * Scalars.Of(y)).add(rowShiftX, Scalars.One); // [n, 1]
            Tensor MapY(float x, float y) => (rowSin * rowScaleX * Scalars.Of(x)).add(rowCos * rowScaleY * Scalars.Of(y), Scalars.One).add(rowShiftY, Scalars.One);

            Tensor? squared = null; // [n, P] squared distance to the nearest stroke
            if (RingRadius[c] > 0)
            {
                var radius = (rowScaleX * rowScaleY).sqrt_().mul_(Scalars.Of(RingRadius[c]));
                var ring = RingDistance(rowShiftX, rowShiftY, radius, pixelX, pixelY);
                squared = ring.mul_(ring);
            }
            var segments = Segments[c];
            for (int k = 0; k < segments.Length; k += 4)
            {
                var ax = MapX(segments[k], segments[k + 1]);
                var ay = MapY(segments[k], segments[k + 1]);
                var abx = MapX(segments[k + 2], segments[k + 3]).sub_(ax);
                var aby = MapY(segments[k + 2], segments[k + 3]).sub_(ay);
                var segment = SegmentDistanceSquared(ax, ay, abx, aby, pixelX, pixelY);
                squared = squared is null ? segment : squared.fmin(segment);
            }
            var coverage = (Rows(halfWidth) - squared!.sqrt_()).mul_(Scalars.Of(PixelsPerUnit)).add_(Scalars.Of(0.5f), Scalars.One).clamp_(Scalars.Of(0f), Scalars.Of(1f)); // [n, P]
            images.index_copy_(0, rows, coverage.mul_(Rows(ink)));
        }
        return new ImageDataset(name, images.MoveToOuterDisposeScope(), labels.MoveToOuterDisposeScope(), ImageShape.Mnist, ClassCount);
    }

    static Tensor Uniform(Tensor unit, float low, float high) => (unit * Scalars.Of(high - low)).add(Scalars.Of(low), Scalars.One);

    /// <summary>Squared distance from each pixel p to the segment a → a + ab: |p − a − clamp(⟨p − a, ab⟩/|ab|², 0, 1) ab|².</summary>
    static Tensor SegmentDistanceSquared(Tensor ax, Tensor ay, Tensor abx, Tensor aby, Tensor pixelX, Tensor pixelY) // [n, 1] each → [n, P]
    {
        var inverseLength2 = (abx * abx).addcmul_(aby, aby, Scalars.Of(1)).reciprocal_(); // [n, 1]; every drawn segment has length
        var apx = pixelX - ax; // [n, P]
        var apy = pixelY - ay;
        var along = (apx * abx).addcmul_(apy, aby, Scalars.Of(1)).mul_(inverseLength2).clamp_(Scalars.Of(0f), Scalars.Of(1f));
        var dx = apx.addcmul_(along, abx, Scalars.Of(-1));
        var dy = apy.addcmul_(along, aby, Scalars.Of(-1));
        return dx.mul_(dx).addcmul_(dy, dy, Scalars.Of(1));
    }

    /// <summary>Distance from each pixel to the ring ||p − c| − r|.</summary>
    static Tensor RingDistance(Tensor centreX, Tensor centreY, Tensor radius, Tensor pixelX, Tensor pixelY) // [n, 1] each → [n, P]
    {
        var dx = pixelX - centreX; // [n, P]
        var dy = pixelY - centreY;
        return dx.mul_(dx).addcmul_(dy, dy, Scalars.Of(1)).sqrt_().sub_(radius).abs_();
    }

    static (Tensor X, Tensor Y) PixelCentres() // [1, P] each
    {
        var shape = ImageShape.Mnist;
        var column = arange(Scalars.Of(0), Scalars.Of(shape.Width), Scalars.Of(1), dtype: ScalarType.Float32).add_(Scalars.Of(0.5f), Scalars.One).div_(Scalars.Of(PixelsPerUnit)).sub_(Scalars.Of(1f)); // [W]
        var row = arange(Scalars.Of(0), Scalars.Of(shape.Height), Scalars.Of(1), dtype: ScalarType.Float32).add_(Scalars.Of(0.5f), Scalars.One).div_(Scalars.Of(PixelsPerUnit)).neg_().add_(Scalars.Of(1f), Scalars.One); // [H], y up
        var x = column.unsqueeze(0).expand(shape.Height, shape.Width).reshape(1, -1);
        var y = row.unsqueeze(1).expand(shape.Height, shape.Width).reshape(1, -1);
        return (x, y);
    }
}
