using System.Globalization;
using System.Text;
using Naani.Layers;
using Naani.Optimizers;

namespace Naani.Models;

/// Keras's summary table, and what the model costs in memory.
public abstract partial class Model
{
    /// Keras's summary table: Layer (type) | Output Shape | Param #, then the totals. A graph model
    /// (Functional) lists its inputs too and adds Keras's "Connected to" column.
    public string Summary() => Summary(memory: false);

    /// The summary; with memory, each layer's activation values and bytes per image and its weights'
    /// bytes, then the totals and the memory a training step takes at batchSize (see docs/MEMORY.md).
    public string Summary(bool memory, int batchSize = 32)
    {
        Build();
        if (batchSize <= 0) throw new ArgumentOutOfRangeException(nameof(batchSize), $"Batch size must be positive; got {batchSize}.");
        var graph = SummaryGraph;
        bool connections = graph is not null && this is not Sequential;
        var headers = new List<string> { "Layer (type)", "Output Shape", "Param #" };
        if (connections) headers.Add("Connected to");
        if (memory) headers.AddRange(["Values/image", "Bytes/image", "Weight bytes"]);

        // One row per layer, each cell a list of lines (Connected to has one line per input).
        var rows = new List<List<string[]>>();
        if (memory && !connections)
            rows.Add(Row(["input", InputShape.ToKerasString(), "0"], null, InputShape.LongSize, 0));
        IEnumerable<(Layer Layer, IReadOnlyList<Node> Inbound)> entries = graph is not null
            ? graph.Nodes.Select(n => (n.Layer, n.Inbound))
            : Layers.Select(l => (l, (IReadOnlyList<Node>)[]));
        foreach (var (layer, inbound) in entries)
        {
            if (layer is Input && !connections) continue;
            string shape = layer is Input ? $"[{layer.OutputShape.ToKerasString()}]" : layer.OutputShape.ToKerasString();
            string[]? connected = connections
                ? inbound.Count == 0 ? ["[]"] : [.. inbound.Select((n, i) => (i == 0 ? "[" : " ") + $"'{n.Layer.Name}[0][0]'" + (i == inbound.Count - 1 ? "]" : ","))]
                : null;
            rows.Add(Row([$"{layer.Name} ({layer.TypeName})", shape, Number(layer.ParameterCount)], connected, layer.OutputShape.LongSize, layer.ParameterCount));
        }

        List<string[]> Row(string[] cells, string[]? connected, long values, long weights)
        {
            var row = cells.Select(c => new[] { c }).ToList();
            if (connected is not null) row.Add(connected);
            if (memory) row.AddRange([[Number(values)], [Bytes(values * sizeof(float))], [Bytes(weights * sizeof(float))]]);
            return row;
        }

        // Keras's column widths (Sequential: 29, 26, 10 of 65; Functional: 32, 22, 12, 32 of 98), widened to fit.
        int[] minimum = connections ? [32, 22, 12, 32] : [29, 26, 10];
        int[] margin = [3, 3, 1, 1];
        var widths = headers.Select((header, c) => Math.Max(
            Math.Max(c < minimum.Length ? minimum[c] : 0, header.Length + 2),
            rows.Max(r => r[c].Max(line => line.Length)) + (c < margin.Length ? margin[c] : 2))).ToArray();
        int width = widths.Sum();
        var sb = new StringBuilder();
        void Line(IReadOnlyList<string> cells)
        {
            var text = new StringBuilder();
            for (int c = 0; c < cells.Count; c++) text.Append((c == 0 ? " " + cells[c] : cells[c]).PadRight(widths[c]));
            sb.AppendLine(text.ToString());
        }
        sb.AppendLine($"Model: \"{Name}\"");
        sb.AppendLine(new string('_', width));
        Line(headers);
        sb.AppendLine(new string('=', width));
        for (int i = 0; i < rows.Count; i++)
        {
            int lines = rows[i].Max(cell => cell.Length);
            for (int line = 0; line < lines; line++)
                Line([.. rows[i].Select(cell => line < cell.Length ? cell[line] : "")]);
            if (i < rows.Count - 1) sb.AppendLine();
        }
        sb.AppendLine(new string('=', width));
        long total = ParameterCount, trainable = TrainableParameterCount;
        sb.AppendLine($"Total params: {Number(total)}");
        sb.AppendLine($"Trainable params: {Number(trainable)}");
        sb.AppendLine($"Non-trainable params: {Number(total - trainable)}");
        sb.AppendLine(new string('_', width));
        if (memory) sb.Append(MemoryReport(batchSize));
        return sb.ToString();
    }

