using System.Globalization;
using System.Text;
using Ddvi.Data;
using Ddvi.Evaluation;
using Ddvi.Priors;

namespace Ddvi.Experiments.Comparison;

/// <summary>Which way a metric improves.</summary>
public enum Better
{
    Higher,
    Lower,
}

/// <summary>A column of the results table: a number read from each run's metrics, null where the model has none.</summary>
/// <param name="Key">CSV column stem (e.g. <c>elbo</c>).</param>
/// <param name="Header">Markdown header with its unit.</param>
/// <param name="Format">Numeric format of the Markdown cells.</param>
public sealed record MetricColumn(string Key, string Header, Better Better, string Format, Func<MetricsReport, double?> Value);

/// <summary>One table cell: mean ± 95% Student-t half width over the seeds that have the metric (null: n/a), and whether it is the best of its prior.</summary>
public sealed record TableCell(ConfidenceInterval? Interval, bool Best);

/// <summary>One model under one prior: how many seeds it pools, their epochs, and one cell per <see cref="ResultsTable.Columns"/> entry.</summary>
public sealed record TableRow(string Dataset, string Prior, string Model, IReadOnlyList<long> Seeds, IReadOnlyList<int> Epochs, IReadOnlyList<TableCell> Cells);

/// <summary>
/// The paper's comparison table: per dataset, prior and model, each metric as mean ± t_{0.975, n−1} · s / √n over
/// the n seeds (<see cref="Confidence.StudentT"/>). In each prior's section the best mean per column is marked
/// (higher is better for the bounds and KNN accuracy, lower for latent NLL, MMD and training time), ties all marked,
/// and only where at least two models have the metric. The bounds are n/a for models without one (the AAE).
/// </summary>
public sealed class ResultsTable
{
    public static IReadOnlyList<MetricColumn> Columns { get; } =
    [
        new("elbo", "ELBO, release formula (nats/image) ↑", Better.Higher, "F2", m => m.Elbo.Available ? m.Elbo.NatsPerImage : null),
        new("true_elbo", "true ELBO (nats/image) ↑", Better.Higher, "F2", m => m.LikelihoodBounds?.TrueElbo.NatsPerImage),
        new("log_px_iwae", "log p(x) ≥ IWAE-K (nats/image) ↑", Better.Higher, "F2", m => m.LikelihoodBounds?.LogLikelihood.NatsPerImage),
        new("latent_nll", "latent NLL ↓", Better.Lower, "F3", m => m.LatentNll.Value),
        new("knn_accuracy", "KNN accuracy ↑", Better.Higher, "F4", m => m.KnnAccuracy.Value),
        new("mmd", "MMD ↓", Better.Lower, "F4", m => m.Mmd.Value),
        new("training_seconds", "training time (s) ↓", Better.Lower, "F1", m => m.TrainingSeconds),
    ];

    /// <summary>
    /// The columns added when any run is semi-supervised (<see cref="MetricsReport.SemiSupervised"/>): q(c|x)'s test accuracy,
    /// KNN fit on the labelled examples only (the release's KNN, fit on every training label, is <c>knn_accuracy</c>) and
    /// the class-conditional latent NLL.
    /// </summary>
    public static IReadOnlyList<MetricColumn> SemiSupervisedColumns { get; } =
    [
        new("classification_accuracy", "q(c|x) test accuracy ↑", Better.Higher, "F4", m => m.SemiSupervised?.ClassificationAccuracy?.Value),
        new("knn_labelled_accuracy", "KNN accuracy, fit on the labelled examples only ↑", Better.Higher, "F4", m => m.SemiSupervised?.KnnLabelledAccuracy.Value),
        new("class_latent_nll", "class-conditional latent NLL ↓", Better.Lower, "F3", m => m.SemiSupervised?.ClassLatentNll.Value),
    ];

    private ResultsTable(IReadOnlyList<TableRow> rows, IReadOnlyList<MetricColumn> columns)
    {
        Rows = rows;
        TableColumns = columns;
    }

    /// <summary>This table's columns: <see cref="Columns"/>, then <see cref="SemiSupervisedColumns"/> when any run is semi-supervised.</summary>
    public IReadOnlyList<MetricColumn> TableColumns { get; }

