namespace Ddvi.FastPaths;

/// <summary>
/// The tensor checks Ddvi's own convolution operations share: a float32 CPU map <c>[B, C, H, W]</c> stored pixel by pixel
/// (NHWC), and a float32 contiguous CPU weight with a square kernel and a bias that fit it.
/// </summary>
internal static class ConvOperands
{
    /// <summary>
    /// Whether <paramref name="x"/>, <paramref name="weight"/> (<c>[·, ·, k, k]</c> with the map's channels at dimension
    /// <paramref name="inputDim"/>, its output channels at the other) and <paramref name="bias"/> (one value per output
    /// channel) are float32 CPU tensors in the layouts the loops read, with a positive stride; with
    /// <paramref name="planarToo"/> the map may also be stored channel plane by channel plane (NCHW, contiguous).
    /// </summary>
    public static bool Suit(TorchSharp.torch.Tensor x, TorchSharp.torch.Tensor? weight, TorchSharp.torch.Tensor? bias, long stride, int inputDim,
        bool planarToo = false)
    {
        if (x.ndim != 4 || !IsFloat32Cpu(x) || stride < 1 || x.shape[0] < 1) return false;
        if (weight is null || weight.ndim != 4 || !IsFloat32Cpu(weight) || !weight.is_contiguous()
            || weight.shape[inputDim] != x.shape[1] || weight.shape[2] != weight.shape[3])
            return false;
        if (bias is null || bias.ndim != 1 || bias.shape[0] != weight.shape[1 - inputDim] || !IsFloat32Cpu(bias) || !bias.is_contiguous())
            return false;
        return x.permute(0, 2, 3, 1).is_contiguous() || (planarToo && x.is_contiguous());
    }

    private static bool IsFloat32Cpu(TorchSharp.torch.Tensor t) =>
        t.device_type == TorchSharp.DeviceType.CPU && t.dtype == TorchSharp.torch.ScalarType.Float32;
}
