using System.Text.Json;
using System.Text.Json.Nodes;
using Naani.Layers;
using Naani.Models;

namespace Naani.Serialization;

/// Architectures as Keras writes them with model.to_json() (and in a .keras file's config.json): reads
/// Keras 2 (tf.keras) and Keras 3 layouts, Sequential and Functional, into a Naani model; writes a model as
/// Keras 3's JSON. A layer's Keras config is checked for options Naani does not have (a regularizer, a dilation,
/// channels_first, ...), which are refused with the layer's name, and then read by LayerFactory, whose configs
/// use Keras's keys. See docs/KERAS.md for what reads and what is refused.
public static class KerasJson
{
    /// The Keras layer classes that read.
    public static IReadOnlyList<string> SupportedLayers { get; } =
        ["InputLayer", "Conv2D", "Dense", "MaxPooling2D", "AveragePooling2D", "Flatten", "Dropout", "Activation", "ReLU", "Softmax",
         "BatchNormalization", "LayerNormalization", "GroupNormalization", "GlobalAveragePooling2D", "GlobalMaxPooling2D",
         "ZeroPadding2D", "Concatenate", "Add"];

    // Keras's default for each key a layer's constructor takes (as JSON), used where a config leaves the key out.
    static readonly Dictionary<string, (string Key, string Value)[]> Defaults = new()
    {
        ["Conv2D"] = [("strides", "[1, 1]"), ("padding", "\"valid\""), ("use_bias", "true"), ("kernel_initializer", "\"glorot_uniform\""), ("bias_initializer", "\"zeros\"")],
        ["Dense"] = [("use_bias", "true"), ("kernel_initializer", "\"glorot_uniform\""), ("bias_initializer", "\"zeros\"")],
        ["MaxPooling2D"] = [("pool_size", "[2, 2]"), ("padding", "\"valid\"")],
        ["AveragePooling2D"] = [("pool_size", "[2, 2]"), ("padding", "\"valid\"")],
        ["BatchNormalization"] = [("axis", "-1"), ("momentum", "0.99"), ("epsilon", "0.001"), ("center", "true"), ("scale", "true"),
            ("beta_initializer", "\"zeros\""), ("gamma_initializer", "\"ones\""), ("moving_mean_initializer", "\"zeros\""), ("moving_variance_initializer", "\"ones\"")],
        ["LayerNormalization"] = [("axis", "-1"), ("epsilon", "0.001"), ("center", "true"), ("scale", "true"), ("beta_initializer", "\"zeros\""), ("gamma_initializer", "\"ones\"")],
        ["GroupNormalization"] = [("groups", "32"), ("axis", "-1"), ("epsilon", "0.001"), ("center", "true"), ("scale", "true"), ("beta_initializer", "\"zeros\""), ("gamma_initializer", "\"ones\"")],
        ["GlobalAveragePooling2D"] = [("keepdims", "false")],
        ["GlobalMaxPooling2D"] = [("keepdims", "false")],
        ["ZeroPadding2D"] = [("padding", "1")],
        ["Concatenate"] = [("axis", "-1")],
    };

    // Options whose non-default value Naani cannot honour, and what they mean.
    static readonly string[] MustBeNull =
        ["kernel_regularizer", "bias_regularizer", "activity_regularizer", "kernel_constraint", "bias_constraint",
         "beta_regularizer", "gamma_regularizer", "beta_constraint", "gamma_constraint", "noise_shape"];

    /// The most weight values a Keras JSON architecture may ask for unless the caller says otherwise: 2^30 (4 GiB of
    /// float32), seven times VGG16. A config asking for more (units: 10^12) is refused before anything is allocated.
    public const long DefaultMaxParameters = 1L << 30;

    /// The model described by Keras JSON. source names the file in messages; seed seeds the initial weights;
    /// maxParameters bounds the weights its layers may create (a file's weights bound them when there is one).
    public static Model Read(string json, string source = "Keras JSON", int? seed = null, long maxParameters = DefaultMaxParameters)
    {
        using (Layer.LimitWeights(maxParameters))
        {
            try
            {
                return ReadUnbounded(json, source, seed);
            }
            catch (InvalidOperationException e) when (e.Message.Contains("values left", StringComparison.Ordinal))
            {
                throw new InvalidDataException($"'{source}': the architecture asks for more weights than the {maxParameters:N0} allowed: {e.Message}", e);
            }
        }
    }

