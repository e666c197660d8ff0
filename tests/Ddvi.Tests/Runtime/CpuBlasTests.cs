using Ddvi.FastPaths;
using Ddvi.Runtime;
using static TorchSharp.torch;

namespace Ddvi.Tests.Runtime;

/// <summary>The direct BLAS product against libtorch's, in every transpose combination, with padded row strides.</summary>
public class CpuBlasTests
{
    [Theory]
    [InlineData(false, false)]
    [InlineData(false, true)]
    [InlineData(true, false)]
    [InlineData(true, true)]
    public unsafe void GemmMatchesLibtorchForRowMajorOperands(bool transposeA, bool transposeB)
    {
        Assert.True(CpuBlas.IsAvailable, "libtorch's CPU build should export sgemm_ and dgemm_");
        const int m = 5, n = 7, k = 3, pad = 2;
        var generator = new Generator(8);
        // Stored shapes: A is [m, k] or [k, m], B is [k, n] or [n, k], each with `pad` unused columns per row.
        using var aStored = randn([transposeA ? k : m, (transposeA ? m : k) + pad], dtype: ScalarType.Float64, generator: generator);
        using var bStored = randn([transposeB ? n : k, (transposeB ? k : n) + pad], dtype: ScalarType.Float64, generator: generator);
        using var cStart = randn([m, n + pad], dtype: ScalarType.Float64, generator: generator);
        var a = aStored.narrow(1, 0, transposeA ? m : k);
        var b = bStored.narrow(1, 0, transposeB ? k : n);
        var expected = (transposeA ? a.t() : a).mm(transposeB ? b.t() : b) * 0.5 + cStart.narrow(1, 0, n) * 2.0;

        var c = cStart.clone();
        CpuBlas.Gemm(transposeA, transposeB, m, n, k, 0.5, TensorMemory.Pointer<double>(aStored), (int)aStored.shape[1],
            TensorMemory.Pointer<double>(bStored), (int)bStored.shape[1], 2.0, TensorMemory.Pointer<double>(c), n + pad);

        Assert.True(c.narrow(1, 0, n).allclose(expected, rtol: 1e-12, atol: 1e-12));
        Assert.True(c.narrow(1, n, pad).equal(cStart.narrow(1, n, pad)).all().item<bool>(), "the padding columns of C must stay untouched");
    }

    [Fact]
    public unsafe void SinglePrecisionGemmMatchesLibtorch()
    {
        var generator = new Generator(9);
        using var a = randn([128, 40], generator: generator);
        using var b = randn([40, 33], generator: generator);
        using var c = empty([128, 33]);
        CpuBlas.Gemm(false, false, 128, 33, 40, 1f, TensorMemory.Pointer<float>(a), 40, TensorMemory.Pointer<float>(b), 33, 0f, TensorMemory.Pointer<float>(c), 33);
        Assert.True(c.allclose(a.mm(b), rtol: 1e-5, atol: 1e-5));
    }

    [Fact]
    public void OtherElementTypesAreRefused()
    {
        var error = Assert.Throws<NotSupportedException>(() => GemmOnIntegers());
        static unsafe void GemmOnIntegers()
        {
            int value = 0;
            CpuBlas.Gemm(false, false, 1, 1, 1, 1, &value, 1, &value, 1, 0, &value, 1);
        }
        Assert.Contains("Int32", error.Message);
    }
}
