using static TorchSharp.torch;

namespace Ddvi.Models;

/// <summary>
/// What evaluation and plotting need from any trained model p(x, z) = p(z) p(x|z) with an inference
/// network: latents for data and images for latents. Implementations are modules; callers switch
/// them to eval mode and wrap calls in no_grad.
/// </summary>
public interface ILatentVariableModel
{
    int LatentDim { get; }

    /// <summary>A posterior sample z ~ q(z|x) for x <c>[B, D]</c> → <c>[B, LatentDim]</c>.</summary>
    Tensor EncodeLatents(Tensor x, Generator generator);

    /// <summary>Decoder means (pixel intensities in [0, 1]) for z <c>[B, LatentDim]</c> → <c>[B, D]</c>.</summary>
    Tensor DecodeMeans(Tensor z);
}

/// <summary>
/// A model whose posterior is a reverse diffusion chain y_T → … → y_0 = z: evaluation also keeps the chain's
/// starting point y_T ~ q(y_T|x), to show what the chain adds.
/// </summary>
public interface IDiffusionPosterior
{
    /// <summary>The chain's start y_T and its output z for x <c>[B, D]</c>, each <c>[B, LatentDim]</c>, from one draw.</summary>
    (Tensor YT, Tensor Z) EncodeWithStart(Tensor x, Generator generator);
}
