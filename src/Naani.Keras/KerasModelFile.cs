using System.IO.Compression;
using System.Text.Json;
using System.Text.Json.Nodes;
using Naani.IO;
using Naani.Losses;
using Naani.Models;
using Naani.Optimizers;
using Naani.Serialization.Hdf5;

namespace Naani.Serialization;

/// Whole Keras models: Keras 3's .keras files (a zip of config.json, metadata.json and model.weights.h5) and tf.keras's
/// whole-model .h5 files (the architecture in the root attribute model_config, the weights under model_weights), read
/// into Naani models; and Naani models written as .keras files and Keras 3 .weights.h5 files.
public static class KerasModelFile
{
    const string Config = "config.json", Metadata = "metadata.json", Weights = "model.weights.h5";
    const long MaxConfigBytes = 64L << 20;

    /// Reads a .keras file or a whole-model .h5 file: the architecture, its weights and, where Naani has them, the
    /// optimizer and loss it was compiled with (as Keras's compile_config says; a training state is not read).
    public static Model Load(string path, int? seed = null)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"Keras model file '{path}' does not exist.", path);
        using (var probe = File.OpenRead(path))
        {
            Span<byte> magic = stackalloc byte[8];
            int n = probe.ReadAtLeast(magic, 8, throwOnEndOfStream: false);
            if (n >= 4 && magic[0] == 'P' && magic[1] == 'K') return LoadKeras(path, seed);
            if (n == 8 && magic.SequenceEqual(Hdf5Writer.Signature)) return LoadH5(path, seed);
        }
        throw new InvalidDataException($"'{path}' is neither a .keras file (a zip) nor an HDF5 file.");
    }

    static Model LoadKeras(string path, int? seed)
    {
        using var zip = OpenZip(path);
        var configEntry = zip.GetEntry(Config) ?? throw new InvalidDataException($"'{path}' is a zip but not a .keras file: it has no {Config}.");
        if (configEntry.Length > MaxConfigBytes) throw new InvalidDataException($"'{path}': {Config} is {configEntry.Length:N0} bytes, more than an architecture needs.");
        string json;
        using (var reader = new StreamReader(configEntry.Open())) json = reader.ReadToEnd();
        var weightsEntry = zip.GetEntry(Weights)
            ?? throw new InvalidDataException($"'{path}' has no {Weights}{(zip.GetEntry("model.weights.npz") is null ? "" : " (its weights are in .npz, which Naani does not read)")}.");
        // The HDF5 reader reads files: the weights go to a temporary file, deleted after. At most the size the archive
        // declares for them is copied (a zip bomb stops there), and the architecture may create no more weights than they hold.
        string temp = Path.Combine(Path.GetTempPath(), $"naani-keras-{Guid.NewGuid():N}.weights.h5");
        try
        {
            long copied = CopyBounded(weightsEntry, temp, path);
            Model model;
            try
            {
                model = KerasJson.Read(json, $"{path}: {Config}", seed, maxParameters: copied / sizeof(float));
            }
            catch (JsonException e)
            {
                throw new InvalidDataException($"'{path}': {Config} is not JSON: {e.Message}", e);
            }
            Compile(model, ParseOrNull(json)?["compile_config"] as JsonObject);
            KerasWeights.Load(model, temp);
            return model;
        }
        catch (InvalidDataException e)
        {
            throw new InvalidDataException($"'{path}': {Weights}: {e.Message.Replace(temp, Weights, StringComparison.Ordinal)}", e);
        }
        finally
        {
            File.Delete(temp);
        }
    }

    static JsonNode? ParseOrNull(string json)
    {
        try
        {
            return JsonNode.Parse(json);
        }
        catch (JsonException)
        {
            return null;
        }
    }

    // Copies an archive entry to a file, refusing more bytes than the entry declares.
    static long CopyBounded(ZipArchiveEntry entry, string file, string path)
    {
        var buffer = new byte[1 << 16];
        long total = 0;
        using var source = entry.Open();
        using var target = File.Create(file);
        int n;
        while ((n = source.Read(buffer)) > 0)
        {
            total += n;
            if (total > entry.Length)
                throw new InvalidDataException($"'{path}': {entry.FullName} decompresses to more than the {entry.Length:N0} bytes the archive declares.");
            target.Write(buffer, 0, n);
        }
        return total;
    }

    static ZipArchive OpenZip(string path)
    {
        try
        {
            return ZipFile.OpenRead(path);
        }
        catch (InvalidDataException e)
        {
            throw new InvalidDataException($"'{path}' is not a readable zip archive (.keras): {e.Message}", e);
        }
    }

    static Model LoadH5(string path, int? seed)
    {
        string config;
        using (var file = Hdf5File.Open(path))
        {
            if (!file.Root.Attributes.TryGetValue("model_config", out var attribute))
                throw new InvalidDataException($"'{path}' is an HDF5 file without the model_config attribute: it holds weights only; build the model and load them with KerasWeights.Load.");
            if (attribute.Count != 1) throw new InvalidDataException($"'{path}': model_config holds {attribute.Count} values, not one JSON string.");
            config = attribute.ReadStrings()[0];
        }
        var model = KerasJson.Read(config, $"{path}: model_config", seed, maxParameters: new FileInfo(path).Length / sizeof(float));
        KerasWeights.Load(model, path);
        return model;
    }

    // Keras's compile_config: {"optimizer": {"class_name": "Adam", "config": {...}} or "adam", "loss": ..., "metrics": [...]}.
    // A model compiled with something Naani lacks is left uncompiled (Compile it yourself); nothing else depends on it.
    static void Compile(Model model, JsonObject? compile)
    {
        if (compile is null) return;
        try
        {
            Optimizer optimizer;
            var o = compile["optimizer"];
            if (o is JsonValue ov) optimizer = Optimizer.Parse(ov.GetValue<string>());
            else if (o is JsonObject oo)
            {
                optimizer = Optimizer.Parse(oo["class_name"]!.GetValue<string>());
                if (oo["config"]?["learning_rate"] is JsonValue lr && lr.TryGetValue<double>(out double rate)) optimizer.LearningRate = rate;
            }
            else return;
            var l = compile["loss"];
            string? lossName = l switch
            {
                JsonValue lv => lv.GetValue<string>(),
                JsonObject lo => lo["config"]?["name"]?.GetValue<string>() ?? KerasJson.SnakeCase(lo["class_name"]!.GetValue<string>()),
                _ => null,
            };
            if (lossName is null) return;
            bool fromLogits = l is JsonObject { } obj && obj["config"]?["from_logits"] is JsonValue fl && fl.TryGetValue<bool>(out bool logits) && logits;
            Loss loss = fromLogits ? lossName switch
            {
                "binary_crossentropy" => new BinaryCrossEntropy(fromLogits: true),
                "categorical_crossentropy" => new CategoricalCrossEntropy(fromLogits: true),
                "sparse_categorical_crossentropy" => new SparseCategoricalCrossEntropy(fromLogits: true),
                _ => Loss.Parse(lossName),
            } : Loss.Parse(lossName);
            bool accuracy = compile["metrics"] is JsonArray metrics && metrics.Any(m => m is JsonValue v && v.TryGetValue<string>(out var name) && name is "accuracy" or "acc");
            model.Compile(optimizer, loss, accuracy ? ["accuracy"] : []);
        }
        catch (Exception e) when (e is ArgumentException or InvalidOperationException or FormatException or NullReferenceException)
        {
            // Leave it uncompiled.
        }
    }

    /// Writes model as a Keras 3 .keras file: config.json (its architecture as Keras 3's JSON), metadata.json and
    /// model.weights.h5 (its weights in Keras 3's layout), which keras.models.load_model reads. Atomic, like every save.
    public static void Save(Model model, string path)
    {
        ArgumentNullException.ThrowIfNull(model);
        if (!path.EndsWith(".keras", StringComparison.OrdinalIgnoreCase))
            throw new ArgumentException($"A Keras model file's name ends in .keras (Keras refuses others); got '{path}'.", nameof(path));
        model.Build();
        string config = KerasJson.Write(model);
        string metadata = new JsonObject { ["keras_version"] = "3.0.0", ["date_saved"] = DateTime.Now.ToString("yyyy-MM-dd@HH:mm:ss", System.Globalization.CultureInfo.InvariantCulture), ["written_by"] = "Naani (Keras 3 format)" }.ToJsonString();
        byte[] weights = WeightsFile(model).ToArray();
        AtomicFile.Write(path, stream =>
        {
            using var zip = new ZipArchive(stream, ZipArchiveMode.Create, leaveOpen: true);
            Entry(zip, Metadata, System.Text.Encoding.UTF8.GetBytes(metadata));
            Entry(zip, Config, System.Text.Encoding.UTF8.GetBytes(config));
            Entry(zip, Weights, weights);
        });
    }

    /// Writes model's weights as a Keras 3 .weights.h5 file (model.load_weights reads it into the same architecture).
    public static void SaveWeights(Model model, string path)
    {
        ArgumentNullException.ThrowIfNull(model);
        model.Build();
        var file = WeightsFile(model);
        AtomicFile.Write(path, file.Write);
    }

    static Hdf5Writer WeightsFile(Model model)
    {
        var writer = new Hdf5Writer();
        var layers = writer.Root.GetOrAddGroup("layers");
        foreach (var (layer, key) in KerasWeights.Keras3Keys(model))
        {
            var vars = layers.GetOrAddGroup(key).GetOrAddGroup("vars");
            var ps = layer.Parameters;
            for (int i = 0; i < ps.Count; i++)
                vars.AddDataset(i.ToString(System.Globalization.CultureInfo.InvariantCulture), ps[i].Shape.ToArray(), ps[i].Value.Data.AsMemory(0, ps[i].Size));
        }
        writer.Root.GetOrAddGroup("vars");   // the model's own variables: none
        return writer;
    }

    static void Entry(ZipArchive zip, string name, byte[] bytes)
    {
        var entry = zip.CreateEntry(name, CompressionLevel.Optimal);
        using var stream = entry.Open();
        stream.Write(bytes);
    }
}
