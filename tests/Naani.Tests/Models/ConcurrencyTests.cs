using Naani.Data;
using Naani.Models;
using Naani.Tests.Kernels;

namespace Naani.Tests.Models;

/// One loaded model used from many threads at once: Predict and Evaluate give, bit for bit, what one
/// thread gets (the calls take turns on the model's graph), training interleaved with predictions is the
/// same training, and two models used from two threads do not disturb each other.
[Collection(ThreadingCollection.Name)]
public sealed class ConcurrencyTests
{
    static Tensor RandomImages(Shape shape, int count, ulong seed)
    {
        var rng = new Rng(seed);
        var x = new Tensor(shape.WithBatch(count));
        for (int i = 0; i < x.Length; i++) x.Data[i] = rng.NextFloat();
        return x;
    }

    static Tensor Labels(int count, int classes)
    {
        var y = new Tensor(count);
        for (int i = 0; i < count; i++) y.Data[i] = i * 7 % classes;
        return y;
    }

    static float[][] PredictEach(Model model, Tensor images) =>
        [.. Enumerable.Range(0, images.Batch).Select(i => model.Predict(images.SliceBatch(i, 1)).Data)];

    /// Runs body(thread) on threads threads started together; rethrows the first failure.
    static void OnThreads(int threads, Action<int> body)
    {
        using var start = new Barrier(threads);
        var failures = new Exception?[threads];
        var workers = Enumerable.Range(0, threads).Select(t => new Thread(() =>
        {
            try
            {
                start.SignalAndWait();
                body(t);
            }
            catch (Exception e)
            {
                failures[t] = e;
            }
        })).ToArray();
        foreach (var w in workers) w.Start();
        foreach (var w in workers) w.Join();
        if (failures.FirstOrDefault(f => f is not null) is { } failure) throw new AggregateException(failure);
    }

    [Fact]
    public void Eight_threads_predicting_a_thousand_images_each_get_the_single_thread_results()
    {
        var model = Architectures.Create("mnist-baseline", seed: 3);
        var images = RandomImages(model.InputShape, 1000, seed: 11);
        var expected = PredictEach(model, images);

        var got = new float[8][][];
        OnThreads(8, t =>
        {
            got[t] = new float[images.Batch][];
            for (int k = 0; k < images.Batch; k++)
            {
                int i = (k + t * 125) % images.Batch;   // each thread in its own order
                got[t][i] = model.Predict(images.SliceBatch(i, 1)).Data;
            }
        });

        for (int t = 0; t < 8; t++)
            for (int i = 0; i < images.Batch; i++)
                Assert.True(expected[i].AsSpan().SequenceEqual(got[t][i]), $"thread {t}, image {i} differs from the single-thread prediction");
    }

    [Fact]
    public void Concurrent_evaluate_and_batched_predict_match_one_thread()
    {
        var model = Architectures.Create("mnist-baseline", seed: 4);
        model.Compile("adam", "sparse_categorical_crossentropy", "accuracy");
        var x = RandomImages(model.InputShape, 100, seed: 12);
        var y = Labels(100, 10);
        var expectedEvaluation = model.Evaluate(x, y, batchSize: 32);
        var expectedPrediction = model.Predict(x, batchSize: 16).Data;
        var data = new ImageDataset(x, [.. y.Data.Select(v => (int)v)], [.. Enumerable.Range(0, 10).Select(c => $"{c}")]);
        BatchPipeline Pipeline() => new(new ImageDatasetSource(data), new PipelineOptions { BatchSize = 32, Shuffle = false, Workers = 1 });
        Dictionary<string, double> expectedStreamed;
        using (var pipeline = Pipeline()) expectedStreamed = model.Evaluate(pipeline);

        OnThreads(6, t =>
        {
            using var pipeline = Pipeline();   // a pipeline serves one reader at a time; the model is what is shared
            for (int round = 0; round < 10; round++)
                switch (t % 3)
                {
                    case 0:
                        Assert.Equal(expectedEvaluation, model.Evaluate(x, y, batchSize: 32));
                        break;
                    case 1:
                        Assert.Equal(expectedPrediction, model.Predict(x, batchSize: 16).Data);
                        break;
                    default:
                        Assert.Equal(expectedStreamed, model.Evaluate(pipeline));
                        break;
                }
        });
    }

    [Fact]
    public void Two_models_predicting_on_two_threads_at_once_match_their_single_thread_results()
    {
        Model a = Architectures.Create("mnist-baseline", seed: 5), b = Architectures.Create("small-32", seed: 6);
        var xa = RandomImages(a.InputShape, 200, seed: 13);
        var xb = RandomImages(b.InputShape, 200, seed: 14);
        var expectedA = PredictEach(a, xa);
        var expectedB = PredictEach(b, xb);
        float[] expectedBatchA = a.Predict(xa, batchSize: 50).Data, expectedBatchB = b.Predict(xb, batchSize: 50).Data;

        OnThreads(2, t =>
        {
            var (model, x, expected, expectedBatch) = t == 0 ? (a, xa, expectedA, expectedBatchA) : (b, xb, expectedB, expectedBatchB);
            for (int round = 0; round < 3; round++)
            {
                Assert.Equal(expectedBatch, model.Predict(x, batchSize: 50).Data);
                for (int i = 0; i < x.Batch; i++)
                    Assert.True(expected[i].AsSpan().SequenceEqual(model.Predict(x.SliceBatch(i, 1)).Data), $"model {t}, image {i}");
            }
        });
    }

    [Fact]
    public void Predicting_while_another_thread_trains_waits_between_steps_and_leaves_the_training_unchanged()
    {
        Model Compiled()
        {
            var m = Architectures.Create("mnist-baseline", seed: 7);
            m.Compile("adam", "sparse_categorical_crossentropy", "accuracy");
            return m;
        }
        var x = RandomImages(new Shape(28, 28, 1), 256, seed: 15);
        var y = Labels(256, 10);
        var alone = Compiled();
        var historyAlone = alone.Fit(x, y, batchSize: 32, epochs: 2);

        var shared = Compiled();
        var probe = x.SliceBatch(0, 1);
        History? history = null;
        int predictions = 0, trained = 0;
        OnThreads(3, t =>
        {
            if (t == 0)
            {
                try
                {
                    history = shared.Fit(x, y, batchSize: 32, epochs: 2);
                }
                finally
                {
                    Volatile.Write(ref trained, 1);
                }
                return;
            }
            while (Volatile.Read(ref trained) == 0)
            {
                var p = shared.Predict(probe).Data;
                Assert.True(p.All(float.IsFinite));
                Interlocked.Increment(ref predictions);
            }
        });

        Assert.True(predictions > 0);
        Assert.Equal(historyAlone["loss"], history!["loss"]);
        var w1 = alone.GetWeights();
        var w2 = shared.GetWeights();
        for (int i = 0; i < w1.Count; i++) Assert.Equal(w1[i].Data, w2[i].Data);
    }
}
