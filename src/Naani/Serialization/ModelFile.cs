using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Naani.Layers;
using Naani.Models;
using Naani.Optimizers;

namespace Naani.Serialization;

/// Saves and loads a whole model: architecture, weights, class names, compile settings and optimizer
/// state. The layout (docs/FORMAT.md), all integers little-endian:
///   [0, 8)   magic "NAANI\0\0\0"
///   [8, 12)  format version, uint32
///   [12, 16) header length H, uint32
///   [16, 16 + H)  UTF-8 JSON header, space-padded so the data starts at a multiple of 64
///   [16 + H, L - 12)  the data: float32 values at the offsets the header lists
///   [L - 12, L)  trailer: CRC-32 of bytes [0, L - 12), uint32; the file length L, uint64
/// Format version 1 stores Sequential models; version 2 adds graph models (Functional: layers with
/// their inbound layers, inputs and outputs) and one loss per output with loss weights. A writer uses
/// the lowest version that describes the model, so a Sequential with one loss is still version 1 and
/// older Naani reads it; a reader reads every version up to FormatVersion.
public static class ModelFile
{
    /// The newest version this Naani reads and writes.
    public const uint FormatVersion = 3;
    public const int MaxHeaderLength = 64 << 20;
    const int PreambleSize = 16;
    const int TrailerSize = 12;
    const int DataAlignment = 64;
    static ReadOnlySpan<byte> Magic => "NAANI\0\0\0"u8;

    /// Writes the model to path atomically: into a temporary file beside it, flushed to disk, then
    /// renamed over path. If anything fails, the temporary file is deleted and an existing file at
    /// path is left as it was. includeOptimizer: false leaves out the optimizer's slots and
    /// iteration count (the compile settings are still kept).
    public static void Save(Model model, string path, bool includeOptimizer = true) => Save(model, path, includeOptimizer, null);

    /// Save, with a checkpoint's training state: trainingState(offset) gives the header's "training_state" object
    /// and the byte blocks it refers to, placed after the weights and slots from that data offset on. A reader
    /// that knows nothing of it (Model.Load) loads the model and ignores the state.
    internal static void Save(Model model, string path, bool includeOptimizer, Func<long, (JsonObject State, List<byte[]> Blocks)>? trainingState)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentException.ThrowIfNullOrEmpty(path);
        if (model is not (Sequential or Functional))
            throw new NotSupportedException(
                $"Model '{model.Name}' is a {model.GetType().Name}; the Naani model file can save only Sequential models and Functional graphs.");
        model.Build();
        foreach (var layer in model.Layers)
            if ((layer.TypeName == "InputLayer" && model is Sequential) || !LayerFactory.KnownLayerTypes.Contains(layer.TypeName))
                throw new NotSupportedException(
                    $"Layer '{layer.Name}' of model '{model.Name}' has type '{layer.TypeName}', which format version {FormatVersion} cannot store; it stores: {string.Join(", ", LayerFactory.KnownLayerTypes.Where(t => t != "InputLayer"))}.");

        uint version = VersionFor(model);
        var (header, blocks) = Describe(model, version, includeOptimizer);
        List<byte[]> extra = [];
        if (trainingState is not null)
        {
            long start = header["data_length"]!.GetValue<long>();
            (header["training_state"], extra) = trainingState(start);
            header["data_length"] = start + extra.Sum(b => (long)b.Length);
        }
        byte[] headerBytes = EncodeHeader(header);

