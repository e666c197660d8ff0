using Ddvi.FastPaths;
using Ddvi.Runtime;
using static TorchSharp.torch;

namespace Ddvi.Tests.Runtime;

public class ElementwiseKernelsTests
{
    [Theory]
    [InlineData(ScalarType.Float32, 128, 128)]
    [InlineData(ScalarType.Float64, 128, 128)]
    [InlineData(ScalarType.Float32, 7, 13)] // not a whole number of vectors: the scalar tail runs too
    [InlineData(ScalarType.Float64, 3, 5)]
    public void KeepWherePositiveMatchesReluBackward(ScalarType type, long rows, long columns)
    {
        using var scope = NewDisposeScope();
        var generator = new Generator(4);
        var pre = randn([rows, columns], dtype: type, generator: generator).requires_grad_();
        var upstream = randn([rows, columns], dtype: type, generator: generator);
        var activation = nn.functional.relu(pre);
        activation.backward([upstream]);

        var destination = empty([rows, columns], dtype: type);
        var result = ElementwiseKernels.KeepWherePositiveInto(upstream, activation.detach(), destination);
        Assert.Same(destination, result);
        Assert.True(destination.equal(pre.grad!).all().item<bool>());
    }

    [Theory]
    [InlineData(100)]
    [InlineData(13)] // the scalar tail runs too
    public void ReluInPlaceMatchesLibtorchAndKeepsNaN(int length)
    {
        var values = Enumerable.Range(0, length).Select(i => (float)Math.Sin(i * 1.7) * 3).ToArray();
        values[5] = float.NaN;
        values[length - 1] = float.NaN;
        values[length - 2] = -0.5f;
        var expected = nn.functional.relu(tensor(values)).data<float>().ToArray();
        ElementwiseKernels.ReluInPlace<float>(values);
        Assert.Equal(expected, values);
        Assert.True(float.IsNaN(values[5]) && float.IsNaN(values[length - 1]) && values[length - 2] == 0);
    }

    [Theory]
    [InlineData(64)]
    [InlineData(11)]
    public void AddSumsElementwiseAndMayWriteIntoAnInput(int length)
    {
        var left = Enumerable.Range(0, length).Select(i => i * 0.5).ToArray();
        var right = Enumerable.Range(0, length).Select(i => 1.0 / (i + 1)).ToArray();
        var expected = left.Zip(right, (a, b) => a + b).ToArray();
        var destination = new double[length];
        ElementwiseKernels.Add<double>(left, right, destination);
        Assert.Equal(expected, destination);
        ElementwiseKernels.Add<double>(left, right, left);
        Assert.Equal(expected, left);
    }

    [Fact]
    public void TheDestinationMayBeTheGradientItself()
    {
        using var scope = NewDisposeScope();
        var grad = tensor(new float[] { 1, 2, 3, 4, 5 });
        var activation = tensor(new float[] { 0, 0.5f, -1, float.NaN, 2 });
        ElementwiseKernels.KeepWherePositiveInto(grad, activation, grad);
        // Zero where the ReLU output is ≤ 0; a NaN output passes its gradient, as libtorch's threshold_backward does.
        Assert.Equal(new float[] { 0, 2, 0, 4, 5 }, grad.data<float>().ToArray());
    }

    [Fact]
    public void NonContiguousInputsTakeTheTensorPathWithTheSameResult()
    {
        using var scope = NewDisposeScope();
        var generator = new Generator(5);
        var grad = randn([6, 4], generator: generator).t();                                     // not contiguous
        var activation = randn([4, 6], generator: generator).relu();
        var destination = empty(4, 6);
        ElementwiseKernels.KeepWherePositiveInto(grad, activation, destination);
        Assert.True(destination.equal(grad * activation.gt(0)).all().item<bool>());
    }

    [Fact]
    public void MismatchedShapesAreRejected()
    {
        using var scope = NewDisposeScope();
        var message = Assert.Throws<ArgumentException>(() => ElementwiseKernels.KeepWherePositiveInto(zeros(2, 3), zeros(2, 3), zeros(3, 2))).Message;
        Assert.Contains("[2, 3]", message);
        Assert.Contains("[3, 2]", message);
    }
}
