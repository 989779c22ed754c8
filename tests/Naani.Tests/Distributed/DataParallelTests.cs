using Naani.Callbacks;
using Naani.Distributed;
using Naani.Kernels;
using Naani.Layers;
using Naani.Models;
using Naani.Tests.Kernels;

namespace Naani.Tests.Distributed;

/// Synchronous data-parallel training on ranks that are threads of this process (InProcessGroup): the ranks end
/// with identical weights, equal (within float summation order) to one process training on the global batch.
[Collection(ThreadingCollection.Name)]
public sealed class DataParallelTests
{
    static (Tensor X, Tensor Y) Data(int n) => Models.ResumeTests.Data(n);

    // Dropout after the pooling (4 x 4 x 4 = 64 values a sample) and after the dense layer (odd: 13 values a sample, so
    // a rank's slice can start at an odd value and its mask must still be the one process's).
    static Sequential Model(bool batchNorm = false, int seed = 21)
    {
        var model = new Sequential("parallel", seed)
            .Add(new Input(10, 10, 1))
            .Add(new Conv2D(4, 3, activation: Activation.Relu));
        if (batchNorm) model.Add(new BatchNormalization());
        model.Add(new MaxPooling2D(2))
            .Add(new Dropout(0.3))
            .Add(new Flatten())
            .Add(new Dense(13, Activation.Relu))
            .Add(new Dropout(0.2))
            .Add(new Dense(3, Activation.Softmax));
        model.Compile("adam", "sparse_categorical_crossentropy", "accuracy");
        return model;
    }

    static float[] Weights(Model model) => [.. model.Parameters.SelectMany(p => p.Value.Data.Take(p.Size))];

    static double MaxDifference(float[] a, float[] b)
    {
        Assert.Equal(a.Length, b.Length);
        double worst = 0;
        for (int i = 0; i < a.Length; i++) worst = Math.Max(worst, Math.Abs(a[i] - b[i]));
        return worst;
    }

    // One process on the global batch, one thread (the ranks' kernels are single-threaded too).
    static (float[] Weights, History History) Single(int globalBatch, int n, double validationSplit = 0, bool batchNorm = false)
    {
        var (x, y) = Data(n);
        var model = Model(batchNorm);
        using var serial = Threading.RunSerially();
        var history = model.Fit(x, y, batchSize: globalBatch, epochs: 3, validationSplit: validationSplit);
        return (Weights(model), history);
    }

    static (float[] Weights, History History)[] Parallel(int ranks, int batch, int n, double validationSplit = 0, bool batchNorm = false, long? bucketBytes = null) =>
        InProcessGroup.Run(ranks, world =>
        {
            var (x, y) = Data(n);
            var model = Model(batchNorm);
            if (bucketBytes is { } b) model.GradientBucketBytes = b;
            var history = model.Fit(x, y, batchSize: batch, epochs: 3, validationSplit: validationSplit, distributed: world);
            return (Weights(model), history);
        });

    [Theory]
    [InlineData(2, 8, 50)]   // last global batch of 2: one sample per rank
    [InlineData(3, 8, 50)]   // last global batch of 2: rank 2 has no sample and still takes part in every reduction
    [InlineData(2, 5, 61)]   // odd per-rank batch and odd remainder
    public void Ranks_end_identical_and_equal_to_one_process_on_the_global_batch(int ranks, int batch, int n)
    {
        var single = Single(ranks * batch, n);
        var parallel = Parallel(ranks, batch, n);
        for (int r = 1; r < ranks; r++) Assert.Equal(parallel[0].Weights, parallel[r].Weights);
        // Float sums in another order (each rank's partial gradient, then their sum): about 1e-7 relative per step,
        // which Adam's normalized steps carry through 3 epochs without growing past a few 1e-6.
        Assert.True(MaxDifference(single.Weights, parallel[0].Weights) < 2e-5, $"max |difference| {MaxDifference(single.Weights, parallel[0].Weights):G3}");
        for (int e = 0; e < 3; e++)
        {
            Assert.Equal(single.History["loss"][e], parallel[0].History["loss"][e], 5);
            Assert.Equal(single.History["accuracy"][e], parallel[0].History["accuracy"][e], 9);
            Assert.Equal(parallel[0].History["loss"][e], parallel[1].History["loss"][e]);
        }
        // The single run really differs from a run on the per-rank batch: the test would catch ranks training alone.
        var alone = Single(batch, n);
        Assert.True(MaxDifference(alone.Weights, parallel[0].Weights) > 1e-3);
    }

    [Fact]
    public void Validation_is_split_across_ranks_and_combined()
    {
        var single = Single(16, 60, validationSplit: 0.25);
        var parallel = Parallel(2, 8, 60, validationSplit: 0.25);
        for (int e = 0; e < 3; e++)
        {
            Assert.Equal(single.History["val_loss"][e], parallel[0].History["val_loss"][e], 5);
            Assert.Equal(single.History["val_accuracy"][e], parallel[0].History["val_accuracy"][e], 9);
            Assert.Equal(parallel[0].History["val_loss"][e], parallel[1].History["val_loss"][e]);
        }
    }

