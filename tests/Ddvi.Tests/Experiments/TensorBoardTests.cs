using System.Buffers.Binary;
using Ddvi.Experiments;
using Ddvi.Plotting;
using Ddvi.Training;

namespace Ddvi.Tests.Experiments;

/// <summary>
/// <c>--tensorboard</c>: the event files of a tiny DDVI run, read back record by record (TFRecord framing: length,
/// masked CRC32C of the length, the Event, masked CRC32C of the Event), with their tags and values checked.
/// </summary>
public class TensorBoardTests
{
    /// <summary>CRC32C (Castagnoli, reflected polynomial 0x82F63B78), computed bit by bit: the reference for the check.</summary>
    internal static uint Crc32C(ReadOnlySpan<byte> data)
    {
        uint crc = 0xFFFFFFFF;
        foreach (byte b in data)
        {
            crc ^= b;
            for (int k = 0; k < 8; k++) crc = (crc & 1) != 0 ? (crc >> 1) ^ 0x82F63B78 : crc >> 1;
        }
        return ~crc;
    }

    /// <summary>TensorFlow's mask: rotate right by 15 bits and add 0xa282ead8.</summary>
    internal static uint Masked(uint crc) => unchecked(((crc >> 15) | (crc << 17)) + 0xa282ead8);

    /// <summary>Every record of an event file, each checked against its two CRCs.</summary>
    internal static List<Tensorboard.Event> ReadEvents(string path)
    {
        var bytes = File.ReadAllBytes(path);
        var events = new List<Tensorboard.Event>();
        int at = 0;
        while (at < bytes.Length)
        {
            Assert.True(bytes.Length - at >= 12, $"{path}: truncated record header at byte {at}");
            ulong length = BinaryPrimitives.ReadUInt64LittleEndian(bytes.AsSpan(at));
            Assert.Equal(Masked(Crc32C(bytes.AsSpan(at, 8))), BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(at + 8)));
            var data = bytes.AsSpan(at + 12, (int)length);
            Assert.Equal(Masked(Crc32C(data)), BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(at + 12 + (int)length)));
            events.Add(Tensorboard.Event.Parser.ParseFrom(data.ToArray()));
            at += 12 + (int)length + 4;
        }
        return events;
    }

    [Fact]
    public void CrcMatchesTheStandardCheckValue() => Assert.Equal(0xE3069283u, Crc32C("123456789"u8));

    [Fact]
    public void ADdviRunWritesLossesLearningRatesImagesHistogramsAndMetrics()
    {
        using var folder = new TempFolder();
        var tiny = ExperimentRunnerTests.Tiny("ddvi");
        // 100 prior-diffusion steps in one epoch: two of the trainer's logging intervals (every 50 steps).
        var config = tiny with { TensorBoard = folder["tb"], Ddvi = tiny.Ddvi with { PriorDiffusionIterations = 100, PriorDiffusionStepsPerEpoch = 100 } };
        var report = new ExperimentRunner(SilentObserver.Instance).Train(config, folder["run"], resume: false);

        var file = Assert.Single(Directory.GetFiles(Path.Combine(folder["tb"], "run"), "events.out.tfevents.*"));
        var events = ReadEvents(file);
        Assert.Equal("brain.Event:2", events[0].FileVersion);
        var values = events.Where(e => e.Summary is not null).SelectMany(e => e.Summary.Value.Select(v => (e.Step, Value: v))).ToList();
        var tags = values.Select(v => v.Value.Tag).ToHashSet();

        // Per-epoch loss means, tagged by stage, equal the run's own loss history.
        var run = new RunDirectory(folder["run"]);
        foreach (var stage in new[] { "prior-diffusion", "warmup", "ddvi" })
        {
            var history = Checkpoint.ReadHeader(Checkpoint.Latest(run.Checkpoints(stage))!).State.History;
            foreach (var record in history)
                foreach (var (term, loss) in record.Losses)
                {
                    var logged = Assert.Single(values, v => v.Value.Tag == $"{stage}/epoch/{term}" && v.Step == record.Epoch + 1);
                    Assert.Equal((float)loss, logged.Value.SimpleValue);
                }
            Assert.Contains(tags, t => t.StartsWith($"{stage}/learning_rate/", StringComparison.Ordinal));
        }
        var steps = values.Where(v => v.Value.Tag == "prior-diffusion/step/prior/loss").ToList();
        Assert.Equal([50L, 100L], steps.Select(v => v.Step));
        Assert.All(steps, v => Assert.True(float.IsFinite(v.Value.SimpleValue)));
        Assert.All(values.Where(v => v.Value.Tag.StartsWith("ddvi/learning_rate/", StringComparison.Ordinal)),
            v => Assert.Equal((float)config.ResolvedLearningRate, v.Value.SimpleValue));

        // Images and histograms at each checkpoint epoch (every epoch here) of the last stage.
        foreach (int epoch in new[] { 1, 2 })
        {
            foreach (var tag in new[] { "ddvi/latents", "ddvi/samples" })
            {
                var image = Assert.Single(values, v => v.Value.Tag == tag && v.Step == epoch).Value.Image;
                Assert.Equal([0x89, (byte)'P', (byte)'N', (byte)'G'], image.EncodedImageString.ToByteArray()[..4]);
                Assert.True(image.Width > 0 && image.Height > 0);
            }
            var histogram = Assert.Single(values, v => v.Value.Tag == "ddvi/encoder_variance" && v.Step == epoch).Value.Histo;
            Assert.Equal(128 * 2, histogram.Num);
            Assert.True(histogram.Min > 0, "variances are positive");
        }
        var samples = values.First(v => v.Value.Tag == "ddvi/samples").Value.Image;
        Assert.Equal(10 * 28 + 11 * ImageGrid.Padding, samples.Height); // ten rows of ten 28×28 samples, as samples.png at scale 1
        Assert.Equal(10 * 28 + 11 * ImageGrid.Padding, samples.Width);

        // Evaluation metrics.
        Assert.Equal((float)report.KnnAccuracy.Value, Assert.Single(values, v => v.Value.Tag == "eval/knn_accuracy").Value.SimpleValue);
        Assert.Equal((float)report.Mmd.Value, Assert.Single(values, v => v.Value.Tag == "eval/mmd").Value.SimpleValue);
        Assert.Contains("eval/latent_nll", tags);
        Assert.Contains("eval/true_elbo", tags);
        // The event files stay out of the run folder, and no temporary image is left behind.
        Assert.Empty(Directory.GetFiles(folder["tb"], "*.png", SearchOption.AllDirectories));
    }
}
