using Naani.Kernels;
using Xunit;

namespace Naani.Tests.Kernels;

[Collection(ThreadingCollection.Name)]
public class FiniteTests
{
    [Fact]
    public void Finite_all_finds_a_bad_value_in_every_threads_share_of_a_large_span()
    {
        // From a million values the threads share the span: a bad value in the first, at the seam between parts, in
        // the last, or in the tail past the whole vectors of a part must each be seen.
        int n = (1 << 21) + 5;
        var values = new float[n];
        for (int i = 0; i < n; i++) values[i] = (i % 1000) - 500.5f;
        foreach (int threads in new[] { 1, 2, 3 })
            ThreadingCollection.WithThreads(threads, () =>
            {
                Assert.True(Finite.All(values));
                foreach (int at in new[] { 0, n / 2 - 1, n / 2, n / 3, 2 * (n / 3) + 1, n - 1, n - 3 })
                {
                    values[at] = float.NaN;
                    Assert.False(Finite.All(values), $"NaN at {at} of {n}, {threads} threads");
                    values[at] = float.NegativeInfinity;
                    Assert.False(Finite.All(values), $"-Inf at {at} of {n}, {threads} threads");
                    values[at] = 1;
                }
                Assert.True(Finite.All(values));
            });
    }

    [Fact]
    public void Finite_all_finds_a_bad_value_at_every_place_of_a_short_span()
    {
        // Four sums of whole vectors, a loop of single vectors, then values one by one: a bad value in each of them, and
        // +Inf beside -Inf (which would cancel in a sum of the values themselves), for every length up to five 512-bit groups.
        for (int n = 1; n <= 5 * 64 + 3; n++)
        {
            var values = new float[n];
            for (int i = 0; i < n; i++) values[i] = i * 0.25f - 3;
            Assert.True(Finite.All(values));
            for (int at = 0; at < n; at++)
            {
                foreach (float bad in new[] { float.NaN, float.PositiveInfinity, float.NegativeInfinity })
                {
                    values[at] = bad;
                    Assert.False(Finite.All(values), $"{bad} at {at} of {n}");
                }
                values[at] = float.PositiveInfinity;
                values[n - 1 - at] = float.NegativeInfinity;
                Assert.False(Finite.All(values), $"+Inf at {at} and -Inf at {n - 1 - at} of {n}");
                values[at] = 1;
                values[n - 1 - at] = 1;
            }
            Assert.True(Finite.All(values));
        }
    }
}
