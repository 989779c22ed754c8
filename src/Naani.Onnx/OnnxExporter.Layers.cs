using Naani.Kernels;
using Naani.Layers;

namespace Naani.Onnx;

// One method per layer type: each takes the layer's input value, adds the layer's nodes and weights to the graph,
// and returns its output value. Spatial operators (Conv, pools, BatchNormalization on images) ask for NCHW with
// g.ChannelsFirst; those that read Naani's memory order (Flatten, Dense on images) ask for NHWC with g.ChannelsLast;
// elementwise ones take either. A transpose is only inserted where the layout actually changes.
public static partial class OnnxExporter
{
    /// Emits one layer's nodes, taking its input value and returning its output value.
    static OnnxValue Emit(Layer layer, OnnxValue x, OnnxGraph g) => layer switch
    {
        Input or Dropout => x,
        Conv2D conv => Conv(conv, x, g),
        MaxPooling2D pool => Pool("MaxPool", pool, x, g),
        AveragePooling2D pool => Pool("AveragePool", pool, x, g, AttributeProto.Int("count_include_pad", 0)),
        Flatten flatten => Flatten(flatten, x, g),
        Dense dense => Dense(dense, x, g),
        ActivationLayer activation => Activate(activation.Activation, activation.Name, x, g),
        BatchNormalization norm => BatchNormalization(norm, x, g),
        LayerNormalization norm => LayerNormalization(norm, x, g),
        GroupNormalization norm => GroupNormalization(norm, x, g),
        GlobalAveragePooling2D pool => GlobalPool("GlobalAveragePool", pool, x, g),
        GlobalMaxPooling2D pool => GlobalPool("GlobalMaxPool", pool, x, g),
        ZeroPadding2D padding => ZeroPadding(padding, x, g),
        _ => throw new NotSupportedException(
            $"ONNX export does not support layer '{layer.Name}' of type {layer.TypeName} ({layer.GetType().FullName}); " +
            $"supported: {string.Join(", ", SupportedLayerTypes)}."),
    };

    /// Emits a layer with several inputs (Concatenate, Add), taking their values in the order of the call.
    static OnnxValue Merge(MergeLayer layer, IReadOnlyList<OnnxValue> xs, OnnxGraph g) => layer switch
    {
        Concatenate concatenate => Concatenate(concatenate, xs, g),
        Add add => Add(add, xs, g),
        _ => throw new NotSupportedException(
            $"ONNX export does not support layer '{layer.Name}' of type {layer.TypeName} ({layer.GetType().FullName}); " +
            $"supported: {string.Join(", ", SupportedLayerTypes)}."),
    };

    /// The layer types Emit and Merge know, by their Keras names.
    public static IReadOnlyList<string> SupportedLayerTypes { get; } =
    [
        "InputLayer", "Conv2D", "MaxPooling2D", "AveragePooling2D", "Flatten", "Dense", "Dropout", "Activation",
        "BatchNormalization", "LayerNormalization", "GroupNormalization", "InstanceNormalization",
        "GlobalAveragePooling2D", "GlobalMaxPooling2D", "ZeroPadding2D", "Concatenate", "Add",
    ];

    // y = conv(x, W) + b on NCHW with W in OIHW: W[o, c, i, j] = kernel[i, j, c, o].
    static OnnxValue Conv(Conv2D layer, OnnxValue x, OnnxGraph g)
    {
        x = g.ChannelsFirst(x, layer.Name);
        var geo = layer.Geometry;
        int kh = geo.KernelHeight, kw = geo.KernelWidth, c = geo.Channels, o = layer.Filters;
        var hwio = layer.Kernel.Value.Data;
        var oihw = new float[hwio.Length];
        for (int i = 0; i < kh; i++)
            for (int j = 0; j < kw; j++)
                for (int ci = 0; ci < c; ci++)
                    for (int oi = 0; oi < o; oi++)
                        oihw[((oi * c + ci) * kh + i) * kw + j] = hwio[((i * kw + j) * c + ci) * o + oi];
        List<string> inputs = [x.Name, g.Weight(layer.Kernel.FullName, [o, c, kh, kw], oihw)];
        if (layer.Bias is { } bias) inputs.Add(g.Weight(bias.FullName, [o], bias.Value.Data));
        string y = g.Node("Conv", layer.Name, inputs, WindowAttributes(geo));
        return Activate(layer.Activation, layer.Name, x with { Name = y }, g);
    }

