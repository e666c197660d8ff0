using Ddvi.Data;
using Ddvi.Experiments;
using Ddvi.Likelihoods;
using Ddvi.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace Ddvi.Tests.Models;

public class ConvNetworksTests
{
    static ImageDataset Images(ImageShape shape, int count, PixelRange range)
    {
        torch.manual_seed(3);
        var (low, high) = range.Bounds();
        return new ImageDataset("t", rand(count, shape.Size) * (high - low) + low, zeros(count, dtype: int64), shape, 10, range);
    }

    [Theory]
    [InlineData(3, 32, 32)]
    [InlineData(1, 28, 28)]
    public void ShapesOfEveryNetworkFitTheImages(int channels, int height, int width)
    {
        torch.manual_seed(0);
        int size = channels * height * width;
        using var x = rand(5, size);
        using var trunk = new ConvTrunk(channels, height, width);
        Assert.Equal(128, trunk.OutputDim);
        using (var features = trunk.call(x)) Assert.Equal([5L, 128L], features.shape);

        using var encoder = new ConvEncoder(channels, height, width, [1000], [2, 2, 10], 0.2);
        var heads = Mlp.HeadsOf(encoder, x, [2, 2, 10]);
        Assert.Equal([[5L, 2L], [5L, 2L], [5L, 10L]], heads.Select(h => h.shape));
        foreach (var h in heads) h.Dispose();

        using var auxiliary = new ConvEncoder(channels, height, width, PaperSettings.ConvAuxiliaryHidden, [2], PaperSettings.ConvAuxiliaryDropout);
        using (var a = auxiliary.call(x)) Assert.Equal([5L, 2L], a.shape);
        Assert.Equal([24, 24], auxiliary.Head.HiddenWidths);

        using var decoder = new ConvDecoder(2, channels, height, width);
        Assert.Equal((32, 32), (decoder.OutputHeight, decoder.OutputWidth)); // the release's 1×1 → 5 → 13 → 29 → 32
        using var z = randn(5, 2);
        using (var output = decoder.call(z)) Assert.Equal([5L, (long)size], output.shape);
    }

    [Theory]
    [InlineData(3, 32, 32, true)]
    [InlineData(3, 32, 32, false)]
    [InlineData(1, 28, 28, true)]
    [InlineData(3, 40, 36, true)]   // a trunk whose last map is 2×1, a decoder whose first map is 2×1 and whose centre is kept
    public void BothPathsComputeTheSameValuesAndGradients(int channels, int height, int width, bool training)
    {
        var layouts = new[] { ConvPath.Plain, ConvPath.Fast };
        torch.manual_seed(5);
        var trunks = layouts.Select(l => new ConvTrunk(channels, height, width, l)).ToArray();
        var decoders = layouts.Select(l => new ConvDecoder(3, channels, height, width, l)).ToArray();
        trunks[1].load_state_dict(trunks[0].state_dict());
        decoders[1].load_state_dict(decoders[0].state_dict());
        using var x = rand(6, channels * height * width) * 2 - 1;
        using var z = randn(6, 3);
        var results = new List<Tensor[]>();
        for (int k = 0; k < 2; k++)
        {
            trunks[k].train(training);
            decoders[k].train(training);
            using var xk = x.clone().requires_grad_(true);
            using var zk = z.clone().requires_grad_(true);
            var features = trunks[k].call(xk);
            var images = decoders[k].call(zk);
            Assert.Equal([6L, (long)trunks[k].OutputDim], features.shape);
            Assert.Equal([6L, (long)channels * height * width], images.shape);
            // a loss that weighs every output differently, so a permuted output would show
            using var weightsF = arange(features.numel()).reshape(features.shape).sin();
            using var weightsI = arange(images.numel()).reshape(images.shape).cos();
            (features.mul(weightsF).sum() + images.mul(weightsI).sum()).backward();
            results.Add([features.detach(), images.detach(), xk.grad!.clone(), zk.grad!.clone(),
                .. trunks[k].parameters().Select(p => p.grad!.clone()), .. decoders[k].parameters().Select(p => p.grad!.clone()),
                .. trunks[k].buffers().Select(b => b.clone()), .. decoders[k].buffers().Select(b => b.clone())]);
        }
        Assert.Equal(results[0].Length, results[1].Length);
        for (int i = 0; i < results[0].Length; i++)
        {
            Assert.Equal(results[0][i].shape, results[1][i].shape);
            // float32 sums in another order: rounding-level differences, which batch norm over a few values per channel
            // (6 images, 2 pixels at the last map) amplifies; a wrong layout would differ at the scale of the values
            using var a = results[0][i].to(float64);
            using var b = results[1][i].to(float64);
            double scale = Math.Max(1.0, a.abs().max().item<double>());
            double difference = (a - b).abs().max().item<double>();
            Assert.True(difference <= 1e-3 * scale, $"tensor {i}: the paths differ by {difference} (scale {scale})");
        }
        foreach (var m in trunks) m.Dispose();
        foreach (var m in decoders) m.Dispose();
    }

