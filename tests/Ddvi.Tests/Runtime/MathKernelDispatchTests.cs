using System.Runtime.InteropServices;
using System.Runtime.Intrinsics.X86;
using Ddvi.FastPaths;
using Ddvi.Runtime;
using static TorchSharp.torch;

namespace Ddvi.Tests.Runtime;

public class MathKernelDispatchTests
{
    [Fact]
    public void DecidesOnceForTheProcess()
    {
        var first = MathKernelDispatch.Ensure();
        Assert.Same(first, MathKernelDispatch.Ensure());
        Assert.Same(first, MathKernelDispatch.State);
        Assert.False(string.IsNullOrWhiteSpace(first.Description));
    }

    [Fact]
    public void EnablesWideKernelsExactlyWhereMklWouldNotUseThem()
    {
        // The test assembly calls Ensure before any matrix product (CpuRuntimeSetup), as the CLI does.
        var state = MathKernelDispatch.Ensure();
        if (MathKernelDispatch.IsSwitchedOff(Environment.GetEnvironmentVariable(MathKernelDispatch.DisableVariable)))
        {
            Assert.Equal(MathKernelDispatchStatus.Disabled, state.Status);
            return;
        }
        bool applies = OperatingSystem.IsLinux() && RuntimeInformation.ProcessArchitecture == Architecture.X64 && X86Base.IsSupported
            && !IsIntel() && Avx512F.IsSupported && Avx512CD.IsSupported && Avx512BW.IsSupported && Avx512DQ.IsSupported && Avx512F.VL.IsSupported;
        if (applies)
            Assert.Equal(MathKernelDispatchStatus.WideKernelsEnabled, state.Status);
        else
            Assert.Equal(MathKernelDispatchStatus.NotNeeded, state.Status);
    }

    [Theory]
    [InlineData("off", true)]
    [InlineData("OFF", true)]
    [InlineData(" 0 ", true)]
    [InlineData("false", true)]
    [InlineData("no", true)]
    [InlineData(null, false)]
    [InlineData("", false)]
    [InlineData("on", false)]
    [InlineData("1", false)]
    public void ReadsTheSwitch(string? value, bool off) => Assert.Equal(off, MathKernelDispatch.IsSwitchedOff(value));

    [Theory]
    [InlineData(128, 1000, 1000)]
    [InlineData(1000, 128, 784)]
    [InlineData(128, 130, 3)]
    [InlineData(7, 1, 5)]
    public void MatrixProductsStayAccurate(long m, long k, long n)
    {
        // Whatever kernels MKL runs, float32 products agree with float64 ones to float32 rounding.
        using var scope = NewDisposeScope();
        var generator = new TorchSharp.torch.Generator(11);
        var a = randn([m, k], generator: generator);
        var b = randn([k, n], generator: generator);
        var product = a.matmul(b).to(float64);
        var exact = a.to(float64).matmul(b.to(float64));
        double scale = a.to(float64).abs().matmul(b.to(float64).abs()).max().item<double>();
        double error = (product - exact).abs().max().item<double>();
        Assert.True(error <= 1e-5 * scale, $"[{m}×{k}]·[{k}×{n}]: max error {error:G3} against a scale of {scale:G3}");
        // Gradients take the transposed products.
        var x = a.clone().requires_grad_();
        x.matmul(b).sum().backward();
        var expected = b.to(float64).sum(1).unsqueeze(0).expand(m, k);
        Assert.True((x.grad!.to(float64) - expected).abs().max().item<double>() <= 1e-5 * Math.Max(1.0, expected.abs().max().item<double>()));
    }

    private static bool IsIntel()
    {
        var (_, ebx, ecx, edx) = X86Base.CpuId(0, 0);
        Span<int> parts = [ebx, edx, ecx];
        return System.Text.Encoding.ASCII.GetString(MemoryMarshal.AsBytes(parts)) == "GenuineIntel";
    }
}