    static OnnxValue Pool(string opType, Pooling2D layer, OnnxValue x, OnnxGraph g, params AttributeProto[] extra)
    {
        x = g.ChannelsFirst(x, layer.Name);
        return x with { Name = g.Node(opType, layer.Name, [x.Name], [.. WindowAttributes(layer.Geometry), .. extra]) };
    }

    /// kernel_shape, strides and explicit pads [top, left, bottom, right]. 'same' puts the odd pixel at the
    /// bottom/right: bottom = (out - 1) * stride + kernel - in - top, never negative ('valid' may leave rows unread).
    static AttributeProto[] WindowAttributes(ConvGeometry geo)
    {
        int bottom = Math.Max((geo.OutHeight - 1) * geo.StrideHeight + geo.KernelHeight - geo.InHeight - geo.PadTop, 0);
        int right = Math.Max((geo.OutWidth - 1) * geo.StrideWidth + geo.KernelWidth - geo.InWidth - geo.PadLeft, 0);
        return
        [
            AttributeProto.IntList("kernel_shape", geo.KernelHeight, geo.KernelWidth),
            AttributeProto.IntList("strides", geo.StrideHeight, geo.StrideWidth),
            AttributeProto.IntList("pads", geo.PadTop, geo.PadLeft, bottom, right),
        ];
    }

    /// (N, H, W, C) -> (N, H * W * C) in Naani's NHWC order.
    static OnnxValue Flatten(Flatten layer, OnnxValue x, OnnxGraph g)
    {
        x = g.ChannelsLast(x, layer.Name);
        return new OnnxValue(g.Node("Flatten", layer.Name, [x.Name], AttributeProto.Int("axis", 1)), 2, Layout.ChannelsLast);
    }

    /// y = x W + b with W (inputs, units) as stored: Gemm on (N, inputs); MatMul + Add over the last axis otherwise.
    static OnnxValue Dense(Dense layer, OnnxValue x, OnnxGraph g)
    {
        x = g.ChannelsLast(x, layer.Name);
        string w = g.Weight(layer.Kernel.FullName, [layer.Kernel.Shape[0], layer.Units], layer.Kernel.Value.Data);
        string? b = layer.Bias is { } bias ? g.Weight(bias.FullName, [layer.Units], bias.Value.Data) : null;
        string y;
        if (x.Rank == 2)
            y = g.Node("Gemm", layer.Name, b is null ? [x.Name, w] : [x.Name, w, b]);
        else
        {
            y = g.Node("MatMul", layer.Name, [x.Name, w]);
            if (b is not null) y = g.Node("Add", layer.Name, [y, b]);
        }
        return Activate(layer.Activation, layer.Name, x with { Name = y }, g);
    }

    /// An activation as its own node; softmax over the channels, wherever the layout put them.
    static OnnxValue Activate(Activation activation, string scope, OnnxValue x, OnnxGraph g) => activation switch
    {
        Activation.Linear => x,
        Activation.Relu => x with { Name = g.Node("Relu", scope, [x.Name]) },
        Activation.Sigmoid => x with { Name = g.Node("Sigmoid", scope, [x.Name]) },
        Activation.Tanh => x with { Name = g.Node("Tanh", scope, [x.Name]) },
        Activation.Softmax => x with { Name = g.Node("Softmax", scope, [x.Name], AttributeProto.Int("axis", ChannelAxis(x))) },
        _ => throw new NotSupportedException($"ONNX export does not know activation {activation} (in layer '{scope}')."),
    };

    static long ChannelAxis(OnnxValue x) => x.IsImage && x.Layout == Layout.ChannelsFirst ? 1 : x.Rank - 1;

