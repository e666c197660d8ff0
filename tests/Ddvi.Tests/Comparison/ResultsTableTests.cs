using Ddvi.Experiments.Comparison;
using static Ddvi.Tests.Comparison.ComparisonFixtures;

namespace Ddvi.Tests.Comparison;

public class ResultsTableTests
{
    // t_{0.975, 2}, the 95% two-sided Student-t quantile with 2 degrees of freedom (tables: 4.303).
    private const double T975With2Dof = 4.302652729911275;

    private static int Column(string key) => ResultsTable.Columns.Select(c => c.Key).ToList().IndexOf(key);

    private static List<RunResult> ThreeSeedsOfTwoModels() =>
    [
        // vae: ELBO −100, −102, −104 (mean −102, s = 2); NLL 1, 2, 3 (mean 2, s = 1).
        Run(Metrics("vae", "pinwheel", 0, -100, 1, 0.80, 0.30, 10)),
        Run(Metrics("vae", "pinwheel", 1, -102, 2, 0.82, 0.20, 11)),
        Run(Metrics("vae", "pinwheel", 2, -104, 3, 0.84, 0.25, 12)),
        // ddvi: better ELBO and KNN, worse NLL, MMD and time.
        Run(Metrics("ddvi", "pinwheel", 0, -90, 4, 0.90, 0.40, 30)),
        Run(Metrics("ddvi", "pinwheel", 1, -91, 5, 0.91, 0.45, 31)),
        Run(Metrics("ddvi", "pinwheel", 2, -92, 6, 0.92, 0.50, 32)),
    ];

    [Fact]
    public void MeanAndIntervalMatchTheHandComputedStudentTForThreeSeeds()
    {
        var table = ResultsTable.Build(ThreeSeedsOfTwoModels());
        var vae = table.Rows.Single(r => r.Model == "vae");
        Assert.Equal([0L, 1, 2], vae.Seeds);

        var nll = vae.Cells[Column("latent_nll")].Interval!.Value;
        Assert.Equal(2, nll.Mean, 12);
        Assert.Equal(T975With2Dof * 1 / Math.Sqrt(3), nll.HalfWidth95, 9); // 2.4841377
        var elbo = vae.Cells[Column("elbo")].Interval!.Value;
        Assert.Equal(-102, elbo.Mean, 12);
        Assert.Equal(T975With2Dof * 2 / Math.Sqrt(3), elbo.HalfWidth95, 9);
        Assert.Equal(3, elbo.Count);
        // The true bounds pool the same way (fixtures: true ELBO = ELBO − 1, IWAE = ELBO + 2).
        Assert.Equal(-103, vae.Cells[Column("true_elbo")].Interval!.Value.Mean, 12);
        Assert.Equal(-100, vae.Cells[Column("log_px_iwae")].Interval!.Value.Mean, 12);
        Assert.Equal(T975With2Dof * 2 / Math.Sqrt(3), vae.Cells[Column("log_px_iwae")].Interval!.Value.HalfWidth95, 9);
    }

    [Fact]
    public void BestMeanIsMarkedPerColumnInItsDirection()
    {
        var table = ResultsTable.Build(ThreeSeedsOfTwoModels());
        var vae = table.Rows.Single(r => r.Model == "vae");
        var ddvi = table.Rows.Single(r => r.Model == "ddvi");
        // Higher is better: the bounds and KNN go to DDVI.
        foreach (var key in new[] { "elbo", "true_elbo", "log_px_iwae" })
        {
            Assert.True(ddvi.Cells[Column(key)].Best, key);
            Assert.False(vae.Cells[Column(key)].Best, key);
        }
        Assert.True(ddvi.Cells[Column("knn_accuracy")].Best);
        // Lower is better: NLL, MMD and time go to the VAE.
        foreach (var key in new[] { "latent_nll", "mmd", "training_seconds" })
        {
            Assert.True(vae.Cells[Column(key)].Best, key);
            Assert.False(ddvi.Cells[Column(key)].Best, key);
        }
    }

    [Fact]
    public void TiesAreAllMarkedAndALoneModelIsNot()
    {
        var tied = ResultsTable.Build([Run(Metrics("vae", "square", 0, -5, 1, 0.5, 0.1, 1)), Run(Metrics("ddvi", "square", 0, -5, 2, 0.4, 0.2, 2))]);
        Assert.All(tied.Rows, r => Assert.True(r.Cells[Column("elbo")].Best));

        var alone = ResultsTable.Build([Run(Metrics("vae", "square", 0, -5, 1, 0.5, 0.1, 1))]);
        Assert.All(alone.Rows.Single().Cells, c => Assert.False(c.Best));
    }

    [Fact]
    public void ModelsWithoutAnElboShowNotAvailableAndAreNeverBest()
    {
        var runs = new List<RunResult>
        {
            Run(Metrics("aae", "pinwheel", 0, null, 1, 0.9, 0.1, 5)),
            Run(Metrics("aae", "pinwheel", 1, null, 1.5, 0.9, 0.1, 5)),
            Run(Metrics("vae", "pinwheel", 0, -100, 2, 0.8, 0.2, 6)),
            Run(Metrics("vae", "pinwheel", 1, -101, 2.5, 0.8, 0.2, 6)),
        };
        var table = ResultsTable.Build(runs);
        var aae = table.Rows.Single(r => r.Model == "aae");
        Assert.Null(aae.Cells[Column("elbo")].Interval);
        Assert.False(aae.Cells[Column("elbo")].Best);
        // Only one model has an ELBO: nothing to compare, nothing marked.
        Assert.False(table.Rows.Single(r => r.Model == "vae").Cells[Column("elbo")].Best);
        Assert.True(aae.Cells[Column("latent_nll")].Best);

        var markdown = table.ToMarkdown();
        Assert.Contains("| aae | 2 | 1 | n/a | n/a | n/a | **1.250 ± 3.177** |", markdown);
        var csvLine = table.ToCsv().Split('\n').Single(l => l.StartsWith("synthetic,pinwheel,aae,", StringComparison.Ordinal));
        Assert.StartsWith("synthetic,pinwheel,aae,2,1,n/a,n/a,false,n/a,n/a,false,n/a,n/a,false,1.25,", csvLine);
    }

