using System.Text;
using Ddvi.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace Ddvi.Tests.Training;

/// <summary>Every kind of damage to a checkpoint file is found, named with the file, and never surfaces as another exception.</summary>
public class CheckpointIntegrityTests
{
    private static (string Path, nn.Module Model, Dictionary<string, optim.Optimizer> Optimizers) Written(TempFolder folder, string name = "epoch-0001.ckpt")
    {
        torch.manual_seed(1);
        var model = nn.Sequential(nn.Linear(16, 64), nn.ReLU(), nn.Linear(64, 8));
        var optimizers = new Dictionary<string, optim.Optimizer> { ["fit"] = optim.Adam(model.parameters()) };
        string path = folder[name];
        Checkpoint.Save(path, model, optimizers, new TrainerState("toy", 1, 0.5, []), "{\"seed\":1}");
        return (path, model, optimizers);
    }

    private static nn.Module FreshModel() => nn.Sequential(nn.Linear(16, 64), nn.ReLU(), nn.Linear(64, 8));

    private static void AssertDamageIsNamed(string path)
    {
        var problem = Checkpoint.Problem(path);
        Assert.NotNull(problem);
        Assert.Contains(path, problem);
        var error = Assert.Throws<InvalidDataException>(() => Checkpoint.Load(path, FreshModel()));
        Assert.Contains(path, error.Message);
    }

    [Fact]
    public void AnIntactCheckpointPassesItsCheck()
    {
        using var folder = new TempFolder();
        var (path, model, _) = Written(folder);
        Assert.Null(Checkpoint.Problem(path));
        var copy = FreshModel();
        Checkpoint.Load(path, copy);
        Assert.Equal(model.parameters().SelectMany(p => p.data<float>().ToArray()), copy.parameters().SelectMany(p => p.data<float>().ToArray()));
    }

    [Theory]
    [InlineData(0.999)]
    [InlineData(0.5)]
    [InlineData(0.01)]
    public void TruncatedFilesAreDamaged(double keep)
    {
        using var folder = new TempFolder();
        var (path, _, _) = Written(folder);
        var bytes = File.ReadAllBytes(path);
        File.WriteAllBytes(path, bytes[..(int)(bytes.Length * keep)]);
        AssertDamageIsNamed(path);
    }

    [Fact]
    public void ZeroedWeightsAndFlippedBytesFailTheChecksum()
    {
        using var folder = new TempFolder();
        var (path, _, _) = Written(folder);
        var bytes = File.ReadAllBytes(path);
        // Zero a run of bytes in the middle (weights), as a sparse file or a failed disk block leaves them.
        var zeroed = (byte[])bytes.Clone();
        Array.Clear(zeroed, zeroed.Length / 3, 2_000);
        File.WriteAllBytes(path, zeroed);
        AssertDamageIsNamed(path);
        Assert.Contains("checksum", Checkpoint.Problem(path));

        var flipped = (byte[])bytes.Clone();
        flipped[flipped.Length / 2] ^= 0x10;
        File.WriteAllBytes(path, flipped);
        AssertDamageIsNamed(path);
    }

    [Fact]
    public void GarbageAndEmptyFilesAreNotCheckpoints()
    {
        using var folder = new TempFolder();
        File.WriteAllText(folder["epoch-0001.ckpt"], "not a checkpoint at all");
        AssertDamageIsNamed(folder["epoch-0001.ckpt"]);
        File.WriteAllBytes(folder["epoch-0002.ckpt"], []);
        AssertDamageIsNamed(folder["epoch-0002.ckpt"]);
    }

    [Fact]
    public void DamageInAFileOfTheFirstLayoutIsReportedAsDamageNotAsAnotherException()
    {
        // The first layout: magic DDVICKP1 and no checksum. Damage then surfaces inside libtorch's reader or .NET's;
        // whatever it throws must reach the caller as an InvalidDataException that names the file.
        using var folder = new TempFolder();
        var (path, model, _) = Written(folder);
        var bytes = File.ReadAllBytes(path)[..^32];
        int magic = Encoding.ASCII.GetBytes("DDVICKP2").Length;
        Encoding.ASCII.GetBytes("DDVICKP1").CopyTo(bytes, 1); // after the string's one-byte length prefix
        File.WriteAllBytes(path, bytes);
        Assert.Null(Checkpoint.Problem(path));
        var copy = FreshModel();
        Checkpoint.Load(path, copy); // an intact old file still loads
        Assert.Equal(model.parameters().SelectMany(p => p.data<float>().ToArray()), copy.parameters().SelectMany(p => p.data<float>().ToArray()));

        var random = new Random(5);
        for (int trial = 0; trial < 40; trial++)
        {
            var damaged = (byte[])bytes.Clone();
            int at = random.Next(magic + 1, damaged.Length);
            for (int i = at; i < Math.Min(damaged.Length, at + 8); i++) damaged[i] = (byte)random.Next(256);
            File.WriteAllBytes(path, damaged);
            try
            {
                Checkpoint.Load(path, FreshModel());
            }
            catch (InvalidDataException e)
            {
                Assert.Contains(path, e.Message);
            }
            // Any other exception type fails the test; some damage (inside a float) is undetectable in this layout.
        }
    }

    [Fact]
    public void CheckpointsAreOrderedByEpochsAndStepsAsNumbers()
    {
        using var folder = new TempFolder();
        foreach (var name in new[] { Checkpoint.FileName(9_999), Checkpoint.FileName(10_000), Checkpoint.FileName(10_000, 3), Checkpoint.FileName(2, 120), Checkpoint.FileName(2) })
            File.WriteAllText(folder[name], "");
        File.WriteAllText(folder["epoch-0003.ckpt.damaged"], "");
        Assert.Equal(new[] { "epoch-0002.ckpt", "epoch-0002-step-000120.ckpt", "epoch-9999.ckpt", "epoch-10000.ckpt", "epoch-10000-step-000003.ckpt" },
            Checkpoint.List(folder.Path).Select(Path.GetFileName));
        Assert.Equal("epoch-10000-step-000003.ckpt", Path.GetFileName(Checkpoint.Latest(folder.Path)));
    }

    [Fact]
    public void PruningAfterTenThousandEpochsKeepsTheNewest()
    {
        using var folder = new TempFolder();
        var model = nn.Linear(2, 1);
        var noOptimizers = new Dictionary<string, optim.Optimizer>();
        // As if a long run had written these: the newest must survive pruning although it sorts first as text.
        Checkpoint.Save(folder[Checkpoint.FileName(9_998)], model, noOptimizers, new TrainerState("toy", 9_998, 0, []), "{}");
        Checkpoint.Save(folder[Checkpoint.FileName(9_999)], model, noOptimizers, new TrainerState("toy", 9_999, 0, []), "{}");
        var phase = new TrainingPhase
        {
            Name = "fit", Parameters = model.parameters().ToList(), LearningRate = 0.01,
            Loss = step => { var l = model.call(ones(1, 2)).square().sum(); return new Ddvi.Objectives.LossTerms(l, []); },
        };
        new Trainer(SilentObserver.Instance).Fit(model, [phase], new DataFreeSteps(1),
            new TrainerOptions("toy", 10_001, 1, folder.Path, CheckpointEvery: 1, KeepCheckpoints: 2), "{}", resume: true);
        Assert.Equal(new[] { "epoch-10000.ckpt", "epoch-10001.ckpt" }, Checkpoint.List(folder.Path).Select(Path.GetFileName));
    }
}
