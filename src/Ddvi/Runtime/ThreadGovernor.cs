using TorchSharp;

namespace Ddvi.Runtime;

/// <summary>What <see cref="ThreadGovernor.Decide"/> chose, and from what.</summary>
/// <param name="Threads">libtorch's CPU thread count from now on.</param>
/// <param name="OtherCores">Cores' worth of CPU time other processes took since the previous decision; null where it
/// cannot be read (off Linux), and then <paramref name="Threads"/> is the maximum.</param>
/// <param name="Changed">Whether the count differs from the one before.</param>
public readonly record struct ThreadDecision(int Threads, double? OtherCores, bool Changed);

/// <summary>
/// Chooses libtorch's CPU thread count for the next stretch of work (the trainer asks at every epoch) from the load other
/// processes put on the machine: all of <see cref="MaxThreads"/> on an otherwise idle machine, fewer when other work
/// occupies cores, never fewer than one.
/// </summary>
/// <remarks>
/// <para>Why: libtorch's OpenMP threads (GNU libgomp) spin while they wait and split every parallel region in fixed
/// shares, so with more threads than free cores each region waits for the thread the scheduler put aside, and a training
/// step slowed 3–5× under one foreign busy process on two cores (docs/performance.md, "On a shared machine"). With one
/// thread per free core no thread waits on another.</para>
/// <para>The cost: libtorch's reductions and MKL's products round differently at different thread counts, so a run whose
/// thread count changed differs from one that kept it in the last bits of float32. The count changes only between
/// epochs, each change is logged, and a checkpoint taken inside an epoch records it, so a resumed epoch continues with the
/// same one. <c>--threads N</c> fixes the count (no governor) where bit-identical repetition matters more than speed.</para>
/// <para>Other work is read from <c>/proc/stat</c> less this process's own CPU time (<see cref="CpuActivity"/>): a thread
/// of ours spinning on a shared core is not counted as other work, a foreign process is, whatever its priority.</para>
/// </remarks>
public sealed class ThreadGovernor
{
    /// <summary>How long the first decision samples the machine when there is no earlier interval to judge by.</summary>
    public static readonly TimeSpan FirstSample = TimeSpan.FromMilliseconds(200);

    private readonly Func<CpuActivity?> _sample;
    private readonly int _cores;
    private CpuActivity? _last;

    /// <param name="maxThreads">The count on an idle machine (libtorch's default: the cores available).</param>
    public ThreadGovernor(int maxThreads) : this(maxThreads, Environment.ProcessorCount, CpuActivity.Now) { }

    /// <summary>For tests: the cores and the sampler given.</summary>
    public ThreadGovernor(int maxThreads, int cores, Func<CpuActivity?> sample)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxThreads, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(cores, 1);
        MaxThreads = maxThreads;
        _cores = cores;
        _sample = sample;
    }

    public int MaxThreads { get; }

    /// <summary>The count for <paramref name="otherCores"/> cores of other work: the free cores, rounded to the nearest
    /// whole core, between 1 and <see cref="MaxThreads"/>.</summary>
    public int ThreadsFor(double otherCores) =>
        Math.Clamp((int)Math.Floor(_cores - otherCores + 0.5), 1, MaxThreads);

    /// <summary>Measures other work since the previous call (the first call samples for <see cref="FirstSample"/>),
    /// chooses the count and applies it (<c>torch.set_num_threads</c>) when it changed.</summary>
    public ThreadDecision Decide()
    {
        var now = _sample();
        if (_last is null && now is not null)
        {
            Thread.Sleep(FirstSample);
            _last = now;
            now = _sample();
        }
        double? other = CpuActivity.OtherCores(_last, now);
        _last = now;
        int threads = other is double o ? ThreadsFor(o) : MaxThreads;
        int before = torch.get_num_threads();
        if (threads != before) torch.set_num_threads(threads);
        return new ThreadDecision(threads, other, threads != before);
    }

    /// <summary>One line for a log: the count and why.</summary>
    public static string Describe(ThreadDecision decision, int epoch) => decision.OtherCores is double other
        ? FormattableString.Invariant($"threads: {decision.Threads} from epoch {epoch + 1} (other processes took {other:F1} cores since the last decision; --threads N fixes the count)")
        : FormattableString.Invariant($"threads: {decision.Threads} from epoch {epoch + 1}");
}
