using System.Globalization;
using System.Text;
using Naani.Callbacks;
using Naani.Layers;

namespace Naani.Inspection;

/// Prints a convolution's kernels as the seed "CNN implementation in Naani" does with its
/// log_initial_kernels: for each filter, one KH x KW matrix per input channel.
public static class KernelLog
{
    public static string Format(Conv2D layer, int? maxFilters = null, string title = "kernels")
    {
        var k = layer.Kernel.Value;   // (KH, KW, C, O)
        int kh = k.Shape[0], kw = k.Shape[1], c = k.Shape[2], o = k.Shape[3];
        int shown = Math.Min(o, maxFilters ?? o);
        var sb = new StringBuilder();
        sb.AppendLine(CultureInfo.InvariantCulture, $"Layer {layer.Name} {title}: {o} kernels of {kh}x{kw}x{c}");
        for (int f = 0; f < shown; f++)
        {
            sb.AppendLine(CultureInfo.InvariantCulture, $"Kernel {f + 1}:");
            for (int ch = 0; ch < c; ch++)
            {
                if (c > 1) sb.AppendLine(CultureInfo.InvariantCulture, $"  channel {ch + 1}:");
                for (int i = 0; i < kh; i++)
                {
                    sb.Append(i == 0 ? "  [[" : "   [");
                    for (int j = 0; j < kw; j++)
                    {
                        if (j > 0) sb.Append(' ');
                        sb.Append(k[i, j, ch, f].ToString(" 0.00000000;-0.00000000", CultureInfo.InvariantCulture));
                    }
                    sb.AppendLine(i == kh - 1 ? "]]" : "]");
                }
            }
        }
        if (shown < o) sb.AppendLine(CultureInfo.InvariantCulture, $"... ({o - shown} more)");
        return sb.ToString();
    }
}

/// Logs a convolution layer's kernels before training starts (the seed's log_initial_kernels).
public sealed class LogInitialKernels(string layerName, Action<string>? write = null, int? maxFilters = null) : Callback
{
    public override void OnTrainBegin(TrainingInfo info)
    {
        if (Model.GetLayer(layerName) is not Conv2D conv)
            throw new ArgumentException($"Layer '{layerName}' is not a Conv2D layer; only convolution kernels can be logged.");
        (write ?? Console.Write)(KernelLog.Format(conv, maxFilters, "initial kernels"));
    }
}
