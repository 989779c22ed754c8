using System.Collections.Concurrent;
using Naani.Data;
using Xunit;

namespace Naani.Tests.Data;

public sealed class BatchPipelineTests
{
    /// Image i is filled with (i + 1) / 256 (so the batch shows which images it holds); some indices are unreadable.
    sealed class CountingSource(int count, int size = 4, int channels = 1, params int[] unreadable) : IImageSource
    {
        public readonly ConcurrentDictionary<int, int> Reads = new();
        public int MaxIndexRead = -1;
        public int Count => count;
        public Shape ImageShape => new(size, size, channels);
        public IReadOnlyList<string> ClassNames => ["even", "odd"];
        public int GetLabel(int index) => index % 2;
        public string Describe(int index) => $"image-{index}.png";

        public bool TryRead(int index, Span<float> pixels, out string? reason)
        {
            Reads.AddOrUpdate(index, 1, (_, n) => n + 1);
            int seen;
            do seen = MaxIndexRead; while (index > seen && Interlocked.CompareExchange(ref MaxIndexRead, index, seen) != seen);
            if (unreadable.Contains(index))
            {
                reason = "truncated";
                return false;
            }
            pixels[..ImageShape.Size].Fill((index + 1) / 256f);
            reason = null;
            return true;
        }
    }

    static List<(int[] Indices, int[] Labels, float[] Pixels)> Drain(BatchPipeline pipeline, int epoch) =>
        [.. pipeline.GetEpoch(epoch).Select(b => (b.Indices.ToArray(), b.Labels.ToArray(), b.Images.Data.ToArray()))];

    [Fact]
    public void Every_image_comes_once_per_epoch_in_batches_of_the_batch_size()
    {
        var source = new CountingSource(23);
        using var pipeline = new BatchPipeline(source, new PipelineOptions { BatchSize = 5, Seed = 3, Workers = 2 });

        var batches = Drain(pipeline, 0);

        Assert.Equal([5, 5, 5, 5, 3], batches.Select(b => b.Indices.Length));
        Assert.Equal(Enumerable.Range(0, 23), batches.SelectMany(b => b.Indices).Order());
        Assert.NotEqual(Enumerable.Range(0, 23), batches.SelectMany(b => b.Indices));   // shuffled
        foreach (var b in batches)
            for (int i = 0; i < b.Indices.Length; i++)
            {
                Assert.Equal(b.Indices[i] % 2, b.Labels[i]);
                Assert.Equal((b.Indices[i] + 1) / 256f, b.Pixels[i * 16]);
            }
        Assert.NotEqual(batches.SelectMany(b => b.Indices), Drain(pipeline, 1).SelectMany(b => b.Indices));   // a new order each epoch
    }

    [Fact]
    public void Batches_are_the_same_whatever_the_number_of_workers_with_augmentation()
    {
        List<(int[], int[], float[])> Run(int workers)
        {
            var source = new CountingSource(37, size: 6, channels: 3);
            var options = new PipelineOptions { BatchSize = 8, Seed = 11, Workers = workers, Augmentation = Augmentation.Default };
            using var pipeline = new BatchPipeline(source, options);
            return [.. Drain(pipeline, 0), .. Drain(pipeline, 1)];
        }
        var reference = Run(0);
        foreach (var workers in new[] { 1, 3 })
        {
            var other = Run(workers);
            Assert.Equal(reference.Count, other.Count);
            for (int k = 0; k < reference.Count; k++)
            {
                Assert.Equal(reference[k].Item1, other[k].Item1);
                Assert.Equal(reference[k].Item3, other[k].Item3);
            }
        }
    }

    [Fact]
    public void Unreadable_images_are_skipped_once_with_a_warning_and_left_out_of_later_epochs()
    {
        var source = new CountingSource(10, 4, 1, 3, 7);
        var warnings = new ConcurrentBag<string>();
        using var pipeline = new BatchPipeline(source, new PipelineOptions { BatchSize = 4, Workers = 2, Warning = warnings.Add });

        var first = Drain(pipeline, 0);
        var second = Drain(pipeline, 1);

        Assert.Equal(8, first.Sum(b => b.Indices.Length));
        Assert.DoesNotContain(3, first.SelectMany(b => b.Indices));
        Assert.Equal(2, warnings.Count);
        Assert.Contains(warnings, w => w.Contains("image-7.png") && w.Contains("truncated"));
        Assert.Equal(8, pipeline.Count);
        Assert.Equal([4, 4], second.Select(b => b.Indices.Length));
        Assert.Equal(1, source.Reads[3]);   // not read again
        Assert.Equal(2, pipeline.Statistics.Unreadable);
    }

