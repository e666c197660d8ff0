using System.CommandLine;
using Ddvi.Data;

namespace Ddvi.Cli.Commands;

/// <summary><c>ddvi datasets</c>: which datasets are available here, and where they are or would go.</summary>
internal static class DatasetsCommand
{
    public static Command Create()
    {
        var dataDir = CliOptions.DataDirectory();
        var command = new Command("datasets", "List the datasets, whether their files are present, and where") { dataDir };
        command.SetAction(parse => CommandRunner.Run(() =>
        {
            foreach (var entry in DatasetCatalog.Describe(parse.GetValue(dataDir)))
                Console.WriteLine($"{entry.Name,-14} {(entry.Available ? "available" : "missing  ")}  {entry.Location}\n{"",-14} {entry.Description}");
            return 0;
        }));
        return command;
    }
}