    /// The graph a Sequential or Functional runs on, for the summary's rows and the memory report.
    private protected virtual Graph? SummaryGraph => null;

    /// Float values the forward pass produces per image: the input and every layer's output, except a
    /// Flatten's, which holds its input's values again (reshapes are views in Keras and in the seeds).
    public long ForwardActivationValues
    {
        get
        {
            Build();
            long inputs = InputShapes.Sum(s => s.LongSize);
            return inputs + Layers.Where(l => l is not (Input or Flatten)).Sum(l => l.OutputShape.LongSize);
        }
    }

    string MemoryReport(int batchSize)
    {
        long forward = ForwardActivationValues;
        long flattened = Layers.OfType<Flatten>().Sum(l => l.OutputShape.LongSize);
        long weights = ParameterCount, trainable = TrainableParameterCount;
        var (activations, gradients, scratch) = SummaryGraph?.TrainingValuesPerSample()
            ?? (forward + flattened, forward + flattened - InputShapes.Sum(s => s.LongSize) - OutputShapes.Sum(s => s.LongSize), 0);
        gradients += OutputShapes.Sum(s => s.LongSize);   // the loss's gradient of each output, which TrainStep keeps
        var optimizer = Optimizer ?? new Adam();
        int slots = optimizer switch
        {
            SGD sgd => sgd.Momentum > 0 ? 1 : 0,
            RMSprop rmsprop => rmsprop.Momentum > 0 ? 2 : 1,
            _ => 2,
        };
        long perBatch = (long)batchSize * (activations + gradients + scratch);
        long perModel = 2 * weights + slots * trainable;
        var sb = new StringBuilder();
        sb.AppendLine("Memory (float32, 4 bytes a value; kB, MB, GB are powers of 1000):");
        sb.AppendLine($"  Forward activations per image: {Number(forward)} values (input included) = {Bytes(forward * 4)}" +
            (flattened > 0 ? $"; Flatten's {Number(flattened)} are its input's values again and are not counted twice" : ""));
        sb.AppendLine($"  Weights: {Number(weights)} values = {Bytes(weights * 4)}");
        sb.AppendLine($"Training step at batch size {batchSize} ({optimizer.Name}: {slots} optimizer value{(slots == 1 ? "" : "s")} per trainable weight):");
        sb.AppendLine($"  activations kept for backward  {batchSize} x {Number(activations)} = {Bytes((long)batchSize * activations * 4)}");
        sb.AppendLine($"  activation gradients           {batchSize} x {Number(gradients)} = {Bytes((long)batchSize * gradients * 4)}");
        if (scratch > 0)
            sb.AppendLine($"  fan-out scratch buffers        {batchSize} x {Number(scratch)} = {Bytes((long)batchSize * scratch * 4)}");
        sb.AppendLine($"  weights and their gradients    2 x {Number(weights)} = {Bytes(2 * weights * 4)}");
        sb.AppendLine($"  optimizer state                {slots} x {Number(trainable)} = {Bytes(slots * trainable * 4)}");
        sb.AppendLine($"  total                          {Bytes((perBatch + perModel) * 4)} (layers' own scratch, such as im2col buffers, not included)");
        return sb.ToString();
    }

    static string Number(long value) => value.ToString("N0", CultureInfo.InvariantCulture);

    static string Bytes(long bytes) => bytes switch
    {
        < 1_000 => $"{bytes} B",
        < 1_000_000 => (bytes / 1e3).ToString("0.0", CultureInfo.InvariantCulture) + " kB",
        < 1_000_000_000 => (bytes / 1e6).ToString("0.00", CultureInfo.InvariantCulture) + " MB",
        _ => (bytes / 1e9).ToString("0.00", CultureInfo.InvariantCulture) + " GB",
    };
}
