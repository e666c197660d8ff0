using System.Runtime.CompilerServices;
using Ddvi.Runtime;

namespace Ddvi.Tests;

static class MathKernelSetup
{
    // The tests run what the CLI runs: MKL's kernels chosen as Ddvi chooses them, before any test's first matrix product.
#pragma warning disable CA2255 // a test assembly is not a library others load
    [ModuleInitializer]
    internal static void Initialise() => MathKernelDispatch.Ensure();
#pragma warning restore CA2255
}
