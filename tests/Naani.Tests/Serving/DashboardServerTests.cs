using System.Text.Json.Nodes;
using Naani.Callbacks;
using Naani.Serving;
using Naani.Vision;

namespace Naani.Tests.Serving;

public sealed class DashboardServerTests
{
    /// Reads Server-Sent Events (name, data) from a stream until it ends.
    static async IAsyncEnumerable<(string Name, string Data)> ReadEvents(Stream stream)
    {
        using var reader = new StreamReader(stream);
        string? name = null, data = null;
        while (await reader.ReadLineAsync() is { } line)
        {
            if (line.StartsWith("event: ", StringComparison.Ordinal)) name = line[7..];
            else if (line.StartsWith("data: ", StringComparison.Ordinal)) data = line[6..];
            else if (line.Length == 0 && name is not null)
            {
                yield return (name, data ?? "");
                name = data = null;
            }
        }
    }

    [Fact]
    public async Task The_server_sends_the_page_the_state_and_then_every_change_as_events_until_the_end()
    {
        var monitor = new TrainingMonitor("demo run", ["a", "b"]) { EventInterval = TimeSpan.Zero };
        await using var server = await DashboardServer.StartAsync(monitor, "Naani: demo", port: 0);
        Assert.StartsWith("http://127.0.0.1:", server.Url);
        using var http = new HttpClient { BaseAddress = new Uri(server.Url), Timeout = TimeSpan.FromSeconds(30) };

        var page = await http.GetStringAsync("/");
        Assert.Contains("<title>Naani: demo</title>", page);
        Assert.Contains("data-live=\"1\"", page);

        monitor.OnTrainBegin(new TrainingInfo(Epochs: 2, StepsPerEpoch: 4, Samples: 128, BatchSize: 32, ValidationSamples: 0));
        monitor.OnEpochBegin(0);
        monitor.OnBatchEnd(new BatchProgress(0, 1, 4, 32, Loss: 2.0, Accuracy: 0.25, Seconds: 0.1));
        var state = JsonNode.Parse(await http.GetStringAsync("/state"))!;
        Assert.Equal("demo run", state["title"]!.GetValue<string>());
        Assert.Single(state["batches"]!["x"]!.AsArray());

        using var response = await http.GetAsync("/events", HttpCompletionOption.ResponseHeadersRead);
        Assert.Equal("text/event-stream", response.Content.Headers.ContentType!.MediaType);
        var events = ReadEvents(await response.Content.ReadAsStreamAsync()).GetAsyncEnumerator();
        Assert.True(await events.MoveNextAsync());
        Assert.Equal("state", events.Current.Name);
        Assert.Single(JsonNode.Parse(events.Current.Data)!["batches"]!["x"]!.AsArray());

        // The second batch: its own loss follows from the running means, (1.5 * 64 - 2.0 * 32) / 32 = 1.0.
        monitor.OnBatchEnd(new BatchProgress(0, 2, 4, 64, Loss: 1.5, Accuracy: 0.5, Seconds: 0.2));
        Assert.True(await events.MoveNextAsync());
        Assert.Equal("batches", events.Current.Name);
        var batch = JsonNode.Parse(events.Current.Data)!;
        Assert.Equal(1, batch["at"]!.GetValue<int>());
        Assert.Equal(1.0, batch["loss"]![0]!.GetValue<double>(), 6);
        Assert.Equal(0.75, batch["accuracy"]![0]!.GetValue<double>(), 6);
        Assert.True(await events.MoveNextAsync());
        Assert.Equal("status", events.Current.Name);
        var status = JsonNode.Parse(events.Current.Data)!;
        Assert.Equal(2, status["step"]!.GetValue<int>());
        // 0.1 s a step: 2 steps left in this epoch and 4 in the next.
        Assert.Equal(0.6, status["eta_seconds"]!.GetValue<double>(), 6);

        monitor.Finish();
        var rest = new List<string>();
        while (await events.MoveNextAsync()) rest.Add(events.Current.Name);
        Assert.Equal("end", rest[^1]);   // and then the stream closed
    }

    [Fact]
    public async Task A_port_in_use_is_refused_with_the_port_named()
    {
        var monitor = new TrainingMonitor("x", ["a", "b"]);
        await using var first = await DashboardServer.StartAsync(monitor, "first");
        int port = new Uri(first.Url).Port;
        var e = await Assert.ThrowsAsync<IOException>(() => DashboardServer.StartAsync(monitor, "second", port));
        Assert.Contains($"127.0.0.1:{port}", e.Message);
        Assert.Contains("--port", e.Message);
    }
}
