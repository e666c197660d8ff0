using Ddvi.FastPaths;
using Ddvi.Runtime;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace Ddvi.Models;

/// <summary>
/// How the convolutional networks compute. The values, the parameters, their checkpoint keys and the flattened inputs
/// and outputs (channel planes, rows) are the same either way, up to float rounding; only the speed differs.
/// </summary>
public enum ConvPath
{
    /// <summary>The reference: libtorch's convolutions layer by layer on NCHW maps (libtorch's default layout).</summary>
    Plain,

    /// <summary>
    /// NHWC strides on the CPU (the channels of one pixel contiguous, libtorch's <c>channels_last</c>; channels first
    /// on other devices, where it has not been measured), and the layers that touch a one-pixel map as one matrix
    /// product: a convolution whose output is 1×1 is a linear map of the k×k patch it reads, a transposed convolution
    /// of a 1×1 input writes its weight scaled by each channel. On the 2-core machine libtorch's oneDNN convolutions
    /// and batch norm run the release's CIFAR-10 shapes markedly faster so (docs/performance.md, CIFAR-10). On float32
    /// CPU maps, batch norm with its ReLU in training (<see cref="FastPaths.BatchNormReluFunction"/>), the forward pass and
    /// (for 32 or 64 input channels) the weight and input gradients of the decoder's transposed convolutions
    /// (<see cref="FastPaths.TransposedConvFunction"/>) and every pass of the trunk's strided convolutions
    /// (<see cref="FastPaths.StridedConvFunction"/>) are Ddvi's own loops.
    /// </summary>
    Fast,
}

/// <summary>Defaults of the convolutional networks, stated once.</summary>
public static class ConvDefaults
{
    /// <summary>How the networks compute unless told otherwise.</summary>
    public const ConvPath Path = ConvPath.Fast;

    /// <summary>
    /// A float32 map in the arithmetic <paramref name="precision"/> asks for: cast to bfloat16 (the layout kept) for
    /// <see cref="NetworkPrecision.Bfloat16"/>, the tensor itself otherwise (and for inputs of other types, such as the
    /// float64 of the exactness tests).
    /// </summary>
    internal static Tensor InPrecision(Tensor map, NetworkPrecision precision) =>
        precision == NetworkPrecision.Bfloat16 && map.dtype == ScalarType.Float32 ? map.to(ScalarType.BFloat16) : map;

    /// <summary>
    /// A layer's weight and bias in the map's type: themselves for float32 maps, bfloat16 copies for a bfloat16 map (the
    /// gradient flows back to the float32 parameters through the cast).
    /// </summary>
    internal static (Tensor Weight, Tensor? Bias) ParametersFor(Tensor map, Tensor weight, Tensor? bias) =>
        map.dtype == ScalarType.BFloat16 && weight.dtype != ScalarType.BFloat16
            ? (weight.to(ScalarType.BFloat16), bias?.to(ScalarType.BFloat16))
            : (weight, bias);

    /// <summary>
    /// <paramref name="map"/> <c>[B, C, H, W]</c> in the memory layout <paramref name="path"/> uses on its device: the
    /// same values, NHWC strides for <see cref="ConvPath.Fast"/> on the CPU (one copy; autograd passes the gradient back
    /// in the input's layout), the tensor itself otherwise.
    /// </summary>
    public static Tensor InLayout(Tensor map, ConvPath path)
    {
        if (path != ConvPath.Fast || map.device_type != DeviceType.CPU) return map;
        long b = map.shape[0], c = map.shape[1], h = map.shape[2], w = map.shape[3];
        var pixelMajor = map.permute(0, 2, 3, 1).contiguous();                       // [B, H, W, C], contiguous
        // A 1×1 map's permuted copy keeps ambiguous strides that libtorch reads as NCHW; state the NHWC ones.
        return h * w == 1
            ? pixelMajor.as_strided([b, c, h, w], [h * w * c, 1, w * c, c])
            : pixelMajor.permute(0, 3, 1, 2);
    }
}

