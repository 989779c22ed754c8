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
}
