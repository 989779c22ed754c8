using Naani.Models;
using Naani.Tests.Kernels;

namespace Naani.Tests.Models;

/// The Predictor gives Predict's outputs whatever the batch bucket, from many threads, and allocates nothing per call.
[Collection(ThreadingCollection.Name)]
public sealed class PredictorTests
{
    static (Model Model, Tensor X) MnistBaseline(int n)
    {
        var model = Architectures.Create("mnist-baseline", seed: 3);
        model.ClassNames = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"];
        var rng = new Rng(9);
        var x = new Tensor(n, 28, 28, 1);
        for (int i = 0; i < x.Length; i++) x.Data[i] = rng.NextFloat();
        return (model, x);
    }

    [Fact]
    public void Every_bucket_and_every_split_gives_the_outputs_of_predict_one_sample_at_a_time()
    {
        var (model, x) = MnistBaseline(45);
        var expected = new float[45 * 10];
        for (int i = 0; i < 45; i++) model.Predict(x.SliceBatch(i, 1), 1).Data.CopyTo(expected, i * 10);
        var predictor = model.CreatePredictor(maxBatch: 16);
        foreach (int n in new[] { 1, 2, 3, 5, 8, 13, 16, 17, 45 })
        {
            var outputs = predictor.Probabilities(x.Data.AsSpan(0, n * 784), n);
            for (int i = 0; i < n * 10; i++) Assert.Equal(expected[i], outputs[i], 5);
        }
    }

    [Fact]
    public void A_prediction_names_the_class_and_lists_the_top_k_in_decreasing_probability()
    {
        var (model, x) = MnistBaseline(1);
        var predictor = model.CreatePredictor();
        var p = predictor.Predict(x.Data, top: 3);
        var row = model.Predict(x).Data;
        int best = Array.IndexOf(row, row.Max());
        Assert.Equal(best, p.Index);
        Assert.Equal(model.ClassNames![best], p.Class);
        Assert.Equal(3, p.Top.Count);
        Assert.True(p.Top[0].Probability >= p.Top[1].Probability && p.Top[1].Probability >= p.Top[2].Probability);
        Assert.Equal(row.OrderByDescending(v => v).Take(3), p.Top.Select(t => t.Probability));
    }

    [Fact]
    public void One_sigmoid_unit_is_two_classes()
    {
        var model = new Sequential("binary", seed: 1).Add(new Naani.Layers.Input(4, 4, 1)).Add(new Naani.Layers.Flatten()).Add(new Naani.Layers.Dense(1, Naani.Activation.Sigmoid));
        model.ClassNames = ["cat", "dog"];
        var predictor = model.CreatePredictor();
        var sample = new float[16];
        sample.AsSpan().Fill(0.5f);
        var p = predictor.Predict(sample);
        float dog = model.Predict(new Tensor(new Shape(1, 4, 4, 1), sample)).Data[0];
        Assert.Equal(2, p.Top.Count);
        Assert.Equal(dog >= 0.5f ? "dog" : "cat", p.Class);
        Assert.Equal(1f, p.Top[0].Probability + p.Top[1].Probability, 5);
    }

    [Fact]
    public void Many_threads_get_their_own_answers()
    {
        var (model, x) = MnistBaseline(64);
        var predictor = model.CreatePredictor(maxBatch: 8);
        var expected = predictor.Probabilities(x.Data, 64);
        Parallel.For(0, 8, new ParallelOptions { MaxDegreeOfParallelism = 8 }, t =>
        {
            for (int r = 0; r < 50; r++)
            {
                int i = (t * 7 + r * 3) % 60, n = 1 + (r % 4);
                var outputs = predictor.Probabilities(x.Data.AsSpan(i * 784, n * 784), n);
                for (int j = 0; j < n * 10; j++) Assert.Equal(expected[i * 10 + j], outputs[j], 5);
            }
        });
    }

    [Fact]
    public void PredictInto_allocates_nothing_once_each_bucket_has_run()
    {
        var (model, x) = MnistBaseline(32);
        var predictor = model.CreatePredictor(maxBatch: 32);
        var outputs = new float[32 * 10];
        // Warm-up: each bucket's first call allocates its workspaces, and the JIT settles its tiers.
        for (int r = 0; r < 40; r++)
            foreach (int n in new[] { 1, 2, 3, 5, 9, 17, 32 }) predictor.PredictInto(x.Data.AsSpan(0, n * 784), n, outputs);
        var sizes = new[] { 1, 2, 3, 5, 9, 17, 32 };
        var allocated = new long[sizes.Length];
        for (int r = 0; r < 20; r++)
            for (int k = 0; k < sizes.Length; k++)
            {
                long before = GC.GetAllocatedBytesForCurrentThread();
                predictor.PredictInto(x.Data.AsSpan(0, sizes[k] * 784), sizes[k], outputs);
                allocated[k] += GC.GetAllocatedBytesForCurrentThread() - before;
            }
        Assert.True(allocated.All(a => a == 0), $"bytes allocated by 20 calls of each size {string.Join(", ", sizes)}: {string.Join(", ", allocated)}");
    }

    [Fact]
    public void Wrong_sizes_are_refused_with_the_expected_shape()
    {
        var (model, _) = MnistBaseline(1);
        var predictor = model.CreatePredictor();
        var e = Assert.Throws<ArgumentException>(() => predictor.Predict(new float[100]));
        Assert.Contains("784", e.Message);
        Assert.Throws<ArgumentException>(() => predictor.Predict(new Tensor(2, 28, 28, 3)));
    }
}