    /// <summary>
    /// A bias right before a batch norm in training mode has no effect (the batch mean removes it), so its gradient is
    /// zero: the fast path returns exact zeros, libtorch's per-channel sums give only a rounding residue, and in
    /// evaluation mode, where the running mean is fixed, the biases' gradients are real and the paths agree.
    /// </summary>
    [Fact]
    public void BiasesBeforeATrainingBatchNormGetZeroGradients()
    {
        string[] trunkBiases = ["conv1.bias", "conv2.bias", "conv3.bias"], decoderBiases = ["deconv2.bias", "deconv3.bias"];
        foreach (bool training in new[] { true, false })
        {
            torch.manual_seed(6);
            var paths = new[] { ConvPath.Plain, ConvPath.Fast };
            var trunks = paths.Select(p => new ConvTrunk(3, 32, 32, p)).ToArray();
            var decoders = paths.Select(p => new ConvDecoder(2, 3, 32, 32, p)).ToArray();
            trunks[1].load_state_dict(trunks[0].state_dict());
            decoders[1].load_state_dict(decoders[0].state_dict());
            using var x = rand(8, 3072) * 2 - 1;
            using var z = randn(8, 2);
            var gradients = new List<Dictionary<string, Tensor>>();
            for (int k = 0; k < 2; k++)
            {
                trunks[k].train(training);
                decoders[k].train(training);
                using var weights = arange(3072).sin();
                (trunks[k].call(x).sin().sum() + decoders[k].call(z).mul(weights).sum()).backward();
                gradients.Add(trunks[k].named_parameters().Select(p => ("trunk." + p.name, p.parameter.grad!.clone()))
                    .Concat(decoders[k].named_parameters().Select(p => ("decoder." + p.name, p.parameter.grad!.clone())))
                    .ToDictionary(p => p.Item1, p => p.Item2));
            }
            foreach (var name in trunkBiases.Select(n => "trunk." + n).Concat(decoderBiases.Select(n => "decoder." + n)))
            {
                string weight = name.Replace(".bias", ".weight");
                double weightScale = gradients[0][weight].abs().max().item<float>();
                Assert.True(weightScale > 0, $"{weight}: no gradient");
                double plain = gradients[0][name].abs().max().item<float>(), fast = gradients[1][name].abs().max().item<float>();
                if (training)
                {
                    Assert.Equal(0.0, fast);
                    Assert.True(plain <= 1e-4 * weightScale, $"{name}: libtorch's gradient {plain} is not a rounding residue of the weight's scale {weightScale}");
                }
                else
                {
                    Assert.True(plain > 1e-3 * weightScale, $"{name}: in evaluation mode the bias acts, but its gradient is {plain}");
                    Assert.True(gradients[1][name].allclose(gradients[0][name], rtol: 1e-3, atol: 1e-5 * weightScale), $"{name}: the paths differ in evaluation mode");
                }
            }
            foreach (var m in trunks) m.Dispose();
            foreach (var m in decoders) m.Dispose();
        }
    }

