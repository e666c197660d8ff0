using System.CommandLine;
using Ddvi.Experiments;

namespace Ddvi.Cli.Commands;

/// <summary><c>ddvi evaluate RUN_DIR</c>: recomputes metrics, latents and plots of a finished run.</summary>
internal static class EvaluateCommand
{
    public static Command Create()
    {
        var runFolder = new Argument<string>("RUN_DIR") { Description = "Run folder written by ddvi train" };
        var defaults = new EvaluationSettings();
        var iwaeSamples = new Option<int?>("--iwae-samples")
        {
            Description = $"K, posterior draws per test image for the true ELBO and the importance-weighted bound on log p(x) " +
                          $"(reported for k = 1, 10, 100, … dividing K, and K). Default: the run's evaluation.iwae_samples ({defaults.IwaeSamples} unless set)",
        };
        var iwaeExamples = new Option<int?>("--iwae-examples")
        {
            Description = $"N, the first test images the true ELBO and the importance-weighted bound average over. " +
                          $"Default: the run's evaluation.iwae_examples ({defaults.IwaeExamples} unless set)",
        };
        var command = new Command("evaluate", "Evaluate a trained run again: KNN accuracy, latent NLL, ELBO (release formula), true ELBO and importance-weighted log p(x), MMD; rewrites metrics.json, latents and plots")
        {
            runFolder, iwaeSamples, iwaeExamples,
        };
        command.SetAction(parse => CommandRunner.Run(() =>
        {
            string folder = parse.GetValue(runFolder)!;
            int? samples = parse.GetValue(iwaeSamples);
            int? examples = parse.GetValue(iwaeExamples);
            if (samples is < 1) throw new ArgumentException($"--iwae-samples must be ≥ 1, got {samples}");
            if (examples is < 1) throw new ArgumentException($"--iwae-examples must be ≥ 1, got {examples}");
            ConsoleProgress.Run(observer => new ExperimentRunner(observer).Evaluate(folder, settings => settings with
            {
                IwaeSamples = samples ?? settings.IwaeSamples,
                IwaeExamples = examples ?? settings.IwaeExamples,
            }));
            Console.WriteLine($"metrics: {new RunDirectory(folder).Metrics}");
            return 0;
        }));
        return command;
    }
}
