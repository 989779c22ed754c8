using System.Runtime.InteropServices;
using System.Text.Json.Nodes;
using Naani.Inspection;
using Naani.Layers;
using Naani.Models;

namespace Naani.Vision;

/// One image for the explain page: its name (a file name) and its pixels as the model sees them, (H, W, C) of the
/// model's input shape.
public sealed record ExplainImage(string Name, Tensor Pixels);

/// The page `naani explain` writes: one self-contained HTML file (script, style and numbers inline, no network) that
/// shows a network as a column of layers (shapes, parameters, memory), each layer's feature maps for an image, the
/// kernels behind a clicked map, the first convolution and the pooling after it computed one output value at a time,
/// and the predicted probabilities.
///
/// The page draws from the numbers embedded in it (Data, as JSON):
/// - feature maps: each map quantized to 8 bits with its own min..max (value = min + q / 255 (max - min)), base64;
///   at most maxMaps per layer;
/// - kernels of every Conv2D for the maps shown, float32 [filter][channel][i][j], at most 16 input channels;
/// - the step-through: the first convolution larger than 1x1 (its input, all its kernels and biases as float32), and
///   the input of the pooling layer after it (float32, the first channels), so the page computes every value itself.
/// Float32 arrays are base64 of their little-endian bytes (JavaScript's Float32Array on every platform .NET runs on).
public static class ExplainPage
{
    public const int DefaultMaxMaps = 32;

    /// Input channels of one kernel shown in the kernel panel (VGG16's deep layers have 512).
    public const int MaxKernelChannels = 16;

    /// Float values of the pooling step-through's input embedded per image (VGG16's block1_pool: 10 of its 64 224x224 maps).
    const long PoolingValuesPerImage = 1 << 19;

    /// The page for model with these images (at least one; a blank one is the caller's choice).
    public static string Html(Model model, IReadOnlyList<ExplainImage> images, int maxMaps = DefaultMaxMaps)
    {
        var json = Data(model, images, maxMaps).ToJsonString();   // the default encoder escapes <, > and &: safe inside <script>
        var title = System.Net.WebUtility.HtmlEncode($"{model.Name}: what the network computes");
        return Template.Replace("{{TITLE}}", title).Replace("{{DATA}}", json);
    }

    /// Writes the page to path (atomically: the old file stays if anything fails).
    public static void Write(string path, Model model, IReadOnlyList<ExplainImage> images, int maxMaps = DefaultMaxMaps) =>
        IO.AtomicFile.WriteAllText(path, Html(model, images, maxMaps));

    /// Why model cannot be explained (not an image model, several inputs), or null when it can.
    public static string? Problem(Model model)
    {
        ArgumentNullException.ThrowIfNull(model);
        model.Build();
        var input = model.InputShape;
        if (input.Rank != 3 || input[2] is not (1 or 3))
            return $"Model '{model.Name}' takes inputs of {input}, not images (height, width, 1 or 3 channels).";
        if (model is Functional { Inputs.Count: > 1 } functional)
            return $"Model '{model.Name}' takes {functional.Inputs.Count} inputs; explain follows one image through a model with one input.";
        return null;
    }

