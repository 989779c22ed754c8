namespace Naani.Serving;

/// How `naani serve` listens and batches (each option is the command's flag of the same name).
public sealed record ServeOptions
{
    public string Host { get; init; } = "127.0.0.1";

    /// 0 picks a free port (tests); ModelServer.Address says which.
    public int Port { get; init; } = 8080;

    /// The most samples one forward pass takes: concurrent requests are gathered up to this many.
    public int MaxBatch { get; init; } = 32;

    /// How long the first request of a batch waits for others to join it.
    public double MaxDelayMilliseconds { get; init; } = 2;

    /// Requests waiting per model beyond which new ones are refused with 503 and Retry-After.
    public int MaxQueue { get; init; } = 1024;

    /// The largest request body, in MiB; a larger one is refused with 413.
    public double MaxBodyMegabytes { get; init; } = 16;

    /// Copies of each model answering batches side by side, each on one thread (1: one copy using all threads).
    /// More replicas raise throughput under load for small models at the price of memory (one copy of the weights
    /// and workspaces each) and of a longer single-batch latency.
    public int Replicas { get; init; } = 1;

    /// Top classes in each image prediction unless the request asks for another number (?top=K).
    public int DefaultTop { get; init; } = 5;

    public void Validate()
    {
        if (MaxBatch < 1) throw new ArgumentOutOfRangeException(nameof(MaxBatch), $"--max-batch must be at least 1; got {MaxBatch}.");
        if (!(MaxDelayMilliseconds >= 0)) throw new ArgumentOutOfRangeException(nameof(MaxDelayMilliseconds), $"--max-delay-ms must be 0 or more; got {MaxDelayMilliseconds}.");
        if (MaxQueue < 1) throw new ArgumentOutOfRangeException(nameof(MaxQueue), $"--max-queue must be at least 1; got {MaxQueue}.");
        if (!(MaxBodyMegabytes > 0)) throw new ArgumentOutOfRangeException(nameof(MaxBodyMegabytes), $"--max-body-mb must be positive; got {MaxBodyMegabytes}.");
        if (Replicas is < 1 or > 256) throw new ArgumentOutOfRangeException(nameof(Replicas), $"--replicas must be in [1, 256]; got {Replicas}.");
        if (Port is < 0 or > 65535) throw new ArgumentOutOfRangeException(nameof(Port), $"--port must be in [0, 65535]; got {Port}.");
    }
}