    [Fact]
    public void MarkdownHasOneTablePerPriorWithBoldBestCells()
    {
        var runs = ThreeSeedsOfTwoModels();
        runs.Add(Run(Metrics("vae", "square", 0, -120, 1, 0.7, 0.3, 9)));
        var markdown = ResultsTable.Build(runs).ToMarkdown();
        var lines = markdown.Split('\n');

        Assert.Equal("# Results", lines[0]);
        int pinwheel = Array.IndexOf(lines, "## pinwheel (synthetic)");
        int square = Array.IndexOf(lines, "## square (synthetic)");
        Assert.True(pinwheel > 0 && square > pinwheel, markdown);
        Assert.Equal("| model | seeds | epochs | ELBO, release formula (nats/image) ↑ | true ELBO (nats/image) ↑ | log p(x) ≥ IWAE-K (nats/image) ↑ | latent NLL ↓ | KNN accuracy ↑ | MMD ↓ | training time (s) ↓ |", lines[pinwheel + 2]);
        Assert.Equal("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |", lines[pinwheel + 3]);
        // Catalog order: ddvi before vae. Half widths: t·s/√n.
        Assert.Equal("| ddvi | 3 | 1 | **-91.00 ± 2.48** | **-92.00 ± 2.48** | **-89.00 ± 2.48** | 5.000 ± 2.484 | **0.9100 ± 0.0248** | 0.4500 ± 0.1242 | 31.0 ± 2.5 |", lines[pinwheel + 4]);
        Assert.Equal("| vae | 3 | 1 | -102.00 ± 4.97 | -103.00 ± 4.97 | -100.00 ± 4.97 | **2.000 ± 2.484** | 0.8200 ± 0.0497 | **0.2500 ± 0.1242** | **11.0 ± 2.5** |", lines[pinwheel + 5]);
        // One seed: the value alone, and nothing bold in a section of one model.
        Assert.Equal("| vae | 1 | 1 | -120.00 | -121.00 | -118.00 | 1.000 | 0.7000 | 0.3000 | 9.0 |", lines[square + 4]);
        // The note says which number is which.
        Assert.Contains("not a lower bound on log p(x)", markdown);
        Assert.Contains("without the release's clamp", markdown);
    }

    [Fact]
    public void CsvHasMeansHalfWidthsAndBestFlagsThatRoundTrip()
    {
        var runs = ThreeSeedsOfTwoModels();
        runs.Add(Run(Metrics("vae", "square", 0, -120, 1, 0.7, 0.3, 9)));
        var lines = ResultsTable.Build(runs).ToCsv().TrimEnd('\n').Split('\n');

        Assert.Equal(
            "dataset,prior,model,seeds,epochs," +
            "elbo_mean,elbo_ci95,elbo_best,true_elbo_mean,true_elbo_ci95,true_elbo_best,log_px_iwae_mean,log_px_iwae_ci95,log_px_iwae_best,latent_nll_mean,latent_nll_ci95,latent_nll_best,knn_accuracy_mean,knn_accuracy_ci95,knn_accuracy_best," +
            "mmd_mean,mmd_ci95,mmd_best,training_seconds_mean,training_seconds_ci95,training_seconds_best", lines[0]);
        Assert.Equal(4, lines.Length);
        var vae = lines[2].Split(',');
        Assert.Equal(["synthetic", "pinwheel", "vae", "3", "1"], vae[..5]);
        Assert.Equal(-102, double.Parse(vae[5], System.Globalization.CultureInfo.InvariantCulture));
        Assert.Equal(T975With2Dof * 2 / Math.Sqrt(3), double.Parse(vae[6], System.Globalization.CultureInfo.InvariantCulture), 9);
        Assert.Equal("false", vae[7]);
        Assert.Equal("true", vae[16]); // latent_nll_best
        Assert.Equal("synthetic,square,vae,1,1,-120,n/a,false,-121,n/a,false,-118,n/a,false,1,n/a,false,0.7,n/a,false,0.3,n/a,false,9,n/a,false", lines[3]);
    }

    [Fact]
    public void AliasesWithTheirOwnNoiseGetTheirOwnSection()
    {
        var runs = new List<RunResult>
        {
            Run(Metrics("vae", "swiss-roll", 0, -1, 1, 0.5, 0.1, 1)),
            Run(Metrics("vae", "swiss-roll", 0, -2, 2, 0.5, 0.1, 1), configPrior: "less_noisy_swiss_roll"),
            Run(Metrics("vae", "square", 0, -3, 3, 0.5, 0.1, 1), configPrior: "less_noisy_square"),
        };
        var table = ResultsTable.Build(runs);
        Assert.Equal(["swiss-roll", "swiss-roll (noise 0.1)", "square"], table.Rows.Select(r => r.Prior));
        Assert.Contains("## swiss-roll (noise 0.1) (synthetic)", table.ToMarkdown());
        Assert.Contains("synthetic,swiss-roll (noise 0.1),vae,", table.ToCsv());
    }
}
