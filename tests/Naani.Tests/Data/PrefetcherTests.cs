using Naani.Data;

namespace Naani.Tests.Data;

/// The background batch preparation of Fit: items arrive in order in alternating slots, the producer
/// never overwrites the slot the consumer holds, errors reach the consumer, and stopping early is clean.
public sealed class PrefetcherTests
{
    [Fact]
    public void Items_arrive_in_order_and_the_held_slot_is_never_overwritten()
    {
        var slots = new int[2];
        int produced = 0;
        using var prefetch = new Prefetcher(50, (i, slot) =>
        {
            slots[slot] = i;
            Interlocked.Increment(ref produced);
        });
        for (int i = 0; i < 50; i++)
        {
            int slot = prefetch.Next();
            Assert.Equal(i & 1, slot);
            Assert.Equal(i, slots[slot]);
            Thread.Sleep(1);   // the producer runs ahead meanwhile, but only into the other slot
            Assert.Equal(i, slots[slot]);
            Assert.True(Volatile.Read(ref produced) <= i + 2, "the producer ran more than one item ahead");
        }
        Assert.Throws<InvalidOperationException>(() => prefetch.Next());
    }

    [Fact]
    public void The_next_item_is_prepared_while_the_consumer_works()
    {
        using var started = new ManualResetEventSlim();
        using var prefetch = new Prefetcher(3, (i, slot) => { if (i == 1) started.Set(); });
        prefetch.Next();
        Assert.True(started.Wait(TimeSpan.FromSeconds(10)), "item 1 was not prepared while item 0 was held");
    }

    [Fact]
    public void An_error_while_preparing_reaches_the_consumer()
    {
        using var prefetch = new Prefetcher(5, (i, slot) => { if (i == 2) throw new InvalidDataException("bad sample 2"); });
        prefetch.Next();
        prefetch.Next();
        var e = Assert.Throws<InvalidDataException>(() => prefetch.Next());
        Assert.Equal("bad sample 2", e.Message);
    }

    [Fact]
    public void Stopping_early_ends_the_thread()
    {
        int produced = 0;
        var prefetch = new Prefetcher(1000, (i, slot) => Interlocked.Increment(ref produced));
        prefetch.Next();
        prefetch.Dispose();
        int after = Volatile.Read(ref produced);
        Thread.Sleep(20);
        Assert.Equal(after, Volatile.Read(ref produced));
        Assert.True(after <= 2);
        Assert.Throws<ObjectDisposedException>(() => prefetch.Next());
    }
}
