
namespace Ddvi.Tests.Comparison;

/// <summary>`ddvi compare` and `ddvi report` run as a user would, as separate processes.</summary>
public class CompareCliTests
{
    private static (int ExitCode, string Output, string Error) Ddvi(params string[] args) => DdviProcess.Run(args);

    [Fact]
    public void HelpListsTheCommandsAndTheDefaults()
    {
        var (code, output, _) = Ddvi("--help");
        Assert.Equal(0, code);
        Assert.Contains("compare", output);
        Assert.Contains("report", output);

        (code, output, _) = Ddvi("compare", "--help");
        Assert.Equal(0, code);
        foreach (var text in new[] { "all known models", "ddvi", "vae", "pinwheel,swiss-roll,square", "0,1,2", "--jobs", "--threads", "--device", "--epochs", "--warmup-epochs", "--prior-diffusion-iterations" })
            Assert.Contains(text, output);
    }

    [Theory]
    [InlineData("--models", "vae,gan", "ddvi, vae")]
    [InlineData("--priors", "banana", "swiss-roll")]
    [InlineData("--seeds", "0,x", "0,1,2")]
    [InlineData("--jobs", "0", "≥ 1")]
    [InlineData("--models", ",", "ddvi, vae")]
    public void BadListsExitWithTwoAndNameTheOptionAndValidValues(string option, string value, string valid)
    {
        using var folder = new TempFolder();
        var (code, _, error) = Ddvi("compare", "--out", folder.Path, option, value);
        Assert.Equal(2, code);
        Assert.Contains(option, error);
        Assert.Contains(valid, error);
        Assert.False(Directory.Exists(folder["runs"]));
    }

    [Fact]
    public void MissingOutputOrRunsGiveClearErrors()
    {
        var (code, _, error) = Ddvi("compare", "--models", "vae");
        Assert.Equal(2, code);
        Assert.Contains("--out", error);

        using var folder = new TempFolder();
        (code, _, error) = Ddvi("report", folder.Path, "--out", folder["report"]);
        Assert.Equal(1, code);
        Assert.Contains("neither a run folder", error);
    }

    [Fact]
    public void CompareInParallelThenReportRebuildsTheSameTables()
    {
        using var folder = new TempFolder();
        string[] compare = ["compare", "--models", "vae", "--priors", "pinwheel", "--seeds", "0,1", "--epochs", "1", "--jobs", "2", "--threads", "2", "--out", folder.Path];
        var (code, output, error) = Ddvi(compare);
        Assert.True(code == 0, error);
        Assert.Contains("trained  vae-pinwheel-s0", output);
        Assert.Contains("[vae-pinwheel-s1] vae epoch 1/1", output);
        string markdown = File.ReadAllText(Path.Combine(folder.Path, "results.md"));
        Assert.Contains("| vae | 2 | 1 |", markdown);

        (code, output, error) = Ddvi(compare);
        Assert.True(code == 0, error);
        Assert.Contains("reused   vae-pinwheel-s1", output);
        Assert.DoesNotContain("epoch 1/1", output);

        (code, _, error) = Ddvi("report", Path.Combine(folder.Path, "runs", "vae-pinwheel-s0"), Path.Combine(folder.Path, "runs", "vae-pinwheel-s1"), "--out", folder["report"]);
        Assert.True(code == 0, error);
        Assert.Equal(markdown, File.ReadAllText(folder["report/results.md"]));
        Assert.True(File.Exists(folder["report/panel.png"]));
    }
}