        IO.AtomicFile.Write(path, stream =>
        {
            var writer = new ChecksummedWriter(stream);
            writer.Write(Magic);
            writer.WriteUInt32(version);
            writer.WriteUInt32((uint)headerBytes.Length);
            writer.Write(headerBytes);
            PauseForCrashTests(stream);
            foreach (var block in blocks) writer.WriteFloats(block);
            foreach (var block in extra) writer.Write(block);
            writer.WriteTrailer();
        });
    }

    /// Fault injection for the kill-and-resume test (tests/Naani.Tests/Cli/KillAndResumeTests.cs): with
    /// NAANI_FAULT_SLOW_SAVE_MS set, a save pauses that long after the header, its temporary file half-written,
    /// so the test can kill the process inside a save. Unset, it costs one comparison.
    static readonly int slowSaveMilliseconds =
        int.TryParse(Environment.GetEnvironmentVariable("NAANI_FAULT_SLOW_SAVE_MS"), out int ms) && ms > 0 ? ms : 0;

    static void PauseForCrashTests(Stream stream)
    {
        if (slowSaveMilliseconds == 0) return;
        stream.Flush();
        Thread.Sleep(slowSaveMilliseconds);
    }

    /// Version 2 for what version 1 cannot say (a graph, loss weights); else 1, which older Naani reads.
    /// Version 3 for a graph with a shared layer (a layer called more than once).
    static uint VersionFor(Model model) =>
        model is Functional f && f.Nodes.Any(n => n.Layer.SharedFrom is not null) ? 3u
        : model is Functional || model.LossWeights.Any(w => w != 1) ? 2u : 1u;

    /// How the header names a node (Model.NodeKeys): its layer's name for the layer's first call, "name#k" for its (k+1)-th.
    static Dictionary<Node, string> NodeNames(Functional graph)
    {
        var keys = Model.NodeKeys(graph.Nodes);
        return graph.Nodes.Select((n, i) => (n, keys[i])).ToDictionary(p => p.n, p => p.Item2);
    }

    /// The header and, in file order, the float blocks its offsets refer to.
    static (JsonObject Header, List<float[]> Blocks) Describe(Model model, uint version, bool includeOptimizer)
    {
        var blocks = new List<float[]>();
        long offset = 0;
        JsonObject Block(float[] values, JsonObject entry)
        {
            entry["offset"] = offset;
            entry["length"] = values.LongLength * sizeof(float);
            offset += values.LongLength * sizeof(float);
            blocks.Add(values);
            return entry;
        }

        var tensors = new JsonArray();
        foreach (var p in model.Parameters)
            tensors.Add(Block(p.Value.Data, new JsonObject { ["name"] = p.FullName, ["shape"] = ShapeJson(p.Shape) }));

        var slots = new JsonArray();
        var optimizer = model.Optimizer;
        if (includeOptimizer && optimizer is not null)
        {
            var byParameter = optimizer.GetSlots().ToDictionary(s => s.Parameter, s => s.Slots);
            // In the model's parameter order, so the same model always gives the same bytes.
            foreach (var p in model.Parameters)
                if (byParameter.TryGetValue(p, out var values))
                    for (int i = 0; i < values.Length; i++)
                        slots.Add(Block(values[i], new JsonObject { ["param"] = p.FullName, ["slot"] = i }));
        }

        JsonObject? compile = null;
        if (model.Optimizer is not null && model.Loss is not null)
        {
            compile = new JsonObject { ["optimizer"] = model.Optimizer.GetConfig() };
            if (version == 1) compile["loss"] = LayerFactory.GetLossConfig(model.Loss);
            else
            {
                compile["losses"] = new JsonArray([.. model.Losses.Select(l => (JsonNode)LayerFactory.GetLossConfig(l))]);
                compile["loss_weights"] = new JsonArray([.. model.LossWeights.Select(w => (JsonNode)w)]);
            }
            compile["metrics"] = new JsonArray([.. model.Metrics.Select(m => (JsonNode)m)]);
        }

        var header = new JsonObject { ["format_version"] = version };
        if (model is Functional graph)
        {
            // Each layer with the layers it reads, in an order where those come first; inputs are layers too.
            header["model_class"] = "Functional";
            header["name"] = model.Name;
            header["seed"] = model.Seed;
            // A shared layer's later call (version 3) is an entry naming the layer it calls again: {"call_of", "inbound"}.
            var nodeNames = NodeNames(graph);
            header["layers"] = new JsonArray([.. graph.Nodes.Select(n => (JsonNode)(n.Layer.SharedFrom is { } shared
                ? new JsonObject
                {
                    ["call_of"] = shared.Name,
                    ["inbound"] = new JsonArray([.. n.Inbound.Select(source => (JsonNode)nodeNames[source])]),
                }
                : new JsonObject
                {
                    ["type"] = n.Layer.TypeName,
                    ["name"] = n.Layer.Name,
                    ["trainable"] = n.Layer.Trainable,
                    ["config"] = n.Layer.GetConfig(),
                    ["inbound"] = new JsonArray([.. n.Inbound.Select(source => (JsonNode)nodeNames[source])]),
                }))]);
            header["inputs"] = new JsonArray([.. graph.Inputs.Select(n => (JsonNode)nodeNames[n])]);
            header["outputs"] = new JsonArray([.. graph.Outputs.Select(n => (JsonNode)nodeNames[n])]);
        }
        else
        {
            header["model_class"] = "Sequential";
            header["name"] = model.Name;
            header["seed"] = model.Seed;
            header["input_shape"] = ShapeJson(model.InputShape);
            header["layers"] = new JsonArray([.. model.Layers.Select(l => (JsonNode)new JsonObject
            {
                ["type"] = l.TypeName,
                ["name"] = l.Name,
                ["trainable"] = l.Trainable,
                ["config"] = l.GetConfig(),
            })]);
        }
        header["class_names"] = model.ClassNames is null ? null : new JsonArray([.. model.ClassNames.Select(c => (JsonNode)c)]);
        if (model.Preprocessing is { } preprocessing)
            header["preprocessing"] = new JsonObject
            {
                ["scale"] = "1/255",
                ["resize"] = "bilinear",
                ["crop_to_aspect_ratio"] = preprocessing.CropToAspectRatio,
            };
        header["compile"] = compile;
        header["iterations"] = includeOptimizer && optimizer is not null ? optimizer.Iterations : null;
        header["data_length"] = offset;
        header["tensors"] = tensors;
        header["optimizer_slots"] = slots;
        return (header, blocks);
    }

    static JsonArray ShapeJson(Shape shape) => new([.. shape.ToArray().Select(d => (JsonNode)d)]);

    static byte[] EncodeHeader(JsonObject header)
    {
        byte[] json = Encoding.UTF8.GetBytes(header.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
        int padding = (DataAlignment - (PreambleSize + json.Length) % DataAlignment) % DataAlignment;
        if (json.Length + padding > MaxHeaderLength)
            throw new NotSupportedException($"The model's header is {json.Length:N0} bytes, more than the {MaxHeaderLength:N0} a model file allows.");
        var bytes = new byte[json.Length + padding];
        json.CopyTo(bytes, 0);
        bytes.AsSpan(json.Length).Fill((byte)' ');
        return bytes;
    }

    /// Reads a model saved by Save: a built Sequential with its weights, compiled again (with the
    /// optimizer's state) when the file has compile settings. Everything the header claims is checked
    /// against the file before any weight is read; errors are InvalidDataException naming the file.
    public static Model Load(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        if (!File.Exists(path)) throw new FileNotFoundException($"There is no model file at '{path}'.", path);
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
        long length = stream.Length;
        if (length < PreambleSize + TrailerSize)
            throw Corrupt(path, $"it has {length} bytes, fewer than the {PreambleSize + TrailerSize} of the smallest model file");

        Span<byte> preamble = stackalloc byte[PreambleSize];
        stream.ReadExactly(preamble);
        if (!preamble[..8].SequenceEqual(Magic))
            throw new InvalidDataException($"'{path}' is not a Naani model file: it does not start with the magic bytes \"NAANI\\0\\0\\0\".");
        uint version = BinaryPrimitives.ReadUInt32LittleEndian(preamble[8..]);
        if (version > FormatVersion)
            throw new InvalidDataException($"'{path}' has format version {version}, newer than the version {FormatVersion} this Naani reads: load it with a newer Naani.");
        if (version < 1)
            throw new InvalidDataException($"'{path}' has format version {version}, which does not exist (the first is 1): the file is corrupt.");
        uint headerLength = BinaryPrimitives.ReadUInt32LittleEndian(preamble[12..]);
        if (headerLength > MaxHeaderLength)
            throw Corrupt(path, $"its header length is {headerLength:N0} bytes, more than the {MaxHeaderLength:N0} allowed");
        if (PreambleSize + headerLength + TrailerSize > length)
            throw Corrupt(path, $"its header length is {headerLength:N0} bytes but the whole file has {length:N0}");

        Span<byte> trailer = stackalloc byte[TrailerSize];
        stream.Position = length - TrailerSize;
        stream.ReadExactly(trailer);
        uint storedCrc = BinaryPrimitives.ReadUInt32LittleEndian(trailer);
        ulong storedLength = BinaryPrimitives.ReadUInt64LittleEndian(trailer[4..]);
        if (storedLength != (ulong)length)
            throw Corrupt(path, $"it has {length:N0} bytes but its trailer records {storedLength:N0}");
        uint crc = ChecksumOf(stream, length - TrailerSize);
        if (crc != storedCrc)
            throw Corrupt(path, $"its CRC-32 is 0x{crc:x8} but its trailer records 0x{storedCrc:x8}");

        var headerBytes = new byte[headerLength];
        stream.Position = PreambleSize;
        stream.ReadExactly(headerBytes);
        JsonObject header;
        try
        {
            // A key given twice would be refused only when its object is first read, as ArgumentException: refuse it here.
            header = JsonNode.Parse(headerBytes, documentOptions: new JsonDocumentOptions { AllowDuplicateProperties = false }) as JsonObject
                ?? throw new InvalidDataException($"'{path}': the header is not a JSON object.");
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"'{path}': the header is not valid JSON: {e.Message}", e);
        }
        try
        {
            // JsonNode.Parse checks the syntax but decodes names and strings on first use, so a string that is not
            // UTF-8 (or escapes half a surrogate pair) would fail later, deep in the reader, as InvalidOperationException.
            DecodeStrings(header);
        }
        catch (InvalidOperationException e)
        {
            throw new InvalidDataException($"'{path}': the header (bytes {PreambleSize:N0} to {PreambleSize + headerLength:N0}) holds a name or string that is not valid UTF-8: {e.Message}", e);
        }

        long dataStart = PreambleSize + headerLength;
        var manifest = ReadManifest(header, (int)version, path, length - TrailerSize - dataStart);
        Model model;
        using (Layer.LimitWeights((length - TrailerSize - dataStart) / sizeof(float)))
            model = Rebuild(manifest, path);

        var parameters = model.Parameters.ToList();
        foreach (var p in parameters)
        {
            if (!manifest.Tensors.TryGetValue(p.FullName, out var entry))
                throw new InvalidDataException($"'{path}': layer '{p.Owner.Name}' has a weight '{p.Name}' of shape {p.Shape} but the file has no tensor '{p.FullName}'.");
            if (entry.Shape != p.Shape)
                throw new InvalidDataException($"'{path}': layer '{p.Owner.Name}' weight '{p.Name}' has shape {entry.Shape} in the file but the architecture creates {p.Shape}.");
        }
        var extra = manifest.Tensors.Keys.Except(parameters.Select(p => p.FullName)).ToList();
        if (extra.Count > 0)
            throw new InvalidDataException($"'{path}': the file has tensors the architecture does not create: {string.Join(", ", extra)}.");
        foreach (var p in parameters)
            ReadFloats(stream, dataStart + manifest.Tensors[p.FullName].Offset, p.Value.Data);

        if (manifest.Compile is { } compile)
            Compile(model, compile, manifest, parameters, stream, dataStart, path);
        else if (manifest.Slots.Count > 0 || manifest.Iterations is not null)
            throw new InvalidDataException($"'{path}': the header has optimizer state but no 'compile' settings to say which optimizer it belongs to.");
        model.Preprocessing = ReadPreprocessing(header, path);
        return model;
    }

    /// The optional "preprocessing" object (written since the model server came; older files have none).
    static ImagePreprocessing? ReadPreprocessing(JsonObject header, string path)
    {
        if (header["preprocessing"] is not { } node) return null;
        if (node is not JsonObject preprocessing || preprocessing["crop_to_aspect_ratio"] is not JsonValue crop || !crop.TryGetValue<bool>(out bool cropToAspectRatio))
            throw new InvalidDataException($"'{path}': 'preprocessing' must be an object with a true/false 'crop_to_aspect_ratio'; got {node.ToJsonString()}.");
        return new ImagePreprocessing(cropToAspectRatio);
    }

    /// Decodes every property name and string of a parsed header (its nesting is at most JSON's default depth, 64).
    static void DecodeStrings(JsonNode? node)
    {
        switch (node)
        {
            case JsonObject obj:
                foreach (var (_, value) in obj) DecodeStrings(value);
                break;
            case JsonArray array:
                foreach (var item in array) DecodeStrings(item);
                break;
            case JsonValue value when value.GetValueKind() == JsonValueKind.String:
                value.GetValue<string>();
                break;
        }
    }

    sealed record TensorEntry(Shape Shape, long Offset);
    sealed record SlotEntry(string Parameter, int Slot, long Offset, long Length);
    sealed record LayerEntry(string Type, string Name, bool Trainable, JsonObject Config, string[] Inbound, bool CallOf = false);
    /// What the header says. A Sequential has an InputShape; a Functional has Inputs and Outputs, and each
    /// of its layers lists the layers it reads (Inbound).
    sealed record Manifest(int Version, string ModelClass, string Name, int Seed, Shape? InputShape, List<LayerEntry> Layers,
        string[] Inputs, string[] Outputs, string[]? ClassNames, JsonObject? Compile, long? Iterations,
        Dictionary<string, TensorEntry> Tensors, List<SlotEntry> Slots);

    /// Reads the header's fields and checks every claim about the data region against its real size.
    static Manifest ReadManifest(JsonObject header, int preambleVersion, string path, long dataLength)
    {
        var read = new ConfigReader(header, "the header", path);
        int version = read.Int("format_version");
        if (version != preambleVersion)
            throw Corrupt(path, $"its header says format version {version} but its preamble says {preambleVersion}");
        string modelClass = read.String("model_class");
        if (!(modelClass == "Sequential" || (modelClass == "Functional" && version >= 2)))
            throw new InvalidDataException($"'{path}' holds a '{modelClass}' model; format version {version} stores {(version == 1 ? "only Sequential models" : "Sequential and Functional models")}.");
        long claimed = read.Long("data_length");
        if (claimed != dataLength)
            throw Corrupt(path, $"its header claims {claimed:N0} bytes of data but the file holds {dataLength:N0}");

        void CheckRegion(string what, long offset, long bytes)
        {
            if (offset < 0 || bytes < 0 || offset > dataLength - bytes)
                throw new InvalidDataException($"'{path}': {what} claims bytes [{offset:N0}, {offset + (decimal)bytes:N0}) of the data, which has {dataLength:N0} bytes.");
            if (offset % sizeof(float) != 0)
                throw new InvalidDataException($"'{path}': {what} starts at byte {offset:N0} of the data, not a multiple of 4.");
        }

        var tensors = new Dictionary<string, TensorEntry>();
        foreach (var (i, item) in read.Objects("tensors", "tensor"))
        {
            var entry = new ConfigReader(item, $"tensor {i} of the header", path);
            string name = entry.String("name");
            var shape = entry.Shape("shape");
            long offset = entry.Long("offset"), bytes = entry.Long("length");
            if (shape.LongSize > dataLength / sizeof(float))
                throw new InvalidDataException($"'{path}': tensor '{name}' has shape {shape} ({shape.LongSize:N0} values), more than the {dataLength:N0} bytes of data hold.");
            if (bytes != shape.LongSize * sizeof(float))
                throw new InvalidDataException($"'{path}': tensor '{name}' has shape {shape}, which needs {shape.LongSize * sizeof(float):N0} bytes, but its length is {bytes:N0}.");
            CheckRegion($"tensor '{name}'", offset, bytes);
            if (!tensors.TryAdd(name, new TensorEntry(shape, offset)))
                throw new InvalidDataException($"'{path}': the header lists tensor '{name}' twice.");
        }

        var slots = new List<SlotEntry>();
        foreach (var (i, item) in read.Objects("optimizer_slots", "slot"))
        {
            var entry = new ConfigReader(item, $"optimizer slot {i} of the header", path);
            var slot = new SlotEntry(entry.String("param"), entry.Int("slot"), entry.Long("offset"), entry.Long("length"));
            if (slot.Slot < 0) throw new InvalidDataException($"'{path}': optimizer slot {i} has a negative slot index {slot.Slot}.");
            CheckRegion($"optimizer slot {slot.Slot} of '{slot.Parameter}'", slot.Offset, slot.Length);
            slots.Add(slot);
        }

        bool graph = modelClass == "Functional";
        var layers = read.Objects("layers", "layer").Select(layer =>
        {
            var entry = new ConfigReader(layer.Item, $"layer {layer.Index} of the header", path);
            if (graph && version >= 3 && entry.Has("call_of"))
                return new LayerEntry("", entry.String("call_of"), true, [], entry.StringArray("inbound"), CallOf: true);
            return new LayerEntry(entry.String("type"), entry.String("name"), entry.Bool("trainable"), entry.Object("config"),
                graph ? entry.StringArray("inbound") : []);
        }).ToList();

        Shape? inputShape = null;
        if (!graph)
        {
            inputShape = read.Shape("input_shape");
            if (inputShape.Rank == 0) throw new InvalidDataException($"'{path}': the header's input_shape is empty.");
        }
        long? iterations = read.Has("iterations") ? read.Long("iterations") : null;
        if (iterations < 0) throw new InvalidDataException($"'{path}': the optimizer's iteration count is negative ({iterations}).");
        return new Manifest(version, modelClass, read.String("name"), read.Int("seed"), inputShape, layers,
            graph ? read.StringArray("inputs") : [], graph ? read.StringArray("outputs") : [],
            read.Has("class_names") ? read.StringArray("class_names") : null,
            read.Has("compile") ? read.Object("compile") : null,
            iterations, tensors, slots);
    }

    /// The model the header describes, built (its weights still the seed's initial ones).
    static Model Rebuild(Manifest manifest, string path)
    {
        Model model = manifest.ModelClass == "Functional" ? RebuildGraph(manifest, path) : RebuildSequential(manifest, path);
        if (manifest.ClassNames is { } names) model.ClassNames = names;
        return model;
    }

    static Sequential RebuildSequential(Manifest manifest, string path)
    {
        var inputShape = manifest.InputShape!;
        var model = new Sequential(manifest.Name, manifest.Seed, inputShape);
        foreach (var (type, name, trainable, config, _, _) in manifest.Layers)
        {
            var layer = LayerFactory.CreateLayer(type, config, name, trainable, path);
            if (layer is Input input)
            {
                // Sequential keeps the input as its input shape, not as a layer; accept one that agrees.
                if (input.Shape != inputShape)
                    throw new InvalidDataException($"'{path}': input layer '{name}' declares {input.Shape.ToKerasString()} but the header's input_shape is {inputShape.ToKerasString()}.");
                continue;
            }
            try
            {
                model.Add(layer);
            }
            catch (ArgumentException e)
            {
                throw new InvalidDataException($"'{path}': {e.Message}", e);
            }
        }
        try
        {
            model.Build();
        }
        catch (Exception e) when (e is ArgumentException or InvalidOperationException)
        {
            throw new InvalidDataException($"'{path}': the architecture in the header cannot be built: {e.Message}", e);
        }
        return model;
    }

    /// Calls each layer on the layers its entry names as inbound (which the file lists before it), then
    /// makes the Functional from the named inputs and outputs.
    static Functional RebuildGraph(Manifest manifest, string path)
    {
        var nodes = new Dictionary<string, Node>();
        var calls = new Dictionary<string, (Layer Layer, int Count)>();
        foreach (var (type, name, trainable, config, inbound, callOf) in manifest.Layers)
        {
            Layer layer;
            string nodeName = name;
            if (callOf)
            {
                // A shared layer called again: the layer its first entry made.
                if (!calls.TryGetValue(name, out var first))
                    throw new InvalidDataException($"'{path}': an entry calls layer '{name}' again, but no layer of that name is listed before it.");
                layer = first.Layer;
                calls[name] = (layer, first.Count + 1);
                nodeName = $"{name}#{first.Count}";
            }
            else
            {
                if (calls.ContainsKey(name)) throw new InvalidDataException($"'{path}': the header has two layers named '{name}'.");
                layer = LayerFactory.CreateLayer(type, config, name, trainable, path);
                calls[name] = (layer, 1);
            }
            var sources = inbound.Select(source => nodes.TryGetValue(source, out var node) ? node
                : throw new InvalidDataException($"'{path}': layer '{name}' reads '{source}', which is not a layer listed before it.")).ToArray();
            try
            {
                nodes[nodeName] = (layer, sources.Length) switch
                {
                    (Input input, 0) => Input.Create(input.Shape, name),
                    (MergeLayer merge, _) => merge.Call(sources),
                    (_, 1) => layer.Call(sources[0]),
                    _ => throw new InvalidDataException($"'{path}': layer '{name}' ({type}) lists {sources.Length} inbound layers; it takes {(layer is Input ? 0 : 1)}."),
                };
            }
            catch (ArgumentException e)
            {
                throw new InvalidDataException($"'{path}': layer '{name}' ({type}): {e.Message}", e);
            }
        }
        Node Find(string name, string role) => nodes.TryGetValue(name, out var node) ? node
            : throw new InvalidDataException($"'{path}': the header names '{name}' as {role}, but there is no such layer.");
        try
        {
            return new Functional([.. manifest.Inputs.Select(n => Find(n, "an input"))], [.. manifest.Outputs.Select(n => Find(n, "an output"))], manifest.Name, manifest.Seed);
        }
        catch (Exception e) when (e is ArgumentException or InvalidOperationException)
        {
            throw new InvalidDataException($"'{path}': the architecture in the header cannot be built: {e.Message}", e);
        }
    }

    static void Compile(Model model, JsonObject compile, Manifest manifest, List<Parameter> parameters, Stream stream, long dataStart, string path)
    {
        var read = new ConfigReader(compile, "the compile settings", path);
        var optimizer = LayerFactory.CreateOptimizer(read.Object("optimizer"), path);
        // Version 1: one "loss"; version 2: "losses", one per output, and their "loss_weights".
        List<Losses.Loss> losses = manifest.Version == 1
            ? [LayerFactory.CreateLoss(read.Object("loss"), path)]
            : [.. read.Objects("losses", "loss").Select(entry => LayerFactory.CreateLoss(entry.Item, path))];
        double[]? weights = manifest.Version == 1 ? null : read.Doubles("loss_weights");
        try
        {
            model.Compile(optimizer, losses, weights, read.StringArray("metrics"));
        }
        catch (ArgumentException e)
        {
            throw new InvalidDataException($"'{path}': the compile settings are invalid: {e.Message}", e);
        }
        optimizer.Iterations = manifest.Iterations ?? 0;

        var byName = parameters.ToDictionary(p => p.FullName);
        foreach (var group in manifest.Slots.GroupBy(s => s.Parameter))
        {
            if (!byName.TryGetValue(group.Key, out var p))
                throw new InvalidDataException($"'{path}': the optimizer has state for '{group.Key}', which is not a weight of the model.");
            var entries = group.OrderBy(s => s.Slot).ToList();
            for (int i = 0; i < entries.Count; i++)
            {
                if (entries[i].Slot != i)
                    throw new InvalidDataException($"'{path}': the optimizer slots of '{p.FullName}' are numbered {string.Join(", ", entries.Select(s => s.Slot))}, not 0 to {entries.Count - 1}.");
                if (entries[i].Length != (long)p.Size * sizeof(float))
                    throw new InvalidDataException($"'{path}': optimizer slot {i} of '{p.FullName}' has {entries[i].Length:N0} bytes; the weight {p.Shape} needs {(long)p.Size * sizeof(float):N0}.");
            }
            var values = new float[entries.Count][];
            for (int i = 0; i < values.Length; i++)
            {
                values[i] = new float[p.Size];
                ReadFloats(stream, dataStart + entries[i].Offset, values[i]);
            }
            try
            {
                optimizer.SetSlots(p, values);
            }
            catch (ArgumentException e)
            {
                throw new InvalidDataException($"'{path}': {e.Message}", e);
            }
        }
    }

    static InvalidDataException Corrupt(string path, string detail) =>
        new($"'{path}': file is corrupt or truncated: {detail}.");

    static void ReadFloats(Stream stream, long position, float[] destination)
    {
        stream.Position = position;
        stream.ReadExactly(MemoryMarshal.AsBytes(destination.AsSpan()));
        if (!BitConverter.IsLittleEndian)
        {
            var bits = MemoryMarshal.Cast<float, uint>(destination.AsSpan());
            BinaryPrimitives.ReverseEndianness(bits, bits);
        }
    }

    /// CRC-32 of the first count bytes, read in 1 MiB chunks so a large file is never held in memory.
    static uint ChecksumOf(Stream stream, long count)
    {
        stream.Position = 0;
        var buffer = new byte[(int)Math.Min(count, 1 << 20)];
        uint crc = 0;
        for (long left = count; left > 0;)
        {
            int chunk = (int)Math.Min(left, buffer.Length);
            stream.ReadExactly(buffer, 0, chunk);
            crc = Crc32.Append(crc, buffer.AsSpan(0, chunk));
            left -= chunk;
        }
        return crc;
    }

    /// Writes through to the stream while keeping the CRC-32 and length of everything written.
    sealed class ChecksummedWriter(Stream stream)
    {
        uint crc;
        long length;
        readonly byte[] buffer = BitConverter.IsLittleEndian ? [] : new byte[1 << 16];

        public void Write(ReadOnlySpan<byte> bytes)
        {
            stream.Write(bytes);
            crc = Crc32.Append(crc, bytes);
            length += bytes.Length;
        }

        public void WriteUInt32(uint value)
        {
            Span<byte> bytes = stackalloc byte[4];
            BinaryPrimitives.WriteUInt32LittleEndian(bytes, value);
            Write(bytes);
        }

        public void WriteFloats(ReadOnlySpan<float> values)
        {
            if (BitConverter.IsLittleEndian)
            {
                Write(MemoryMarshal.AsBytes(values));
                return;
            }
            for (int start = 0; start < values.Length; start += buffer.Length / sizeof(float))
            {
                var part = values.Slice(start, Math.Min(buffer.Length / sizeof(float), values.Length - start));
                BinaryPrimitives.ReverseEndianness(MemoryMarshal.Cast<float, uint>(part), MemoryMarshal.Cast<byte, uint>(buffer.AsSpan()));
                Write(buffer.AsSpan(0, part.Length * sizeof(float)));
            }
        }

        /// The CRC-32 of everything written so far, then the final file length.
        public void WriteTrailer()
        {
            Span<byte> trailer = stackalloc byte[TrailerSize];
            BinaryPrimitives.WriteUInt32LittleEndian(trailer, crc);
            BinaryPrimitives.WriteUInt64LittleEndian(trailer[4..], (ulong)(length + TrailerSize));
            stream.Write(trailer);
        }
    }
}

