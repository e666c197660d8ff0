using static TorchSharp.torch;
using static TorchSharp.torch.autograd;

namespace Ddvi.FastPaths;

/// <summary>
/// Batch norm with batch statistics (training mode) followed by ReLU, as one autograd operation on float32 CPU maps in
/// NHWC strides: relu(γ·(x − μ)/√(σ² + ε) + β) with μ and σ² the per-channel mean and biased variance of the batch, the
/// running averages moved as libtorch's <c>batch_norm</c> moves them (momentum m: r ← (1 − m)·r + m·μ, and the unbiased
/// variance). libtorch runs these as two operations, each with its own forward and backward pass over the map; on the
/// 16-channel maps of the CIFAR-10 networks they took a fifth of a VAE step, more than the convolution they follow
/// (docs/performance.md). Here the forward pass reads the map twice and writes it once, the backward pass reads it and
/// the incoming gradient twice and writes the input's gradient once, and ReLU's mask is recomputed rather than stored
/// (<see cref="BatchNormReluKernel"/>).
/// </summary>
/// <remarks>
/// Inputs: the <see cref="Settings"/>, x <c>[B, C, H, W]</c> (NHWC strides), γ and β <c>[C]</c>. Output <c>[B, C, H, W]</c>
/// in NHWC strides. The reference is libtorch's <c>relu(batch_norm(…))</c>, which <see cref="Models.ImageBatchNorm"/> runs
/// wherever <see cref="Supports"/> is false (and in evaluation mode); the tests compare the two. Only first derivatives
/// are supported.
/// </remarks>
internal sealed class BatchNormReluFunction : SingleTensorFunction<BatchNormReluFunction>
{
    /// <summary>The running statistics to move (float32, contiguous, on the CPU), the momentum and ε.</summary>
    internal sealed record Settings(Tensor RunningMean, Tensor RunningVar, double Momentum, double Epsilon);

    private sealed record Saved(float[] Scale, float[] Shift, double[] Mean, double[] InvStd);

    public override string Name => nameof(BatchNormReluFunction);

    /// <summary>
    /// Whether <see cref="Models.ImageBatchNorm.ForwardRelu"/> may use this operation (the default); false keeps libtorch's
    /// two operations everywhere, for comparisons.
    /// </summary>
    internal static bool Enabled { get; set; } = true;

    /// <summary>
    /// Whether the operation handles these tensors: a float32 CPU map <c>[B, C, H, W]</c> whose memory is pixel by pixel
    /// (NHWC; <see cref="Models.ConvDefaults.InLayout"/>), with more than one value per channel and C a multiple of 16,
    /// and float32 contiguous CPU parameters and running statistics of C values each.
    /// </summary>
    public static bool Supports(Tensor x, Tensor? weight, Tensor? bias, Tensor? runningMean, Tensor? runningVar)
    {
        if (x.ndim != 4 || x.device_type != TorchSharp.DeviceType.CPU || x.dtype != ScalarType.Float32) return false;
        long channels = x.shape[1];
        if (!BatchNormReluKernel.SupportsChannels(channels) || x.shape[0] * x.shape[2] * x.shape[3] < 2) return false;
        if (!x.permute(0, 2, 3, 1).is_contiguous()) return false;
        foreach (var vector in new[] { weight, bias, runningMean, runningVar })
            if (vector is null || vector.dtype != ScalarType.Float32 || vector.device_type != TorchSharp.DeviceType.CPU
                || vector.ndim != 1 || vector.shape[0] != channels || !vector.is_contiguous())
                return false;
        return true;
    }

    /// <summary>relu(batch_norm(x)) in training mode; the caller has checked <see cref="Supports"/>.</summary>
    public static Tensor Run(Tensor x, Tensor weight, Tensor bias, Tensor runningMean, Tensor runningVar, double momentum, double epsilon) =>
        apply(new Settings(runningMean, runningVar, momentum, epsilon), x, weight, bias);

