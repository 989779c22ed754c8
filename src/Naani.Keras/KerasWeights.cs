using Naani.Layers;
using Naani.Models;
using PureHDF;
using PureHDF.VOL.Native;

namespace Naani.Serialization;

/// How Keras weight-file layers are paired with a model's layers.
public enum KerasWeightMatching
{
    /// By name when every model layer that has weights finds its name in the file, else by order.
    Auto,
    /// Each model layer with weights takes the file's layer of the same name; file layers the model lacks are ignored
    /// (so a file with the classifier top loads into the same network without it). Keras's by_name=True.
    ByName,
    /// The k-th model layer with weights takes the k-th file layer with weights; the counts must agree. Keras's default.
    ByOrder,
}

/// One weight tensor as a Keras file stores it.
public sealed record KerasWeight(string Name, int[] Shape, string Dataset);

/// One layer of a Keras weight file: its name and its weights in Keras's order (kernel, bias; gamma, beta, moving_mean, moving_variance).
public sealed record KerasLayerWeights(string Name, IReadOnlyList<KerasWeight> Weights);

/// What Load did: the model layers given weights (with the file layer each came from) and the file layers left unused.
public sealed record KerasLoadResult(KerasWeightMatching Matching, IReadOnlyList<(string ModelLayer, string FileLayer)> Loaded, IReadOnlyList<string> Unused);

/// Reads Keras HDF5 weight files (.h5) into a Naani model of the same architecture.
///
/// The layout is Keras's HDF5 weights format, as tf.keras's model.save_weights('x.h5'), model.save('x.h5') (under the
/// group model_weights) and keras.applications' published files write it: the attribute layer_names lists the layers
/// in order (split into layer_names0, layer_names1, ... when over 64 KB), each layer is a group whose attribute
/// weight_names lists its weights in order, and each weight is a dataset at group/weight_name. Keras 3's own
/// .weights.h5 layout (layers/NAME/vars/0, ...) is a different format and is not read here.
///
/// Keras's tensors load without any transpose: Conv2D kernels are HWIO and Dense kernels (inputs, units) in both, and
/// a Dense after Flatten sees the same NHWC order. float32 datasets are read straight into the parameters; float64 and
/// float16 are converted.
public static class KerasWeights
{
    /// Loads the weights of an HDF5 file into model (built first if needed). Every name, count and shape is checked
    /// before any weight changes; a mismatch is an InvalidDataException naming the layer, the weight, the file and both
    /// shapes, and leaves the model as it was.
    public static KerasLoadResult Load(Model model, string h5Path, KerasWeightMatching matching = KerasWeightMatching.Auto)
    {
        ArgumentNullException.ThrowIfNull(model);
        model.Build();
        using var file = Open(h5Path);
        var root = Parsing(h5Path, () => WeightsGroup(file, h5Path));
        var fileLayers = Parsing(h5Path, () => ReadLayers(root, h5Path)).Where(l => l.Weights.Count > 0).ToList();
        var modelLayers = model.Layers.Where(l => l.Parameters.Count > 0).ToList();

        var used = matching;
        if (matching == KerasWeightMatching.Auto)
            used = modelLayers.All(l => fileLayers.Any(f => f.Name == l.Name)) ? KerasWeightMatching.ByName : KerasWeightMatching.ByOrder;
        var pairs = used == KerasWeightMatching.ByName ? PairByName(model, modelLayers, fileLayers, h5Path) : PairByOrder(model, modelLayers, fileLayers, h5Path);

        foreach (var (layer, source) in pairs) Check(layer, source, h5Path);
        foreach (var (layer, source) in pairs)
            for (int i = 0; i < layer.Parameters.Count; i++)
                ReadInto(root, source.Weights[i], layer.Parameters[i], h5Path);

        var loadedNames = pairs.Select(p => p.Source.Name).ToHashSet();
        return new KerasLoadResult(used, [.. pairs.Select(p => (p.Layer.Name, p.Source.Name))],
            [.. fileLayers.Where(f => !loadedNames.Contains(f.Name)).Select(f => f.Name)]);
    }

    /// The layers of a Keras weight file, in the file's order, with their weights' names and shapes (layers without
    /// weights included, with none).
    public static IReadOnlyList<KerasLayerWeights> ReadLayers(string h5Path)
    {
        using var file = Open(h5Path);
        return Parsing(h5Path, () => ReadLayers(WeightsGroup(file, h5Path), h5Path));
    }

    /// PureHDF reads the file's structures lazily and reports a malformed one with whatever the decoding of that
    /// structure threw: NotSupportedException for an unknown message type, a plain Exception ("The file is too small")
    /// for a truncated file, an IndexOutOfRange or Overflow for a corrupt size. Each means the same to the caller: the
    /// file is corrupt.
    static T Parsing<T>(string path, Func<T> read)
    {
        try
        {
            return read();
        }
        catch (Exception e) when (IsCorruptFile(e))
        {
            throw new InvalidDataException($"'{path}' is a corrupt HDF5 file: reading its layers and weight names failed ({Describe(e)}).", e);
        }
    }