    // y = gamma * (x - moving_mean) / sqrt(moving_variance + epsilon) + beta per channel, with the moving statistics
    // (inference). ONNX's BatchNormalization reads the channels on axis 1: NCHW images and (N, C) vectors.
    static OnnxValue BatchNormalization(BatchNormalization layer, OnnxValue x, OnnxGraph g)
    {
        int c = layer.MovingMean.Size;
        var gamma = layer.Gamma?.Value.Data ?? Filled(c, 1f);
        var beta = layer.Beta?.Value.Data ?? new float[c];
        var mean = layer.MovingMean.Value.Data;
        var variance = layer.MovingVariance.Value.Data;
        if (x.Rank is 2 or 4)
        {
            x = g.ChannelsFirst(x, layer.Name);
            string[] inputs =
            [
                x.Name,
                g.Weight(layer.Gamma?.FullName ?? $"{layer.Name}/gamma", [c], gamma),
                g.Weight(layer.Beta?.FullName ?? $"{layer.Name}/beta", [c], beta),
                g.Weight(layer.MovingMean.FullName, [c], mean),
                g.Weight(layer.MovingVariance.FullName, [c], variance),
            ];
            return x with { Name = g.Node("BatchNormalization", layer.Name, inputs, AttributeProto.Float("epsilon", (float)layer.Epsilon)) };
        }
        // Other ranks keep the channels last, where BatchNormalization does not look: the same map as y = x * scale + shift.
        var scale = new float[c];
        var shift = new float[c];
        for (int i = 0; i < c; i++)
        {
            scale[i] = (float)(gamma[i] / Math.Sqrt(variance[i] + layer.Epsilon));
            shift[i] = beta[i] - mean[i] * scale[i];
        }
        string y = g.Node("Mul", layer.Name, [x.Name, g.Weight($"{layer.Name}/scale", [c], scale)]);
        return x with { Name = g.Node("Add", layer.Name, [y, g.Weight($"{layer.Name}/shift", [c], shift)]) };
    }

    // y = gamma * (x - mean) / sqrt(var + epsilon) + beta over the trailing axes of each sample, in NHWC as Naani
    // normalizes them. ONNX has LayerNormalization from opset 17.
    static OnnxValue LayerNormalization(LayerNormalization layer, OnnxValue x, OnnxGraph g)
    {
        const int needed = 17;
        if (g.Opset < needed)
            throw new NotSupportedException(
                $"Layer '{layer.Name}' (LayerNormalization) needs ONNX opset {needed} or newer, the first with LayerNormalization; " +
                $"export with opset {needed} (naani export --opset {needed}).");
        x = g.ChannelsLast(x, layer.Name);
        int axes = layer.Axes.Count;
        long[] dims = [.. layer.InputShape.ToArray()[^axes..].Select(d => (long)d)];
        var gamma = layer.Gamma?.Value.Data ?? Filled(layer.NormalizedSize, 1f);
        List<string> inputs = [x.Name, g.Weight(layer.Gamma?.FullName ?? $"{layer.Name}/gamma", dims, gamma)];
        if (layer.Beta is { } beta) inputs.Add(g.Weight(beta.FullName, dims, beta.Value.Data));
        return x with
        {
            Name = g.Node("LayerNormalization", layer.Name, inputs,
                AttributeProto.Int("axis", x.Rank - axes), AttributeProto.Float("epsilon", (float)layer.Epsilon)),
        };
    }

