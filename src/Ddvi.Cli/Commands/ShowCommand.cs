using System.CommandLine;
using Ddvi.Experiments;

namespace Ddvi.Cli.Commands;

/// <summary><c>ddvi show RUN_DIR</c>: what a run is and where it stands.</summary>
internal static class ShowCommand
{
    public static Command Create()
    {
        var runFolder = new Argument<string>("RUN_DIR") { Description = "Run folder written by ddvi train (finished, unfinished or failed)" };
        var command = new Command("show", "Describe a run: model, data, stages and their state, metrics, and where its plots and files are")
        {
            runFolder,
        };
        command.SetAction(parse => CommandRunner.Run(() =>
        {
            var (_, text) = RunSummary.Describe(parse.GetValue(runFolder)!);
            Console.Write(text);
            return 0;
        }));
        return command;
    }
}