    public override unsafe Tensor forward(AutogradContext ctx, params object[] vars)
    {
        var settings = (Settings)vars[0];
        var x = (Tensor)vars[1];
        var weight = (Tensor)vars[2];
        var bias = (Tensor)vars[3];
        long batch = x.shape[0], channels = x.shape[1], height = x.shape[2], width = x.shape[3];
        long rows = batch * height * width;
        int c = (int)channels;
        int threads = Math.Max(1, get_num_threads());
        var pixels = x.permute(0, 2, 3, 1); // [B, H, W, C], contiguous (Supports)

        var mean = new double[c];
        var variance = new double[c];
        BatchNormReluKernel.Statistics(TensorMemory.Pointer<float>(pixels), rows, c, threads, mean, variance);

        var gamma = TensorMemory.Elements<float>(weight);
        var beta = TensorMemory.Elements<float>(bias);
        var runningMean = TensorMemory.Elements<float>(settings.RunningMean);
        var runningVar = TensorMemory.Elements<float>(settings.RunningVar);
        var scale = new float[c];
        var shift = new float[c];
        var invStd = new double[c];
        double m = settings.Momentum;
        for (int k = 0; k < c; k++)
        {
            invStd[k] = 1 / Math.Sqrt(variance[k] + settings.Epsilon);
            scale[k] = (float)(gamma[k] * invStd[k]);
            shift[k] = (float)(beta[k] - mean[k] * gamma[k] * invStd[k]);
            runningMean[k] = (float)((1 - m) * runningMean[k] + m * mean[k]);
            runningVar[k] = (float)((1 - m) * runningVar[k] + m * variance[k] * rows / (rows - 1));
        }

        var output = empty([batch, height, width, channels], dtype: ScalarType.Float32);
        BatchNormReluKernel.NormalizeRelu(TensorMemory.Pointer<float>(pixels), TensorMemory.Pointer<float>(output), rows, c, threads, scale, shift);
        ctx.save_for_backward([x]);
        ctx.save_data(nameof(Saved), new Saved(scale, shift, mean, invStd));
        return output.permute(0, 3, 1, 2);
    }

    public override unsafe List<Tensor> backward(AutogradContext ctx, Tensor gradOutput)
    {
        using var noGrad = no_grad();
        // The temporaries die here; only the gradients handed back to the engine leave this scope.
        using var scope = NewDisposeScope();
        var saved = (Saved)ctx.get_data(nameof(Saved));
        var x = ctx.get_saved_variables()[0];
        long batch = x.shape[0], channels = x.shape[1], height = x.shape[2], width = x.shape[3];
        long rows = batch * height * width;
        int c = (int)channels;
        var gradPixels = gradOutput.permute(0, 2, 3, 1);
        if (!gradPixels.is_contiguous() || gradPixels.dtype != ScalarType.Float32) gradPixels = gradPixels.to(ScalarType.Float32).contiguous();
        var gradX = empty([batch, height, width, channels], dtype: ScalarType.Float32);
        var sumGrad = new double[c];
        var sumGradCentred = new double[c];
        BatchNormReluKernel.Backward(TensorMemory.Pointer<float>(x.permute(0, 2, 3, 1)), TensorMemory.Pointer<float>(gradPixels),
            TensorMemory.Pointer<float>(gradX), rows, c, Math.Max(1, get_num_threads()), saved.Scale, saved.Shift, saved.Mean, saved.InvStd,
            sumGrad, sumGradCentred);
        var gradWeight = new float[c];
        var gradBias = new float[c];
        for (int k = 0; k < c; k++)
        {
            gradWeight[k] = (float)(sumGradCentred[k] * saved.InvStd[k]);
            gradBias[k] = (float)sumGrad[k];
        }
        var result = new List<Tensor> { null!, gradX.permute(0, 3, 1, 2), tensor(gradWeight), tensor(gradBias) };
        foreach (var gradient in result)
            if (gradient is not null) scope.MoveToOuter(gradient);
        return result;
    }
}
