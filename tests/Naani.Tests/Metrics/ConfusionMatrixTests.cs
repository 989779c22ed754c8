using Naani.Metrics;
using Xunit;

namespace Naani.Tests.Metrics;

public sealed class ConfusionMatrixTests
{
    const double Tolerance = 1e-12;

    // Rows = actual, columns = predicted:
    //            p0  p1  p2   support
    //   a0        4   1   0      5
    //   a1        2   2   1      5
    //   a2        1   0   1      2
    //   predicted 7   3   2     12
    static ConfusionMatrix HandExample()
    {
        var m = new ConfusionMatrix(3);
        int[,] counts = { { 4, 1, 0 }, { 2, 2, 1 }, { 1, 0, 1 } };
        for (int a = 0; a < 3; a++)
            for (int p = 0; p < 3; p++)
                for (int k = 0; k < counts[a, p]; k++)
                    m.Add(a, p);
        return m;
    }

    [Fact]
    public void Counts_total_and_accuracy_of_a_hand_made_matrix()
    {
        var m = HandExample();

        Assert.Equal(2, m[1, 0]);
        Assert.Equal(0, m[0, 2]);
        Assert.Equal(12, m.Total);
        Assert.Equal(7.0 / 12, m.Accuracy, Tolerance);
        Assert.Equal([5L, 5L, 2L], Enumerable.Range(0, 3).Select(m.Support));
    }

    [Fact]
    public void Per_class_precision_recall_and_f1_match_hand_computed_values()
    {
        var m = HandExample();

        // class 0: tp 4, fp 3, fn 1 -> P 4/7, R 4/5, F1 2*4/(2*4+3+1) = 2/3
        Assert.Equal(4.0 / 7, m.Precision(0), Tolerance);
        Assert.Equal(4.0 / 5, m.Recall(0), Tolerance);
        Assert.Equal(2.0 / 3, m.F1(0), Tolerance);
        // class 1: tp 2, fp 1, fn 3 -> P 2/3, R 2/5, F1 4/8
        Assert.Equal(2.0 / 3, m.Precision(1), Tolerance);
        Assert.Equal(2.0 / 5, m.Recall(1), Tolerance);
        Assert.Equal(0.5, m.F1(1), Tolerance);
        // class 2: tp 1, fp 1, fn 1 -> P 1/2, R 1/2, F1 1/2
        Assert.Equal(0.5, m.Precision(2), Tolerance);
        Assert.Equal(0.5, m.Recall(2), Tolerance);
        Assert.Equal(0.5, m.F1(2), Tolerance);

        Assert.Equal((4.0 / 7 + 2.0 / 3 + 0.5) / 3, m.MacroPrecision, Tolerance);
        Assert.Equal((0.8 + 0.4 + 0.5) / 3, m.MacroRecall, Tolerance);
        Assert.Equal(5.0 / 9, m.MacroF1, Tolerance);
    }

    [Fact]
    public void F1_is_the_harmonic_mean_of_precision_and_recall()
    {
        var m = HandExample();
        for (int c = 0; c < 3; c++)
        {
            double p = m.Precision(c), r = m.Recall(c);
            Assert.Equal(2 * p * r / (p + r), m.F1(c), Tolerance);
        }
    }

    [Fact]
    public void Macro_scores_match_scikit_learn()
    {
        // sklearn.metrics.precision_recall_fscore_support([0,1,2,0,1,2], [0,2,1,0,0,1], average="macro")
        // -> (0.2222222222222222, 0.3333333333333333, 0.26666666666666666)
        var m = ConfusionMatrix.FromPredictions([0, 1, 2, 0, 1, 2], [0, 2, 1, 0, 0, 1], 3);

        Assert.Equal(0.2222222222222222, m.MacroPrecision, Tolerance);
        Assert.Equal(0.3333333333333333, m.MacroRecall, Tolerance);
        Assert.Equal(0.26666666666666666, m.MacroF1, Tolerance);
        Assert.Equal(2.0 / 6, m.Accuracy, Tolerance);
    }

    [Fact]
    public void A_class_never_predicted_or_never_present_scores_zero_not_NaN()
    {
        var m = ConfusionMatrix.FromPredictions([0, 0, 1], [0, 0, 0], 3);

        Assert.Equal(0, m.Precision(1)); // never predicted: 0/0
        Assert.Equal(0, m.Recall(2));    // never present: 0/0
        Assert.Equal(0, m.F1(2));
        Assert.Equal(0, new ConfusionMatrix(2).Accuracy);
    }

    [Fact]
    public void Classes_outside_the_matrix_are_refused()
    {
        var m = new ConfusionMatrix(3);

        Assert.Throws<ArgumentOutOfRangeException>(() => m.Add(3, 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => m.Add(0, -1));
        Assert.Throws<ArgumentOutOfRangeException>(() => m.Precision(3));
        Assert.Throws<ArgumentException>(() => ConfusionMatrix.FromPredictions([0, 1], [0], 3));
    }

    [Fact]
    public void ToText_right_aligns_each_column_to_its_name_or_widest_count()
    {
        var text = HandExample().ToText(["cat", "dog", "bird"]);

        var lines = text.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(4, lines.Length);
        Assert.Equal("actual \\ predicted  cat  dog  bird", lines[0]);
        Assert.Equal("cat                   4    1     0", lines[1]);
        Assert.Equal("dog                   2    2     1", lines[2]);
        Assert.Equal("bird                  1    0     1", lines[3]);
    }

    [Fact]
    public void ToText_without_names_numbers_the_classes()
    {
        var lines = HandExample().ToText(null).Split('\n', StringSplitOptions.RemoveEmptyEntries);

        Assert.Equal("actual \\ predicted  0  1  2", lines[0]);
        Assert.Throws<ArgumentException>(() => HandExample().ToText(["only", "two"]));
    }
}