    [Fact]
    public void Strict_mode_stops_at_the_first_unreadable_image()
    {
        var source = new CountingSource(10, 4, 1, 5);
        using var pipeline = new BatchPipeline(source, new PipelineOptions { BatchSize = 4, Workers = 2, Strict = true, Shuffle = false });

        var e = Assert.Throws<InvalidDataException>(() => Drain(pipeline, 0));
        Assert.Contains("image-5.png", e.Message);
    }

    [Fact]
    public void Reading_ahead_is_bounded_by_the_prefetch_queue()
    {
        var source = new CountingSource(400);
        using var pipeline = new BatchPipeline(source, new PipelineOptions { BatchSize = 10, Workers = 2, Prefetch = 3, Shuffle = false });

        using var batches = pipeline.GetEpoch(0).GetEnumerator();
        Assert.True(batches.MoveNext());
        Thread.Sleep(200);   // the workers run ahead while batch 0 is "trained on"

        // Batch 0 is held, 3 buffers at most are in flight: images of batches 0..3 at most.
        Assert.InRange(source.MaxIndexRead, 0, 4 * 10 - 1);
        Assert.True(source.MaxIndexRead >= 10, "the workers should have read ahead");
    }

    [Fact]
    public void Stopping_an_epoch_early_ends_the_workers()
    {
        var source = new CountingSource(1000);
        using var pipeline = new BatchPipeline(source, new PipelineOptions { BatchSize = 10, Workers = 3 });

        var firstTwo = pipeline.GetEpoch(0).Take(2).ToList();
        int readsAfterStop = source.Reads.Count;
        Thread.Sleep(100);

        Assert.Equal(2, firstTwo.Count);
        Assert.Equal(readsAfterStop, source.Reads.Count);
        Assert.Equal(100, Drain(pipeline, 1).Count);   // the next epoch starts afresh
    }

    [Fact]
    public void Statistics_count_batches_images_and_waiting()
    {
        using var pipeline = new BatchPipeline(new CountingSource(25), new PipelineOptions { BatchSize = 10, Workers = 1 });
        Drain(pipeline, 0);
        var s = pipeline.Statistics;
        Assert.Equal(3, s.Batches);
        Assert.Equal(25, s.Images);
        Assert.True(s.WaitSeconds >= 0 && s.ReadSeconds > 0);
    }

    [Theory]
    [InlineData(ImageCacheMode.Memory)]
    [InlineData(ImageCacheMode.Disk)]
    public void Cache_reads_each_image_once_and_gives_back_the_same_8_bit_values(ImageCacheMode mode)
    {
        var inner = new CountingSource(12, 4, 3, 5);
        string? file;
        using (var cached = new CachedImageSource(inner, mode))
        {
            file = cached.FilePath;
            var a = new float[48];
            var b = new float[48];
            for (int pass = 0; pass < 3; pass++)
                for (int i = 0; i < 12; i++)
                {
                    bool ok = cached.TryRead(i, pass == 0 ? a : b, out var reason);
                    Assert.Equal(i != 5, ok);
                    if (!ok) Assert.Equal("truncated", reason);
                    else if (pass > 0) Assert.Equal((i + 1) / 256f, b[47], 1e-2);
                }
            Assert.All(inner.Reads.Values, n => Assert.Equal(1, n));
            Assert.Equal(mode, cached.Mode);
            Assert.Equal(12 * 48, cached.CacheBytes);
            Assert.Equal(22, cached.Hits);
            if (mode == ImageCacheMode.Disk) Assert.True(File.Exists(file));
        }
        if (file is not null) Assert.False(File.Exists(file));   // deleted with the cache
    }

    [Fact]
    public void Cache_is_exact_for_8_bit_images()
    {
        var data = new ImageDataset(new Tensor(new Shape(1, 16, 16, 1), [.. Enumerable.Range(0, 256).Select(v => v / 255f)]), [0], ["only"]);
        using var cached = new CachedImageSource(new ImageDatasetSource(data), ImageCacheMode.Memory);
        var first = new float[256];
        var again = new float[256];
        cached.TryRead(0, first, out _);
        cached.TryRead(0, again, out _);
        Assert.Equal(first, again);
        Assert.Equal(data.Images.Data, again);
    }

    [Fact]
    public void Auto_cache_picks_memory_when_it_fits_the_budget_else_disk()
    {
        using var small = new CachedImageSource(new CountingSource(10), ImageCacheMode.Auto, memoryBudget: 1000);
        using var large = new CachedImageSource(new CountingSource(100), ImageCacheMode.Auto, memoryBudget: 1000);
        Assert.Equal(ImageCacheMode.Memory, small.Mode);
        Assert.Equal(ImageCacheMode.Disk, large.Mode);
    }
}
