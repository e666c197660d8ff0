using Ddvi.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace Ddvi.Tests.Runtime;

/// <summary>
/// Seeded draws for any device: on the CPU they must be exactly libtorch's own draws from the same generator, so that
/// moving them behind <see cref="RandomDraws"/> changed no CPU run, and every argument error is named.
/// </summary>
public class RandomDrawsTests
{
    [Fact]
    public void DrawsOnTheCpuAreLibtorchsOwnDrawsFromTheSameSeed()
    {
        using var scope = NewDisposeScope();
        using var ours = new Generator(21);
        using var reference = new Generator(21);

        var normal = RandomDraws.Normal([3, 4], ScalarType.Float64, CPU, ours);
        var uniform = RandomDraws.Uniform([5], ScalarType.Float32, CPU, ours);
        var integers = RandomDraws.Integers(1, 41, [64], CPU, ours);
        var permutation = RandomDraws.Permutation(50, CPU, ours);

        Assert.True(normal.equal(randn([3, 4], dtype: ScalarType.Float64, generator: reference)).all().item<bool>());
        Assert.True(uniform.equal(rand([5], dtype: ScalarType.Float32, generator: reference)).all().item<bool>());
        Assert.True(integers.equal(randint(1, 41, [64], dtype: ScalarType.Int64, generator: reference)).all().item<bool>());
        Assert.True(permutation.equal(randperm(50, generator: reference)).all().item<bool>());
    }

    [Fact]
    public void DrawsHaveTheAskedShapeTypeAndRange()
    {
        using var scope = NewDisposeScope();
        using var generator = new Generator(3);

        var normal = RandomDraws.Normal([7, 2], ScalarType.Float32, CPU, generator);
        var uniform = RandomDraws.Uniform([1000], ScalarType.Float64, CPU, generator);
        var integers = RandomDraws.Integers(1, 4, [1000], CPU, generator);
        var permutation = RandomDraws.Permutation(30, CPU, generator);

        Assert.Equal([7L, 2L], normal.shape);
        Assert.Equal(ScalarType.Float32, normal.dtype);
        Assert.Equal(ScalarType.Float64, uniform.dtype);
        Assert.True(uniform.min().item<double>() >= 0 && uniform.max().item<double>() < 1);
        Assert.Equal(ScalarType.Int64, integers.dtype);
        Assert.Equal(1L, integers.min().item<long>());
        Assert.Equal(3L, integers.max().item<long>());
        Assert.True(permutation.sort().Values.equal(arange(30L)).all().item<bool>(), "a permutation holds every index once");
        Assert.All(new[] { normal, uniform, integers, permutation }, t => Assert.Equal(DeviceType.CPU, t.device_type));
    }

    [Fact]
    public void PlacingOnTheCpuKeepsTheTensor()
    {
        using var host = arange(6L);
        var placed = RandomDraws.Place(host, CPU);
        Assert.Same(host, placed);
    }

    [Fact]
    public void AMissingGeneratorOrTensorIsNamed()
    {
        var generatorError = Assert.Throws<ArgumentNullException>(() => RandomDraws.Normal([2], ScalarType.Float32, CPU, null!));
        Assert.Equal("generator", generatorError.ParamName);
        var hostError = Assert.Throws<ArgumentNullException>(() => RandomDraws.Place(null!, CPU));
        Assert.Equal("host", hostError.ParamName);
    }
}
