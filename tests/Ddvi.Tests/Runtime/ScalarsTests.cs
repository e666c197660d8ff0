using Ddvi.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace Ddvi.Tests.Runtime;

public sealed class ScalarsTests
{
    [Fact]
    public void EachKindGivesTheDtypeOfTorchSharpsOwnConversion()
    {
        using var scope = NewDisposeScope();
        var integers = arange(Scalars.Of(4), dtype: int64);
        Assert.Equal(ScalarType.Int64, (integers * Scalars.Of(2)).dtype);
        Assert.Equal(ScalarType.Int64, (integers * Scalars.Of(2L)).dtype);
        Assert.Equal(ScalarType.Float32, (integers * Scalars.Of(2.5)).dtype);
        Assert.Equal(ScalarType.Float32, (integers * Scalars.Of(2.5f)).dtype);
        Assert.Equal(new long[] { 0, 2, 4, 6 }, (integers * Scalars.Of(2)).data<long>().ToArray());
        Assert.Equal(new float[] { 0, 2.5f, 5, 7.5f }, (integers * Scalars.Of(2.5)).data<float>().ToArray());
        var flags = tensor(new[] { true, false });
        Assert.Equal(new[] { true, false }, flags.eq(Scalars.Of(true)).data<bool>().ToArray());
    }

    [Fact]
    public void AScalarStaysValidUntilItsSlotIsReusedOnTheSameThread()
    {
        using var scope = NewDisposeScope();
        var x = ones(3);
        var kept = Scalars.Of(3.0);
        for (int i = 0; i < Scalars.Kept - 1; i++) Scalars.Of(i);
        Assert.Equal(9.0f, (x * kept).sum().item<float>());
        Scalars.Of(0.0); // reuses kept's slot, which disposes it
        Assert.Throws<InvalidOperationException>(() => x * kept);
    }

    [Fact]
    public void ScalarsMadeOnAnotherThreadLeaveThisThreadsAlone()
    {
        using var scope = NewDisposeScope();
        var x = ones(2);
        var kept = Scalars.Of(1.5);
        var other = new Thread(() => { for (int i = 0; i < 3 * Scalars.Kept; i++) Scalars.Of(i); });
        other.Start();
        other.Join();
        Assert.Equal(3.0f, (x * kept).sum().item<float>());
    }
}

/// <summary>
/// The failure <see cref="Scalars"/> exists for: a thread that makes the garbage collector run while another calls
/// libtorch with a number. A temporary Scalar (<c>x.leaky_relu(0.2)</c>, <c>x * 0.5</c>) fails inside libtorch ("Expected
/// false to be true", from c10's Scalar::toFloat) within about 10,000 such calls under the churn below; a scalar from
/// <see cref="Scalars"/> must not. These tests run alone: the churn would expose the other tests, whose code makes
/// temporary Scalars, to the same failure.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class GarbageCollectionChurnCollection
{
    public const string Name = "Garbage-collection churn, run alone";
}

[Collection(GarbageCollectionChurnCollection.Name)]
public sealed class ScalarLifetimeTests
{
    [Fact]
    public void ScalarsFromScalarsOfSurviveCollectionsOnAnotherThread()
    {
        using var scope = NewDisposeScope();
        var x = randn(new long[] { 64, 64 }, generator: new Generator(3));
        using var slope = 0.2.ToScalar();
        using var factor = 1.5.ToScalar();
        var expectedRelu = x.leaky_relu(slope);
        var expectedProduct = x.mul(factor);
        bool stop = false;
        long collections = 0;
        var churn = new Thread(() =>
        {
            long bytes = 0;
            while (!Volatile.Read(ref stop))
            {
                var garbage = new byte[256];
                bytes += garbage.Length;
                if ((bytes & 0xFFFF) == 0) { GC.Collect(0); Interlocked.Increment(ref collections); }
            }
        }) { IsBackground = true };
        churn.Start();
        int mismatches = 0;
        try
        {
            for (int i = 0; i < 20_000; i++)
            {
                using var step = NewDisposeScope();
                if (!x.leaky_relu(Scalars.Of(0.2)).allclose(expectedRelu, rtol: 0, atol: 0)) mismatches++;
                if (!x.mul(Scalars.Of(1.5)).allclose(expectedProduct, rtol: 0, atol: 0)) mismatches++;
            }
        }
        finally
        {
            Volatile.Write(ref stop, true);
            churn.Join();
        }
        Assert.Equal(0, mismatches);
        Assert.True(Interlocked.Read(ref collections) > 100, $"only {collections} collections ran during the calls");
    }
}
