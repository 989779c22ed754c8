using System.Text.Json.Nodes;
using Naani.Callbacks;
using Naani.Layers;
using Naani.Models;
using Naani.Vision;

namespace Naani.Tests.Vision;

public sealed class TrainingMonitorTests
{
    /// Three classes of 8x8 images: a bright left, middle or right band, with noise; a small CNN learns them in an epoch or two.
    static (Tensor X, Tensor Y, int[] Labels) Bands(int count, int seed)
    {
        var rng = new Random(seed);
        var x = new float[count * 64];
        var labels = new int[count];
        for (int i = 0; i < count; i++)
        {
            int c = labels[i] = i % 3;
            for (int p = 0; p < 64; p++)
            {
                int column = p % 8;
                bool band = column / 3 == c;   // columns 0-2, 3-5, 6-7
                x[i * 64 + p] = (band ? 0.7f : 0.1f) + 0.3f * (float)rng.NextDouble();
            }
        }
        return (Tensor.FromArray(x, count, 8, 8, 1), Tensor.FromArray([.. labels.Select(l => (float)l)], count), labels);
    }

    static Model SmallCnn()
    {
        var model = new Sequential(seed: 5)
            .Add(new Input(8, 8, 1))
            .Add(new Conv2D(4, 3, activation: Activation.Relu))
            .Add(new MaxPooling2D(2))
            .Add(new Flatten())
            .Add(new Dense(3, Activation.Softmax));
        model.Compile("adam", "sparse_categorical_crossentropy", "accuracy");
        return model;
    }

    [Fact]
    public void The_monitor_keeps_every_batch_each_epoch_the_confusion_matrix_and_the_grid_predictions()
    {
        var (x, y, labels) = Bands(300, 1);
        var (vx, _, vlabels) = Bands(90, 2);
        var model = SmallCnn();
        var validation = new MonitorValidation(vx.SliceBatch(0, 12), vlabels[..12], m => (m.Predict(vx, 16), vlabels));
        var monitor = new TrainingMonitor("bands", ["left", "middle", "right"], validation, batchSize: 16);
        var events = new List<(string Name, string Json)>();
        using (monitor.Subscribe((name, json) => events.Add((name, json))))
        {
            model.Fit(x, y, batchSize: 32, epochs: 3, callbacks: [monitor]);
            monitor.Finish();
        }

        var state = monitor.Snapshot();
        int steps = (300 + 31) / 32;
        Assert.Equal(3 * steps, monitor.BatchCount);
        var batches = state["batches"]!.AsObject();
        var xs = batches["x"]!.AsArray().Select(v => v!.GetValue<double>()).ToArray();
        Assert.Equal(3 * steps, xs.Length);
        Assert.Equal(1.0 / steps, xs[0], 4);
        Assert.Equal(3.0, xs[^1], 4);
        Assert.True(xs.Zip(xs.Skip(1)).All(p => p.Second > p.First), "x grows batch by batch");

        // Each batch's own loss, weighted by its samples, averages to the epoch's loss that Fit logs.
        var losses = batches["loss"]!.AsArray().Select(v => v!.GetValue<double>()).ToArray();
        var epochs = state["epochs"]!.AsArray();
        Assert.Equal(3, epochs.Count);
        for (int e = 0; e < 3; e++)
        {
            double sum = 0;
            for (int s = 0; s < steps; s++) sum += losses[e * steps + s] * Math.Min(32, 300 - s * 32);
            Assert.Equal(epochs[e]!["loss"]!.GetValue<double>(), sum / 300, 3);
        }

        // The confusion matrix covers the whole validation set; the grid predictions are the model's classes for the grid.
        var last = epochs[2]!.AsObject();
        var matrix = last["confusion"]!.AsArray().Select(r => r!.AsArray().Select(v => v!.GetValue<long>()).ToArray()).ToArray();
        Assert.Equal(90, matrix.Sum(r => r.Sum()));
        Assert.Equal(90, last["confusion_samples"]!.GetValue<long>());
        var expected = Naani.Metrics.Predictions.ArgMax(model.Predict(vx.SliceBatch(0, 12)));
        Assert.Equal(expected, last["grid_predictions"]!.AsArray().Select(v => v!.GetValue<int>()).ToArray());
        long correct = Enumerable.Range(0, 3).Sum(i => matrix[i][i]);
        Assert.True(correct >= 60, $"The monitor's matrix after 3 epochs has {correct} of 90 right; the bands are easy to learn.");

        var grid = state["grid"]!.AsObject();
        Assert.Equal(12, grid["images"]!.AsArray().Count);
        Assert.StartsWith("data:image/png;base64,iVBOR", grid["images"]![0]!.GetValue<string>());
        Assert.Equal("finished", state["progress"]!["status"]!.GetValue<string>());

        // The listener got the state first, then batches whose positions follow each other without a gap, then the end.
        Assert.Equal("state", events[0].Name);
        int next = 0;
        foreach (var (name, json) in events.Where(e => e.Name == "batches"))
        {
            var b = JsonNode.Parse(json)!;
            Assert.True(b["at"]!.GetValue<int>() <= next, "a batches event starts where the last one ended, or before");
            next = b["at"]!.GetValue<int>() + b["x"]!.AsArray().Count;
        }
        Assert.Equal(3 * steps, next);
        Assert.Equal(3, events.Count(e => e.Name == "epoch"));
        Assert.Equal("end", events[^1].Name);
    }

    [Fact]
    public void A_resumed_run_gets_the_curves_back_from_the_checkpoint_state()
    {
        var (x, y, _) = Bands(96, 3);
        var model = SmallCnn();
        var first = new TrainingMonitor("bands", ["l", "m", "r"]);
        model.Fit(x, y, batchSize: 32, epochs: 2, callbacks: [first]);
        var saved = first.GetState();

        var second = new TrainingMonitor("bands", ["l", "m", "r"]) { Model = model };
        second.SetState(saved);
        Assert.Equal(6, second.BatchCount);
        Assert.Equal(2, second.EpochCount);
        Assert.Equal(first.Snapshot()["batches"]!.ToJsonString(), second.Snapshot()["batches"]!.ToJsonString());
        Assert.Equal(first.Snapshot()["epochs"]!.ToJsonString(), second.Snapshot()["epochs"]!.ToJsonString());
    }

    [Fact]
    public void The_saved_page_embeds_the_state_safely_and_the_live_page_reads_it_from_the_server()
    {
        var state = new JsonObject { ["title"] = "</script><script>alert(1)</script>", ["batches"] = new JsonObject() };
        string saved = DashboardPage.Saved("a & b", state, "<h2>Run</h2>");
        Assert.Contains("<title>a &amp; b</title>", saved);
        Assert.DoesNotContain("</script><script>alert(1)", saved);
        Assert.Contains("data-live=\"0\"", saved);
        Assert.Contains("<h2>Run</h2>", saved);
        string live = DashboardPage.Live("run");
        Assert.Contains("data-live=\"1\"", live);
        Assert.Contains("new EventSource('events')", live);
        Assert.DoesNotContain("http://", live.Replace("http://www.w3.org", "", StringComparison.Ordinal));
    }
}
