using System.Buffers.Binary;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text.Json;
using System.Text.Json.Nodes;
using Naani.Callbacks;
using Naani.Models;

namespace Naani.Serialization;

/// A checkpoint: a model file (docs/FORMAT.md) whose header also holds "training_state", everything a run
/// needs to continue bit for bit: where it stands (epoch, step, the epoch's running sums, the history), the
/// random streams (the model's, each layer's, the shuffling generator and the epoch's order of samples),
/// the callbacks' state, and the identity of the data. Model.Load reads a checkpoint as a plain model.
/// The state's layout is in docs/FORMAT.md ("Checkpoints").
public static class Checkpoint
{
    public const int StateVersion = 1;

    /// What a checkpoint says about its run, read without touching a model.
    public sealed record Info(string Path, int Epoch, int Step, int Epochs, int StepsPerEpoch, int BatchSize, int Samples,
        int Threads, string DataFingerprint, string DataDescription, bool Stopped, JsonObject? User)
    {
        /// Steps from the start of the run: the checkpoint's place in it.
        public long Position => (long)Epoch * StepsPerEpoch + Step;
    }

    /// Writes model, optimizer and run state to path atomically (a temporary file renamed over path).
    /// user is stored as it is (the CLI keeps its command line there).
    public static void Save(Model model, TrainingRun run, string path, JsonObject? user = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(run);
        ModelFile.Save(model, path, includeOptimizer: true, start => Describe(model, run, user, start));
    }

    static (JsonObject State, List<byte[]> Blocks) Describe(Model model, TrainingRun run, JsonObject? user, long start)
    {
        var blocks = new List<byte[]>();
        long offset = start;
        JsonObject Block(byte[] bytes)
        {
            var entry = new JsonObject { ["offset"] = offset, ["length"] = bytes.LongLength };
            offset += bytes.LongLength;
            blocks.Add(bytes);
            return entry;
        }

        var history = new JsonObject();
        foreach (var (key, values) in run.History.Values)
            history[key] = new JsonArray([.. values.Select(DoubleToJson)]);
        var layers = new JsonObject();
        foreach (var (key, layer) in model.ComputingLayers())
            if (layer.Generator is { } g) layers[key] = g.StateToHex();
        var callbacks = new JsonArray();
        foreach (var (callback, ordinal) in WithOrdinals(run.Callbacks))
        {
            if (callback.GetState() is not { } state) continue;
            var entry = new JsonObject
            {
                ["type"] = callback.GetType().Name,
                ["ordinal"] = ordinal,
                ["values"] = state.Values.DeepClone(),
            };
            if (state.Tensors is { } tensors)
                entry["tensors"] = new JsonArray([.. tensors.Select(t =>
                {
                    var e = Block(MemoryMarshal.AsBytes(t.Value.AsSpan()).ToArray());
                    e["name"] = t.Key;
                    return (JsonNode)e;
                })]);
            callbacks.Add(entry);
        }

        var info = run.Info;
        var json = new JsonObject
        {
            ["version"] = StateVersion,
            ["epoch"] = run.Epoch,
            ["step"] = run.Step,
            ["epochs"] = info.Epochs,
            ["steps_per_epoch"] = info.StepsPerEpoch,
            ["batch_size"] = info.BatchSize,
            ["samples"] = info.Samples,
            ["validation_samples"] = info.ValidationSamples,
            ["threads"] = Threading.MaxThreads,
            ["data"] = new JsonObject { ["fingerprint"] = run.DataFingerprint, ["description"] = run.DataDescription },
            ["loss_sum"] = DoubleToJson(run.LossSum),
            ["output_loss_sums"] = new JsonArray([.. run.OutputLossSums.Select(DoubleToJson)]),
            ["correct"] = run.Correct,
            ["seen"] = run.Seen,
            ["epoch_seconds"] = run.EpochSeconds,
            ["stopped"] = model.StopTraining,
            ["skipped_batches"] = run.SkippedBatches,
            ["history"] = history,
            ["model_random"] = model.RandomGenerator.StateToHex(),
            ["layer_random"] = layers,
            ["shuffle_random"] = run.ShuffleRandom?.StateToHex(),
            ["order"] = run.Order is { } order ? Block(MemoryMarshal.AsBytes(order.AsSpan()).ToArray()) : null,
            ["callbacks"] = callbacks,
            ["user"] = user?.DeepClone(),
        };
        return (json, blocks);
    }