/// <summary>
/// The convolutional trunk of the paper's CIFAR-10 networks (arXiv:2401.02739; the authors' release, ConvNet): flattened
/// images <c>[B, C·H·W]</c> (channel planes, rows) → conv C→16 (3×3, padding 1) → 16→32 (4×4, stride 2) → 32→64 (5×5,
/// stride 2) → 64→128 (5×5, stride 2), each followed by batch norm and ReLU, flattened to <c>[B, 128·h·w]</c>. On 32×32
/// (and on 28×28) images h = w = 1, so the trunk gives the release's 128 features. Batch norm uses batch statistics in
/// <c>train()</c> mode and its running averages in <c>eval()</c> mode.
/// </summary>
/// <remarks>Checkpoint keys: <c>conv1.*</c> … <c>conv4.*</c>, <c>norm1.*</c> … <c>norm4.*</c>.</remarks>
public sealed class ConvTrunk : Module<Tensor, Tensor>, IPrecisionSettable
{
    /// <summary>Output channels of the four convolutions.</summary>
    public static readonly IReadOnlyList<int> Widths = [16, 32, 64, 128];

    /// <summary>(kernel, stride, padding) of the four convolutions.</summary>
    public static readonly IReadOnlyList<(int Kernel, int Stride, int Padding)> Layers = [(3, 1, 1), (4, 2, 0), (5, 2, 0), (5, 2, 0)];

    private readonly Conv2d conv1, conv2, conv3, conv4;
    private readonly ImageBatchNorm norm1, norm2, norm3, norm4;

    /// <param name="channels">C, colour planes of the input (3 for RGB, 1 for grey).</param>
    /// <param name="height">H.</param>
    /// <param name="width">W.</param>
    /// <param name="path">How the layers compute (speed only).</param>
    public ConvTrunk(int channels, int height, int width, ConvPath path = ConvDefaults.Path) : base(nameof(ConvTrunk))
    {
        if (channels < 1) throw new ArgumentOutOfRangeException(nameof(channels), channels, "ConvTrunk: the images need at least one channel.");
        var (h, w) = (OutputSide(height), OutputSide(width));
        if (h < 1 || w < 1)
            throw new ArgumentException($"ConvTrunk: {height}×{width} images are too small for its four convolutions; both sides must be at least {MinimumSide}.");
        Channels = channels;
        Height = height;
        Width = width;
        Path = path;
        OutputHeight = h;
        OutputWidth = w;
        conv1 = Conv2d(channels, Widths[0], Layers[0].Kernel, Layers[0].Stride, Layers[0].Padding);
        norm1 = new ImageBatchNorm(Widths[0]);
        conv2 = Conv2d(Widths[0], Widths[1], Layers[1].Kernel, Layers[1].Stride, Layers[1].Padding);
        norm2 = new ImageBatchNorm(Widths[1]);
        conv3 = Conv2d(Widths[1], Widths[2], Layers[2].Kernel, Layers[2].Stride, Layers[2].Padding);
        norm3 = new ImageBatchNorm(Widths[2]);
        conv4 = Conv2d(Widths[2], Widths[3], Layers[3].Kernel, Layers[3].Stride, Layers[3].Padding);
        norm4 = new ImageBatchNorm(Widths[3]);
        RegisterComponents();
    }

    /// <summary>The smallest image side the trunk takes (the last convolution needs 5 rows).</summary>
    public const int MinimumSide = 28;

    public int Channels { get; }
    public int Height { get; }
    public int Width { get; }

    /// <summary>How the layers compute.</summary>
    public ConvPath Path { get; }

    /// <summary>
    /// The arithmetic of the convolutions (<see cref="NetworkPrecisions.Default"/> unless set). With
    /// <see cref="NetworkPrecision.Bfloat16"/> a float32 input runs through the convolutions and batch norms in bfloat16
    /// (weights cast per call; batch norm's affine parameters and running statistics stay float32, libtorch's
    /// mixed-type batch norm) and the features are returned in float32.
    /// </summary>
    public NetworkPrecision Precision { get; set; } = NetworkPrecisions.Default;

    /// <summary>h, the rows of the last feature map.</summary>
    public int OutputHeight { get; }

    /// <summary>w, the columns of the last feature map.</summary>
    public int OutputWidth { get; }

    /// <summary>The flattened feature width 128·h·w.</summary>
    public int OutputDim => Widths[^1] * OutputHeight * OutputWidth;

    /// <summary>The side of the last feature map for an input side (≤ 0: too small).</summary>
    public static int OutputSide(int side)
    {
        foreach (var (kernel, stride, padding) in Layers)
        {
            int padded = side + 2 * padding - kernel;
            if (padded < 0) return 0;
            side = padded / stride + 1;
        }
        return side;
    }

    /// <summary>Whether images of this size suit the trunk.</summary>
    public static bool Suits(int height, int width) => OutputSide(height) >= 1 && OutputSide(width) >= 1;

