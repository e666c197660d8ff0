using System.Collections.Concurrent;
using Ddvi.FastPaths;
using Ddvi.Runtime;
using static TorchSharp.torch;

namespace Ddvi.Tests.Runtime;

/// <summary>Parallel loops on libtorch's OpenMP team: every chunk once, on more than one thread, failures surfaced.</summary>
public class OpenMpTeamTests
{
    [Fact]
    public void LibtorchsOpenMpRuntimeIsFoundOnLinux()
    {
        if (!OperatingSystem.IsLinux()) return;
        Assert.True(OpenMpTeam.IsAvailable, "libtorch's CPU build on Linux runs on libgomp, whose GOMP_parallel should be found");
    }

    [Theory]
    [InlineData(1, 1)]
    [InlineData(1, 2)]
    [InlineData(7, 2)]
    [InlineData(1000, 2)]
    [InlineData(5, 16)]
    public void EveryChunkRunsExactlyOnce(int chunks, int threads)
    {
        var runs = new int[chunks];
        OpenMpTeam.For(chunks, threads, chunk => Interlocked.Increment(ref runs[chunk]));
        Assert.All(runs, count => Assert.Equal(1, count));
    }

    [Fact]
    public void NoChunksRunsNothing()
    {
        bool ran = false;
        OpenMpTeam.For(0, 2, _ => ran = true);
        Assert.False(ran);
    }

    [Fact]
    public void TwoChunksRunAtTheSameTimeOnTwoThreads()
    {
        // Each chunk waits until both have started: on one thread this would time out.
        using var bothStarted = new CountdownEvent(2);
        var threadsSeen = new ConcurrentDictionary<int, bool>();
        var waited = new bool[2];
        OpenMpTeam.For(2, 2, chunk =>
        {
            threadsSeen[Environment.CurrentManagedThreadId] = true;
            bothStarted.Signal();
            waited[chunk] = bothStarted.Wait(TimeSpan.FromSeconds(30));
        });
        Assert.True(waited[0] && waited[1], "the two chunks did not run concurrently");
        Assert.Equal(2, threadsSeen.Count);
    }

    [Fact]
    public void AChunksExceptionReachesTheCallerAndLaterChunksAreSkipped()
    {
        // Chunks after the failing one wait until it has thrown and then take 20 ms each, so that the other thread cannot
        // run through all of them in the moment the exception needs to be recorded (with trivial chunks it could, on a
        // loaded machine: the test was flaky). Chunks are handed out in order, so chunk 3 always runs before any waits.
        int ran = 0;
        using var thrown = new ManualResetEventSlim();
        var error = Assert.Throws<InvalidOperationException>(() => OpenMpTeam.For(10_000, 2, chunk =>
        {
            Interlocked.Increment(ref ran);
            if (chunk == 3)
            {
                try
                {
                    throw new InvalidOperationException("chunk 3 failed");
                }
                finally
                {
                    thrown.Set();
                }
            }
            if (chunk > 3)
            {
                thrown.Wait(TimeSpan.FromSeconds(30));
                Thread.Sleep(20);
            }
        }));
        Assert.Equal("chunk 3 failed", error.Message);
        Assert.True(ran < 10_000, $"{ran} chunks ran after the failure");
    }

    [Fact]
    public void TheThreadPoolFallbackRunsEveryChunkOnceAndRethrowsAChunksExceptionUnwrapped()
    {
        var runs = new int[300];
        OpenMpTeam.ForOnThreadPool(runs.Length, 2, chunk => Interlocked.Increment(ref runs[chunk]));
        Assert.All(runs, count => Assert.Equal(1, count));
        var error = Assert.Throws<ArgumentException>(() => OpenMpTeam.ForOnThreadPool(50, 2, chunk =>
        {
            if (chunk == 7) throw new ArgumentException("chunk 7 failed");
        }));
        Assert.Equal("chunk 7 failed", error.Message);
    }

    [Fact]
    public void LibtorchStillComputesCorrectlyAfterTheTeamRanManagedCode()
    {
        OpenMpTeam.For(4, 2, _ => { });
        using var a = rand([300, 200], generator: new Generator(3));
        using var b = rand([200, 100], generator: new Generator(4));
        using var product = a.mm(b);
        using var reference = a.to(ScalarType.Float64).mm(b.to(ScalarType.Float64));
        Assert.True(product.to(ScalarType.Float64).allclose(reference, rtol: 1e-4, atol: 1e-4));
    }
}