    /// Reads a checkpoint's run state. The whole file is checked first, as Model.Load checks it (CRC, sizes,
    /// architecture); a file that is not a checkpoint, or is damaged, is an InvalidDataException naming it.
    public static Info Read(string path)
    {
        ModelFile.Load(path);
        var (state, _, _) = ReadState(path);
        return ToInfo(path, state);
    }

    /// Puts model and run back where the checkpoint at path was: weights, optimizer slots and iterations, the
    /// random streams, the epoch and step, the running sums, the history and the callbacks' state. The model
    /// must be the same architecture compiled with the same optimizer settings, the run on the same data
    /// (fingerprint), batch size and epoch length; anything else is refused with a message saying what differs.
    public static Info Restore(Model model, TrainingRun run, string path)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(run);
        var saved = ModelFile.Load(path);
        var (state, dataStart, dataLength) = ReadState(path);
        var info = ToInfo(path, state);

        var runInfo = run.Info;
        if (info.BatchSize != runInfo.BatchSize || info.Samples != runInfo.Samples || info.StepsPerEpoch != runInfo.StepsPerEpoch)
            throw new InvalidOperationException(
                $"Checkpoint '{path}' was made training on {info.Samples} samples in batches of {info.BatchSize} ({info.StepsPerEpoch} steps an epoch); " +
                $"this run has {runInfo.Samples} samples in batches of {runInfo.BatchSize} ({runInfo.StepsPerEpoch} steps): resume with the same data and batch size, or start a new run.");
        if (info.DataFingerprint != run.DataFingerprint)
            throw new InvalidOperationException(
                $"Checkpoint '{path}' was made on other data ({info.DataDescription}, checksum {info.DataFingerprint}) than this run's " +
                $"({run.DataDescription}, checksum {run.DataFingerprint}): resume on the data the run started with, or start a new run.");
        CopyModelState(saved, model, path);

        model.RandomGenerator.SetStateFromHex(Text(state, "model_random", path));
        var layerStates = state["layer_random"] as JsonObject ?? throw Bad(path, "'layer_random' is missing");
        foreach (var (key, layer) in model.ComputingLayers())
            if (layer.Generator is { } g)
                g.SetStateFromHex(layerStates[key]?.GetValue<string>() ?? throw Bad(path, $"layer '{key}' has no random state"));
        if (run.ShuffleRandom is { } shuffle)
            shuffle.SetStateFromHex(Text(state, "shuffle_random", path));
        if (run.Order is { } order)
        {
            var bytes = ReadBlock(path, state["order"] as JsonObject, dataStart, dataLength, (long)order.Length * sizeof(int), "order");
            var saved32 = MemoryMarshal.Cast<byte, int>(bytes);
            if (!IsPermutation(saved32)) throw Bad(path, "the saved order of samples is not a permutation of the samples");
            saved32.CopyTo(order);
        }

        run.Epoch = info.Epoch;
        run.Step = info.Step;
        run.LossSum = DoubleFromJson(state["loss_sum"], path);
        var sums = state["output_loss_sums"] as JsonArray ?? throw Bad(path, "'output_loss_sums' is missing");
        if (sums.Count != run.OutputLossSums.Length) throw Bad(path, $"it has {sums.Count} output losses; the model has {run.OutputLossSums.Length} outputs");
        for (int k = 0; k < sums.Count; k++) run.OutputLossSums[k] = DoubleFromJson(sums[k], path);
        run.Correct = Number<long>(state, "correct", path);
        run.Seen = Number<int>(state, "seen", path);
        run.EpochSeconds = Number<double>(state, "epoch_seconds", path);
        run.SkippedBatches = Number<int>(state, "skipped_batches", path);
        run.Stopped = info.Stopped;
        var history = new History();
        if (state["history"] is JsonObject h)
            foreach (var (key, values) in h)
                history.Set(key, [.. (values as JsonArray ?? throw Bad(path, $"history '{key}' is not a list")).Select(v => DoubleFromJson(v, path))]);
        run.History = history;

