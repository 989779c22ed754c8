using System.Net;
using System.Text;
using System.Threading.Channels;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Naani.Vision;

namespace Naani.Serving;

/// The live training dashboard on loopback (naani train --dashboard): GET / is the page (DashboardPage.Live), GET /state
/// the monitor's whole state as JSON, GET /events its changes as Server-Sent Events (the state first, then "batches",
/// "epoch", "status" and at last "end"). The training thread never waits for a browser: each connection has its own
/// bounded queue, and a page that falls behind by more than it holds misses events, sees the gap, and reloads /state.
public sealed class DashboardServer : IAsyncDisposable
{
    /// Events queued per connection before the oldest are dropped.
    public const int QueueLength = 4096;

    readonly WebApplication app;
    readonly TrainingMonitor monitor;
    readonly string title;
    readonly CancellationTokenSource stopping = new();
    int connections;

    DashboardServer(WebApplication app, TrainingMonitor monitor, string title)
    {
        this.app = app;
        this.monitor = monitor;
        this.title = title;
    }

    /// The address it listens on, e.g. http://127.0.0.1:8050/.
    public string Url { get; private set; } = "";

    /// Listens on host (an IP address; loopback by default) and port (0: any free port).
    public static async Task<DashboardServer> StartAsync(TrainingMonitor monitor, string title, int port = 0, string host = "127.0.0.1")
    {
        ArgumentNullException.ThrowIfNull(monitor);
        if (!IPAddress.TryParse(host, out var address)) throw new ArgumentException($"The dashboard's host must be an IP address; got '{host}'.", nameof(host));
        DashboardServer? server = null;
        var (_, url) = await LocalWebApp.StartAsync(address, port, web => (server = new DashboardServer(web, monitor, title)).Map());
        server!.Url = url;
        return server;
    }

    void Map()
    {
        app.MapGet("/", (HttpContext context) =>
        {
            context.Response.Headers.CacheControl = "no-store";
            return Results.Content(DashboardPage.Live(title), "text/html; charset=utf-8");
        });
        app.MapGet("/state", (HttpContext context) =>
        {
            context.Response.Headers.CacheControl = "no-store";
            return Results.Content(monitor.Snapshot().ToJsonString(), "application/json");
        });
        app.MapGet("/events", Events);
    }

    async Task Events(HttpContext context)
    {
        var response = context.Response;
        response.Headers.ContentType = "text/event-stream";
        response.Headers.CacheControl = "no-store";
        response.Headers["X-Accel-Buffering"] = "no";
        var queue = Channel.CreateBounded<string>(new BoundedChannelOptions(QueueLength) { FullMode = BoundedChannelFullMode.DropOldest, SingleReader = true });
        using var aborted = CancellationTokenSource.CreateLinkedTokenSource(context.RequestAborted, stopping.Token);
        using var subscription = monitor.Subscribe((name, json) => queue.Writer.TryWrite(Frame(name, json)));
        Interlocked.Increment(ref connections);
        try
        {
            await response.Body.FlushAsync(aborted.Token);
            bool ended = false;
            while (!ended)
            {
                // A comment line every 15 s keeps proxies and idle timeouts from closing a quiet stream.
                using var beat = CancellationTokenSource.CreateLinkedTokenSource(aborted.Token);
                beat.CancelAfter(TimeSpan.FromSeconds(15));
                string frame;
                try
                {
                    frame = await queue.Reader.ReadAsync(beat.Token);
                }
                catch (OperationCanceledException) when (!aborted.IsCancellationRequested)
                {
                    frame = ": keep-alive\n\n";
                }
                await response.WriteAsync(frame, Encoding.UTF8, aborted.Token);
                ended = frame.StartsWith(EndFrame, StringComparison.Ordinal);
                while (!ended && queue.Reader.TryRead(out var more))
                {
                    await response.WriteAsync(more, Encoding.UTF8, aborted.Token);
                    ended = more.StartsWith(EndFrame, StringComparison.Ordinal);
                }
                await response.Body.FlushAsync(aborted.Token);
            }
        }
        catch (OperationCanceledException)
        {
            // The page went away, or the server is stopping.
        }
        finally
        {
            Interlocked.Decrement(ref connections);
        }
    }

    // After "end" the stream closes: the page has the final state and stops listening.
    const string EndFrame = "event: end\n";

    /// One Server-Sent Event: "event: name" and the JSON on one data line (JSON text holds no raw newline).
    static string Frame(string name, string json) => $"event: {name}\ndata: {json}\n\n";

    /// Stops the server; pages still being sent the last events get up to a second to receive them.
    public async ValueTask DisposeAsync()
    {
        for (int waited = 0; Volatile.Read(ref connections) > 0 && waited < 1000; waited += 20) await Task.Delay(20);
        await stopping.CancelAsync();
        await app.StopAsync();
        await app.DisposeAsync();
        stopping.Dispose();
    }
}
