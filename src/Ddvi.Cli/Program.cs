using System.CommandLine;
using Ddvi.Cli;
using Ddvi.Cli.Commands;
using Ddvi.FastPaths;
using Ddvi.Runtime;

// Process-wide CPU settings (MKL's kernel choice, glibc's heap) first, before any tensor exists; see CpuRuntime.
CpuRuntime.Configure();

var root = new RootCommand("Ddvi: denoising diffusion variational inference (Piriyakulkij, Wang, Kuleshov, AAAI 2025) and its baselines")
{
    TrainCommand.Create(),
    EvaluateCommand.Create(),
    EncodeCommand.Create(),
    SampleCommand.Create(),
    ShowCommand.Create(),
    DatasetsCommand.Create(),
    CompareCommand.Create(),
    RunCommand.Create(),
    AncestryCommand.Create(),
    ReportCommand.Create(),
    BenchCommand.Create(),
};

var parse = root.Parse(args);
if (parse.Errors.Count > 0)
{
    foreach (var error in parse.Errors) Console.Error.WriteLine($"error: {ParseErrors.Plain(error.Message)}");
    Console.Error.WriteLine("Run 'ddvi --help' or 'ddvi COMMAND --help' for the valid options and values.");
    return 2;
}
return parse.Invoke();
