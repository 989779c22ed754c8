namespace Naani;

/// How many threads Naani's kernels use, and the one way they split work. Work is always cut into
/// the same contiguous ranges for a given thread count, so results are reproducible bit for bit.
public static class Threading
{
    static int maxThreads = Environment.ProcessorCount;

    /// Threads used by kernels (default: all cores). Set once, before training.
    public static int MaxThreads
    {
        get => maxThreads;
        set
        {
            if (value < 1) throw new ArgumentOutOfRangeException(nameof(value), $"Threads must be at least 1; got {value}.");
            maxThreads = value;
        }
    }

    /// Runs body(part, start, end) for parts contiguous ranges covering [0, count).
    public static void For(int count, Action<int, int, int> body, int minPerPart = 1)
    {
        int parts = Math.Min(maxThreads, Math.Max(1, count / Math.Max(1, minPerPart)));
        if (parts <= 1)
        {
            body(0, 0, count);
            return;
        }
        Parallel.For(0, parts, new ParallelOptions { MaxDegreeOfParallelism = parts }, part =>
        {
            var (start, end) = Range(count, parts, part);
            body(part, start, end);
        });
    }

    /// The number of parts For would use.
    public static int Parts(int count, int minPerPart = 1) => Math.Min(maxThreads, Math.Max(1, count / Math.Max(1, minPerPart)));

    public static (int Start, int End) Range(int count, int parts, int part)
    {
        int baseSize = count / parts, extra = count % parts;
        int start = part * baseSize + Math.Min(part, extra);
        return (start, start + baseSize + (part < extra ? 1 : 0));
    }
}