    /// <summary>
    /// The last convolution where its output is one pixel: the k×k patch at the map's corner (stride and padding 0 put
    /// the only window there) times the weight as a <c>[128, C·k·k]</c> matrix, <c>[B, 128, 1, 1]</c>.
    /// </summary>
    Tensor OnePixelConvolution(Tensor map)
    {
        int kernel = Layers[3].Kernel;
        var weight = conv4.weight!;
        var patch = map.narrow(2, 0, kernel).narrow(3, 0, kernel).reshape(map.shape[0], weight.shape[1] * kernel * kernel);
        var (w, b) = ConvDefaults.ParametersFor(map, weight, conv4.bias!);
        return torch.addmm(b!, patch, w.view(w.shape[0], -1).t(), 1, 1).view(map.shape[0], weight.shape[0], 1, 1);
    }

    // Convolution `index` (0-based) in the map's type.
    // On ConvPath.Fast a float32 CPU map takes Ddvi's own loops where they handle the shape: the first convolution from
    // the image's few channels to 16 (FewChannelConvFunction), a strided convolution without padding for its forward pass
    // and its input and weight gradients (StridedConvFunction).
    // `biasCancels`: the batch norm after it removes a per-channel constant (ImageBatchNorm.RemovesInputShift).
    Tensor Convolve(int index, Conv2d conv, Tensor map, bool biasCancels)
    {
        var (_, stride, padding) = Layers[index];
        if (map.dtype != ScalarType.BFloat16 && Path == ConvPath.Fast && FewChannelConvFunction.Supports(map, conv.weight, conv.bias, stride, padding))
            return FewChannelConvFunction.Run(map, conv.weight!, conv.bias!, padding, biasCancels);
        if (map.dtype != ScalarType.BFloat16)
            return Path == ConvPath.Fast && padding == 0 && StridedConvFunction.Enabled
                && StridedConvFunction.Supports(map, conv.weight, conv.bias, stride)
                ? StridedConvFunction.Run(map, conv.weight!, conv.bias!, stride, biasCancels)
                : conv.call(map);
        var (weight, bias) = ConvDefaults.ParametersFor(map, conv.weight!, conv.bias);
        return functional.conv2d(map, weight, bias, strides: [stride, stride], padding: [padding, padding]);
    }

    /// <summary>x <c>[B, C·H·W]</c> → features <c>[B, 128·h·w]</c>.</summary>
    public override Tensor forward(Tensor x)
    {
        if (x.dim() != 2 || x.shape[1] != (long)Channels * Height * Width)
            throw new ArgumentException($"ConvTrunk: input must be [B, {Channels * Height * Width}] ({Channels}×{Height}×{Width} images, flattened), got [{string.Join(", ", x.shape)}].", nameof(x));
        using var scope = NewDisposeScope();
        var images = ConvDefaults.InPrecision(x.view(x.shape[0], Channels, Height, Width), Precision);
        var (_, _, padding) = Layers[0];
        // The few-channel loop reads the images' channel planes itself while padding them, saving the NHWC copy.
        var h = Path == ConvPath.Fast && FewChannelConvFunction.Supports(images, conv1.weight, conv1.bias, Layers[0].Stride, padding)
            ? FewChannelConvFunction.Run(images, conv1.weight!, conv1.bias!, padding, norm1.RemovesInputShift)
            : Convolve(0, conv1, ConvDefaults.InLayout(images, Path), norm1.RemovesInputShift);
        h = norm1.ForwardRelu(h, Path == ConvPath.Fast);
        h = norm2.ForwardRelu(Convolve(1, conv2, h, norm2.RemovesInputShift), Path == ConvPath.Fast);
        h = norm3.ForwardRelu(Convolve(2, conv3, h, norm3.RemovesInputShift), Path == ConvPath.Fast);
        h = Path == ConvPath.Fast && OutputHeight == 1 && OutputWidth == 1 ? OnePixelConvolution(h) : Convolve(3, conv4, h, norm4.RemovesInputShift);
        h = norm4.ForwardRelu(h, Path == ConvPath.Fast).flatten(1);
        return (h.dtype == x.dtype ? h : h.to(x.dtype)).MoveToOuterDisposeScope();
    }
}

