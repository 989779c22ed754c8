using Naani.Metrics;
using Xunit;

namespace Naani.Tests.Metrics;

public sealed class PredictionsTests
{
    [Fact]
    public void ArgMax_picks_the_largest_column_of_each_row()
    {
        var p = Tensor.FromArray([0.1f, 0.7f, 0.2f,
                                  0.5f, 0.2f, 0.3f,
                                  0.0f, 0.1f, 0.9f], 3, 3);

        Assert.Equal([1, 0, 2], Predictions.ArgMax(p));
    }

    [Fact]
    public void ArgMax_takes_the_first_of_tied_maxima()
    {
        Assert.Equal([0, 1], Predictions.ArgMax(Tensor.FromArray([0.4f, 0.4f, 0.2f, 0.1f, 0.45f, 0.45f], 2, 3)));
    }

    [Fact]
    public void A_single_sigmoid_column_is_thresholded_at_one_half()
    {
        Assert.Equal([0, 1, 1, 0], Predictions.ArgMax(Tensor.FromArray([0.2f, 0.5f, 0.99f, 0.4999f], 4, 1)));
        Assert.Equal([1, 0], Predictions.ArgMax(Tensor.FromArray([0.7f, 0.3f], 2)));
    }

    [Fact]
    public void Images_are_not_probabilities()
    {
        Assert.Throws<ArgumentException>(() => Predictions.ArgMax(new Tensor(2, 2, 2, 1)));
    }
}
