using System.Globalization;
using Ddvi.IO;
using Ddvi.Plotting;
using Ddvi.Priors;
using static TorchSharp.torch;

namespace Ddvi.Experiments.Comparison;

/// <summary>The files a comparison report writes.</summary>
public sealed record ReportFiles(string Markdown, string Csv, string Panel);

/// <summary>
/// Writes the result files of finished runs into one folder: results.md and results.csv (<see cref="ResultsTable"/>)
/// and panel.png, the paper's latent-space figure: one row per prior, a first column of prior samples, then one
/// column per model label (the model, its label budget and the settings that set its runs apart) with the test latents
/// of its seed-0 run (or its lowest seed), coloured by label.
/// Every file is written atomically; the same runs always give the same files.
/// </summary>
public static class ComparisonReport
{
    public const string MarkdownFile = "results.md";
    public const string CsvFile = "results.csv";
    public const string PanelFile = "panel.png";

    /// <summary>Points drawn from the prior in its panel column when no run gives a test-set size.</summary>
    public const int DefaultPriorPoints = 2_000;

    public static ReportFiles Write(IReadOnlyList<RunResult> runs, string outputFolder)
    {
        if (runs.Count == 0)
            throw new InvalidOperationException($"no finished runs to report in {Path.GetFullPath(outputFolder)}: every run failed or none was given.");
        runs = RunResult.LabelVariants(runs);
        var table = ResultsTable.Build(runs);
        string folder = Path.GetFullPath(outputFolder);
        var files = new ReportFiles(Path.Combine(folder, MarkdownFile), Path.Combine(folder, CsvFile), Path.Combine(folder, PanelFile));
        AtomicFile.WriteAllText(files.Markdown, table.ToMarkdown());
        AtomicFile.WriteAllText(files.Csv, table.ToCsv());
        PanelFigure.Save(files.Panel, PanelRows(table, runs));
        return files;
    }

    private static List<IReadOnlyList<PanelCell>> PanelRows(ResultsTable table, IReadOnlyList<RunResult> runs)
    {
        var models = table.Rows.Select(r => r.Model).Distinct().ToList();
        bool severalDatasets = table.Rows.Select(r => r.Dataset).Distinct().Count() > 1;
        var rows = new List<IReadOnlyList<PanelCell>>();
        foreach (var section in table.Sections)
        {
            var sectionRuns = runs.Where(r => r.Dataset == section.Key.Dataset && r.PriorLabel == section.Key.Prior).ToList();
            string rowName = severalDatasets ? $"{section.Key.Prior}, {section.Key.Dataset}" : section.Key.Prior;
            var cells = new List<PanelCell> { PriorCell(rowName, sectionRuns) };
            foreach (var model in models)
            {
                var shown = sectionRuns.Where(r => r.ModelLabel == model).OrderBy(r => r.Seed).FirstOrDefault();
                cells.Add(shown is null ? PanelCell.Empty($"{model}: no run") : LatentCell(shown));
            }
            rows.Add(cells);
        }
        return rows;
    }

    private static PanelCell LatentCell(RunResult run)
    {
        string path = new RunDirectory(run.Folder).TestLatents;
        string title = string.Create(CultureInfo.InvariantCulture, $"{run.ModelLabel} (seed {run.Seed})");
        if (!File.Exists(path)) return PanelCell.Empty($"{title}: no latents-test.csv");
        var (values, dimension, labels) = ReadLatentTable(path);
        using var scope = NewDisposeScope();
        var latents = tensor(values, [labels.Length, dimension]);
        var view = LatentProjection.Fit(latents);
        var (x, y) = view.Apply(latents);
        return new PanelCell(view.Title(title), x, y, labels);
    }

    private static PanelCell PriorCell(string rowName, IReadOnlyList<RunResult> runs)
    {
        var config = runs.OrderBy(r => r.Seed).First().Config;
        long points = runs.Select(r => r.Metrics.TestExamples).Where(n => n > 0).DefaultIfEmpty(DefaultPriorPoints).First();
        var prior = PriorCatalog.Create(config.Prior, config.PriorNoise, config.Seed, CPU);
        try
        {
            using var scope = NewDisposeScope();
            using var generator = new Generator(unchecked((ulong)config.Seed));
            var (z, classes) = prior.SampleLabelled(points, generator);
            int[] labels = classes.to(int32).data<int>().ToArray();
            var view = LatentProjection.Fit(z, "prior samples");
            var (x, y) = view.Apply(z);
            return new PanelCell(view.Title($"prior: {rowName}"), x, y, labels);
        }
        finally
        {
            (prior as IDisposable)?.Dispose();
        }
    }

    /// <summary>
    /// The z columns and labels of a run's latents-test.csv drawn in 2-D: for the paper's 2-D latents the columns
    /// themselves, otherwise a <see cref="LatentProjection"/> of them (see <see cref="ReadLatentTable"/>).
    /// </summary>
    public static (float[] X, float[] Y, int[] Labels) ReadLatents(string path)
    {
        var (values, dimension, labels) = ReadLatentTable(path);
        using var scope = NewDisposeScope();
        var latents = tensor(values, [labels.Length, dimension]);
        var (x, y) = LatentProjection.Fit(latents).Apply(latents);
        return (x, y, labels);
    }

    /// <summary>
    /// Reads the z columns and labels of a run's latents-test.csv (header z1,…,zd,label — z1,z2,label for the paper's
    /// 2-D latents — possibly followed by more columns such as DDVI's chain start yT1,yT2,…): the latents row by row
    /// <c>[N·d]</c>, d and the labels; errors name the file and line.
    /// </summary>
    public static (float[] Values, int Dimension, int[] Labels) ReadLatentTable(string path)
    {
        var lines = File.ReadAllLines(path);
        var header = lines.Length == 0 ? [] : lines[0].Trim().Split(',');
        int dimension = 0;
        while (dimension < header.Length && header[dimension] == $"z{dimension + 1}") dimension++;
        if (dimension == 0 || dimension >= header.Length || header[dimension] != "label")
            throw new InvalidDataException($"{path}: expected a header starting 'z1,z2,label' or 'z1,…,zd,label' (a Ddvi latents file).");
        string expected = string.Join(',', Enumerable.Range(1, dimension).Select(j => $"z{j}").Append("label"));
        var values = new List<float>();
        var labels = new List<int>();
        for (int i = 1; i < lines.Length; i++)
        {
            if (lines[i].Length == 0) continue;
            var fields = lines[i].Split(',');
            int label = 0;
            bool ok = fields.Length == header.Length
                      && int.TryParse(fields[dimension], NumberStyles.Integer, CultureInfo.InvariantCulture, out label);
            for (int j = 0; ok && j < dimension; j++)
            {
                ok = float.TryParse(fields[j], NumberStyles.Float, CultureInfo.InvariantCulture, out float z);
                values.Add(z);
            }
            if (!ok)
                throw new InvalidDataException($"{path}, line {i + 1}: expected '{expected}' numbers, got '{lines[i]}'.");
            labels.Add(label);
        }
        return ([.. values], dimension, [.. labels]);
    }
}