/// <summary>
/// A convolutional encoder: <see cref="ConvTrunk"/> then an <see cref="Mlp"/> head network on its features (the release's
/// CIFAR-10 encoder is <c>new ConvEncoder(3, 32, 32, [1000], [d, d], 0.2)</c>, its auxiliary encoder
/// <c>new ConvEncoder(3, 32, 32, [24, 24], [2], 0.2)</c>). Returns the heads side by side, as an <see cref="Mlp"/> does, so
/// <see cref="Mlp.HeadsOf"/> splits them.
/// </summary>
/// <remarks>Checkpoint keys: <c>trunk.*</c>, <c>head.*</c>.</remarks>
public sealed class ConvEncoder : Module<Tensor, Tensor>
{
    private readonly ConvTrunk trunk;
    private readonly Mlp head;

    /// <param name="channels">C.</param>
    /// <param name="height">H.</param>
    /// <param name="width">W.</param>
    /// <param name="hiddenWidths">Hidden widths of the MLP after the trunk.</param>
    /// <param name="headWidths">Output widths of its heads.</param>
    /// <param name="dropout">Dropout after each hidden layer of the MLP (training mode only).</param>
    /// <param name="path">How the trunk's layers compute (speed only).</param>
    public ConvEncoder(int channels, int height, int width, IReadOnlyList<int> hiddenWidths, IReadOnlyList<int> headWidths, double dropout = 0.0,
        ConvPath path = ConvDefaults.Path)
        : base(nameof(ConvEncoder))
    {
        trunk = new ConvTrunk(channels, height, width, path);
        head = new Mlp(trunk.OutputDim, hiddenWidths, headWidths, dropout);
        InputDim = channels * height * width;
        RegisterComponents();
    }

    public ConvTrunk Trunk => trunk;
    public Mlp Head => head;
    public int InputDim { get; }

    /// <summary>Σ head widths.</summary>
    public long OutputDim => head.OutputDim;

    /// <summary>x <c>[B, C·H·W]</c> → the heads side by side <c>[B, Σ head widths]</c>.</summary>
    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        return head.call(trunk.call(x)).MoveToOuterDisposeScope();
    }
}

/// <summary>
/// The transposed-convolution decoder of the paper's CIFAR-10 experiments (arXiv:2401.02739; the authors' release,
/// TransposedConvNet): z <c>[B, d]</c> → Linear d → 64·h₀·w₀, ReLU → transposed convs 64→64 (5×5, stride 2), 64→32 (5×5,
/// stride 2), 32→16 (5×5, stride 2), each with batch norm and ReLU, → 16→C (4×4, stride 1) → <c>[B, C·H·W]</c>, unbounded
/// (wrap it in <see cref="BoundedOutput"/> for means in a pixel range, or read it as Bernoulli logits). h₀×w₀ is the
/// feature map of a <see cref="ConvTrunk"/> on H×W images (1×1 for 32×32, the release's); the stack then gives 32×32 for
/// 1×1, and in general a map at least H×W whose centre H×W is kept (28×28 images: the centre of 32×32).
/// </summary>
/// <remarks>Checkpoint keys: <c>input.*</c>, <c>deconv1.*</c> … <c>deconv4.*</c>, <c>norm1.*</c> … <c>norm3.*</c>.</remarks>
public sealed class ConvDecoder : Module<Tensor, Tensor>, IPrecisionSettable
{
    /// <summary>Channels of the input map and of the three inner transposed convolutions.</summary>
    public static readonly IReadOnlyList<int> Widths = [64, 64, 32, 16];

    /// <summary>(kernel, stride) of the four transposed convolutions.</summary>
    public static readonly IReadOnlyList<(int Kernel, int Stride)> Layers = [(5, 2), (5, 2), (5, 2), (4, 1)];

    private readonly Linear input;
    private readonly ConvTranspose2d deconv1, deconv2, deconv3, deconv4;
    private readonly ImageBatchNorm norm1, norm2, norm3;

