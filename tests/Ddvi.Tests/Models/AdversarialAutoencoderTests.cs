using Ddvi.Models;
using Ddvi.Training;
using static TorchSharp.torch;

namespace Ddvi.Tests.Models;

public class AdversarialAutoencoderTests
{
    [Fact]
    public void ShapesAndRanges()
    {
        using var scope = NewDisposeScope();
        using var aae = new AdversarialAutoencoder(64, hidden: 32, discriminatorHidden: 16);
        using var generator = new Generator(1);
        var x = rand(5, 64, generator: generator);
        var z = aae.Encode(x);
        Assert.Equal(new long[] { 5, 2 }, z.shape);
        Assert.Equal(new long[] { 5, 64 }, aae.DecodeOutput(z).shape);
        var images = aae.DecodeMeans(z);
        Assert.Equal(new long[] { 5, 64 }, images.shape);
        Assert.True((images >= 0).all().item<bool>() && (images <= 1).all().item<bool>());
        Assert.Equal(new long[] { 5 }, aae.Discriminator.call(z).shape);
        Assert.Equal(new long[] { 5 }, aae.Discriminator.Logits(z, 0.2, generator).shape);
        Assert.Equal(2, aae.LatentDim);
    }

    [Fact]
    public void LatentsAreTheEncoderOutputWithoutSampling()
    {
        using var scope = NewDisposeScope();
        using var aae = new AdversarialAutoencoder(64, hidden: 32, discriminatorHidden: 16);
        aae.eval();
        using var g1 = new Generator(1);
        using var g2 = new Generator(2);
        var x = rand(6, 64, generator: g1);
        var expected = aae.Encode(x);
        Assert.True(aae.EncodeLatents(x, g1).eq(expected).all().item<bool>());
        Assert.True(aae.EncodeLatents(x, g2).eq(expected).all().item<bool>());
    }

    [Fact]
    public void ParameterGroupsSplitTheModules()
    {
        using var aae = new AdversarialAutoencoder(64, hidden: 32, discriminatorHidden: 16);
        var encoder = aae.EncoderParameters();
        var autoencoder = aae.AutoencoderParameters();
        var discriminator = aae.DiscriminatorParameters();
        Assert.Equal(aae.Encoder.parameters().Count(), encoder.Count);
        Assert.Equal(encoder.Count + aae.Decoder.parameters().Count(), autoencoder.Count);
        Assert.Equal(6, discriminator.Count); // three linear layers, weight and bias each
        Assert.Equal(aae.parameters().Count(), autoencoder.Count + discriminator.Count);
        Assert.Empty(autoencoder.Intersect(discriminator));
        Assert.All(encoder, p => Assert.Contains(p, autoencoder));
    }

    [Theory]
    [InlineData(200, 0, 0.2)]
    [InlineData(200, 49, 0.2)]
    [InlineData(200, 50, 0.1)]
    [InlineData(200, 99, 0.1)]
    [InlineData(200, 100, 0.0)]
    [InlineData(200, 150, 0.0)]
    [InlineData(200, 199, 0.0)]
    [InlineData(10, 2, 0.2)]   // 2 < 10/4
    [InlineData(10, 3, 0.1)]   // 10/4 ≤ 3 < 10/2
    [InlineData(10, 4, 0.1)]
    [InlineData(10, 5, 0.0)]
    [InlineData(1, 0, 0.2)]
    public void NoiseStepsDownAtTheQuarterAndHalfMarks(int epochs, int epoch, double expected)
    {
        Assert.Equal(expected, AaeDiscriminator.NoiseStdAt(epoch, epochs, 0.2), 12);
    }

