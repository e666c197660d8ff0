using System.CommandLine;
using Ddvi.Experiments;

namespace Ddvi.Cli.Commands;

/// <summary><c>ddvi evaluate RUN_DIR</c>: recomputes metrics, latents and plots of a finished run.</summary>
internal static class EvaluateCommand
{
    public static Command Create()
    {
        var runFolder = new Argument<string>("RUN_DIR") { Description = "Run folder written by ddvi train" };
        var command = new Command("evaluate", "Evaluate a trained run again: KNN accuracy, latent NLL, ELBO, MMD; rewrites metrics.json, latents and plots")
        {
            runFolder,
        };
        command.SetAction(parse => CommandRunner.Run(() =>
        {
            string folder = parse.GetValue(runFolder)!;
            ConsoleProgress.Run(observer => new ExperimentRunner(observer).Evaluate(folder));
            Console.WriteLine($"metrics: {new RunDirectory(folder).Metrics}");
            return 0;
        }));
        return command;
    }
}