    /// The numbers the page draws from.
    public static JsonObject Data(Model model, IReadOnlyList<ExplainImage> images, int maxMaps = DefaultMaxMaps)
    {
        ArgumentNullException.ThrowIfNull(images);
        if (Problem(model) is { } problem) throw new ArgumentException(problem);
        if (images.Count == 0) throw new ArgumentException("The page needs at least one image.", nameof(images));
        ArgumentOutOfRangeException.ThrowIfLessThan(maxMaps, 1);

        var calls = FeatureMaps.Calls(model);
        var (layers, reads, main) = (calls.Layers, calls.Reads, calls.Main);
        var outputs = images.Select(image => FeatureMaps.Compute(model, calls, image.Pixels).Select(o => o.Output).ToList()).ToList();

        var layerRows = new JsonArray();
        foreach (var layer in layers)
        {
            var row = new JsonObject
            {
                ["name"] = layer.Name,
                ["type"] = layer.TypeName,
                ["shape"] = Numbers(layer.OutputShape.Dims.ToArray()),
                ["shapeText"] = layer.OutputShape.ToKerasString(),
                ["params"] = layer.SharedFrom is null ? layer.ParameterCount : 0,
                ["values"] = layer.OutputShape.LongSize,
                ["activation"] = layer.OutputActivation.ToString().ToLowerInvariant(),
                ["maps"] = layer.OutputShape.Rank == 3,
                ["inputs"] = new JsonArray([.. reads[layerRows.Count].Select(r => (JsonNode)r)]),
                ["sharedWith"] = layer.SharedFrom?.Name,
            };
            if (layer is Conv2D conv) row["conv"] = ConvKernels(conv, maxMaps);
            if (layer is Pooling2D pool) row["pool"] = Window(pool.Geometry, pool is MaxPooling2D ? "max" : "average");
            layerRows.Add(row);
        }

        var imageRows = new JsonArray();
        for (int n = 0; n < images.Count; n++)
        {
            var maps = new JsonObject();
            for (int i = 0; i < layers.Count; i++)
                if (layers[i].OutputShape.Rank == 3)
                    maps[i.ToString(System.Globalization.CultureInfo.InvariantCulture)] = QuantizedMaps(outputs[n][i], maxMaps);
            var last = layers[main];
            var (probabilities, note) = last.OutputShape.Rank == 1 ? Probabilities(last, outputs[n][main].Data)
                : (null, $"the model ends in {last.Name}'s {last.OutputShape.ToKerasString()} maps, not in classes: no prediction");
            imageRows.Add(new JsonObject
            {
                ["name"] = images[n].Name,
                ["pixels"] = Convert.ToBase64String(images[n].Pixels.Data.Select(ImageFile.ToByte).ToArray()),
                ["maps"] = maps,
                ["probabilities"] = probabilities is null ? null : Numbers(probabilities),
                ["probabilityNote"] = note,
            });
        }

        var classes = model.ClassNames is { } names && names.Count == CountOf(layers[main]) ? names : null;
        return new JsonObject
        {
            ["model"] = new JsonObject
            {
                ["name"] = model.Name,
                ["input"] = Numbers(model.InputShape.Dims.ToArray()),
                ["inputText"] = model.InputShape.ToKerasString(),
                ["params"] = model.ParameterCount,
                ["trainable"] = model.TrainableParameterCount,
                ["forwardValues"] = model.ForwardActivationValues,
                ["flattenValues"] = layers.OfType<Flatten>().Sum(l => l.OutputShape.LongSize),
            },
            ["colormaps"] = new JsonObject
            {
                ["viridis"] = Convert.ToBase64String(Colormaps.Table(Colormap.Viridis)),
                ["diverging"] = Convert.ToBase64String(Colormaps.Table(Colormap.Diverging)),
            },
            ["maxMaps"] = maxMaps,
            ["maxKernelChannels"] = MaxKernelChannels,
            ["layers"] = layerRows,
            ["classNames"] = classes is null ? null : new JsonArray([.. classes.Select(c => (JsonNode?)c)]),
            ["images"] = imageRows,
            ["main"] = main,
            ["stepper"] = Stepper(layers, reads, outputs, images),
        };
    }

    static JsonObject ConvKernels(Conv2D conv, int maxMaps)
    {
        var g = conv.Geometry;
        int filters = conv.Filters, channels = g.Channels, kh = g.KernelHeight, kw = g.KernelWidth;
        int shownFilters = Math.Min(filters, maxMaps), shownChannels = Math.Min(channels, MaxKernelChannels);
        var kernel = conv.Kernel.Value.Data;   // HWIO: ((i kw + j) channels + c) filters + f
        var shown = new float[shownFilters * shownChannels * kh * kw];
        int k = 0;
        for (int f = 0; f < shownFilters; f++)
            for (int c = 0; c < shownChannels; c++)
                for (int i = 0; i < kh; i++)
                    for (int j = 0; j < kw; j++)
                        shown[k++] = kernel[((i * kw + j) * channels + c) * filters + f];
        var window = Window(g, "conv");
        window["filters"] = filters;
        window["shownFilters"] = shownFilters;
        window["shownChannels"] = shownChannels;
        window["kernel"] = Base64(shown);
        window["bias"] = conv.Bias is { } bias ? Base64(bias.Value.Data.AsSpan(0, shownFilters)) : null;
        return window;
    }

    static JsonObject Window(Kernels.ConvGeometry g, string kind) => new()
    {
        ["kind"] = kind,
        ["inH"] = g.InHeight,
        ["inW"] = g.InWidth,
        ["channels"] = g.Channels,
        ["kh"] = g.KernelHeight,
        ["kw"] = g.KernelWidth,
        ["sh"] = g.StrideHeight,
        ["sw"] = g.StrideWidth,
        ["padTop"] = g.PadTop,
        ["padLeft"] = g.PadLeft,
        ["outH"] = g.OutHeight,
        ["outW"] = g.OutWidth,
    };

    /// The first maps of a (1, H, W, C) output, each quantized to bytes with its own range (ImageGrid.Normalize, as the
    /// PNG grids scale a map), in [map][y][x] order.
    static JsonObject QuantizedMaps(Tensor output, int maxMaps)
    {
        int h = output.Shape[1], w = output.Shape[2], c = output.Shape[3], count = Math.Min(c, maxMaps);
        var bytes = new byte[count * h * w];
        var min = new JsonArray();
        var max = new JsonArray();
        for (int k = 0; k < count; k++)
        {
            var scaled = ImageGrid.Normalize(ImageGrid.Channel(output, k), out float lo, out float hi);
            for (int p = 0; p < scaled.Length; p++) bytes[k * h * w + p] = ImageFile.ToByte(scaled[p]);
            min.Add(lo);
            max.Add(hi);
        }
        return new JsonObject { ["h"] = h, ["w"] = w, ["count"] = count, ["total"] = c, ["min"] = min, ["max"] = max, ["data"] = Convert.ToBase64String(bytes) };
    }