    /// <param name="latentDim">d.</param>
    /// <param name="channels">C of the images.</param>
    /// <param name="height">H.</param>
    /// <param name="width">W.</param>
    /// <param name="path">How the layers compute (speed only).</param>
    public ConvDecoder(int latentDim, int channels, int height, int width, ConvPath path = ConvDefaults.Path) : base(nameof(ConvDecoder))
    {
        if (latentDim < 1) throw new ArgumentOutOfRangeException(nameof(latentDim), latentDim, "ConvDecoder: the latent width must be at least 1.");
        if (channels < 1) throw new ArgumentOutOfRangeException(nameof(channels), channels, "ConvDecoder: the images need at least one channel.");
        if (!ConvTrunk.Suits(height, width))
            throw new ArgumentException($"ConvDecoder: {height}×{width} images are too small; both sides must be at least {ConvTrunk.MinimumSide}.");
        LatentDim = latentDim;
        Channels = channels;
        Height = height;
        Width = width;
        Path = path;
        StartHeight = ConvTrunk.OutputSide(height);
        StartWidth = ConvTrunk.OutputSide(width);
        (OutputHeight, OutputWidth) = (OutputSide(StartHeight), OutputSide(StartWidth));
        if (OutputHeight < height || OutputWidth < width)
            throw new InvalidOperationException($"ConvDecoder: its stack gives {OutputHeight}×{OutputWidth}, smaller than the {height}×{width} images.");
        input = Linear(latentDim, Widths[0] * StartHeight * StartWidth);
        deconv1 = ConvTranspose2d(Widths[0], Widths[1], Layers[0].Kernel, Layers[0].Stride);
        norm1 = new ImageBatchNorm(Widths[1]);
        deconv2 = ConvTranspose2d(Widths[1], Widths[2], Layers[1].Kernel, Layers[1].Stride);
        norm2 = new ImageBatchNorm(Widths[2]);
        deconv3 = ConvTranspose2d(Widths[2], Widths[3], Layers[2].Kernel, Layers[2].Stride);
        norm3 = new ImageBatchNorm(Widths[3]);
        deconv4 = ConvTranspose2d(Widths[3], channels, Layers[3].Kernel, Layers[3].Stride);
        RegisterComponents();
    }

    public int LatentDim { get; }
    public int Channels { get; }
    public int Height { get; }
    public int Width { get; }

    /// <summary>How the layers compute.</summary>
    public ConvPath Path { get; }

    /// <summary>
    /// The arithmetic of the layers (<see cref="NetworkPrecisions.Default"/> unless set). With
    /// <see cref="NetworkPrecision.Bfloat16"/> float32 latents run through the linear layer, the inner transposed convolutions
    /// and the batch norms in bfloat16 (as <see cref="ConvTrunk.Precision"/>); the image layer (C output channels) computes
    /// in float32, where libtorch's bfloat16 kernel was wrong on one processor (see <see cref="forward"/>), and the output
    /// is returned in float32.
    /// </summary>
    public NetworkPrecision Precision { get; set; } = NetworkPrecisions.Default;

    /// <summary>h₀, w₀: the size of the map the linear layer makes.</summary>
    public int StartHeight { get; }
    public int StartWidth { get; }

    /// <summary>The size of the map the stack makes before the centre H×W is kept.</summary>
    public int OutputHeight { get; }
    public int OutputWidth { get; }

    /// <summary>The side the transposed stack makes from a start side s: (s − 1)·stride + kernel per layer.</summary>
    public static int OutputSide(int start)
    {
        int side = start;
        foreach (var (kernel, stride) in Layers) side = (side - 1) * stride + kernel;
        return side;
    }

    /// <summary>
    /// The first transposed convolution of a one-pixel map <c>[B, 64]</c>: each example writes the weight's k×k maps
    /// scaled by its channels, one product with the weight as a <c>[64, k·k·64]</c> matrix in (ky, kx, output channel)
    /// order, so that the product's rows are the maps pixel by pixel: <c>[B, 64, k, k]</c> in NHWC strides, without the
    /// layout copy of the output (and of its gradient) that the weight's own order needed.
    /// </summary>
    Tensor OnePixelTransposedConvolution(Tensor start)
    {
        int kernel = Layers[0].Kernel;
        var (weight, bias) = ConvDefaults.ParametersFor(start, deconv1.weight!, deconv1.bias!); // [in, out, k, k]
        var pixelMajor = weight.permute(0, 2, 3, 1).reshape(weight.shape[0], -1);                 // [in, k·k·out], a copy
        return start.mm(pixelMajor).view(start.shape[0], kernel, kernel, weight.shape[1]).add(bias!, Scalars.One).permute(0, 3, 1, 2);
    }

    // Transposed convolution `index` (0-based) in the map's type.
    // On ConvPath.Fast a float32 CPU map takes Ddvi's own forward loop (TransposedConvFunction) where it handles the shape.
    // `biasCancels`: a batch norm after it removes a per-channel constant (ImageBatchNorm.RemovesInputShift).
    Tensor Deconvolve(int index, ConvTranspose2d deconv, Tensor map, bool biasCancels)
    {
        long stride = Layers[index].Stride;
        if (map.dtype != ScalarType.BFloat16)
            return Path == ConvPath.Fast && TransposedConvFunction.Enabled && TransposedConvFunction.Supports(map, deconv.weight, deconv.bias, stride)
                ? TransposedConvFunction.Run(map, deconv.weight!, deconv.bias!, stride, biasCancels)
                : deconv.call(map);
        var (weight, bias) = ConvDefaults.ParametersFor(map, deconv.weight!, deconv.bias);
        // libtorch's bfloat16 transposed convolution with a bias is several times slower than without one and the bias
        // added after (measured on the 2-core machine); the values are the same.
        var output = functional.conv_transpose2d(map, weight, null, strides: [stride, stride]);
        return bias is null ? output : output.add(bias.view(1, -1, 1, 1), Scalars.One);
    }

