using Ddvi.Plotting;
using SkiaSharp;
using static TorchSharp.torch;

namespace Ddvi.Tests.Plotting;

public sealed class PlottingTests : IDisposable
{
    static readonly byte[] PngSignature = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A];

    readonly DirectoryInfo _folder = Directory.CreateTempSubdirectory("ddvi-plots-");

    public void Dispose() => _folder.Delete(recursive: true);

    string PathOf(string name) => Path.Combine(_folder.FullName, name);

    /// <summary>Asserts a complete PNG of the given size is the only file in the output folder, and returns it decoded.</summary>
    SKBitmap AssertOnlyPng(string path, int width, int height)
    {
        byte[] bytes = File.ReadAllBytes(path);
        Assert.Equal(PngSignature, bytes.Take(8).ToArray());
        var bitmap = SKBitmap.Decode(bytes);
        Assert.NotNull(bitmap);
        Assert.Equal(width, bitmap.Width);
        Assert.Equal(height, bitmap.Height);
        Assert.Equal([path], Directory.GetFiles(Path.GetDirectoryName(path)!));
        return bitmap;
    }

    static (float[] X, float[] Y, int[] Labels) Ring(int count, int classes)
    {
        var x = new float[count];
        var y = new float[count];
        var labels = new int[count];
        for (int i = 0; i < count; i++)
        {
            double angle = 2 * Math.PI * i / count;
            x[i] = (float)Math.Cos(angle);
            y[i] = (float)(2 * Math.Sin(angle));
            labels[i] = i * classes / count;
        }
        return (x, y, labels);
    }

    [Fact]
    public void LatentScatterWritesAPngOfTheRequestedSize()
    {
        var (x, y, labels) = Ring(500, 10);
        x[3] = float.NaN; // left out, not an error
        string path = PathOf("latents.png");
        LatentScatter.Save(path, x, y, labels, "test latents", width: 640, height: 480);
        using var bitmap = AssertOnlyPng(path, 640, 480);

        // Overwriting an existing plot replaces it and still leaves no temporary file.
        LatentScatter.Save(path, x, y, labels, "again", width: 320, height: 320);
        using var replaced = AssertOnlyPng(path, 320, 320);
    }

    [Fact]
    public void FiguresTakeTheirTypefaceFromTheAssemblyNotTheSystem()
    {
        using var plot = BundledFont.NewPlot();

        Assert.Equal(BundledFont.Name, ScottPlot.Fonts.Default);
        Assert.Equal(BundledFont.Name, plot.Axes.Title.Label.FontName);
        // ScottPlot hands out the embedded typefaces themselves, so no system font is asked for.
        Assert.Same(BundledFont.Regular, ScottPlot.Fonts.GetTypeface(BundledFont.Name, bold: false, italic: false));
        Assert.Same(BundledFont.Bold, ScottPlot.Fonts.GetTypeface(BundledFont.Name, bold: true, italic: false));
        Assert.Equal("DejaVu Sans", BundledFont.Regular.FamilyName);
        Assert.True(BundledFont.Bold.FontStyle.Weight > BundledFont.Regular.FontStyle.Weight);
    }

    [Theory]
    [InlineData("chain start y_T ~ q(y_T|x) · DDVI latents z = y_0")]
    [InlineData("0123456789 −1.5 ×10³ ± σ² ε β λ μ ‖ → ≤ ≥ ∞")]
    [InlineData("Fashion-MNIST, KMNIST, Zoë, Ærø, Łódź, Ткань")]
    public void TheBundledTypefaceHasAGlyphForEveryCharacter(string text)
    {
        foreach (var typeface in new[] { BundledFont.Regular, BundledFont.Bold })
        {
            using var font = new SKFont(typeface);
            var missing = text.Where(c => !char.IsWhiteSpace(c) && !font.ContainsGlyphs(c.ToString())).ToArray();
            Assert.True(missing.Length == 0, $"{typeface.FamilyName} {typeface.FontStyle.Weight} has no glyph for '{new string(missing)}'");
        }
    }

    [Fact]
    public void TitlesAreDrawn()
    {
        var (x, y, labels) = Ring(100, 10);
        LatentScatter.Save(PathOf("titled.png"), x, y, labels, "A TITLE IN CAPITALS", width: 400, height: 400);
        LatentScatter.Save(PathOf("untitled.png"), x, y, labels, "", width: 400, height: 400);
        using var titled = SKBitmap.Decode(PathOf("titled.png"));
        using var untitled = SKBitmap.Decode(PathOf("untitled.png"));

        // The title sits above the data area; count dark pixels across the top rows of each image.
        static int DarkPixelsOnTop(SKBitmap image)
        {
            int dark = 0;
            for (int row = 0; row < 30; row++)
                for (int column = 0; column < image.Width; column++)
                    if (image.GetPixel(column, row).Red < 128) dark++;
            return dark;
        }
        Assert.True(DarkPixelsOnTop(titled) > DarkPixelsOnTop(untitled) + 100,
            $"title drawn with {DarkPixelsOnTop(titled)} dark pixels on top, against {DarkPixelsOnTop(untitled)} without a title");
    }

    [Fact]
    public void LongPanelTitlesAreWrappedAtSpacesToTheCellWidth()
    {
        Assert.Equal("vae (seed 0)", PanelFigure.WrapTitle("vae (seed 0)"));
        string label = "ddvi [ddvi.frozen_decoder_epochs default, epochs 100] (seed 0)";
        string wrapped = PanelFigure.WrapTitle(label);
        var lines = wrapped.Split('\n');
        Assert.True(lines.Length >= 2, wrapped);
        Assert.All(lines, line => Assert.InRange(line.Length, 1, PanelFigure.TitleLineLength));
        Assert.Equal(label, string.Join(' ', lines));
        // A word longer than a line keeps a line of its own, unbroken.
        Assert.Equal(["a", new string('x', 12), "b"], PanelFigure.WrapTitle("a " + new string('x', 12) + " b", lineLength: 5).Split('\n'));
    }

    [Fact]
    public void SideBySideHasTwoPanels()
    {
        var (x, y, labels) = Ring(300, 10);
        string path = PathOf(Path.Combine("nested", "side.png"));
        LatentScatter.SaveSideBySide(path, ("prior", x, y, labels), ("latents", y, x, labels), panelSize: 400, markerSize: 6);
        using var bitmap = AssertOnlyPng(path, 800, 400);

        // Each half holds one panel with its points: both the left and the right quarter show label colours.
        // Category10's grey (label 7) is left out: anti-aliased black text produces that grey too.
        var labelColours = ScottPlot.Colors.Category10.Take(10).Where(c => c.R != c.G || c.G != c.B)
            .Select(c => new SKColor(c.R, c.G, c.B)).ToHashSet();
        bool HasPoints(int fromX, int toX) => Enumerable.Range(fromX, toX - fromX)
            .Sum(px => Enumerable.Range(0, 400).Count(py => labelColours.Contains(bitmap.GetPixel(px, py)))) > 50;
        Assert.True(HasPoints(0, 200), "the left panel should start at the left edge");
        Assert.True(HasPoints(400, 600), "the right panel should start in the middle");
    }

    [Fact]
    public void LabelsZeroToNineTakeCategory10AndWiderRangesDistinctColours()
    {
        var digits = LatentScatter.LabelColours([3, 0, 9, 7]);
        Assert.All(Enumerable.Range(0, 10), label => Assert.Equal(ScottPlot.Colors.Category10[label], digits(label)));

        // EMNIST letters (1–26) and balanced (0–46): Category10 would repeat every ten labels.
        foreach (var labels in new[] { Enumerable.Range(1, 26).ToArray(), Enumerable.Range(0, 47).ToArray() })
        {
            var colours = LatentScatter.LabelColours(labels);
            Assert.Equal(labels.Length, labels.Select(colours).Distinct().Count());
        }
        var single = LatentScatter.LabelColours([12, 12]);
        Assert.Equal(single(12), single(12));
    }

    [Fact]
    public void TensorOverloadsCopyToTheCpu()
    {
        using var scope = NewDisposeScope();
        var generator = new Generator(31);
        var latents = randn(200, 2, generator: generator);
        var labels = randint(10, [200], generator: generator);
        string single = PathOf("tensor.png");
        LatentScatter.Save(single, latents, labels, "tensor", width: 300, height: 300);
        using (AssertOnlyPng(single, 300, 300)) { }
        File.Delete(single);

        string pair = PathOf("pair.png");
        LatentScatter.SaveSideBySide(pair, ("prior", latents, labels), ("latents", latents * 2, labels), panelSize: 200);
        using (AssertOnlyPng(pair, 400, 200)) { }
        File.Delete(pair);

        string grid = PathOf("grid.png");
        ImageGrid.Save(grid, rand(6, 1, 5, 4, generator: generator), columns: 3, scale: 1);
        using (AssertOnlyPng(grid, 3 * (4 + 2) + 2, 2 * (5 + 2) + 2)) { }
    }

    [Fact]
    public void ImageGridPlacesScaledPixelsAndClampsValues()
    {
        // Two grey 2×3 images: the first black except a white top-left pixel given as 7 (clamped to 1),
        // the second all −1 (clamped to 0) except NaN (drawn as 0) and 0.5 at the bottom right.
        float[] pixels = [7, 0, 0, 0, 0, 0, -1, -1, -1, -1, float.NaN, 0.5f];
        string path = PathOf("grid.png");
        ImageGrid.Save(path, pixels, count: 2, channels: 1, height: 2, width: 3, columns: 5, scale: 3);

        // Fewer images than columns: one row of two. Width 2·(3·3 + 2) + 2 = 24, height 1·(2·3 + 2) + 2 = 10.
        using var bitmap = AssertOnlyPng(path, 24, 10);
        int pad = ImageGrid.Padding;
        Assert.Equal(new SKColor(128, 128, 128), bitmap.GetPixel(0, 0));
        Assert.Equal(SKColors.White, bitmap.GetPixel(pad + 2, pad + 2));   // the 3×3 block of the white pixel
        Assert.Equal(SKColors.Black, bitmap.GetPixel(pad + 3, pad));       // its right neighbour
        int secondLeft = pad + 3 * 3 + pad;
        Assert.Equal(SKColors.Black, bitmap.GetPixel(secondLeft, pad));
        Assert.Equal(SKColors.Black, bitmap.GetPixel(secondLeft + 4, pad + 4)); // the NaN pixel
        Assert.Equal(new SKColor(128, 128, 128), bitmap.GetPixel(secondLeft + 8, pad + 5)); // 0.5 → 128
    }

    [Fact]
    public void ImageGridReadsRgbChannelPlanes()
    {
        // One 1×2 RGB image laid out [C, H, W]: a red pixel then a blue pixel.
        float[] pixels = [1, 0, /* green */ 0, 0, /* blue */ 0, 1];
        string path = PathOf("rgb.png");
        ImageGrid.Save(path, pixels, count: 1, channels: 3, height: 1, width: 2, columns: 1, scale: 1);
        using var bitmap = AssertOnlyPng(path, 2 + 2 * ImageGrid.Padding, 1 + 2 * ImageGrid.Padding);
        Assert.Equal(SKColors.Red, bitmap.GetPixel(ImageGrid.Padding, ImageGrid.Padding));
        Assert.Equal(SKColors.Blue, bitmap.GetPixel(ImageGrid.Padding + 1, ImageGrid.Padding));
    }

    [Fact]
    public void LossCurvesHandleSinglePointsAndNonFiniteValues()
    {
        var series = new Dictionary<string, IReadOnlyList<double>>
        {
            ["reconstruction"] = [0.5, 0.3, double.NaN, 0.2, double.PositiveInfinity, 0.15],
            ["kl"] = [4.0],
            ["sleep"] = [double.NaN],
        };
        string path = PathOf("losses.png");
        LossCurves.Save(path, series, "epoch", width: 500, height: 300);
        // One 500×300 panel per term, three to a row.
        using var bitmap = AssertOnlyPng(path, 3 * 500, 300);

        var five = Enumerable.Range(0, 5).ToDictionary(i => $"term{i}", i => (IReadOnlyList<double>)[1.0 + i, 0.5 + i]);
        LossCurves.Save(path, five, "epoch", width: 200, height: 100);
        using var grid = AssertOnlyPng(path, 3 * 200, 2 * 100);
    }

    [Fact]
    public void BadInputsGiveClearErrorsAndWriteNothing()
    {
        var (x, y, labels) = Ring(20, 4);
        string path = PathOf("bad.png");
        Assert.Contains("same length",
            Assert.Throws<ArgumentException>(() => LatentScatter.Save(path, x, y.Take(19).ToArray(), labels, "t")).Message);
        Assert.Contains("same length",
            Assert.Throws<ArgumentException>(() => LatentScatter.SaveSideBySide(path, ("a", x, y, labels), ("b", x, y, labels.Take(3).ToArray()))).Message);
        Assert.Contains(".png",
            Assert.Throws<ArgumentException>(() => LatentScatter.Save(PathOf("bad.svg"), x, y, labels, "t")).Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => LatentScatter.Save(path, x, y, labels, "t", markerSize: 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => LatentScatter.Save(path, x, y, labels, "t", width: 0));
        Assert.Contains("need 24 pixel values, got 23",
            Assert.Throws<ArgumentException>(() => ImageGrid.Save(path, new float[23], 2, 3, 2, 2, columns: 2)).Message);
        Assert.Contains("channels must be 1 (grey) or 3 (RGB)",
            Assert.Throws<ArgumentException>(() => ImageGrid.Save(path, new float[16], 2, 2, 2, 2, columns: 2)).Message);
        Assert.Throws<ArgumentException>(() => ImageGrid.Save(path, new float[8], 2, 1, 2, 2, columns: 0));
        Assert.Contains("no series",
            Assert.Throws<ArgumentException>(() => LossCurves.Save(path, new Dictionary<string, IReadOnlyList<double>>(), "epoch")).Message);
        using (NewDisposeScope())
        {
            Assert.Contains("[N, d]",
                Assert.Throws<ArgumentException>(() => LatentScatter.Save(path, zeros(5), zeros(5, int64), "t")).Message);
            Assert.Contains("labels must be [5]",
                Assert.Throws<ArgumentException>(() => LatentScatter.Save(path, zeros(5, 3), zeros(4, int64), "t")).Message);
            Assert.Contains("reshape",
                Assert.Throws<ArgumentException>(() => ImageGrid.Save(path, zeros(5, 784), columns: 5)).Message);
        }
        Assert.Empty(Directory.GetFiles(_folder.FullName));
    }
}
