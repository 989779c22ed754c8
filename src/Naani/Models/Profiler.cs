using System.Diagnostics;
using System.Globalization;
using System.Text;

namespace Naani.Models;

/// Accumulates wall time per layer for forward and backward passes, and for the optimizer step,
/// so a user can see where a training step's time goes. Enable with model.Profiler = new Profiler().
public sealed class Profiler
{
    readonly Dictionary<string, (long Forward, long Backward, long Calls)> layers = [];
    readonly List<string> order = [];
    public long OptimizerTicks { get; internal set; }
    public long LossTicks { get; internal set; }
    /// Training steps recorded (set it when timing inference, which does not count steps).
    public long Steps { get; set; }

    internal void AddForward(string layer, long ticks)
    {
        if (!layers.TryGetValue(layer, out var t)) order.Add(layer);
        layers[layer] = (t.Forward + ticks, t.Backward, t.Calls + 1);
    }

    // Layers whose forward pass another layer did (a max pooling fused into its convolution).
    readonly Dictionary<string, string> fusedInto = [];

    internal void NoteFused(string layer, string into)
    {
        if (!layers.ContainsKey(layer))
        {
            order.Add(layer);
            layers[layer] = default;
        }
        fusedInto[layer] = into;
    }

    internal void AddBackward(string layer, long ticks)
    {
        if (!layers.TryGetValue(layer, out var t)) order.Add(layer);
        layers[layer] = (t.Forward, t.Backward + ticks, t.Calls);
    }

    public void Reset()
    {
        layers.Clear();
        order.Clear();
        fusedInto.Clear();
        OptimizerTicks = LossTicks = Steps = 0;
    }

    static double Ms(long ticks) => ticks * 1000.0 / Stopwatch.Frequency;

    /// A table of milliseconds per step for each layer, forward and backward, with shares of the total.
    public string Report()
    {
        long steps = Math.Max(1, Steps);
        double total = layers.Values.Sum(t => Ms(t.Forward) + Ms(t.Backward)) + Ms(OptimizerTicks) + Ms(LossTicks);
        var sb = new StringBuilder();
        sb.AppendLine(CultureInfo.InvariantCulture, $"{"layer",-24}{"forward ms",12}{"backward ms",13}{"share",8}");
        foreach (var name in order)
        {
            var t = layers[name];
            if (t.Forward == 0 && t.Backward == 0 && fusedInto.TryGetValue(name, out var into))
            {
                sb.AppendLine(CultureInfo.InvariantCulture, $"{name,-24}  (fused: its time is in {into})");
                continue;
            }
            double f = Ms(t.Forward) / steps, b = Ms(t.Backward) / steps;
            // A pooling whose forward pass alone was fused (an inference pass followed by a backward one) shows its own backward time.
            string forward = t.Forward == 0 && fusedInto.TryGetValue(name, out var host) ? $"in {host}" : f.ToString("0.000", CultureInfo.InvariantCulture);
            sb.AppendLine(CultureInfo.InvariantCulture, $"{name,-24}{forward,12}{b,13:0.000}{(Ms(t.Forward) + Ms(t.Backward)) / total,8:P1}");
        }
        sb.AppendLine(CultureInfo.InvariantCulture, $"{"loss",-24}{Ms(LossTicks) / steps,12:0.000}{"",13}{Ms(LossTicks) / total,8:P1}");
        sb.AppendLine(CultureInfo.InvariantCulture, $"{"optimizer",-24}{"",12}{Ms(OptimizerTicks) / steps,13:0.000}{Ms(OptimizerTicks) / total,8:P1}");
        sb.AppendLine(CultureInfo.InvariantCulture, $"{"total per step",-24}{total / steps,12:0.000} ms");
        return sb.ToString();
    }
}