    // y = gamma[c] * (x - mean_g) / sqrt(var_g + epsilon) + beta[c] over groups of consecutive channels. ONNX's
    // GroupNormalization changed meaning at opset 21, so this uses what every opset has: reshape NCHW to
    // (N, G, C/G * H * W), where each group is one contiguous row, InstanceNormalization of each row, reshape back,
    // then gamma and beta per channel. InstanceNormalization is GroupNormalization with G = C and takes the same path.
    static OnnxValue GroupNormalization(GroupNormalization layer, OnnxValue x, OnnxGraph g)
    {
        if (x.Rank is not (2 or 4))
            throw new NotSupportedException(
                $"ONNX export supports {layer.TypeName} '{layer.Name}' on images (H, W, C) or vectors (C); its input is {layer.InputShape.ToKerasString()}.");
        x = g.ChannelsFirst(x, layer.Name);
        int c = layer.InputShape[^1], groups = layer.GroupCount;
        string grouped = g.Node("Reshape", layer.Name, [x.Name, g.Int64s($"{layer.Name}/grouped_shape", 0, groups, -1)]);
        string[] instance = [grouped, g.Weight($"{layer.Name}/ones", [groups], Filled(groups, 1f)), g.Weight($"{layer.Name}/zeros", [groups], new float[groups])];
        string y = g.Node("InstanceNormalization", layer.Name, instance, AttributeProto.Float("epsilon", (float)layer.Epsilon));
        long[] shape = x.Rank == 4 ? [0, c, layer.InputShape[0], layer.InputShape[1]] : [0, c];
        y = g.Node("Reshape", layer.Name, [y, g.Int64s($"{layer.Name}/shape", shape)]);
        long[] perChannel = x.Rank == 4 ? [c, 1, 1] : [c];   // broadcasts over (N, C, H, W) or (N, C)
        if (layer.Gamma is { } gamma) y = g.Node("Mul", layer.Name, [y, g.Weight(gamma.FullName, perChannel, gamma.Value.Data)]);
        if (layer.Beta is { } beta) y = g.Node("Add", layer.Name, [y, g.Weight(beta.FullName, perChannel, beta.Value.Data)]);
        return x with { Name = y };
    }

    /// (N, C, H, W) -> (N, C, 1, 1), then (N, C) unless the layer keeps the dimensions.
    static OnnxValue GlobalPool(string opType, GlobalPooling2D layer, OnnxValue x, OnnxGraph g)
    {
        x = g.ChannelsFirst(x, layer.Name);
        var y = x with { Name = g.Node(opType, layer.Name, [x.Name]) };
        return layer.KeepDims ? y : new OnnxValue(g.Node("Flatten", layer.Name, [y.Name], AttributeProto.Int("axis", 1)), 2, Layout.ChannelsLast);
    }

    /// Zeros around each image, in whichever layout the value is: Pad's pads are [begin of each axis, end of each axis].
    static OnnxValue ZeroPadding(ZeroPadding2D layer, OnnxValue x, OnnxGraph g)
    {
        long[] pads = x.Layout == Layout.ChannelsFirst
            ? [0, 0, layer.Top, layer.Left, 0, 0, layer.Bottom, layer.Right]
            : [0, layer.Top, layer.Left, 0, 0, layer.Bottom, layer.Right, 0];
        return x with { Name = g.Node("Pad", layer.Name, [x.Name, g.Int64s($"{layer.Name}/pads", pads)]) };
    }

    /// y = [x_0, x_1, ...] along the channels, on the channel axis of the inputs' common layout.
    static OnnxValue Concatenate(Concatenate layer, IReadOnlyList<OnnxValue> xs, OnnxGraph g)
    {
        xs = InCommonLayout(xs, layer.Name, g);
        return xs[0] with { Name = g.Node("Concat", layer.Name, xs.Select(x => x.Name), AttributeProto.Int("axis", ChannelAxis(xs[0]))) };
    }

    /// y = x_0 + x_1 + ... in the inputs' common layout: Add for two inputs, Sum for more.
    static OnnxValue Add(Add layer, IReadOnlyList<OnnxValue> xs, OnnxGraph g)
    {
        xs = InCommonLayout(xs, layer.Name, g);
        return xs[0] with { Name = g.Node(xs.Count == 2 ? "Add" : "Sum", layer.Name, xs.Select(x => x.Name)) };
    }

    /// The inputs of a merge in one layout: the one that needs the fewest new Transposes, NCHW on a tie (the
    /// convolutions and pools around a merge work in it, so the merged value is likely read in NCHW).
    static OnnxValue[] InCommonLayout(IReadOnlyList<OnnxValue> xs, string scope, OnnxGraph g)
    {
        int toFirst = xs.Count(x => !g.HasLayout(x, Layout.ChannelsFirst));
        int toLast = xs.Count(x => !g.HasLayout(x, Layout.ChannelsLast));
        var layout = toFirst <= toLast ? Layout.ChannelsFirst : Layout.ChannelsLast;
        return [.. xs.Select(x => g.InLayout(x, layout, scope))];
    }

    static float[] Filled(int length, float value)
    {
        var values = new float[length];
        values.AsSpan().Fill(value);
        return values;
    }
}
