using Ddvi.FastPaths;
using Ddvi.Runtime;
using static TorchSharp.torch;

namespace Ddvi.Tests.Runtime;

/// <summary>
/// The chain kernel's hand-written products against libtorch's matrix product, ReLU and sums (the chain uses them only
/// where AVX-512 is present; elsewhere .NET emulates the 512-bit vectors, so these run everywhere).
/// </summary>
public unsafe class ChainProductsTests
{
    static void Close(Tensor expected, Tensor actual)
    {
        Assert.Equal(expected.shape, actual.shape);
        double scale = expected.abs().max().item<float>() + 1e-6;
        double difference = (expected - actual).abs().max().item<float>();
        Assert.True(difference <= 1e-5 * scale, $"largest difference {difference} against a scale of {scale}");
    }

    /// <summary>
    /// Rows: 8-row blocks and the rows after them (19 = 2 × 8 + 3), two 32-column blocks, a weight read with a row stride
    /// wider than its columns, each start (none, one table row shared by every row, a row of its own per row, rows of a
    /// table picked by index, and the output itself holding the per-row starts) and each activation (ReLU that keeps a
    /// NaN, identity).
    /// </summary>
    [Theory]
    [InlineData(19, 64, 48, StartKind.Shared, true)]
    [InlineData(19, 64, 48, StartKind.None, false)]
    [InlineData(8, 32, 128, StartKind.Shared, false)]
    [InlineData(5, 128, 128, StartKind.None, true)]
    [InlineData(19, 64, 48, StartKind.PerRow, true)]
    [InlineData(13, 32, 128, StartKind.PerRow, false)]
    [InlineData(19, 64, 48, StartKind.Indexed, true)]
    [InlineData(11, 32, 128, StartKind.Indexed, false)]
    [InlineData(19, 64, 48, StartKind.InPlace, true)]
    [InlineData(11, 128, 128, StartKind.InPlace, false)]
    public void RowsMatchTheMatrixProduct(int rows, int n, int k, StartKind startKind, bool relu)
    {
        using var scope = NewDisposeScope();
        var generator = new Generator(3);
        var x = randn([rows, k], generator: generator);
        x[1, 2] = float.NaN;
        var wide = randn([k, n + 16], generator: generator);                                        // row stride n + 16
        var starts = randn([rows, n + 8], generator: generator);                                    // row stride n + 8
        var output = full([rows, n], float.NegativeInfinity);
        if (startKind == StartKind.InPlace) output.copy_(starts.narrow(1, 0, n));

        // Indexed: row b starts from table row (5 b + 3) mod rows.
        using var index = arange(rows, dtype: ScalarType.Int32).mul(5).add(3).remainder(rows);
        var starts0 = startKind switch
        {
            StartKind.None => Starts.None,
            StartKind.Shared => Starts.Shared(TensorMemory.Pointer<float>(starts)),
            StartKind.PerRow => new Starts(TensorMemory.Pointer<float>(starts), n + 8),
            StartKind.Indexed => new Starts(TensorMemory.Pointer<float>(starts), n + 8, TensorMemory.Pointer<int>(index)),
            _ => new Starts(TensorMemory.Pointer<float>(output), n),
        };
        ChainProducts.Rows(TensorMemory.Pointer<float>(x), k, rows, TensorMemory.Pointer<float>(wide), n + 16, n, k,
            starts0, relu, TensorMemory.Pointer<float>(output), n);

        var expected = x.matmul(wide.narrow(1, 0, n));
        if (startKind == StartKind.Shared) expected = expected + starts[0].narrow(0, 0, n);
        else if (startKind == StartKind.Indexed) expected = expected + starts.narrow(1, 0, n).index_select(0, index.to(ScalarType.Int64));
        else if (startKind != StartKind.None) expected = expected + starts.narrow(1, 0, n);
        if (relu) expected = nn.functional.relu(expected);
        Assert.True(output[1].isnan().all().item<bool>());                                          // the NaN row stays NaN
        var finite = cat([expected[..1], expected[2..]]);
        Close(finite, cat([output[..1], output[2..]]));
    }

    public enum StartKind { None, Shared, PerRow, Indexed, InPlace }

    /// <summary>Narrow: a per-row start, one shared start row (stride 0), none; widths 1, 2 and 3.</summary>
    [Theory]
    [InlineData(2, 1)]
    [InlineData(3, 0)]
    [InlineData(1, -1)]
    public void NarrowLayersMatchTheMatrixProduct(int width, int startStride)
    {
        using var scope = NewDisposeScope();
        var generator = new Generator(5);
        const int rows = 11, hidden = 64;
        var x = randn([rows, width], generator: generator);
        var w = randn([width, hidden], generator: generator);
        var start = randn([rows, hidden], generator: generator);
        foreach (bool relu in new[] { true, false })
        {
            var output = empty([rows, hidden]);
            ChainProducts.Narrow(TensorMemory.Pointer<float>(x), width, rows, TensorMemory.Pointer<float>(w), hidden,
                startStride < 0 ? Starts.None : new Starts(TensorMemory.Pointer<float>(start), startStride * hidden),
                TensorMemory.Pointer<float>(output), relu);
            var expected = x.matmul(w);
            if (startStride == 1) expected = expected + start;
            else if (startStride == 0) expected = expected + start[0];
            if (relu) expected = nn.functional.relu(expected);
            Close(expected, output);
        }
    }

    /// <summary>Dots: ε̂ = h Wᵀ + b for outputs of width 1, 2 and 5, with and without the bias.</summary>
    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(5)]
    public void DotsMatchTheMatrixProduct(int width)
    {
        using var scope = NewDisposeScope();
        var generator = new Generator(7);
        const int rows = 13, hidden = 96;
        var x = randn([rows, hidden], generator: generator);
        var w = randn([width, hidden], generator: generator);
        var bias = randn([width], generator: generator);
        foreach (bool withBias in new[] { true, false })
        {
            var output = empty([rows, width]);
            ChainProducts.Dots(TensorMemory.Pointer<float>(x), rows, hidden, TensorMemory.Pointer<float>(w), width,
                withBias ? TensorMemory.Pointer<float>(bias) : null, TensorMemory.Pointer<float>(output));
            var expected = x.matmul(w.t());
            Close(withBias ? expected + bias : expected, output);
        }
    }

    /// <summary>Transpose: whole 8 × 8 tiles, ragged edges on either side, a narrow matrix (a first layer's weight).</summary>
    [Theory]
    [InlineData(128, 128)]
    [InlineData(19, 13)]
    [InlineData(128, 2)]
    [InlineData(3, 40)]
    public void TransposeMatchesLibtorch(int rows, int columns)
    {
        using var scope = NewDisposeScope();
        var source = randn([rows, columns], generator: new Generator(9));
        var destination = full([columns, rows], float.NaN);
        ChainProducts.Transpose(TensorMemory.Pointer<float>(source), rows, columns, TensorMemory.Pointer<float>(destination));
        Assert.True(destination.equal(source.t().contiguous()).all().item<bool>());
    }
}