    /// <summary>z <c>[B, d]</c> → <c>[B, C·H·W]</c>.</summary>
    public override Tensor forward(Tensor z)
    {
        if (z.dim() != 2 || z.shape[1] != LatentDim)
            throw new ArgumentException($"ConvDecoder: latents must be [B, {LatentDim}], got [{string.Join(", ", z.shape)}].", nameof(z));
        using var scope = NewDisposeScope();
        var latents = ConvDefaults.InPrecision(z, Precision);
        var (inputWeight, inputBias) = ConvDefaults.ParametersFor(latents, input.weight!, input.bias);
        var start = functional.relu(functional.linear(latents, inputWeight, inputBias));
        var h = Path == ConvPath.Fast && StartHeight == 1 && StartWidth == 1
            ? OnePixelTransposedConvolution(start)
            : Deconvolve(0, deconv1, ConvDefaults.InLayout(start.view(z.shape[0], Widths[0], StartHeight, StartWidth), Path), norm1.RemovesInputShift);
        h = norm1.ForwardRelu(h, Path == ConvPath.Fast);
        h = norm2.ForwardRelu(Deconvolve(1, deconv2, h, norm2.RemovesInputShift), Path == ConvPath.Fast);
        h = norm3.ForwardRelu(Deconvolve(2, deconv3, h, norm3.RemovesInputShift), Path == ConvPath.Fast);
        // The image layer in float32 under bfloat16 too: libtorch's (oneDNN 3.7's) bfloat16 transposed convolution gave
        // wrong values (relative errors 0.2-0.5) for fewer than 16 output channels on NCHW maps and for one on NHWC maps on
        // an AMD EPYC processor with AVX-512 BF16 (docs/performance.md); the layer is 15% of the decoder's products.
        h = Deconvolve(3, deconv4, h.dtype == ScalarType.BFloat16 ? h.to(ScalarType.Float32) : h, biasCancels: false);
        if (OutputHeight != Height || OutputWidth != Width)
            h = h.narrow(2, (OutputHeight - Height) / 2, Height).narrow(3, (OutputWidth - Width) / 2, Width);
        h = h.reshape(z.shape[0], (long)Channels * Height * Width);
        return (h.dtype == z.dtype ? h : h.to(z.dtype)).MoveToOuterDisposeScope();
    }
}

/// <summary>
/// A network whose outputs are squashed into [low, high]: low + (high − low)·sigmoid(f(z)). For [−1, 1] this is tanh(f/2):
/// a decoder mean that covers exactly the range of data normalised to [−1, 1] (the release's sigmoid decoder covers only
/// [0, 1] of it).
/// </summary>
/// <remarks>Checkpoint keys: <c>network.*</c>.</remarks>
public sealed class BoundedOutput : Module<Tensor, Tensor>
{
    private readonly Module<Tensor, Tensor> network;

    public BoundedOutput(Module<Tensor, Tensor> network, double low, double high) : base(nameof(BoundedOutput))
    {
        ArgumentNullException.ThrowIfNull(network);
        if (!double.IsFinite(low) || !double.IsFinite(high) || !(high > low))
            throw new ArgumentException($"BoundedOutput: the range must be finite with low < high, got [{low}, {high}].");
        this.network = network;
        Low = low;
        High = high;
        RegisterComponents();
    }

    public Module<Tensor, Tensor> Network => network;
    public double Low { get; }
    public double High { get; }

    public override Tensor forward(Tensor z)
    {
        using var scope = NewDisposeScope();
        var output = network.call(z);
        // One operation on float32 CPU outputs (a pass each way instead of three tensors forward and two backward).
        if (FastPaths.BoundedSigmoidFunction.Supports(output))
            return FastPaths.BoundedSigmoidFunction.Run(output, Low, High).MoveToOuterDisposeScope();
        return output.sigmoid().mul(Scalars.Of(High - Low)).add(Scalars.Of(Low), Scalars.One).MoveToOuterDisposeScope();
    }
}
