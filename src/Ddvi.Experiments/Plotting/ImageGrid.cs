using SkiaSharp;
using Tensor = TorchSharp.torch.Tensor;

namespace Ddvi.Plotting;

/// <summary>
/// A grid of images (data, reconstructions, decoded prior samples) drawn pixel by pixel with SkiaSharp and
/// written atomically as PNG. Pixels are laid out like a tensor <c>[count, channels, height, width]</c>
/// with values in [0, 1] (clamped; NaN drawn as 0); 1 channel is grey, 3 are RGB. Each image is scaled up
/// by an integer factor (nearest neighbour) and images are separated by <see cref="Padding"/> grey pixels,
/// so the PNG is columns·(width·scale + Padding) + Padding wide, and likewise high for the rows.
/// </summary>
public static class ImageGrid
{
    /// <summary>Pixels of grey between and around images.</summary>
    public const int Padding = 2;

    const byte PaddingGrey = 128;

    /// <param name="path">Output .png path.</param>
    /// <param name="pixels"><c>[count, channels, height, width]</c> row-major.</param>
    /// <param name="count">Number of images.</param>
    /// <param name="channels">1 (grey) or 3 (RGB).</param>
    /// <param name="height">Image height in pixels.</param>
    /// <param name="width">Image width in pixels.</param>
    /// <param name="columns">Images per row; fewer images than columns give a single row of <paramref name="count"/>.</param>
    /// <param name="scale">Integer magnification.</param>
    public static void Save(string path, float[] pixels, int count, int channels, int height, int width, int columns, int scale = 2)
    {
        PngPath.ValidatedFullPath(path);
        ArgumentNullException.ThrowIfNull(pixels);
        if (count < 1 || height < 1 || width < 1 || columns < 1 || scale < 1)
            throw new ArgumentException(
                $"Image grid: count, height, width, columns and scale must be positive, got {count}, {height}, {width}, {columns}, {scale}.");
        if (channels != 1 && channels != 3)
            throw new ArgumentException($"Image grid: channels must be 1 (grey) or 3 (RGB), got {channels}.", nameof(channels));
        long expected = (long)count * channels * height * width;
        if (pixels.Length != expected)
            throw new ArgumentException(
                $"Image grid: {count} images of {channels}×{height}×{width} need {expected} pixel values, got {pixels.Length}.", nameof(pixels));

        int gridColumns = Math.Min(columns, count);
        int gridRows = (count + gridColumns - 1) / gridColumns;
        long gridWidth = (long)gridColumns * (width * (long)scale + Padding) + Padding;
        long gridHeight = (long)gridRows * (height * (long)scale + Padding) + Padding;
        if (gridWidth > 16_384 || gridHeight > 16_384)
            throw new ArgumentException($"Image grid: {gridWidth}×{gridHeight} px is too large (16384 px per side at most); use fewer images or a smaller scale.");

        int rowBytes = (int)gridWidth * 4;
        var rgba = new byte[rowBytes * gridHeight];
        Array.Fill(rgba, PaddingGrey);
        int planeSize = height * width;
        for (int image = 0; image < count; image++)
        {
            int left = Padding + image % gridColumns * (width * scale + Padding);
            int top = Padding + image / gridColumns * (height * scale + Padding);
            int imageOffset = image * channels * planeSize;
            for (int row = 0; row < height; row++)
            for (int column = 0; column < width; column++)
            {
                int source = imageOffset + row * width + column;
                byte red = ToByte(pixels[source]);
                byte green = channels == 3 ? ToByte(pixels[source + planeSize]) : red;
                byte blue = channels == 3 ? ToByte(pixels[source + 2 * planeSize]) : red;
                for (int dy = 0; dy < scale; dy++)
                {
                    int target = (top + row * scale + dy) * rowBytes + (left + column * scale) * 4;
                    for (int dx = 0; dx < scale; dx++, target += 4)
                    {
                        rgba[target] = red;
                        rgba[target + 1] = green;
                        rgba[target + 2] = blue;
                        rgba[target + 3] = 255;
                    }
                }
            }
        }

        var info = new SKImageInfo((int)gridWidth, (int)gridHeight, SKColorType.Rgba8888, SKAlphaType.Opaque);
        using var bitmap = SKImage.FromPixelCopy(info, rgba, rowBytes);
        using var png = bitmap.Encode(SKEncodedImageFormat.Png, 100);
        Ddvi.IO.AtomicFile.WriteAllBytes(path, png.ToArray());
    }

    /// <summary>Tensor overload: images <c>[count, channels, height, width]</c> in [0, 1], copied to the CPU once.</summary>
    public static void Save(string path, Tensor images, int columns, int scale = 2)
    {
        if (images.dim() != 4)
            throw new ArgumentException(
                $"Image grid: images must be [count, channels, height, width], got [{string.Join(", ", images.shape)}]; reshape flat decoder outputs first.",
                nameof(images));
        using var scope = TorchSharp.torch.NewDisposeScope();
        float[] pixels = images.detach().cpu().to(TorchSharp.torch.float32).contiguous().data<float>().ToArray();
        Save(path, pixels, (int)images.shape[0], (int)images.shape[1], (int)images.shape[2], (int)images.shape[3], columns, scale);
    }

    static byte ToByte(float value) => float.IsNaN(value) ? (byte)0 : (byte)MathF.Round(Math.Clamp(value, 0f, 1f) * 255f);
}