    [Fact]
    public void TheFastPathIsTheDefaultAndGivesNhwcStridesEvenForOnePixelMaps()
    {
        using var trunk = new ConvTrunk(3, 32, 32);
        Assert.Equal(ConvDefaults.Path, trunk.Path);
        Assert.Equal(ConvPath.Fast, new ConvDecoder(2, 3, 32, 32).Path);
        using var map = randn(4, 8, 5, 3);
        using var last = ConvDefaults.InLayout(map, ConvPath.Fast);
        Assert.Equal([120L, 1L, 24L, 8L], last.stride());
        Assert.True(last.equal(map).all().item<bool>());
        using var pixel = randn(4, 8, 1, 1);
        using var lastPixel = ConvDefaults.InLayout(pixel, ConvPath.Fast);
        Assert.Equal([8L, 1L, 8L, 8L], lastPixel.stride());
        Assert.True(lastPixel.equal(pixel).all().item<bool>());
        Assert.Same(map, ConvDefaults.InLayout(map, ConvPath.Plain));
    }

    [Fact]
    public void TooSmallImagesAreRefusedWithTheirSize()
    {
        var error = Assert.Throws<ArgumentException>(() => new ConvTrunk(3, 16, 32));
        Assert.Contains("16×32", error.Message);
        using var small = Images(new ImageShape(3, 16, 16), 4, PixelRange.Symmetric);
        var choice = Assert.Throws<ArgumentException>(() => ImageNetworks.For(NetworkChoice.Conv, small, 2));
        Assert.Contains("--networks conv", choice.Message);
        Assert.False(ImageNetworks.For(NetworkChoice.Auto, small, 2).Convolutional);
    }

