using System.Diagnostics;
using Ddvi.Runtime;
using TorchSharp;

namespace Ddvi.Tests.Runtime;

/// <summary>The thread count follows the load other processes put on the machine (read through a fake sampler here).</summary>
public class ThreadGovernorTests
{
    /// <summary>A sampler whose machine busy time grows by <c>other</c> cores' worth per second of its own clock.</summary>
    private sealed class FakeMachine
    {
        private double _seconds;
        public double Other { get; set; }
        private double _busy;

        public CpuActivity? Sample()
        {
            // Each sample is one (virtual) second after the previous: the machine was busy Other cores' worth meanwhile.
            _seconds += 1;
            _busy += Other;
            return new CpuActivity(_busy, 0, (long)(_seconds * Stopwatch.Frequency));
        }
    }

    [Theory]
    [InlineData(0.0, 2)]
    [InlineData(0.4, 2)]
    [InlineData(0.6, 1)]
    [InlineData(1.0, 1)]
    [InlineData(2.7, 1)]
    public void TheCountIsTheFreeCoresRoundedBetweenOneAndTheMaximum(double other, int expected) =>
        Assert.Equal(expected, new ThreadGovernor(2, 2, () => null).ThreadsFor(other));

    [Fact]
    public void OnAMachineWithMoreCoresTheCountIsCappedByTheMaximum()
    {
        var governor = new ThreadGovernor(4, 8, () => null);
        Assert.Equal(4, governor.ThreadsFor(1.0));
        Assert.Equal(3, governor.ThreadsFor(5.2));
    }

    [Fact]
    public void DecisionsFollowTheLoadAndApplyTheCount()
    {
        int before = torch.get_num_threads();
        try
        {
            torch.set_num_threads(2);
            var machine = new FakeMachine();
            var governor = new ThreadGovernor(2, 2, machine.Sample);
            var first = governor.Decide();
            Assert.Equal((2, false), (first.Threads, first.Changed));
            Assert.Equal(0.0, first.OtherCores!.Value, 9);

            machine.Other = 1.0; // a foreign busy process started
            var loaded = governor.Decide();
            Assert.Equal((1, true), (loaded.Threads, loaded.Changed));
            Assert.Equal(1, torch.get_num_threads());
            Assert.Contains("threads: 1 from epoch 4 (other processes took 1.0 cores", ThreadGovernor.Describe(loaded, 3));

            machine.Other = 0.05; // it ended
            var idle = governor.Decide();
            Assert.Equal((2, true), (idle.Threads, idle.Changed));
            Assert.Equal(2, torch.get_num_threads());
        }
        finally
        {
            torch.set_num_threads(before);
        }
    }

    [Fact]
    public void WithoutReadingsTheMaximumIsKept()
    {
        int before = torch.get_num_threads();
        try
        {
            torch.set_num_threads(1);
            var decision = new ThreadGovernor(2, 2, () => null).Decide();
            Assert.Equal((2, null, true), (decision.Threads, decision.OtherCores, decision.Changed));
        }
        finally
        {
            torch.set_num_threads(before);
        }
    }

    [Fact]
    public void BadArgumentsAreRefused()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new ThreadGovernor(0));
        Assert.Throws<ArgumentOutOfRangeException>(() => new ThreadGovernor(2, 0, () => null));
    }
}