    static Model ReadUnbounded(string json, string source, int? seed)
    {
        JsonNode? root;
        try
        {
            root = JsonNode.Parse(json);
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"'{source}' is not JSON: {e.Message}", e);
        }
        if (root is not JsonObject model || model["class_name"] is not JsonValue classValue || !classValue.TryGetValue<string>(out var className))
            throw new InvalidDataException($"'{source}' is not a Keras model's JSON (model.to_json()): it has no \"class_name\" at the top.");
        var config = model["config"] as JsonObject ?? throw new InvalidDataException($"'{source}': the model has no \"config\" object.");
        string name = config["name"] is JsonValue n && n.TryGetValue<string>(out var s) ? s : className.ToLowerInvariant();
        var layers = config["layers"] as JsonArray ?? throw new InvalidDataException($"'{source}': the model's config has no \"layers\" list.");
        return className switch
        {
            "Sequential" => ReadSequential(config, layers, name, source, seed),
            "Functional" or "Model" => ReadFunctional(config, layers, name, source, seed),
            _ => throw new InvalidDataException($"'{source}': the model is a '{className}'; Naani reads Sequential and Functional models."),
        };
    }

    static Sequential ReadSequential(JsonObject config, JsonArray layers, string name, string source, int? seed)
    {
        var model = new Sequential(name, seed);
        bool hasInput = false;
        foreach (var (entry, i) in layers.Select((e, i) => (e, i)))
        {
            var (className, layerConfig) = Entry(entry, i, source);
            if (className == "InputLayer")
            {
                if (hasInput) throw new InvalidDataException($"'{source}': the Sequential model has a second InputLayer (layer {i}).");
                model.Add(new Input(InputShape(layerConfig, source), Name(layerConfig)));
                hasInput = true;
                continue;
            }
            if (!hasInput)
            {
                // Keras 2 puts the input's shape on the first layer (batch_input_shape); Keras 3 in build_input_shape.
                var shape = layerConfig["batch_input_shape"] ?? layerConfig["batch_shape"] ?? config["build_input_shape"]
                    ?? throw new InvalidDataException($"'{source}': the Sequential model gives no input shape (no InputLayer, no batch_input_shape); Naani needs it to build the model.");
                model.Add(new Input(BatchShape(shape, $"the input of layer '{Name(layerConfig)}'", source)));
                hasInput = true;
            }
            var layer = CreateLayer(className, layerConfig, source);
            try
            {
                model.Add(layer);
            }
            catch (ArgumentException e)
            {
                throw new InvalidDataException($"'{source}': layer '{layer.Name}' ({className}) does not fit its input: {e.Message}", e);
            }
        }
        if (!hasInput) throw new InvalidDataException($"'{source}': the Sequential model has no layers.");
        try
        {
            model.Build();
        }
        catch (ArgumentException e)
        {
            throw new InvalidDataException($"'{source}': the model cannot be built: {e.Message}", e);
        }
        return model;
    }

    static Functional ReadFunctional(JsonObject config, JsonArray layers, string name, string source, int? seed)
    {
        // Every layer first, then its calls: a shared layer (Keras: a layer with several inbound nodes) may be called on
        // tensors of layers listed after it, so calls are made as their inputs become available, in the file's order.
        var made = new Dictionary<string, Layer>();
        var nodes = new Dictionary<string, List<Node>>();
        var pending = new List<(string Layer, string ClassName, (string Layer, int Node)[] Inputs, int Call)>();
        var positiveAxes = new List<(string Layer, int Axis)>();
        foreach (var (entry, i) in layers.Select((e, i) => (e, i)))
        {
            var (className, layerConfig) = Entry(entry, i, source);
            string layerName = entry!["name"] is JsonValue v && v.TryGetValue<string>(out var text) ? text : Name(layerConfig);
            if (nodes.ContainsKey(layerName)) throw new InvalidDataException($"'{source}': two layers are named '{layerName}'.");
            nodes[layerName] = [];
            if (className == "InputLayer")
            {
                nodes[layerName].Add(Input.Create(InputShape(layerConfig, source), layerName));
                continue;
            }
            if (className == "Concatenate" && layerConfig["axis"] is JsonValue axisValue && axisValue.TryGetValue<int>(out int axis) && axis > 0)
            {
                // Keras counts the batch axis: on (None, h, w, c) tensors axis 3 is the last one, which Naani joins on.
                // Whether it is the last is known once the graph is built (below).
                positiveAxes.Add((layerName, axis));
                layerConfig = (JsonObject)layerConfig.DeepClone();
                layerConfig["axis"] = -1;
            }
            made[layerName] = CreateLayer(className, layerConfig, source, layerName);
            var calls = Inbound(entry["inbound_nodes"], layerName, source);
            if (calls.Count == 0) throw new InvalidDataException($"'{source}': layer '{layerName}' ({className}) is called on nothing (no inbound_nodes).");
            for (int c = 0; c < calls.Count; c++) pending.Add((layerName, className, calls[c], c));
        }
        while (pending.Count > 0)
        {
            bool ready(((string Layer, int Node)[] Inputs, int Call) p) =>
                p.Inputs.All(t => nodes.TryGetValue(t.Layer, out var list) && t.Node < list.Count);
            int at = pending.FindIndex(p => ready((p.Inputs, p.Call)) && nodes[p.Layer].Count == p.Call);
            if (at < 0)
            {
                var (stuck, _, wanted, _) = pending[0];
                var missing = wanted.First(t => !nodes.TryGetValue(t.Layer, out var list) || t.Node >= list.Count);
                throw new InvalidDataException(nodes.ContainsKey(missing.Layer)
                    ? $"'{source}': layer '{stuck}' reads call {missing.Node + 1} of layer '{missing.Layer}', which is never made (or depends on '{stuck}')."
                    : $"'{source}': layer '{stuck}' reads '{missing.Layer}', which is not a layer of the model.");
            }
            var (layerName, className, callInputs, _) = pending[at];
            pending.RemoveAt(at);
            var layer = made[layerName];
            var sources = callInputs.Select(t => nodes[t.Layer][t.Node]).ToArray();
            try
            {
                nodes[layerName].Add((layer, sources.Length) switch
                {
                    (MergeLayer merge, > 0) => merge.Call(sources),
                    (not MergeLayer, 1) => layer.Call(sources[0]),
                    _ => throw new InvalidDataException($"'{source}': layer '{layerName}' ({className}) reads {sources.Length} tensors; it takes {(layer is MergeLayer ? "one or more" : "one")}."),
                });
            }
            catch (Exception e) when (e is ArgumentException or NotSupportedException)
            {
                throw new InvalidDataException($"'{source}': layer '{layerName}' ({className}) does not fit its inputs: {e.Message}", e);
            }
        }
        Node Find((string Layer, int Node) t, string role) => nodes.TryGetValue(t.Layer, out var list) && t.Node < list.Count ? list[t.Node]
            : throw new InvalidDataException($"'{source}': the model names '{t.Layer}' (call {t.Node + 1}) as {role}, but there is no such layer call.");
        var inputs = Endpoints(config["input_layers"], "input_layers", source).Select(l => Find(l, "an input")).ToArray();
        var outputs = Endpoints(config["output_layers"], "output_layers", source).Select(l => Find(l, "an output")).ToArray();
        Functional model;
        try
        {
            model = new Functional(inputs, outputs, name, seed);
        }
        catch (Exception e) when (e is ArgumentException or InvalidOperationException)
        {
            throw new InvalidDataException($"'{source}': the model cannot be built: {e.Message}", e);
        }
        foreach (var (layerName, axis) in positiveAxes)
        {
            int rank = nodes[layerName][0].Inbound[0].Shape.Rank;
            if (axis != rank)
                throw new InvalidDataException($"'{source}': Concatenate layer '{layerName}' joins along axis {axis} of {rank + 1}-axis tensors (the batch is axis 0); Naani joins along the last axis only.");
        }
        return model;
    }

    static (string ClassName, JsonObject Config) Entry(JsonNode? entry, int index, string source)
    {
        if (entry is not JsonObject obj || obj["class_name"] is not JsonValue c || !c.TryGetValue<string>(out var className))
            throw new InvalidDataException($"'{source}': layer {index} has no \"class_name\".");
        var config = obj["config"] as JsonObject ?? throw new InvalidDataException($"'{source}': layer {index} ({className}) has no \"config\" object.");
        return (className, config);
    }

    static string Name(JsonObject config) => config["name"] is JsonValue v && v.TryGetValue<string>(out var s) ? s : "";

    static Shape InputShape(JsonObject config, string source)
    {
        string what = $"InputLayer '{Name(config)}'";
        if ((config["batch_shape"] ?? config["batch_input_shape"]) is { } batch) return BatchShape(batch, what, source);
        if (config["shape"] is JsonArray shape) return BatchShape(new JsonArray([null, .. shape.Select(d => d?.DeepClone())]), what, source);
        throw new InvalidDataException($"'{source}': {what} gives no shape (batch_shape, batch_input_shape or shape).");
    }

    // [null, h, w, c] -> (h, w, c): every axis but the batch must be known.
    static Shape BatchShape(JsonNode shape, string what, string source)
    {
        if (shape is not JsonArray dims || dims.Count < 2)
            throw new InvalidDataException($"'{source}': the shape of {what} is not a list [batch, ...]: {shape.ToJsonString()}.");
        var sizes = new int[dims.Count - 1];
        for (int i = 1; i < dims.Count; i++)
        {
            if (dims[i] is not JsonValue v || !v.TryGetValue<int>(out sizes[i - 1]) || sizes[i - 1] <= 0)
                throw new InvalidDataException($"'{source}': the shape of {what} is {shape.ToJsonString(Compact)}; Naani needs every axis but the batch to have a size (images of one size).");
        }
        return new Shape(sizes);
    }

    static readonly JsonSerializerOptions Compact = new() { WriteIndented = false };

    /// Each call of a layer and the tensors it reads, as (layer, call index) pairs, from Keras 2's
    /// [[["name", node, tensor, {}], ...], ...] or Keras 3's [{"args": [tensor or [tensors]], "kwargs": {}}, ...], tensors
    /// being {"class_name": "__keras_tensor__", "config": {"keras_history": ["name", node, tensor]}}. A layer with several
    /// calls is shared; node is which call of the layer read made the tensor.
    static List<(string Layer, int Node)[]> Inbound(JsonNode? inboundNodes, string layer, string source)
    {
        if (inboundNodes is null) return [];
        if (inboundNodes is not JsonArray calls) throw new InvalidDataException($"'{source}': layer '{layer}' has inbound_nodes that are not a list.");
        var result = new List<(string Layer, int Node)[]>();
        foreach (var call in calls)
        {
            var tensors = new List<(string Layer, int Node)>();
            void Tensor(JsonNode? history)
            {
                if (history is not JsonArray h || h.Count < 1 || h[0] is not JsonValue nv || !nv.TryGetValue<string>(out var name))
                    throw new InvalidDataException($"'{source}': layer '{layer}' reads a tensor written as {history?.ToJsonString() ?? "null"}, not [\"layer\", node, tensor].");
                int node = h.Count > 1 && h[1] is JsonValue a && a.TryGetValue<int>(out int x) ? x : 0;
                int tensor = h.Count > 2 && h[2] is JsonValue b && b.TryGetValue<int>(out int y) ? y : 0;
                if (node < 0) throw new InvalidDataException($"'{source}': layer '{layer}' reads call {node} of layer '{name}'.");
                if (tensor != 0) throw new InvalidDataException($"'{source}': layer '{layer}' reads output {tensor + 1} of layer '{name}'; Naani's layers have one output.");
                tensors.Add((name, node));
            }
            void Argument(JsonNode? arg)
            {
                if (arg is JsonObject t && t["config"] is JsonObject tensorConfig && tensorConfig["keras_history"] is JsonNode history)
                    Tensor(history);
                else if (arg is JsonArray list)
                    foreach (var item in list) Argument(item);
                else
                    throw new InvalidDataException($"'{source}': layer '{layer}' is called on {arg?.ToJsonString() ?? "null"}, which is not a tensor.");
            }
            switch (call)
            {
                case JsonArray legacy:   // Keras 2: a list of [name, node, tensor, kwargs]
                    foreach (var item in legacy) Tensor(item);
                    break;
                case JsonObject keras3 when keras3["args"] is JsonArray args:
                    foreach (var arg in args) Argument(arg);
                    break;
                default:
                    throw new InvalidDataException($"'{source}': layer '{layer}' has an inbound node written as {call?.ToJsonString()}, which neither Keras 2 nor Keras 3 writes.");
            }
            result.Add([.. tensors]);
        }
        return result;
    }

    // input_layers / output_layers: [["name", node, 0], ...], or Keras 3's ["name", node, 0] for one.
    static (string Layer, int Node)[] Endpoints(JsonNode? node, string key, string source)
    {
        if (node is not JsonArray list || list.Count == 0) throw new InvalidDataException($"'{source}': the model has no \"{key}\".");
        if (list[0] is JsonValue) list = [list.DeepClone()];
        return [.. list.Select(item => item is JsonArray { Count: > 0 } e && e[0] is JsonValue v && v.TryGetValue<string>(out var s)
            ? (s, e.Count > 1 && e[1] is JsonValue n && n.TryGetValue<int>(out int call) ? call : 0)
            : throw new InvalidDataException($"'{source}': an entry of \"{key}\" is not [\"layer\", node, tensor]: {item?.ToJsonString()}."))];
    }

    /// One layer from its Keras class and config: Keras-only options refused, the rest read by LayerFactory.
    static Layer CreateLayer(string className, JsonObject kerasConfig, string source, string? nameOverride = null)
    {
        string name = nameOverride ?? Name(kerasConfig);
        string where = $"'{source}': layer '{name}' ({className})";
        bool trainable = kerasConfig["trainable"] is not JsonValue t || !t.TryGetValue<bool>(out bool value) || value;
        if (!SupportedLayers.Contains(className))
            throw new InvalidDataException($"{where}: Naani has no {className} layer. Supported Keras layers: {string.Join(", ", SupportedLayers.Where(l => l != "InputLayer"))}.");
        var config = (JsonObject)kerasConfig.DeepClone();
        // Keras writes every key, but JSON written by hand may leave some out: Keras's defaults then.
        if (Defaults.TryGetValue(className, out var defaults))
            foreach (var (key, fallback) in defaults)
                if (IsNull(config[key])) config[key] = JsonNode.Parse(fallback);
        foreach (var key in MustBeNull)
            if (config[key] is { } given && !IsNull(given))
                throw new InvalidDataException($"{where} sets {key} = {given.ToJsonString()}; Naani has no {(key.EndsWith("constraint", StringComparison.Ordinal) ? "weight constraints" : key == "noise_shape" ? "dropout noise shapes" : "regularizers")}: remove it to load the model.");
        if (config["data_format"] is JsonValue format && format.TryGetValue<string>(out var f) && f != "channels_last")
            throw new InvalidDataException($"{where} uses data_format '{f}'; Naani computes channels_last (NHWC, Keras's default) only.");
        if (config["dilation_rate"] is { } dilation && !AllOnes(dilation))
            throw new InvalidDataException($"{where} has dilation_rate {dilation.ToJsonString()}; Naani's convolutions are not dilated.");
        if (config["groups"] is JsonValue g && g.TryGetValue<int>(out int groups) && groups != 1 && className == "Conv2D")
            throw new InvalidDataException($"{where} has groups = {groups}; Naani's convolutions are not grouped.");
        if (config["renorm"] is JsonValue r && r.TryGetValue<bool>(out bool renorm) && renorm)
            throw new InvalidDataException($"{where} uses batch renormalization (renorm = true), which Naani does not have.");
        if (config["rms_scaling"] is JsonValue rms && rms.TryGetValue<bool>(out bool rmsScaling) && rmsScaling)
            throw new InvalidDataException($"{where} uses RMS scaling (rms_scaling = true), which Naani does not have.");
        if (config["activation"] is JsonObject activation)
        {
            // Keras 3 writes a built-in activation as a string; an object is a custom function.
            config["activation"] = activation["config"] is JsonValue fn && fn.TryGetValue<string>(out var fname) ? fname
                : throw new InvalidDataException($"{where} uses a custom activation {activation.ToJsonString()}; Naani has relu, sigmoid, tanh, softmax and linear.");
        }
        if (IsNull(config["activation"]) && className is "Conv2D" or "Dense" or "Activation") config["activation"] = "linear";
        foreach (var key in (string[])["kernel_size", "strides", "pool_size"])
            if (config[key] is JsonValue single && single.TryGetValue<int>(out int size)) config[key] = new JsonArray(size, size);
        if (className is "MaxPooling2D" or "AveragePooling2D" && IsNull(config["strides"]))
            config["strides"] = config["pool_size"]?.DeepClone();
        switch (className)
        {
            case "ReLU":
                bool plain = IsZeroOrNull(config["negative_slope"]) && IsZeroOrNull(config["threshold"]) && IsNull(config["max_value"]);
                if (!plain) throw new InvalidDataException($"{where} is a leaky, thresholded or capped ReLU; Naani's ReLU is max(0, x).");
                return LayerFactory.CreateLayer("Activation", new JsonObject { ["activation"] = "relu" }, name, trainable, source);
            case "Softmax":
                if (config["axis"] is JsonValue ax && ax.TryGetValue<int>(out int softmaxAxis) && softmaxAxis != -1)
                    throw new InvalidDataException($"{where} takes the softmax along axis {softmaxAxis}; Naani's is along the last axis.");
                return LayerFactory.CreateLayer("Activation", new JsonObject { ["activation"] = "softmax" }, name, trainable, source);
            case "BatchNormalization":
                if (config["axis"] is JsonArray { Count: 1 } axes) config["axis"] = axes[0]!.DeepClone();
                break;
            case "GroupNormalization":
                if (config["groups"] is JsonValue gv && gv.TryGetValue<int>(out int g2) && g2 == -1)
                    return LayerFactory.CreateLayer("InstanceNormalization", config, name, trainable, source);   // Keras's instance normalization
                break;
            case "ZeroPadding2D":
                config["padding"] = PaddingPairs(config["padding"], where);
                break;
        }
        return LayerFactory.CreateLayer(className, config, name, trainable, source);
    }

    static bool AllOnes(JsonNode node) => node switch
    {
        JsonValue v => v.TryGetValue<int>(out int x) && x == 1,
        JsonArray a => a.All(item => item is JsonValue v && v.TryGetValue<int>(out int x) && x == 1),
        _ => false,
    };

    static bool IsNull(JsonNode? node) => node is null || node.GetValueKind() == JsonValueKind.Null;

    static bool IsZeroOrNull(JsonNode? node) => node is null || node.GetValueKind() == JsonValueKind.Null || (node is JsonValue v && v.TryGetValue<double>(out double x) && x == 0);

    // ZeroPadding2D's padding: p, [h, w] or [[top, bottom], [left, right]].
    static JsonArray PaddingPairs(JsonNode? padding, string where)
    {
        switch (padding)
        {
            case JsonValue v when v.TryGetValue<int>(out int p):
                return new JsonArray(new JsonArray(p, p), new JsonArray(p, p));
            case JsonArray { Count: 2 } pair when pair.All(item => item is JsonValue):
                int h = pair[0]!.GetValue<int>(), w = pair[1]!.GetValue<int>();
                return new JsonArray(new JsonArray(h, h), new JsonArray(w, w));
            case JsonArray { Count: 2 } pairs:
                return (JsonArray)pairs.DeepClone();
            default:
                throw new InvalidDataException($"{where} has padding {padding?.ToJsonString() ?? "null"}; expected p, [h, w] or [[top, bottom], [left, right]].");
        }
    }

    /// The Keras class a Naani layer is written as: its TypeName, except InstanceNormalization, which Keras has as
    /// GroupNormalization(groups=-1).
    public static string ClassName(Layer layer) => layer.TypeName == "InstanceNormalization" ? "GroupNormalization" : layer.TypeName;

    /// Keras's naming.to_snake_case: MaxPooling2D -> max_pooling2d, BatchNormalization -> batch_normalization, Conv2D -> conv2d
    /// (names already in snake case stay as they are).
    public static string SnakeCase(string name)
    {
        var first = System.Text.RegularExpressions.Regex.Replace(name, "(.)([A-Z][a-z]+)", "$1_$2");
        return System.Text.RegularExpressions.Regex.Replace(first, "([a-z])([A-Z])", "$1_$2").ToLowerInvariant();
    }

    /// The model as Keras 3 writes model.to_json(): keras.models.model_from_json reads it back.
    public static string Write(Model model)
    {
        ArgumentNullException.ThrowIfNull(model);
        model.Build();
        var root = new JsonObject { ["module"] = "keras" };
        var config = new JsonObject { ["name"] = model.Name, ["trainable"] = true, ["dtype"] = "float32" };
        if (model is Functional functional)
        {
            root["class_name"] = "Functional";
            // Which call of its layer each node is (a shared layer's calls are 0, 1, ...), and each layer's calls.
            var callIndex = new Dictionary<Node, int>();
            var callsOf = new Dictionary<Layer, List<Node>>();
            foreach (var n in functional.Nodes)
            {
                var layer = n.Layer.SharedFrom ?? n.Layer;
                if (!callsOf.TryGetValue(layer, out var list)) callsOf[layer] = list = [];
                callIndex[n] = list.Count;
                list.Add(n);
            }
            config["layers"] = new JsonArray([.. functional.Nodes.Where(n => n.Layer.SharedFrom is null)
                .Select(n => (JsonNode)LayerJson(n.Layer, callsOf[n.Layer], callIndex))]);
            config["input_layers"] = new JsonArray([.. functional.Inputs.Select(n => (JsonNode)Endpoint(n.Layer.Name, callIndex[n]))]);
            config["output_layers"] = new JsonArray([.. functional.Outputs.Select(n => (JsonNode)Endpoint(n.Layer.Name, callIndex[n]))]);
            root["registered_name"] = "Functional";
        }
        else if (model is Sequential)
        {
            root["class_name"] = "Sequential";
            var layers = new JsonArray();
            if (model.Layers.Count == 0 || model.Layers[0] is not Input)
                layers.Add(InputJson(model.InputShape, "input_layer"));
            foreach (var layer in model.Layers) layers.Add(LayerJson(layer, null, null));
            config["layers"] = layers;
            config["build_input_shape"] = BatchJson(model.InputShape);
            root["registered_name"] = null;
        }
        else throw new NotSupportedException($"Model '{model.Name}' is a {model.GetType().Name}; Keras JSON describes Sequential and Functional models.");
        root["config"] = config;
        return root.ToJsonString(new JsonSerializerOptions { WriteIndented = true });
    }

    static JsonArray Endpoint(string name, int call) => new(name, call, 0);

    static JsonArray BatchJson(Shape shape) => new([null, .. shape.ToArray().Select(d => (JsonNode)d)]);

    static JsonObject InputJson(Shape shape, string name) => new()
    {
        ["module"] = "keras.layers",
        ["class_name"] = "InputLayer",
        ["config"] = new JsonObject { ["batch_shape"] = BatchJson(shape), ["dtype"] = "float32", ["sparse"] = false, ["name"] = name },
        ["registered_name"] = null,
    };

    static JsonObject LayerJson(Layer layer, List<Node>? calls, Dictionary<Node, int>? callIndex)
    {
        JsonObject entry;
        if (layer is Input input)
            entry = InputJson(input.Shape, input.Name);
        else
        {
            string className = ClassName(layer);
            var config = new JsonObject { ["name"] = layer.Name, ["trainable"] = layer.Trainable, ["dtype"] = "float32" };
            foreach (var (key, value) in layer.GetConfig()) config[key] = value?.DeepClone();
            // Keras's keys that Naani's configs leave out, at the values that mean what Naani computes.
            switch (layer.TypeName)
            {
                case "Conv2D":
                    config["data_format"] = "channels_last";
                    config["dilation_rate"] = new JsonArray(1, 1);
                    config["groups"] = 1;
                    AddNulls(config, "kernel_regularizer", "bias_regularizer", "activity_regularizer", "kernel_constraint", "bias_constraint");
                    break;
                case "Dense":
                    AddNulls(config, "kernel_regularizer", "bias_regularizer", "activity_regularizer", "kernel_constraint", "bias_constraint");
                    break;
                case "MaxPooling2D" or "AveragePooling2D" or "Flatten" or "GlobalAveragePooling2D" or "GlobalMaxPooling2D" or "ZeroPadding2D":
                    config["data_format"] = "channels_last";
                    break;
                case "Dropout":
                    config["seed"] = null;
                    config["noise_shape"] = null;
                    break;
                case "BatchNormalization" or "LayerNormalization" or "GroupNormalization":
                    AddNulls(config, "beta_regularizer", "gamma_regularizer", "beta_constraint", "gamma_constraint");
                    break;
                case "InstanceNormalization":
                    // Keras has no InstanceNormalization layer: GroupNormalization with one group per channel is it.
                    config["groups"] = -1;
                    config["axis"] = -1;
                    AddNulls(config, "beta_regularizer", "gamma_regularizer", "beta_constraint", "gamma_constraint");
                    break;
            }
            foreach (var key in config.Select(p => p.Key).Where(k => k.EndsWith("_initializer", StringComparison.Ordinal)).ToList())
                config[key] = KerasInitializer(config[key]);
            entry = new JsonObject { ["module"] = "keras.layers", ["class_name"] = className, ["config"] = config, ["registered_name"] = null };
        }
        if (calls is not null)
        {
            entry["name"] = layer.Name;
            var inbound = new JsonArray();
            foreach (var node in calls)
            {
                var tensors = node.Inbound.Select(source => (JsonNode)new JsonObject
                {
                    ["class_name"] = "__keras_tensor__",
                    ["config"] = new JsonObject
                    {
                        ["shape"] = BatchJson(source.Shape),
                        ["dtype"] = "float32",
                        ["keras_history"] = new JsonArray(source.Layer.Name, callIndex![source], 0),
                    },
                }).ToArray();
                if (tensors.Length > 0)
                    inbound.Add(new JsonObject { ["args"] = layer is MergeLayer ? new JsonArray(new JsonArray(tensors)) : new JsonArray(tensors), ["kwargs"] = new JsonObject() });
            }
            entry["inbound_nodes"] = inbound;
        }
        return entry;
    }

    static void AddNulls(JsonObject config, params string[] keys)
    {
        foreach (var key in keys) config[key] = null;
    }

    // "glorot_uniform" -> {"module": "keras.initializers", "class_name": "GlorotUniform", "config": {"seed": null}}.
    static JsonObject KerasInitializer(JsonNode? value)
    {
        if (value is JsonObject obj)
        {
            var copy = (JsonObject)obj.DeepClone();
            copy["module"] = "keras.initializers";
            copy["registered_name"] = null;
            return copy;
        }
        string name = value?.GetValue<string>() ?? "zeros";
        string className = string.Concat(name.Split('_').Select(part => part.Length == 0 ? part : char.ToUpperInvariant(part[0]) + part[1..]));
        var config = className is "Zeros" or "Ones" ? new JsonObject() : new JsonObject { ["seed"] = null };
        return new JsonObject { ["module"] = "keras.initializers", ["class_name"] = className, ["config"] = config, ["registered_name"] = null };
    }
}
