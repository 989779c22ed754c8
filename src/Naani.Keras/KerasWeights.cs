using Naani.Layers;
using Naani.Models;
using Naani.Serialization.Hdf5;

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
/// .weights.h5 layout (layers/KEY/vars/0, ...) is read too (LoadKeras3), and written by KerasModelFile.
///
/// Keras's tensors load without any transpose: Conv2D kernels are HWIO and Dense kernels (inputs, units) in both, and
/// a Dense after Flatten sees the same NHWC order. float32 datasets are read straight into the parameters; float64 and
/// float16 are converted. The file is read by Naani's own bounded HDF5 reader (Hdf5/), which needs no other package.
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
        if (IsKeras3(file.Root)) return LoadKeras3(model, file, h5Path, matching);
        var root = WeightsGroup(file, h5Path);
        var fileLayers = ReadLayers(root, h5Path).Where(l => l.Weights.Count > 0).ToList();
        // The preprocess_input layer Naani puts in front of VGG16 and ResNet50 is in no file Keras wrote: it keeps its values then.
        var modelLayers = model.Layers.Where(l => l.Parameters.Count > 0 && (l.Name != Architectures.PreprocessInputName || fileLayers.Any(f => f.Name == l.Name))).ToList();

        var used = matching;
        if (matching == KerasWeightMatching.Auto)
            used = modelLayers.All(l => fileLayers.Any(f => f.Name == l.Name)) ? KerasWeightMatching.ByName : KerasWeightMatching.ByOrder;
        var pairs = used == KerasWeightMatching.ByName ? PairByName(model, modelLayers, fileLayers, h5Path) : PairByOrder(model, modelLayers, fileLayers, h5Path);

        Apply(pairs, root, h5Path);
        var loadedNames = pairs.Select(p => p.Source.Name).ToHashSet();
        return new KerasLoadResult(used, [.. pairs.Select(p => (p.Layer.Name, p.Source.Name))],
            [.. fileLayers.Where(f => !loadedNames.Contains(f.Name)).Select(f => f.Name)]);
    }

    /// The layers of a Keras weight file, in the file's order, with their weights' names and shapes (layers without
    /// weights included, with none).
    public static IReadOnlyList<KerasLayerWeights> ReadLayers(string h5Path)
    {
        using var file = Open(h5Path);
        return ReadLayers(WeightsGroup(file, h5Path), h5Path);
    }

    /// Naani's own HDF5 reader (Hdf5/): it checks every address and size against the file before reading or
    /// allocating and follows no chain of structures without a bound, so any malformed file is an
    /// InvalidDataException naming it and what is wrong (docs/RELIABILITY.md, "Fuzzed readers"). A failing disk is
    /// still an IOException.
    static Hdf5File Open(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"Keras weight file '{path}' does not exist.", path);
        return Hdf5File.Open(path);
    }

    /// The group holding layer_names: the root (save_weights), or model_weights (a whole-model .h5).
    static Hdf5Group WeightsGroup(Hdf5File file, string path)
    {
        var root = file.Root;
        if (HasStrings(root, "layer_names")) return root;
        if (root.TryGet("model_weights") is Hdf5Group group && HasStrings(group, "layer_names")) return group;
        throw new InvalidDataException($"'{path}' is an HDF5 file but not Keras weights: it has no 'layer_names' attribute at its root or in 'model_weights', " +
            "and no 'layers' group (Keras 3's .weights.h5).");
    }

    // Keras 3's own layout (model.save_weights('x.weights.h5'), and model.weights.h5 inside a .keras file): no
    // layer_names; a group per layer at layers/KEY/vars holding datasets 0, 1, ... in the order the layer created its
    // variables (kernel, bias; gamma, beta, moving_mean, moving_variance). KEY is not the layer's name: Keras 3 names
    // each layer of model.layers by its class in snake case, numbered by class in the model's order (conv2d, conv2d_1,
    // dense, ...; saving_lib._save_container_state). tf.keras 2.13 wrote _layer_checkpoint_dependencies for layers.
    static bool IsKeras3(Hdf5Group root) =>
        !HasStrings(root, "layer_names") && root.TryGet("model_weights") is null
        && (root.TryGet("layers") is Hdf5Group || root.TryGet("_layer_checkpoint_dependencies") is Hdf5Group);

    /// Keras 3's key of each of a model's layers in a .weights.h5 file, in the model's order.
    public static IReadOnlyList<(Layer Layer, string Key)> Keras3Keys(Model model) => Keras3Keys(model, withPreprocessing: true);

    // withPreprocessing: false leaves out Naani's preprocess_input layer, for files Keras wrote (which never hold it).
    static List<(Layer Layer, string Key)> Keras3Keys(Model model, bool withPreprocessing)
    {
        var used = new Dictionary<string, int>();
        var keys = new List<(Layer, string)>();
        foreach (var layer in model.Layers)
        {
            // Keras's Sequential.layers leaves the input out (it has no variables anyway).
            if (layer is Input || (!withPreprocessing && layer.Name == Architectures.PreprocessInputName)) continue;
            string name = KerasJson.SnakeCase(KerasJson.ClassName(layer));
            int seen = used.TryGetValue(name, out int n) ? n + 1 : 0;
            used[name] = seen;
            keys.Add((layer, seen == 0 ? name : $"{name}_{seen}"));
        }
        return keys;
    }

    static KerasLoadResult LoadKeras3(Model model, Hdf5File file, string path, KerasWeightMatching matching)
    {
        if (matching == KerasWeightMatching.ByName)
            throw new InvalidDataException($"'{path}' is a Keras 3 weight file, whose layers are keyed by class and position (conv2d, conv2d_1, ...), not by name: load it by order.");
        string container = file.Root.TryGet("layers") is Hdf5Group ? "layers" : "_layer_checkpoint_dependencies";
        // A file Naani wrote keys preprocess_input like any layer; Keras's own files (ImageNet weights) lack it, and the
        // layers after it then have the keys Keras gave them without it.
        var keys = Keras3Keys(model, withPreprocessing: true);
        if (keys.Any(k => k.Layer.Parameters.Count > 0 && file.Root.TryGet($"{container}/{k.Key}/vars") is not Hdf5Group { Links.Count: > 0 }))
            keys = Keras3Keys(model, withPreprocessing: false);
        var pairs = new List<(Layer Layer, KerasLayerWeights Source)>();
        foreach (var (layer, key) in keys)
        {
            if (layer.Parameters.Count == 0) continue;
            string vars = $"{container}/{key}/vars";
            if (file.Root.TryGet(vars) is not Hdf5Group group)
                throw new InvalidDataException(
                    $"'{path}' has no weights for layer '{layer.Name}' ({layer.TypeName}) of model '{model.Name}': Keras 3 keeps them at '{vars}', which is " +
                    $"missing; the file's layers are: {string.Join(", ", ((Hdf5Group)file.Root.TryGet(container)!).Links.Keys.Order(StringComparer.Ordinal))}.");
            var weights = new List<KerasWeight>();
            for (int i = 0; group.TryGet(i.ToString(System.Globalization.CultureInfo.InvariantCulture)) is Hdf5Dataset data; i++)
            {
                if (data.Shape.Any(d => d > int.MaxValue))
                    throw new InvalidDataException($"'{path}': dataset '{vars}/{i}' has shape ({string.Join(", ", data.Shape)}), too large for a weight.");
                weights.Add(new KerasWeight(i.ToString(System.Globalization.CultureInfo.InvariantCulture), [.. data.Shape.Select(d => (int)d)], $"{vars}/{i}"));
            }
            pairs.Add((layer, new KerasLayerWeights(key, weights)));
        }
        Apply(pairs, file.Root, path);
        var loaded = pairs.Select(p => p.Source.Name).ToHashSet();
        var unused = ((Hdf5Group)file.Root.TryGet(container)!).Links.Keys
            .Where(k => !loaded.Contains(k) && file.Root.TryGet($"{container}/{k}/vars") is Hdf5Group { Links.Count: > 0 }).Order(StringComparer.Ordinal).ToList();
        return new KerasLoadResult(KerasWeightMatching.ByOrder, [.. pairs.Select(p => (p.Layer.Name, p.Source.Name))], unused);
    }

    // Every pair checked (names, counts, shapes) before any weight changes, then every weight read.
    static void Apply(List<(Layer Layer, KerasLayerWeights Source)> pairs, Hdf5Group root, string path)
    {
        foreach (var (layer, source) in pairs) Check(layer, source, path);
        foreach (var (layer, source) in pairs)
            for (int i = 0; i < layer.Parameters.Count; i++)
                ReadInto(root, source.Weights[i], layer.Parameters[i], path);
    }

    static List<KerasLayerWeights> ReadLayers(Hdf5Group root, string path)
    {
        var layers = new List<KerasLayerWeights>();
        foreach (var name in ReadStrings(root, "layer_names", path)!)
        {
            if (root.TryGet(name) is not Hdf5Group group)
                throw new InvalidDataException($"'{path}': layer '{name}' is listed in layer_names but has no group of that name.");
            var weights = new List<KerasWeight>();
            foreach (var weightName in ReadStrings(group, "weight_names", path) ?? [])
            {
                string dataset = $"{name}/{weightName}";
                if (root.TryGet(dataset) is not Hdf5Dataset data)
                    throw new InvalidDataException($"'{path}': layer '{name}' lists weight '{weightName}' but the file has no dataset '{dataset}'.");
                if (data.Shape.Any(d => d > int.MaxValue))
                    throw new InvalidDataException($"'{path}': dataset '{dataset}' has shape ({string.Join(", ", data.Shape)}), too large for a weight.");
                weights.Add(new KerasWeight(ShortName(weightName), [.. data.Shape.Select(d => (int)d)], dataset));
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

    static bool HasStrings(Hdf5Object obj, string name) => obj.Attributes.ContainsKey(name) || obj.Attributes.ContainsKey(name + "0");

    /// A list-of-strings attribute, joined from its chunks name0, name1, ... when Keras split it; null when absent.
    static string[]? ReadStrings(Hdf5Object obj, string name, string path)
    {
        if (obj.Attributes.TryGetValue(name, out var attribute)) return ReadStrings(attribute, obj, path);
        if (!obj.Attributes.ContainsKey(name + "0")) return null;
        var all = new List<string>();
        for (int i = 0; obj.Attributes.TryGetValue($"{name}{i}", out var part); i++) all.AddRange(ReadStrings(part, obj, path));
        return [.. all];
    }

    static string[] ReadStrings(Hdf5Attribute attribute, Hdf5Object owner, string path)
    {
        // Keras writes np.asarray([]) for a layer without weights: an empty float64 array, not strings.
        if (attribute.Count == 0) return [];
        // h5py writes NumPy byte strings (fixed length); other writers variable-length strings.
        if (attribute.Type.Class != Hdf5TypeClass.String && !attribute.Type.IsVariableLengthString)
            throw new InvalidDataException($"'{path}': attribute '{attribute.Name}' of '{owner.Name}' should hold strings; it holds {attribute.Type}.");
        return attribute.ReadStrings();
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

    static void ReadInto(Hdf5Group root, KerasWeight weight, Parameter parameter, string path)
    {
        var dataset = (Hdf5Dataset)root.TryGet(weight.Dataset)!;
        var type = dataset.ElementType;
        if (type.Class != Hdf5TypeClass.FloatingPoint)
            throw new InvalidDataException($"'{path}': dataset {weight.Dataset} holds {type.Class} values, not floating point.");
        if (!type.IsIeeeFloat)
            throw new InvalidDataException($"'{path}': dataset {weight.Dataset} holds {type}; expected IEEE floats of 2, 4 or 8 bytes.");
        try
        {
            dataset.ReadFloats(parameter.Value.Data);
        }
        catch (InvalidDataException e)
        {
            throw new InvalidDataException(
                $"'{path}': reading dataset {weight.Dataset} into '{parameter.FullName}' failed ({e.Message}); the weights read before it are in the model, " +
                "the rest are not: load the file again once it is whole.", e);
        }
    }
}