        var callbackStates = (state["callbacks"] as JsonArray ?? []).OfType<JsonObject>()
            .ToDictionary(c => (c["type"]?.GetValue<string>() ?? "", c["ordinal"]?.GetValue<int>() ?? 0));
        foreach (var (callback, ordinal) in WithOrdinals(run.Callbacks))
        {
            if (!callbackStates.TryGetValue((callback.GetType().Name, ordinal), out var entry)) continue;
            Dictionary<string, float[]>? tensors = null;
            if (entry["tensors"] is JsonArray list)
            {
                tensors = [];
                foreach (var t in list.OfType<JsonObject>())
                {
                    long length = t["length"]?.GetValue<long>() ?? -1;
                    if (length < 0 || length % sizeof(float) != 0) throw Bad(path, $"a tensor of callback {callback.GetType().Name} has length {length}");
                    var bytes = ReadBlock(path, t, dataStart, dataLength, length, $"{callback.GetType().Name} tensor");
                    tensors[t["name"]?.GetValue<string>() ?? ""] = MemoryMarshal.Cast<byte, float>(bytes).ToArray();
                }
            }
            callback.SetState(new CallbackState(entry["values"] as JsonObject ?? [], tensors));
        }
        return info;
    }

    /// The saved model's weights, optimizer slots and step count into model, which must have the same weights
    /// (names and shapes) and be compiled with the same optimizer settings.
    static void CopyModelState(Model saved, Model model, string path)
    {
        var from = saved.Parameters;
        var to = model.Parameters;
        string Describe(IReadOnlyList<Layers.Parameter> ps) => string.Join(", ", ps.Select(p => $"{p.FullName} {p.Shape}"));
        if (from.Count != to.Count || from.Zip(to).Any(p => p.First.FullName != p.Second.FullName || p.First.Shape != p.Second.Shape))
            throw new InvalidOperationException($"Checkpoint '{path}' holds another architecture than model '{model.Name}': it has weights {Describe(from)}; the model has {Describe(to)}.");
        if (model.Optimizer is not { } optimizer || saved.Optimizer is not { } savedOptimizer)
            throw new InvalidOperationException($"Checkpoint '{path}': the model must be compiled, and the checkpoint hold an optimizer, to resume training.");
        string a = savedOptimizer.GetConfig().ToJsonString(), b = optimizer.GetConfig().ToJsonString();
        if (a != b)
            throw new InvalidOperationException($"Checkpoint '{path}' was trained with optimizer {a}; model '{model.Name}' is compiled with {b}: resume with the same optimizer settings.");
        for (int i = 0; i < to.Count; i++) from[i].Value.Data.AsSpan().CopyTo(to[i].Value.Data);
        var byName = to.ToDictionary(p => p.FullName);
        optimizer.ClearSlots();
        foreach (var (p, slots) in savedOptimizer.GetSlots())
            optimizer.SetSlots(byName[p.FullName], slots);
        optimizer.Iterations = savedOptimizer.Iterations;
    }

    /// The "training_state" object of a file Model.Load has already checked, with the data region's start and length.
    static (JsonObject State, long DataStart, long DataLength) ReadState(string path)
    {
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read);
        Span<byte> preamble = stackalloc byte[16];
        stream.ReadExactly(preamble);
        uint headerLength = BinaryPrimitives.ReadUInt32LittleEndian(preamble[12..]);
        if (headerLength > ModelFile.MaxHeaderLength || 16 + (long)headerLength + 12 > stream.Length) throw Bad(path, "the header length does not fit the file");
        var bytes = new byte[headerLength];
        stream.ReadExactly(bytes);
        JsonObject header;
        try
        {
            header = JsonNode.Parse(bytes) as JsonObject ?? throw Bad(path, "the header is not a JSON object");
        }
        catch (JsonException e)
        {
            throw Bad(path, $"the header is not valid JSON: {e.Message}");
        }
        var state = header["training_state"] as JsonObject
            ?? throw new InvalidDataException($"'{path}' is a model file but not a checkpoint: it has no training state to resume from.");
        int version = Number<int>(state, "version", path);
        if (version != StateVersion)
            throw new InvalidDataException($"'{path}' has training state version {version}; this Naani resumes version {StateVersion}.");
        long dataStart = 16 + headerLength;
        return (state, dataStart, stream.Length - 12 - dataStart);
    }

    static Info ToInfo(string path, JsonObject state)
    {
        var data = state["data"] as JsonObject ?? throw Bad(path, "'data' is missing");
        var info = new Info(path, Number<int>(state, "epoch", path), Number<int>(state, "step", path), Number<int>(state, "epochs", path),
            Number<int>(state, "steps_per_epoch", path), Number<int>(state, "batch_size", path), Number<int>(state, "samples", path),
            Number<int>(state, "threads", path), Text(data, "fingerprint", path), Text(data, "description", path),
            state["stopped"]?.GetValue<bool>() ?? false, state["user"] as JsonObject);
        if (info.Epoch < 0 || info.Step < 0 || info.Step > info.StepsPerEpoch || info.StepsPerEpoch <= 0 || info.BatchSize <= 0 || info.Samples <= 0)
            throw Bad(path, $"epoch {info.Epoch}, step {info.Step} of {info.StepsPerEpoch}, batch {info.BatchSize}, {info.Samples} samples do not describe a run");
        return info;
    }

    static byte[] ReadBlock(string path, JsonObject? entry, long dataStart, long dataLength, long expectedLength, string what)
    {
        if (entry is null) throw Bad(path, $"the {what} block is missing");
        long offset = entry["offset"]?.GetValue<long>() ?? -1, length = entry["length"]?.GetValue<long>() ?? -1;
        if (length != expectedLength) throw Bad(path, $"the {what} block has {length} bytes; this run needs {expectedLength}");
        if (offset < 0 || offset > dataLength - length) throw Bad(path, $"the {what} block [{offset}, {offset + length}) lies outside the data region of {dataLength} bytes");
        var bytes = new byte[length];
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read);
        stream.Position = dataStart + offset;
        stream.ReadExactly(bytes);
        return bytes;
    }

    static bool IsPermutation(ReadOnlySpan<int> values)
    {
        var seen = new bool[values.Length];
        foreach (int v in values)
        {
            if ((uint)v >= (uint)values.Length || seen[v]) return false;
            seen[v] = true;
        }
        return true;
    }

    static IEnumerable<(Callback Callback, int Ordinal)> WithOrdinals(IReadOnlyList<Callback> callbacks)
    {
        var counts = new Dictionary<Type, int>();
        foreach (var c in callbacks)
        {
            int n = counts.GetValueOrDefault(c.GetType());
            counts[c.GetType()] = n + 1;
            yield return (c, n);
        }
    }

    static JsonNode DoubleToJson(double value) => JsonNumbers.ToJson(value);

    static double DoubleFromJson(JsonNode? node, string path)
    {
        try
        {
            return JsonNumbers.FromJson(node);
        }
        catch (FormatException e)
        {
            throw Bad(path, e.Message.TrimEnd('.'));
        }
    }

    static T Number<T>(JsonObject state, string key, string path)
    {
        try
        {
            return state[key] is { } node ? node.GetValue<T>() : throw Bad(path, $"'{key}' is missing");
        }
        catch (Exception e) when (e is FormatException or InvalidOperationException)
        {
            throw Bad(path, $"'{key}' is not a number of the right kind");
        }
    }

    static string Text(JsonObject state, string key, string path) =>
        state[key] is JsonValue v && v.TryGetValue<string>(out var s) ? s : throw Bad(path, $"'{key}' is missing or not text");

    static InvalidDataException Bad(string path, string detail) => new($"'{path}': the checkpoint's training state is damaged: {detail}.");
}
