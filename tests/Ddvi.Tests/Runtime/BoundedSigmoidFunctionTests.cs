using Ddvi.FastPaths;
using Ddvi.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace Ddvi.Tests.Runtime;

public class BoundedSigmoidFunctionTests
{
    /// <summary>
    /// low + (high − low)·sigmoid(x) as one operation against the tensor operations it replaces: the same values, and
    /// the input's gradient of a random upstream gradient to float32 rounding; a length that is not a whole number of
    /// vectors or parallel tasks, inputs far into both tails.
    /// </summary>
    [Theory]
    [InlineData(-1.0, 1.0)]
    [InlineData(0.0, 1.0)]
    [InlineData(-3.5, 12.0)]
    public void TheOperationGivesTheTensorFormsValuesAndGradient(double low, double high)
    {
        using var scope = NewDisposeScope();
        using var generator = new Generator(3);
        var x = (randn([7, 9_377], generator: generator) * 4).requires_grad_(true);
        x.detach().narrow(1, 0, 4).copy_(tensor(new float[] { -40f, -12f, 12f, 40f }).expand(7, 4));
        var upstream = randn([7, 9_377], generator: generator);

        var fused = BoundedSigmoidFunction.Run(x, low, high);
        var gradFused = torch.autograd.grad([fused], [x], [upstream])[0];
        var reference = x.sigmoid().mul(Ddvi.Runtime.Scalars.Of(high - low)).add(Ddvi.Runtime.Scalars.Of(low), Ddvi.Runtime.Scalars.One);
        var gradReference = torch.autograd.grad([reference], [x], [upstream])[0];

        Assert.True(fused.equal(reference).all().item<bool>(), "the values differ from the tensor operations'");
        double scale = gradReference.abs().max().item<float>();
        double difference = (gradFused - gradReference).abs().max().item<float>();
        Assert.True(difference <= 1e-5 * scale, $"gradients differ by {difference} (scale {scale})");
        Assert.True(fused.min().item<float>() >= low && fused.max().item<float>() <= high, "values leave the range");
    }

    [Fact]
    public void BoundedOutputTakesTheOperationWhereItAppliesAndGivesTheSameResultsEitherWay()
    {
        using var scope = NewDisposeScope();
        using var generator = new Generator(4);
        using var decoder = new BoundedOutput(new Mlp(2, [16], [10]), -1, 1);
        var z = randn([5, 2], generator: generator);
        using (no_grad())
            Assert.True(BoundedSigmoidFunction.Supports(decoder.Network.call(z)), "the decoder's output is one the operation takes");
        var outputs = new List<Tensor>();
        var gradients = new List<Tensor>();
        try
        {
            foreach (bool enabled in new[] { true, false })
            {
                BoundedSigmoidFunction.Enabled = enabled;
                decoder.zero_grad();
                var y = decoder.call(z);
                y.pow(2).sum().backward();
                outputs.Add(y.detach());
                gradients.Add(decoder.parameters().First().grad!.clone());
            }
        }
        finally
        {
            BoundedSigmoidFunction.Enabled = true;
        }
        Assert.True(outputs[0].equal(outputs[1]).all().item<bool>());
        Assert.True((gradients[0] - gradients[1]).abs().max().item<float>() <= 1e-5 * gradients[1].abs().max().item<float>());
        using (no_grad())
            Assert.False(decoder.call(z).requires_grad);
    }

    [Fact]
    public void TensorsTheOperationDoesNotHandleAreRefused()
    {
        using var scope = NewDisposeScope();
        Assert.True(BoundedSigmoidFunction.Supports(zeros(3, 4)));
        Assert.False(BoundedSigmoidFunction.Supports(zeros(3, 4, dtype: ScalarType.Float64)));
        Assert.False(BoundedSigmoidFunction.Supports(zeros(4, 3).t()));          // not contiguous
        Assert.False(BoundedSigmoidFunction.Supports(zeros(0, 4)));
    }
}
