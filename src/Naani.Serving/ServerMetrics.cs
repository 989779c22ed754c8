using Prometheus;

namespace Naani.Serving;

/// What GET /metrics reports, in Prometheus's text format, from a registry of the server's own (so two servers in
/// one process, as in the tests, do not mix their counts).
sealed class ServerMetrics
{
    readonly CollectorRegistry registry = Prometheus.Metrics.NewCustomRegistry();

    public ServerMetrics(Func<IEnumerable<(string Model, int Depth)>> queueDepths)
    {
        var factory = Prometheus.Metrics.WithCustomRegistry(registry);
        Requests = factory.CreateCounter("naani_requests_total", "HTTP requests, by model, endpoint and status code.",
            new CounterConfiguration { LabelNames = ["model", "endpoint", "status"] });
        Latency = factory.CreateHistogram("naani_request_duration_seconds", "Time from a request's arrival to its answer.",
            new HistogramConfiguration { LabelNames = ["model", "endpoint"], Buckets = Histogram.ExponentialBuckets(0.00025, 2, 16) });
        BatchSize = factory.CreateHistogram("naani_batch_size", "Samples per forward pass (dynamic batching).",
            new HistogramConfiguration { LabelNames = ["model"], Buckets = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512] });
        QueueDepth = factory.CreateGauge("naani_queue_depth", "Requests waiting to join a batch.",
            new GaugeConfiguration { LabelNames = ["model"] });
        registry.AddBeforeCollectCallback(() =>
        {
            foreach (var (model, depth) in queueDepths()) QueueDepth.WithLabels(model).Set(depth);
        });
    }

    public Counter Requests { get; }
    public Histogram Latency { get; }
    public Histogram BatchSize { get; }
    public Gauge QueueDepth { get; }

    public Task WriteAsync(Stream stream, CancellationToken cancel) => registry.CollectAndExportAsTextAsync(stream, cancel);
}
