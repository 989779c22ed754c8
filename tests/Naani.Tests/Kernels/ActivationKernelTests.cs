using Naani.Kernels;

namespace Naani.Tests.Kernels;

/// The vectorized bias + activation and bias-gradient kernels against a plain loop, for row widths that
/// are and are not multiples of the vector width (the tiled path serves 10 or 20 filters), with ragged last rows.
public sealed class ActivationKernelTests
{
    [Theory]
    [InlineData(1, 37)]
    [InlineData(3, 50)]
    [InlineData(10, 128)]
    [InlineData(10, 7)]
    [InlineData(20, 33)]
    [InlineData(24, 40)]
    [InlineData(32, 9)]
    [InlineData(100, 21)]
    [InlineData(1000, 3)]
    public void Bias_and_activation_equal_a_plain_loop(int cols, int rows)
    {
        var rng = new Rng(3);
        var bias = Enumerable.Range(0, cols).Select(_ => rng.NextFloat() - 0.5f).ToArray();
        var y = Enumerable.Range(0, cols * rows).Select(_ => rng.NextFloat() - 0.5f).ToArray();
        foreach (var activation in new[] { Activation.Relu, Activation.Linear })
        {
            var actual = (float[])y.Clone();
            Activations.AddBiasAndApply(actual, cols, bias, activation);
            for (int i = 0; i < y.Length; i++)
            {
                float v = y[i] + bias[i % cols];
                if (activation == Activation.Relu) v = Math.Max(v, 0);
                Assert.Equal(v, actual[i]);
            }
        }
    }

    [Theory]
    [InlineData(1, 37)]
    [InlineData(10, 128)]
    [InlineData(10, 7)]
    [InlineData(20, 33)]
    [InlineData(32, 9)]
    [InlineData(100, 21)]
    public void Sum_of_rows_equals_a_plain_loop(int cols, int rows)
    {
        var rng = new Rng(4);
        var x = Enumerable.Range(0, cols * rows).Select(_ => rng.NextFloat() - 0.5f).ToArray();
        var sums = Enumerable.Range(0, cols).Select(j => (float)j).ToArray();
        Activations.SumRows(x, cols, sums, accumulate: true);
        for (int j = 0; j < cols; j++)
        {
            double expected = j;
            for (int r = 0; r < rows; r++) expected += x[r * cols + j];
            Assert.True(Math.Abs(expected - sums[j]) < 1e-4, $"column {j}: {sums[j]} vs {expected}");
        }
        Activations.SumRows(x, cols, sums, accumulate: false);
        Assert.True(Math.Abs(sums[0] - Enumerable.Range(0, rows).Sum(r => (double)x[r * cols])) < 1e-4);
    }
}