    [Fact]
    public void AutoChoosesConvForColourImagesAndTheMlpsOtherwise()
    {
        using var colour = Images(new ImageShape(3, 32, 32), 8, PixelRange.Symmetric);
        using var grey = Images(ImageShape.Mnist, 8, PixelRange.UnitInterval);
        Assert.True(ImageNetworks.For(NetworkChoice.Auto, colour, 4).Convolutional);
        Assert.False(ImageNetworks.For(NetworkChoice.Mlp, colour, 4).Convolutional);
        Assert.False(ImageNetworks.For(NetworkChoice.Auto, grey, 4).Convolutional);
        Assert.True(ImageNetworks.For(NetworkChoice.Auto, grey, 4).AreModelDefaults);
        Assert.True(ImageNetworks.For(NetworkChoice.Conv, grey, 4).Convolutional);
        var lastBatchOfOne = Assert.Throws<ArgumentException>(() => ImageNetworks.For(NetworkChoice.Auto, colour, 7));
        Assert.Contains("--batch-size 7", lastBatchOfOne.Message);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void TheDecoderMeanCoversTheDataRangeAndNoMore(bool convolutional)
    {
        foreach (var (shape, range) in new[] { (new ImageShape(3, 32, 32), PixelRange.Symmetric), (ImageShape.Mnist, PixelRange.UnitInterval) })
        {
            using var data = Images(shape, 8, range);
            var networks = ImageNetworks.For(convolutional ? NetworkChoice.Conv : NetworkChoice.Mlp, data, 4);
            using var likelihood = networks.Likelihood(2, 64, 0.0);
            Assert.IsType(range == PixelRange.Symmetric ? typeof(GaussianLikelihood) : typeof(BernoulliLikelihood), likelihood);
            likelihood.eval();
            using var noGrad = no_grad();
            using var z = randn(256, 2) * 1000;                  // far latents drive the outputs to their limits
            using var mean = likelihood.Mean(z);
            var (low, high) = range.Bounds();
            Assert.True(mean.min().item<float>() >= low && mean.max().item<float>() <= high, $"means outside [{low}, {high}]");
            Assert.True(mean.min().item<float>() < low + 0.05 && mean.max().item<float>() > high - 0.05,
                $"means cover [{mean.min().item<float>()}, {mean.max().item<float>()}], not the data's [{low}, {high}]");
            likelihood.CheckData(data.Images, "data");
        }
    }

    [Fact]
    public void GaussianWithSigmaOneOverRootTwoIsTheReleasesMseUpToAConstant()
    {
        using var data = Images(new ImageShape(3, 32, 32), 8, PixelRange.Symmetric);
        using var likelihood = ImageNetworks.For(NetworkChoice.Conv, data, 4).Likelihood(2, 64, 0.0);
        likelihood.eval();
        using var z = randn(8, 2);
        using var output = likelihood.Decode(z);
        using var mse = nn.functional.mse_loss(output, data.Images);
        using var perFeature = likelihood.MeanNegativeLogProbPerFeature(output, data.Images);
        Assert.Equal(mse.item<float>() + 0.5 * Math.Log(Math.PI), perFeature.item<float>(), 4);
        using var logProb = likelihood.LogProbFromOutput(output, data.Images);  // nats per image
        using var sumSquares = (output - data.Images).square().sum(1);
        using var expected = -sumSquares - 3072 * 0.5 * Math.Log(Math.PI);
        Assert.True(logProb.allclose(expected, rtol: 1e-5, atol: 1e-2));
    }

    [Fact]
    public void BatchNormUsesItsRunningStatisticsInEvalMode()
    {
        torch.manual_seed(1);
        using var encoder = new ConvEncoder(3, 32, 32, [16], [2], 0.0);
        using var x = rand(6, 3072);
        using (var trained = encoder.call(x)) { } // one training-mode pass updates the running statistics
        encoder.eval();
        using var noGrad = no_grad();
        using var all = encoder.call(x);
        using var first = encoder.call(x[..1]);
        // In eval mode an image's output does not depend on the rest of its batch.
        Assert.True(all[..1].allclose(first, rtol: 1e-4, atol: 1e-5));
        encoder.train();
        using var firstTwoTrain = encoder.call(x[..2]);
        Assert.False(all[..2].allclose(firstTwoTrain, rtol: 1e-3, atol: 1e-4));
    }

    [Fact]
    public void ImageBatchNormComputesAsTorchSharpsBatchNorm2d()
    {
        using var scope = NewDisposeScope();
        using var generator = new Generator(5);
        using var reference = nn.BatchNorm2d(6);
        using var norm = new ImageBatchNorm(6);
        using (no_grad())
        {
            reference.weight!.copy_(rand(6, generator: generator) + 0.5);
            reference.bias!.copy_(randn(6, generator: generator));
            norm.weight!.copy_(reference.weight!);
            norm.bias!.copy_(reference.bias!);
        }
        Assert.Equal(reference.state_dict().Keys.Order(), norm.state_dict().Keys.Order());

        for (int step = 0; step < 3; step++)
        {
            var x = randn([8, 6, 5, 5], generator: generator) * 3 + 1;
            var upstream = randn([8, 6, 5, 5], generator: generator);
            var expected = reference.call(x);
            var actual = norm.call(x);
            Assert.True(actual.allclose(expected, rtol: 1e-6, atol: 1e-6), $"training output, step {step}");
            (expected * upstream).sum().backward();
            (actual * upstream).sum().backward();
            Assert.True(norm.weight!.grad!.allclose(reference.weight!.grad!, rtol: 1e-5, atol: 1e-5), $"scale gradient, step {step}");
            Assert.True(norm.bias!.grad!.allclose(reference.bias!.grad!, rtol: 1e-5, atol: 1e-5), $"shift gradient, step {step}");
        }
        Assert.True(norm.running_mean!.allclose(reference.running_mean!, rtol: 1e-6, atol: 1e-6));
        Assert.True(norm.running_var!.allclose(reference.running_var!, rtol: 1e-6, atol: 1e-6));
        Assert.Equal(3L, norm.num_batches_tracked!.item<long>());
        Assert.Equal(reference.num_batches_tracked!.item<long>(), norm.num_batches_tracked!.item<long>());

        reference.eval();
        norm.eval();
        using (no_grad())
        {
            var x = randn([4, 6, 5, 5], generator: generator);
            Assert.True(norm.call(x).allclose(reference.call(x), rtol: 1e-6, atol: 1e-6), "evaluation output");
        }
        Assert.Equal(3L, norm.num_batches_tracked!.item<long>()); // evaluation does not count

        var error = Assert.Throws<ArgumentException>(() => norm.call(zeros(4, 6, 5)));
        Assert.Contains("ImageBatchNorm", error.Message);
        Assert.Contains("[4, 6, 5]", error.Message);
    }
}
