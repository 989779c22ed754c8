using System.Diagnostics;
using Naani.Callbacks;
using Naani.Layers;
using Naani.Losses;
using Naani.Models;
using Naani.Optimizers;
using Naani.Tests.Kernels;
using Xunit;
using Xunit.Abstractions;

namespace Naani.Tests.Models;

[Collection(ThreadingCollection.Name)]
public sealed class TrainingTests(ITestOutputHelper output)
{
    /// 12x12 grayscale images of a bright bar, horizontal (class 0) or vertical (class 1), of length
    /// 4 to 8 at a random place, over uniform noise in [0, 0.5). Both classes have the same number
    /// and brightness of bar pixels anywhere in the image: only their arrangement tells them apart.
    internal static (Tensor X, Tensor Y) Bars(int count, ulong seed)
    {
        var rng = new Rng(seed);
        var x = new Tensor(count, 12, 12, 1);
        var y = new Tensor(count, 2);
        for (int n = 0; n < count; n++)
        {
            var image = x.Sample(n);
            for (int i = 0; i < image.Length; i++) image[i] = rng.Uniform(0f, 0.5f);
            bool vertical = rng.NextInt(2) == 1;
            int length = 4 + rng.NextInt(5);
            int along = rng.NextInt(12 - length + 1), across = rng.NextInt(12);
            for (int k = 0; k < length; k++)
            {
                int r = vertical ? along + k : across, c = vertical ? across : along + k;
                image[r * 12 + c] += 0.7f;
            }
            y[n, vertical ? 1 : 0] = 1;
        }
        return (x, y);
    }

    static Sequential BarClassifier(int seed, double dropout = 0) => new Sequential("bars", seed)
        .Add(new Input(12, 12, 1))
        .Add(new Conv2D(16, 3, activation: Activation.Relu))
        .Add(new MaxPooling2D(5))
        .Add(new Dropout(dropout))
        .Add(new Flatten())
        .Add(new Dense(2, Activation.Softmax));

    [Fact]
    public void A_small_CNN_learns_to_tell_horizontal_from_vertical_bars()
    {
        var (x, y) = Bars(1600, seed: 1);
        var (xTest, yTest) = Bars(400, seed: 2);
        var model = BarClassifier(seed: 3);
        model.Compile(new Adam(0.01), new CategoricalCrossEntropy(), "accuracy");
        double before = model.Evaluate(xTest, yTest)["accuracy"];
        var clock = Stopwatch.StartNew();

        var history = model.Fit(x, y, batchSize: 32, epochs: 8);

        var result = model.Evaluate(xTest, yTest);
        output.WriteLine($"held-out accuracy {before:P1} -> {result["accuracy"]:P1} in {clock.Elapsed.TotalSeconds:F2} s; " +
            $"training loss {string.Join(", ", history["loss"].Select(l => l.ToString("F3")))}");
        Assert.InRange(before, 0.3, 0.7);
        Assert.True(result["accuracy"] > 0.95, $"held-out accuracy {result["accuracy"]:P1}");
        Assert.True(history["loss"][^1] < history["loss"][0] / 2);
        Assert.True(clock.Elapsed.TotalSeconds < 10, $"training took {clock.Elapsed.TotalSeconds:F1} s");
    }

    static List<Tensor> TrainTwoEpochs(int seed)
    {
        var (x, y) = Bars(96, seed: 4);
        var model = BarClassifier(seed, dropout: 0.3);
        model.Compile(new Adam(0.01), new CategoricalCrossEntropy(), "accuracy");
        model.Fit(x, y, batchSize: 16, epochs: 2, shuffle: true);
        return model.GetWeights();
    }

    [Fact]
    public void Same_seed_and_thread_count_give_bit_identical_weights_after_training()
    {
        foreach (int threads in new[] { 1, 2 })
            ThreadingCollection.WithThreads(threads, () =>
            {
                var first = TrainTwoEpochs(seed: 42);
                var second = TrainTwoEpochs(seed: 42);

                Assert.Equal(first.Count, second.Count);
                for (int i = 0; i < first.Count; i++) Assert.Equal(first[i].Data, second[i].Data);
            });
    }

    [Fact]
    public void Different_seeds_give_different_weights()
    {
        var first = TrainTwoEpochs(seed: 42);
        var second = TrainTwoEpochs(seed: 43);

        Assert.NotEqual(first[0].Data, second[0].Data);
        Assert.NotEqual(first[^2].Data, second[^2].Data);
    }

    [Fact]
    public void Training_changes_every_trainable_weight_tensor()
    {
        var (x, y) = Bars(64, seed: 5);
        var model = BarClassifier(seed: 6);
        model.Compile("adam", "categorical_crossentropy");
        var before = model.GetWeights();

        model.Fit(x, y, batchSize: 16, epochs: 1);

        var after = model.GetWeights();
        for (int i = 0; i < before.Count; i++) Assert.NotEqual(before[i].Data, after[i].Data);
    }

    [Fact]
    public void Fit_with_validation_split_reports_val_loss_and_val_accuracy_of_the_last_samples()
    {
        var (x, y) = Bars(100, seed: 7);
        var model = BarClassifier(seed: 8);
        model.Compile(new Adam(0.01), new CategoricalCrossEntropy(), "accuracy");

        var history = model.Fit(x, y, batchSize: 10, epochs: 3, validationSplit: 0.2);

        Assert.Equal(3, history.Epochs);
        foreach (var key in new[] { "loss", "accuracy", "val_loss", "val_accuracy" })
            Assert.Equal(3, history[key].Count);
        // As in Keras, the validation set is the last 20 samples, taken before shuffling.
        var last = model.Evaluate(x.SliceBatch(80, 20), y.SliceBatch(80, 20), batchSize: 10);
        Assert.Equal(last["loss"], history["val_loss"][^1]);
        Assert.Equal(last["accuracy"], history["val_accuracy"][^1]);
        Assert.All(history["val_accuracy"], a => Assert.True(a is >= 0 and <= 1 && Math.Abs(a * 20 - Math.Round(a * 20)) < 1e-9, $"val_accuracy {a} is not a count of 20"));
    }

    [Fact]
    public void EarlyStopping_stops_when_validation_loss_rises_and_restores_the_best_weights()
    {
        // Validation labels are the opposite of the training labels: the better the model learns,
        // the worse its validation loss, so the best epoch is an early one.
        var (x, y) = Bars(200, seed: 9);
        var (xVal, yVal) = Bars(60, seed: 10);
        for (int n = 0; n < yVal.Batch; n++) (yVal[n, 0], yVal[n, 1]) = (yVal[n, 1], yVal[n, 0]);
        var model = BarClassifier(seed: 11);
        model.Compile(new Adam(0.01), new CategoricalCrossEntropy(), "accuracy");
        var stopping = new EarlyStopping("val_loss", patience: 1, restoreBestWeights: true);

        var history = model.Fit(x, y, batchSize: 20, epochs: 20, validationData: (xVal, yVal), callbacks: [stopping]);

        Assert.True(history.Epochs < 20, $"trained all {history.Epochs} epochs");
        Assert.True(stopping.StoppedEpoch > stopping.BestEpoch);
        Assert.Equal(history.Epochs - 1, stopping.StoppedEpoch);
        double best = history["val_loss"].Min();
        Assert.Equal(best, history["val_loss"][stopping.BestEpoch]);
        Assert.Equal(best, stopping.Best);
        // The restored weights are those of the best epoch: they reproduce its validation loss exactly.
        Assert.Equal(best, model.Evaluate(xVal, yVal, batchSize: 20)["loss"]);
    }
}