    [Fact]
    public void NoiseScheduleRejectsBadArguments()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => AaeDiscriminator.NoiseStdAt(0, 0, 0.2));
        Assert.Throws<ArgumentOutOfRangeException>(() => AaeDiscriminator.NoiseStdAt(-1, 10, 0.2));
        using var generator = new Generator(1);
        using var z = ones(2, 2);
        Assert.Throws<ArgumentOutOfRangeException>(() => AaeDiscriminator.PerturbInput(z, -0.1, generator));
        Assert.Throws<ArgumentOutOfRangeException>(() => AaeDiscriminator.PerturbInput(z, double.NaN, generator));
        Assert.Throws<ArgumentException>(() => new AaeDiscriminator(0, 16));
    }

    [Fact]
    public void InputNoiseIsRelativeToEachCoordinateAndComesFromTheCallersGenerator()
    {
        using var scope = NewDisposeScope();
        var z = tensor(new float[] { 0f, 1f, -2f, 4f, 0f, -0.5f }).view(3, 2);
        using var g1 = new Generator(5);
        using var g2 = new Generator(5);
        var noisy = AaeDiscriminator.PerturbInput(z, 0.3, g1);
        var epsilon = randn(z.shape, generator: g2);
        Assert.True(noisy.allclose(z + 0.3 * z.abs() * epsilon, rtol: 1e-6, atol: 1e-7));
        Assert.True(noisy[z == 0].eq(0).all().item<bool>()); // zero coordinates stay put: the noise is multiplicative
    }

    [Fact]
    public void DiscriminatorIsDeterministicInEvalModeAndNoisyOnlyInTraining()
    {
        using var scope = NewDisposeScope();
        using var discriminator = new AaeDiscriminator(2, 32, dropoutRate: 0);
        using var generator = new Generator(3);
        var z = randn([64, 2], generator: generator);

        discriminator.eval();
        var clean = discriminator.call(z);
        Assert.True(discriminator.Logits(z, 0.2, generator).eq(clean).all().item<bool>());
        Assert.True(discriminator.Logits(z, 0.0, generator).eq(clean).all().item<bool>());

        discriminator.train();
        Assert.True(discriminator.Logits(z, 0.0, generator).eq(clean).all().item<bool>()); // no dropout, σ = 0: no randomness
        Assert.False(discriminator.Logits(z, 0.2, generator).eq(clean).all().item<bool>());
        using var g1 = new Generator(8);
        using var g2 = new Generator(8);
        Assert.True(discriminator.Logits(z, 0.2, g1).eq(discriminator.Logits(z, 0.2, g2)).all().item<bool>());
    }

    [Fact]
    public void DropoutIsOffInEvalMode()
    {
        using var scope = NewDisposeScope();
        using var aae = new AdversarialAutoencoder(64, hidden: 32, dropoutRate: 0.5, discriminatorHidden: 32, discriminatorDropout: 0.5);
        var x = rand(16, 64);
        var z = randn(16, 2);
        aae.train();
        Assert.False(aae.Discriminator.call(z).eq(aae.Discriminator.call(z)).all().item<bool>());
        Assert.False(aae.Encode(x).eq(aae.Encode(x)).all().item<bool>());
        aae.eval();
        Assert.True(aae.Discriminator.call(z).eq(aae.Discriminator.call(z)).all().item<bool>());
        Assert.True(aae.Encode(x).eq(aae.Encode(x)).all().item<bool>());
        Assert.True(aae.DecodeMeans(z).eq(aae.DecodeMeans(z)).all().item<bool>());
    }

    [Fact]
    public void CheckpointRoundTripGivesIdenticalOutputs()
    {
        using var folder = new TempFolder();
        using var scope = NewDisposeScope();
        using var original = new AdversarialAutoencoder(64, hidden: 32, discriminatorHidden: 16);
        using var restored = new AdversarialAutoencoder(64, hidden: 32, discriminatorHidden: 16);
        var optimizers = new Dictionary<string, optim.Optimizer>
        {
            ["reconstruction"] = optim.Adam(original.AutoencoderParameters()),
            ["discriminator"] = optim.Adam(original.DiscriminatorParameters()),
            ["generator"] = optim.Adam(original.EncoderParameters()),
        };
        string path = folder["epoch-0001.ckpt"];
        Checkpoint.Save(path, original, optimizers, new TrainerState("aae", 1, 1.0, []), "{}");
        Checkpoint.Load(path, restored);
        original.eval();
        restored.eval();
        var x = rand(8, 64);
        var z = randn(8, 2);
        Assert.True(original.Encode(x).eq(restored.Encode(x)).all().item<bool>());
        Assert.True(original.DecodeMeans(z).eq(restored.DecodeMeans(z)).all().item<bool>());
        Assert.True(original.Discriminator.call(z).eq(restored.Discriminator.call(z)).all().item<bool>());
        foreach (var d in optimizers.Values) d.Dispose();
    }

    [Fact]
    public void LoadingIntoAnotherDiscriminatorSizeSaysWhichFile()
    {
        using var folder = new TempFolder();
        using var small = new AdversarialAutoencoder(64, hidden: 32, discriminatorHidden: 16);
        using var large = new AdversarialAutoencoder(64, hidden: 32, discriminatorHidden: 24);
        string path = folder["epoch-0001.ckpt"];
        Checkpoint.Save(path, small, new Dictionary<string, optim.Optimizer>(), new TrainerState("aae", 1, 0, []), "{}");
        Assert.Contains(path, Assert.ThrowsAny<Exception>(() => Checkpoint.Load(path, large)).Message);
    }
}