    /// Anything but a missing or forbidden file and our own message. An IOException too: the file exists and is open,
    /// so reading fails for a corrupt address (EINVAL, "Invalid argument", for an offset past 2^63: found by fuzzing)
    /// or past the end (EndOfStreamException); a failing disk still shows in the message kept. OutOfMemoryException
    /// too: PureHDF allocates a structure's buffer at the size the file gives before reading it, so a corrupt size asks
    /// for gigabytes (found by fuzzing: a 19 KB file asked for 2 GB); where the runtime's heap limit refuses that, the
    /// one failed allocation says the file is corrupt, and nothing was allocated.
    static bool IsCorruptFile(Exception e) =>
        e is not (InvalidDataException or FileNotFoundException or DirectoryNotFoundException or UnauthorizedAccessException);

    static string Describe(Exception e) => e is OutOfMemoryException
        ? $"a size in it asks for more memory than this process may take ({e.Message})"
        : $"{e.GetType().Name}: {e.Message}";

    static NativeFile Open(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"Keras weight file '{path}' does not exist.", path);
        try
        {
            Hdf5Guard.Check(path);
            return H5File.OpenRead(path);
        }
        catch (Exception e) when (IsCorruptFile(e))
        {
            throw new InvalidDataException($"'{path}' is not an HDF5 file that can be read: {Describe(e)}", e);
        }
    }

    /// The group holding layer_names: the root (save_weights), or model_weights (a whole-model .h5).
    static IH5Group WeightsGroup(NativeFile file, string path)
    {
        if (HasStrings(file, "layer_names")) return file;
        if (file.LinkExists("model_weights") && file.Get("model_weights") is IH5Group group && HasStrings(group, "layer_names")) return group;
        string hint = file.LinkExists("layers") ? " It looks like a Keras 3 '.weights.h5' file (layers/NAME/vars/...), which this reader does not handle: save with legacy HDF5 (model.save_weights('x.h5') in tf.keras) instead." : "";
        throw new InvalidDataException($"'{path}' is an HDF5 file but not Keras weights: it has no 'layer_names' attribute at its root or in 'model_weights'.{hint}");
    }

    static List<KerasLayerWeights> ReadLayers(IH5Group root, string path)
    {
        var layers = new List<KerasLayerWeights>();
        foreach (var name in ReadStrings(root, "layer_names", path)!)
        {
            if (!root.LinkExists(name) || root.Get(name) is not IH5Group group)
                throw new InvalidDataException($"'{path}': layer '{name}' is listed in layer_names but has no group of that name.");
            var weights = new List<KerasWeight>();
            foreach (var weightName in ReadStrings(group, "weight_names", path) ?? [])
            {
                string dataset = $"{name}/{weightName}";
                if (!root.LinkExists(dataset) || root.Get(dataset) is not IH5Dataset data)
                    throw new InvalidDataException($"'{path}': layer '{name}' lists weight '{weightName}' but the file has no dataset '{dataset}'.");
                weights.Add(new KerasWeight(ShortName(weightName), [.. data.Space.Dimensions.Select(d => checked((int)d))], dataset));
            }
            layers.Add(new KerasLayerWeights(name, weights));
        }
        return layers;
    }

    /// 'block1_conv1/kernel:0' -> 'kernel'.
    static string ShortName(string weightName)
    {
        string last = weightName[(weightName.LastIndexOf('/') + 1)..];
        int colon = last.LastIndexOf(':');
        return colon > 0 ? last[..colon] : last;
    }

    static bool HasStrings(IH5Object obj, string name) => obj.AttributeExists(name) || obj.AttributeExists(name + "0");

    /// A list-of-strings attribute, joined from its chunks name0, name1, ... when Keras split it; null when absent.
    static string[]? ReadStrings(IH5Object obj, string name, string path)
    {
        if (obj.AttributeExists(name)) return ReadStrings(obj.Attribute(name), obj, path);
        if (!obj.AttributeExists(name + "0")) return null;
        var all = new List<string>();
        for (int i = 0; obj.AttributeExists($"{name}{i}"); i++) all.AddRange(ReadStrings(obj.Attribute($"{name}{i}"), obj, path));
        return [.. all];
    }

    static string[] ReadStrings(IH5Attribute attribute, IH5Object owner, string path)
    {
        // Keras writes np.asarray([]) for a layer without weights: an empty float64 array, not strings.
        if (attribute.Space.Dimensions.Aggregate(1UL, (a, b) => a * b) == 0) return [];
        // h5py writes NumPy byte strings (fixed length); other writers variable-length strings.
        if (attribute.Type.Class is not (H5DataTypeClass.String or H5DataTypeClass.VariableLength))
            throw new InvalidDataException($"'{path}': attribute '{attribute.Name}' of '{owner.Name}' should hold strings; it holds {attribute.Type.Class}.");
        try
        {
            return attribute.Space.Rank == 0 ? [attribute.Read<string>()] : attribute.Read<string[]>();
        }
        catch (Exception e) when (e is not InvalidDataException)
        {
            throw new InvalidDataException($"'{path}': attribute '{attribute.Name}' of '{owner.Name}' cannot be read as strings: {e.Message}", e);
        }
    }

    static List<(Layer Layer, KerasLayerWeights Source)> PairByName(Model model, List<Layer> layers, List<KerasLayerWeights> fileLayers, string path)
    {
        var missing = layers.Where(l => !fileLayers.Any(f => f.Name == l.Name)).Select(l => $"'{l.Name}'").ToList();
        if (missing.Count > 0)
            throw new InvalidDataException(
                $"'{path}' has no weights for layer(s) {string.Join(", ", missing)} of model '{model.Name}'; its layers with weights are: " +
                $"{string.Join(", ", fileLayers.Select(f => f.Name))}. Rename the model's layers to match, or load by order.");
        return [.. layers.Select(l => (l, fileLayers.First(f => f.Name == l.Name)))];
    }

    static List<(Layer Layer, KerasLayerWeights Source)> PairByOrder(Model model, List<Layer> layers, List<KerasLayerWeights> fileLayers, string path)
    {
        if (layers.Count != fileLayers.Count)
            throw new InvalidDataException(
                $"'{path}' has weights for {fileLayers.Count} layer(s) ({string.Join(", ", fileLayers.Select(f => f.Name))}) but model '{model.Name}' has " +
                $"{layers.Count} layer(s) with weights ({string.Join(", ", layers.Select(l => l.Name))}), and not all the model's names are in the file: " +
                "matching by order needs the same count, matching by name the same names.");
        return [.. layers.Zip(fileLayers)];
    }

    static void Check(Layer layer, KerasLayerWeights source, string path)
    {
        string what = $"Layer '{layer.Name}' ({layer.TypeName})" + (layer.Name == source.Name ? "" : $", matched by order with the file's layer '{source.Name}',");
        var ps = layer.Parameters;
        if (ps.Count != source.Weights.Count)
            throw new InvalidDataException(
                $"{what} has {ps.Count} weight(s) ({string.Join(", ", ps.Select(p => p.Name))}) but '{path}' has {source.Weights.Count} for it " +
                $"({string.Join(", ", source.Weights.Select(w => w.Name))}).");
        for (int i = 0; i < ps.Count; i++)
        {
            var w = source.Weights[i];
            // Weights go by position, as in Keras; a name that is another weight of this layer means the order differs.
            if (w.Name != ps[i].Name && ps.Any(p => p.Name == w.Name))
                throw new InvalidDataException($"{what}: weight {i} is '{ps[i].Name}' in the model but '{w.Name}' in '{path}' (dataset {w.Dataset}).");
            if (!w.Shape.AsSpan().SequenceEqual(ps[i].Shape.Dims))
                throw new InvalidDataException(
                    $"{what}: weight '{ps[i].Name}' has shape {ps[i].Shape} in the model but ({string.Join(", ", w.Shape)}{(w.Shape.Length == 1 ? "," : "")}) " +
                    $"in '{path}' (dataset {w.Dataset}).");
        }
    }

    static void ReadInto(IH5Group root, KerasWeight weight, Parameter parameter, string path)
    {
        var dataset = root.Dataset(weight.Dataset);
        var destination = parameter.Value.Data;
        try
        {
            var type = dataset.Type;
            if (type.Class != H5DataTypeClass.FloatingPoint)
                throw new InvalidDataException($"'{path}': dataset {weight.Dataset} holds {type.Class} values, not floating point.");
            switch (type.Size)
            {
                case 4:
                    dataset.Read(destination);
                    break;
                case 8:
                    var doubles = dataset.Read<double[]>();
                    for (int i = 0; i < destination.Length; i++) destination[i] = (float)doubles[i];
                    break;
                case 2:
                    var halves = dataset.Read<Half[]>();
                    for (int i = 0; i < destination.Length; i++) destination[i] = (float)halves[i];
                    break;
                default:
                    throw new InvalidDataException($"'{path}': dataset {weight.Dataset} holds {type.Size}-byte floats; expected 2, 4 or 8.");
            }
        }
        catch (Exception e) when (e is not InvalidDataException)
        {
            throw new InvalidDataException(
                $"'{path}': reading dataset {weight.Dataset} into '{parameter.FullName}' failed ({e.Message}); the weights read before it are in the model, " +
                "the rest are not: load the file again once it is whole.", e);
        }
    }
}