/// CRC-32 as zlib, PNG and ZIP compute it (reflected polynomial 0xEDB88320, initial and final value
/// all ones): CRC-32 of "123456789" is 0xCBF43926. Slicing-by-8: eight 256-entry tables let the loop
/// take 8 bytes per step, which is where the time of checking a large file goes.
internal static class Crc32
{
    static readonly uint[] table = CreateTable();

    static uint[] CreateTable()
    {
        var t = new uint[8 * 256];
        for (uint i = 0; i < 256; i++)
        {
            uint c = i;
            for (int k = 0; k < 8; k++) c = (c & 1) != 0 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
            t[i] = c;
        }
        // t[s * 256 + i]: the CRC of byte i followed by s zero bytes.
        for (int s = 1; s < 8; s++)
            for (int i = 0; i < 256; i++)
                t[s * 256 + i] = (t[(s - 1) * 256 + i] >> 8) ^ t[t[(s - 1) * 256 + i] & 0xff];
        return t;
    }

    public static uint Compute(ReadOnlySpan<byte> data) => Append(0, data);

    /// Continues a CRC: Append(Compute(a), b) == Compute(a followed by b).
    public static uint Append(uint crc, ReadOnlySpan<byte> data)
    {
        var t = table;
        uint c = ~crc;
        while (data.Length >= 8)
        {
            uint one = BinaryPrimitives.ReadUInt32LittleEndian(data) ^ c;
            uint two = BinaryPrimitives.ReadUInt32LittleEndian(data[4..]);
            c = t[7 * 256 + (one & 0xff)] ^ t[6 * 256 + ((one >> 8) & 0xff)] ^ t[5 * 256 + ((one >> 16) & 0xff)] ^ t[4 * 256 + (one >> 24)]
              ^ t[3 * 256 + (two & 0xff)] ^ t[2 * 256 + ((two >> 8) & 0xff)] ^ t[1 * 256 + ((two >> 16) & 0xff)] ^ t[two >> 24];
            data = data[8..];
        }
        foreach (byte b in data) c = t[(c ^ b) & 0xff] ^ (c >> 8);
        return ~c;
    }
}
