using Ddvi.Priors;
using static TorchSharp.torch;

namespace Ddvi.Tests;

/// <summary>A minimal ILabelledPrior for tests of code that must work with any prior: N(0, I) on R^2, classes by quadrant.</summary>
internal sealed class QuadrantNormalPrior : ILabelledPrior
{
    public string Name => "test-normal";
    public int Dimension => 2;
    public int ClassCount => 4;
    public bool HasExactDensity => true;
    public string DensityDescription => "exact N(0, I)";

    public (Tensor Z, Tensor Classes) SampleLabelled(long n, Generator generator)
    {
        var z = randn([n, 2], generator: generator);
        return (z, Quadrant(z));
    }

    public Tensor SampleClass(int classIndex, long n, Generator generator)
    {
        var z = randn([n, 2], generator: generator).abs();
        var signs = tensor(new float[] { classIndex is 0 or 3 ? 1 : -1, classIndex < 2 ? 1 : -1 });
        return z * signs;
    }

    public Tensor LogDensity(Tensor z) => -0.5 * z.square().sum(-1) - Math.Log(2 * Math.PI);

    private static Tensor Quadrant(Tensor z) =>
        where(z[.., 1] >= 0, where(z[.., 0] >= 0, 0, 1), where(z[.., 0] < 0, 2, 3)).to(int64);
}