    [Fact]
    public void Bucket_size_changes_when_reductions_start_not_the_result()
    {
        var one = Parallel(2, 8, 40);
        var many = Parallel(2, 8, 40, bucketBytes: 64);   // a bucket per parameter
        Assert.Equal(one[0].Weights, many[0].Weights);
    }

    [Fact]
    public void Batch_normalization_moving_statistics_are_averaged_so_ranks_stay_identical()
    {
        var parallel = Parallel(2, 8, 48, batchNorm: true);
        Assert.Equal(parallel[0].Weights, parallel[1].Weights);
    }

    [Fact]
    public void Ranks_start_from_rank_0s_weights_whatever_their_seeds()
    {
        var results = InProcessGroup.Run(2, world =>
        {
            var (x, y) = Data(32);
            var model = Model(seed: 21 + world.Rank);
            model.Fit(x, y, batchSize: 8, epochs: 1, distributed: world);
            return model.WeightChecksum();
        });
        Assert.Equal(results[0], results[1]);
    }

    [Fact]
    public void A_non_finite_loss_on_one_rank_stops_every_rank_with_the_same_verdict()
    {
        var errors = new Exception?[2];
        var thrown = Assert.Throws<AggregateException>(() => InProcessGroup.Run(2, world =>
        {
            var (x, y) = Data(32);
            // Every sample of rank 1's copy has a NaN pixel; rank 0's are clean.
            if (world.Rank == 1) for (int i = 0; i < x.Length; i += 100) x.Data[i] = float.NaN;
            var model = Model();
            try
            {
                model.Fit(x, y, batchSize: 8, epochs: 1, shuffle: false, distributed: world);
            }
            catch (NonFiniteTrainingException e)
            {
                errors[world.Rank] = e;
                throw;
            }
        }));
        Assert.IsType<NonFiniteTrainingException>(thrown.InnerException);
        Assert.All(errors, e => Assert.IsType<NonFiniteTrainingException>(e));
        Assert.Equal(errors[0]!.Message, errors[1]!.Message);
    }

    [Fact]
    public void Only_rank_0_writes_checkpoints_and_a_single_process_resumes_them()
    {
        using var temp = new Naani.Tests.Serialization.TempDirectory();
        string folder = Path.Combine(temp.Path, "checkpoints");
        // Two ranks x 8 for 2 epochs, a checkpoint every 2 steps (48 samples: 3 steps an epoch).
        InProcessGroup.Run(2, world =>
        {
            var (x, y) = Data(48);
            var model = Model();
            model.Fit(x, y, batchSize: 8, epochs: 2, distributed: world,
                callbacks: [new BackupAndRestore(folder, saveEverySteps: 2, saveEveryEpoch: false, keep: 10, deleteOnTrainEnd: false)]);
        });
        var files = BackupAndRestore.List(folder);
        Assert.Equal(3, files.Count);   // steps 2, 4 and 6, once each
        // Resume from the step-4 checkpoint in one process on the global batch: it ends where the two ranks ended.
        foreach (var newer in files.Take(1)) File.Delete(newer);
        var (xs, ys) = Data(48);
        var resumed = Model();
        using (Threading.RunSerially())
            resumed.Fit(xs, ys, batchSize: 16, epochs: 2, callbacks: [new BackupAndRestore(folder, saveEverySteps: 2, saveEveryEpoch: false, keep: 10, deleteOnTrainEnd: false)]);
        var uninterrupted = Parallel2Epochs();
        Assert.True(MaxDifference(Weights(resumed), uninterrupted) < 2e-5, $"max |difference| {MaxDifference(Weights(resumed), uninterrupted):G3}");

        static float[] Parallel2Epochs() => InProcessGroup.Run(2, world =>
        {
            var (x, y) = Data(48);
            var model = Model();
            model.Fit(x, y, batchSize: 8, epochs: 2, distributed: world);
            return Weights(model);
        })[0];
    }

    [Theory]
    [InlineData(10, 3)]
    [InlineData(2, 3)]
    [InlineData(64, 2)]
    public void Shards_partition_a_batch_in_rank_order(int count, int size)
    {
        int next = 0;
        for (int r = 0; r < size; r++)
        {
            var (offset, n) = Naani.Models.Model.Shard(count, r, size);
            Assert.Equal(next, offset);
            Assert.InRange(n, count / size, count / size + 1);
            next += n;
        }
        Assert.Equal(count, next);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(6)]
    [InlineData(13)]
    public void A_dropout_mask_from_an_offset_is_that_slice_of_the_whole_mask(int first)
    {
        const int n = 77;
        var x = Enumerable.Range(0, n + first).Select(i => 1f + i).ToArray();
        var whole = new float[n + first];
        var y = new float[n + first];
        DropoutMask.Apply(12345, DropoutMask.Threshold(0.4), 2.5f, x, whole, y, 0, n + first);
        var part = new float[n];
        var partY = new float[n];
        DropoutMask.Apply(12345, DropoutMask.Threshold(0.4), 2.5f, x.AsSpan(first).ToArray(), part, partY, 0, n, first);
        Assert.Equal(whole.AsSpan(first).ToArray(), part);
        Assert.Equal(y.AsSpan(first).ToArray(), partY);
    }
}
