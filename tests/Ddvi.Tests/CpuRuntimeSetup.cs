using System.Runtime.CompilerServices;
using Ddvi.FastPaths;
using Ddvi.Runtime;

namespace Ddvi.Tests;

static class CpuRuntimeSetup
{
    // The tests run what the CLI runs: Ddvi's process-wide CPU settings (MKL's kernel choice, glibc's heap) applied as
    // the CLI applies them, before any test's first matrix product.
#pragma warning disable CA2255 // a test assembly is not a library others load
    [ModuleInitializer]
    internal static void Initialise() => CpuRuntime.Configure();
#pragma warning restore CA2255
}
