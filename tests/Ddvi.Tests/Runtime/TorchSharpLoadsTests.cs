using TorchSharp;
using static TorchSharp.torch;

namespace Ddvi.Tests.Runtime;

public class TorchSharpLoadsTests
{
    [Fact]
    public void TensorsAndAutogradWork()
    {
        using var scope = NewDisposeScope();
        var x = tensor(new[] { 1.0, 2.0, 3.0 }, dtype: float64).requires_grad_();
        var y = (x * x).sum();
        y.backward();
        Assert.Equal(14.0, y.item<double>(), 12);
        Assert.Equal(new[] { 2.0, 4.0, 6.0 }, x.grad!.data<double>().ToArray());
    }

    [Fact]
    public void MatrixProductMatchesHandComputation()
    {
        using var scope = NewDisposeScope();
        var a = tensor(new float[] { 1, 2, 3, 4 }).reshape(2, 2);
        var b = tensor(new float[] { 5, 6, 7, 8 }).reshape(2, 2);
        Assert.Equal(new float[] { 19, 22, 43, 50 }, a.matmul(b).data<float>().ToArray());
    }
}