    /// <summary>Rows ordered by dataset, prior and model as their catalogs list them (unknown names last, alphabetically).</summary>
    public IReadOnlyList<TableRow> Rows { get; }

    /// <summary>The (dataset, prior) sections in row order.</summary>
    public IEnumerable<IGrouping<(string Dataset, string Prior), TableRow>> Sections => Rows.GroupBy(r => (r.Dataset, r.Prior));

    /// <summary>Pools the runs by dataset, prior label and model label (runs of one model that differ in a setting other
    /// than the seed are labelled by it and pooled apart: <see cref="RunResult.LabelVariants"/>).</summary>
    public static ResultsTable Build(IEnumerable<RunResult> runs)
    {
        var all = RunResult.LabelVariants([.. runs]);
        IReadOnlyList<MetricColumn> columns = all.Any(r => r.Metrics.SemiSupervised is not null) ? [.. Columns, .. SemiSupervisedColumns] : Columns;
        var groups = all.GroupBy(r => (r.Dataset, Prior: r.PriorLabel, Model: r.ModelLabel))
            .OrderBy(g => Rank(DatasetCatalog.Names, g.Key.Dataset)).ThenBy(g => g.Key.Dataset, StringComparer.Ordinal)
            .ThenBy(g => Rank(PriorCatalog.Names, g.Key.Prior.Split(' ')[0])).ThenBy(g => g.Key.Prior, StringComparer.Ordinal)
            .ThenBy(g => Rank(ModelCatalog.Names, g.Key.Model.Split(' ')[0])).ThenBy(g => g.Key.Model, StringComparer.Ordinal)
            .ToList();

        var rows = groups.Select(g =>
        {
            var seeds = g.OrderBy(r => r.Seed).ToList();
            var cells = columns.Select(column =>
            {
                var values = seeds.Select(r => column.Value(r.Metrics)).OfType<double>().ToList();
                return new TableCell(values.Count == 0 ? null : Confidence.StudentT(values), false);
            }).ToList();
            return new TableRow(g.Key.Dataset, g.Key.Prior, g.Key.Model, [.. seeds.Select(r => r.Seed)],
                [.. seeds.Select(r => r.Metrics.Epochs).Distinct().Order()], cells);
        }).ToList();

        return new ResultsTable([.. rows.GroupBy(r => (r.Dataset, r.Prior)).SelectMany(section => MarkBest(section, columns))], columns);
    }

    private static IEnumerable<TableRow> MarkBest(IEnumerable<TableRow> section, IReadOnlyList<MetricColumn> columns)
    {
        var rows = section.ToList();
        var best = new double?[columns.Count];
        for (int c = 0; c < columns.Count; c++)
        {
            var means = rows.Select(r => r.Cells[c].Interval?.Mean).OfType<double>().ToList();
            if (means.Count >= 2) best[c] = columns[c].Better == Better.Higher ? means.Max() : means.Min();
        }
        return rows.Select(r => r with
        {
            Cells = [.. r.Cells.Select((cell, c) => cell with { Best = best[c] is { } b && cell.Interval?.Mean == b })],
        });
    }

    private static int Rank(IReadOnlyList<string> order, string name)
    {
        for (int i = 0; i < order.Count; i++)
            if (order[i] == name) return i;
        return int.MaxValue;
    }

