using Xunit;

namespace Naani.Tests.Kernels;

/// Tests that set Threading.MaxThreads, or need it to stay put (bit-for-bit reproducibility), run
/// here, alone: MaxThreads is process-wide, and layers size their per-thread buffers from it.
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class ThreadingCollection
{
    public const string Name = "Threading";

    /// Runs body with MaxThreads set to threads, then restores the previous value.
    public static void WithThreads(int threads, Action body)
    {
        int saved = Threading.MaxThreads;
        Threading.MaxThreads = threads;
        try
        {
            body();
        }
        finally
        {
            Threading.MaxThreads = saved;
        }
    }
}