    /// The last layer's output as class probabilities: softmax outputs as they are, one sigmoid unit as (1 - p, p),
    /// anything else through a softmax (said in the note).
    static (float[] Probabilities, string Note) Probabilities(Layer last, float[] output)
    {
        if (last.OutputActivation == Activation.Softmax) return (output, "softmax output");
        if (output.Length == 1 && last.OutputActivation == Activation.Sigmoid)
            return ([1 - output[0], output[0]], "one sigmoid unit: p(class 1) = output, p(class 0) = 1 - output");
        var probabilities = (float[])output.Clone();
        Kernels.Activations.Softmax(probabilities);
        return (probabilities, $"the last layer ({last.Name}) has no softmax; a softmax of its outputs");
    }

    static int CountOf(Layer last) => last.OutputShape.Rank == 1 ? Math.Max(2, last.OutputShape[0]) : 0;

    /// The step-through: the first Conv2D larger than 1x1 (a 1x1 preprocessing convolution before it is its input's
    /// maker), and the first pooling layer after it (VGG16: block1_pool, after block1_conv2), on whatever feeds it.
    static JsonObject? Stepper(IReadOnlyList<Layer> layers, IReadOnlyList<int[]> reads, List<List<Tensor>> outputs, IReadOnlyList<ExplainImage> images)
    {
        int c = layers.ToList().FindIndex(l => l is Conv2D conv && (conv.KernelSize.Height > 1 || conv.KernelSize.Width > 1));
        if (c < 0) return null;
        var conv = (Conv2D)layers[c];
        var stepper = ConvKernels(conv, conv.Filters);
        stepper["layer"] = c;
        stepper["padding"] = conv.Padding.ToString().ToLowerInvariant();
        stepper["activation"] = conv.Activation.ToString().ToLowerInvariant();
        int from = reads[c][0];
        stepper["source"] = from < 0 ? "the input image" : $"the output of {layers[from].Name} ({layers[from].TypeName})";
        stepper["kernel"] = Base64(conv.Kernel.Value.Data);   // all of it, HWIO
        stepper["bias"] = conv.Bias is { } bias ? Base64(bias.Value.Data) : null;
        stepper["inputs"] = new JsonArray([.. images.Select((image, n) => (JsonNode)Base64(from < 0 ? image.Pixels.Data : outputs[n][from].Data))]);

        int p = c + 1;
        while (p < layers.Count && layers[p] is not (Pooling2D or Flatten or Dense or GlobalPooling2D)) p++;
        if (p < layers.Count && layers[p] is Pooling2D pool)
        {
            var g = pool.Geometry;
            long perChannel = (long)g.InHeight * g.InWidth;
            int channels = (int)Math.Clamp(PoolingValuesPerImage / perChannel, 1, g.Channels);
            var window = Window(g, pool is MaxPooling2D ? "max" : "average");
            window["layer"] = p;
            window["padding"] = pool.Padding.ToString().ToLowerInvariant();
            window["shownChannels"] = channels;
            int poolFrom = reads[p][0];
            window["source"] = poolFrom < 0 ? "the input image" : $"the output of {layers[poolFrom].Name} ({layers[poolFrom].TypeName})";
            window["inputs"] = new JsonArray([.. images.Select((image, n) => (JsonNode)Base64(FirstChannels(poolFrom < 0 ? image.Pixels : outputs[n][poolFrom], channels)))]);
            stepper["pool"] = window;
        }
        return stepper;
    }

    /// The first count channels of a (1, H, W, C) tensor, still (H, W, count).
    static float[] FirstChannels(Tensor t, int count)
    {
        int c = t.Shape[^1], pixels = t.Length / c;
        var result = new float[pixels * count];
        for (int p = 0; p < pixels; p++)
            t.Data.AsSpan(p * c, count).CopyTo(result.AsSpan(p * count, count));
        return result;
    }

    static string Base64(ReadOnlySpan<float> values) => Convert.ToBase64String(MemoryMarshal.AsBytes(values));

    static JsonArray Numbers(int[] values) => new([.. values.Select(v => (JsonNode)v)]);

    static JsonArray Numbers(float[] values) => new([.. values.Select(v => (JsonNode)v)]);

    static readonly string Template = LoadTemplate();

    static string LoadTemplate()
    {
        using var stream = typeof(ExplainPage).Assembly.GetManifestResourceStream("Naani.Vision.ExplainPage.html")
            ?? throw new InvalidOperationException("The explain page template (ExplainPage.html) is not embedded in Naani.Vision.");
        using var reader = new StreamReader(stream);
        return reader.ReadToEnd();
    }
}