    /// <summary>
    /// results.md: a note on what the numbers are, then one table per dataset and prior; the best cells in bold;
    /// a single seed shows its value without an interval.
    /// </summary>
    public string ToMarkdown()
    {
        var text = new StringBuilder("# Results\n\n");
        text.Append("Mean ± 95% Student-t interval over seeds (t₀.₉₇₅,ₙ₋₁ · s / √n; one seed: the value alone). ")
            .Append("Bold: the best mean of the column under that prior (↑ higher is better, ↓ lower is better). ")
            .Append("Every bound in nats per image (log p(x|z) summed over pixels); n/a: the model has none (the AAE), or its run was ")
            .Append("evaluated before the true bounds existed (run `ddvi evaluate`). ")
            .Append("\"ELBO, release formula\" is the number the authors' release reports: for DDVI its evaluation formula, which is not a ")
            .Append("lower bound on log p(x); for the VAE family a one-draw ELBO. \"true ELBO\" is E_q[log p(x|z) + log p(z) − log q(z|x)] ")
            .Append("with DDVI's exact posterior density (change of variables through its chain), and \"log p(x) ≥ IWAE-K\" the ")
            .Append("importance-weighted bound with K draws per image (likelihood_bounds.samples in each run's metrics.json), both with the ")
            .Append("prior's proper density (the KDE without the release's clamp); see docs/elbo.md. Training time in seconds, all stages.\n");
        if (!ReferenceEquals(TableColumns, Columns))
            text.Append("\nSemi-supervised runs (model \"NAME (N labels)\"): \"KNN accuracy\" is fit on every training label, as the release ")
                .Append("computes it; \"KNN accuracy, fit on the labelled examples only\" uses the N labelled training examples alone; ")
                .Append("\"q(c|x) test accuracy\" is the encoder's class prediction (n/a for aae-semi, which has no classifier); ")
                .Append("\"class-conditional latent NLL\" averages over classes the latent NLL of each class's test latents against its prior segment.\n");
        foreach (var section in Sections)
        {
            text.Append(Inv($"\n## {section.Key.Prior} ({section.Key.Dataset})\n\n"));
            text.Append("| model | seeds | epochs | ").AppendJoin(" | ", TableColumns.Select(c => c.Header)).Append(" |\n");
            text.Append("| --- | ---: | ---: |").Append(string.Concat(TableColumns.Select(_ => " ---: |"))).Append('\n');
            foreach (var row in section)
            {
                text.Append(Inv($"| {row.Model} | {row.Seeds.Count} | {string.Join("/", row.Epochs)} |"));
                for (int c = 0; c < TableColumns.Count; c++)
                {
                    var cell = row.Cells[c];
                    string value = cell.Interval is { } ci ? FormatInterval(ci, TableColumns[c].Format) : "n/a";
                    text.Append(' ').Append(cell.Best ? $"**{value}**" : value).Append(" |");
                }
                text.Append('\n');
            }
        }
        return text.ToString();
    }

    /// <summary>
    /// results.csv: one line per dataset, prior and model; per metric its mean, its 95% half width and a best flag
    /// (true/false); numbers round-trip (invariant culture); n/a where the model has no such metric or, for the
    /// half width, where there is only one seed.
    /// </summary>
    public string ToCsv()
    {
        var header = new List<string> { "dataset", "prior", "model", "seeds", "epochs" };
        foreach (var column in TableColumns) header.AddRange([$"{column.Key}_mean", $"{column.Key}_ci95", $"{column.Key}_best"]);
        var text = new StringBuilder().AppendJoin(',', header).Append('\n');
        foreach (var row in Rows)
        {
            var fields = new List<string> { row.Dataset, row.Prior, row.Model, Inv($"{row.Seeds.Count}"), string.Join("/", row.Epochs) };
            foreach (var cell in row.Cells)
            {
                fields.Add(cell.Interval is { } ci ? Number(ci.Mean) : NotAvailable);
                fields.Add(cell.Interval is { } c && double.IsFinite(c.HalfWidth95) ? Number(c.HalfWidth95) : NotAvailable);
                fields.Add(cell.Best ? "true" : "false");
            }
            text.AppendJoin(',', fields.Select(Quote)).Append('\n');
        }
        return text.ToString();
    }

    public const string NotAvailable = "n/a";

    private static string FormatInterval(ConfidenceInterval ci, string format) =>
        double.IsFinite(ci.HalfWidth95)
            ? $"{ci.Mean.ToString(format, CultureInfo.InvariantCulture)} ± {ci.HalfWidth95.ToString(format, CultureInfo.InvariantCulture)}"
            : ci.Mean.ToString(format, CultureInfo.InvariantCulture);

    private static string Number(double value) => value.ToString("R", CultureInfo.InvariantCulture);

    private static string Inv(FormattableString text) => text.ToString(CultureInfo.InvariantCulture);

    private static string Quote(string field) =>
        field.IndexOfAny([',', '"', '\n', '\r']) < 0 ? field : "\"" + field.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"";
}

