using System.Text.Json;
using System.Text.Json.Nodes;
using Naani.Initializers;
using Naani.Kernels;
using Naani.Layers;
using Naani.Losses;
using Naani.Optimizers;

namespace Naani.Serialization;

/// Turns the configs stored in a model file back into objects: a layer from its Keras class name and
/// the JsonObject its GetConfig() wrote, an optimizer from Optimizer.GetConfig(), a loss from its name.
/// A plain switch per kind: adding a layer type means adding one case here (and to KnownLayerTypes).
public static class LayerFactory
{
    /// The layer types format version 1 can store, by Keras class name.
    public static IReadOnlyList<string> KnownLayerTypes { get; } =
        ["InputLayer", "Conv2D", "MaxPooling2D", "AveragePooling2D", "Flatten", "Dense", "Dropout", "Activation",
         "BatchNormalization", "LayerNormalization", "GroupNormalization", "InstanceNormalization",
         "GlobalAveragePooling2D", "GlobalMaxPooling2D", "ZeroPadding2D", "Concatenate", "Add"];

    /// Creates an unbuilt layer. path is the file being read, for error messages.
    public static Layer CreateLayer(string typeName, JsonObject config, string name, bool trainable, string path)
    {
        var read = new ConfigReader(config, $"the config of layer '{name}' ({typeName})", path);
        Layer layer;
        try
        {
            layer = typeName switch
            {
                "InputLayer" => new Input(read.Shape("shape"), name),
                "Conv2D" => new Conv2D(read.Int("filters"), read.Pair("kernel_size"), read.Pair("strides"),
                    read.Padding("padding"), read.Activation("activation"), read.Bool("use_bias"),
                    read.Initializer("kernel_initializer"), read.Initializer("bias_initializer"), name),
                "MaxPooling2D" => new MaxPooling2D(read.Pair("pool_size"), read.Pair("strides"), read.Padding("padding"), name),
                "AveragePooling2D" => new AveragePooling2D(read.Pair("pool_size"), read.Pair("strides"), read.Padding("padding"), name),
                "Flatten" => new Flatten(name),
                "Dense" => new Dense(read.Int("units"), read.Activation("activation"), read.Bool("use_bias"),
                    read.Initializer("kernel_initializer"), read.Initializer("bias_initializer"), name),
                "Dropout" => new Dropout(read.Double("rate"), name),
                "Activation" => new ActivationLayer(read.Activation("activation"), name),
                "BatchNormalization" => new BatchNormalization(read.Int("axis"), read.Double("momentum"), read.Double("epsilon"),
                    read.Bool("center"), read.Bool("scale"), read.Initializer("beta_initializer"), read.Initializer("gamma_initializer"),
                    read.Initializer("moving_mean_initializer"), read.Initializer("moving_variance_initializer"), name),
                "LayerNormalization" => new LayerNormalization(read.IntOrInts("axis"), read.Double("epsilon"), read.Bool("center"), read.Bool("scale"),
                    read.Initializer("beta_initializer"), read.Initializer("gamma_initializer"), name),
                "GroupNormalization" => new GroupNormalization(read.Int("groups"), read.Int("axis"), read.Double("epsilon"), read.Bool("center"),
                    read.Bool("scale"), read.Initializer("beta_initializer"), read.Initializer("gamma_initializer"), name),
                "InstanceNormalization" => new InstanceNormalization(read.Double("epsilon"), read.Bool("center"), read.Bool("scale"),
                    read.Initializer("beta_initializer"), read.Initializer("gamma_initializer"), name),
                "GlobalAveragePooling2D" => new GlobalAveragePooling2D(read.Bool("keepdims"), name),
                "GlobalMaxPooling2D" => new GlobalMaxPooling2D(read.Bool("keepdims"), name),
                "ZeroPadding2D" => new ZeroPadding2D(read.PairOfPairs("padding"), name),
                "Concatenate" => read.Int("axis") == -1 ? new Concatenate(name)
                    : throw new InvalidDataException($"'{path}': Concatenate layer '{name}' joins along axis {read.Int("axis")}; Naani joins along the last axis (-1) only."),
                "Add" => new Add(name),
                _ => throw new InvalidDataException(
                    $"'{path}': layer '{name}' has type '{typeName}', which format version 1 does not know; known types: {string.Join(", ", KnownLayerTypes)}."),
            };
        }
        catch (ArgumentException e)
        {
            // A constructor rejected a value (zero filters, a negative rate): the file is wrong, not the caller.
            throw new InvalidDataException($"'{path}': layer '{name}' ({typeName}) has an invalid config: {e.Message}", e);
        }
        layer.Trainable = trainable;
        return layer;
    }

    /// The optimizer described by a config that Optimizer.GetConfig() wrote ("name" plus hyperparameters).
    public static Optimizer CreateOptimizer(JsonObject config, string path)
    {
        var read = new ConfigReader(config, "the optimizer config", path);
        string name = read.String("name");
        try
        {
            return name.ToLowerInvariant() switch
            {
                "adam" => new Adam(read.Double("learning_rate"), read.Double("beta_1"), read.Double("beta_2"), read.Double("epsilon")),
                "sgd" => new SGD(read.Double("learning_rate"), read.Double("momentum"), read.Bool("nesterov")),
                "rmsprop" => new RMSprop(read.Double("learning_rate"), read.Double("rho"), read.Double("momentum"), read.Double("epsilon")),
                _ => throw new InvalidDataException($"'{path}': optimizer '{name}' is not known to format version 1; known: adam, sgd, rmsprop."),
            };
        }
        catch (ArgumentException e)
        {
            throw new InvalidDataException($"'{path}': the optimizer '{name}' has an invalid config: {e.Message}", e);
        }
    }

    /// {"name": "categorical_crossentropy", "from_logits": false}; from_logits only for the cross-entropies.
    public static JsonObject GetLossConfig(Loss loss)
    {
        var config = new JsonObject { ["name"] = loss.Name };
        bool? fromLogits = loss switch
        {
            BinaryCrossEntropy b => b.FromLogits,
            CategoricalCrossEntropy c => c.FromLogits,
            SparseCategoricalCrossEntropy s => s.FromLogits,
            _ => null,
        };
        if (fromLogits is bool f) config["from_logits"] = f;
        return config;
    }

    /// The inverse of GetLossConfig.
    public static Loss CreateLoss(JsonObject config, string path)
    {
        var read = new ConfigReader(config, "the loss config", path);
        string name = read.String("name");
        bool fromLogits = config.ContainsKey("from_logits") && read.Bool("from_logits");
        return name switch
        {
            "binary_crossentropy" => new BinaryCrossEntropy(fromLogits),
            "categorical_crossentropy" => new CategoricalCrossEntropy(fromLogits),
            "sparse_categorical_crossentropy" => new SparseCategoricalCrossEntropy(fromLogits),
            "mean_squared_error" => new MeanSquaredError(),
            _ => throw new InvalidDataException(
                $"'{path}': loss '{name}' is not known to format version 1; known: binary_crossentropy, categorical_crossentropy, sparse_categorical_crossentropy, mean_squared_error."),
        };
    }
}

/// Typed reads of a JSON object's keys (a layer config, the optimizer's, the file header); a missing
/// key or a value of the wrong kind is an InvalidDataException naming the key, the owner and the file.
internal sealed class ConfigReader(JsonObject config, string owner, string path)
{
    public bool Has(string key) => config[key] is not null;

    JsonNode Node(string key) => config[key]
        ?? throw new InvalidDataException($"'{path}': {owner} has no '{key}'.");

    InvalidDataException Wrong(string key, string kind, Exception? inner = null) =>
        new($"'{path}': '{key}' in {owner} should be {kind}; got {config[key]?.ToJsonString() ?? "null"}.", inner);

    T Value<T>(string key, string kind)
    {
        try
        {
            return Node(key).GetValue<T>();
        }
        catch (Exception e) when (e is InvalidOperationException or FormatException or JsonException)
        {
            throw Wrong(key, kind, e);
        }
    }

    public int Int(string key) => Value<int>(key, "an integer");
    public long Long(string key) => Value<long>(key, "an integer");
    public double Double(string key) => Value<double>(key, "a number");
    public bool Bool(string key) => Value<bool>(key, "true or false");
    public string String(string key) => Value<string>(key, "a string");

    public JsonObject Object(string key) => Node(key) as JsonObject ?? throw Wrong(key, "an object");

    public JsonArray Array(string key) => Node(key) as JsonArray ?? throw Wrong(key, "a list");

    /// The objects of a list, each with a reader whose messages say "{what} {index}".
    public IEnumerable<(int Index, JsonObject Item)> Objects(string key, string what)
    {
        var array = Array(key);
        for (int i = 0; i < array.Count; i++)
            yield return (i, array[i] as JsonObject ?? throw new InvalidDataException($"'{path}': {what} {i} in {owner} should be an object; got {array[i]?.ToJsonString() ?? "null"}."));
    }

    public string[] StringArray(string key)
    {
        var array = Array(key);
        if (array.Any(item => item is null)) throw Wrong(key, "a list of strings");
        try
        {
            return [.. array.Select(item => item!.GetValue<string>())];
        }
        catch (Exception e) when (e is InvalidOperationException or FormatException)
        {
            throw Wrong(key, "a list of strings", e);
        }
    }

    public double[] Doubles(string key)
    {
        var array = Array(key);
        if (array.Any(item => item is null)) throw Wrong(key, "a list of numbers");
        try
        {
            return [.. array.Select(item => item!.GetValue<double>())];
        }
        catch (Exception e) when (e is InvalidOperationException or FormatException)
        {
            throw Wrong(key, "a list of numbers", e);
        }
    }

    int[] Ints(string key, string kind)
    {
        var array = Array(key);
        if (array.Any(item => item is null)) throw Wrong(key, kind);
        try
        {
            return [.. array.Select(item => item!.GetValue<int>())];
        }
        catch (Exception e) when (e is InvalidOperationException or FormatException)
        {
            throw Wrong(key, kind, e);
        }
    }

    /// A shape: a list of positive integers.
    public Shape Shape(string key)
    {
        var dims = Ints(key, "a shape (a list of positive integers)");
        if (dims.Any(d => d <= 0)) throw Wrong(key, "a shape (a list of positive integers)");
        return new Shape(dims);
    }

    public (int Height, int Width) Pair(string key)
    {
        var values = Ints(key, "[height, width]");
        if (values.Length != 2) throw Wrong(key, "[height, width]");
        return (values[0], values[1]);
    }

    /// An integer or a list of integers (Keras writes LayerNormalization's axis either way).
    public int[] IntOrInts(string key) => Node(key) is JsonArray ? Ints(key, "an integer or a list of integers") : [Int(key)];

    /// [[a, b], [c, d]]: ZeroPadding2D's ((top, bottom), (left, right)).
    public ((int, int), (int, int)) PairOfPairs(string key)
    {
        const string kind = "[[top, bottom], [left, right]]";
        var outer = Array(key);
        if (outer.Count != 2 || outer.Any(item => item is not JsonArray { Count: 2 } inner || inner.Any(v => v is null)))
            throw Wrong(key, kind);
        try
        {
            int At(int i, int j) => outer[i]![j]!.GetValue<int>();
            return ((At(0, 0), At(0, 1)), (At(1, 0), At(1, 1)));
        }
        catch (Exception e) when (e is InvalidOperationException or FormatException)
        {
            throw Wrong(key, kind, e);
        }
    }

    public Padding Padding(string key) => String(key) switch
    {
        "valid" => Kernels.Padding.Valid,
        "same" => Kernels.Padding.Same,
        _ => throw Wrong(key, "'valid' or 'same'"),
    };

    public Activation Activation(string key) => Parse(key, ActivationNames.Parse);

    /// An initializer: a name, or Keras's {"class_name": ..., "config": {...}} for one with parameters.
    public Initializer Initializer(string key)
    {
        if (Node(key) is JsonObject obj)
        {
            try
            {
                return Initializers.Initializer.FromConfig(obj);
            }
            catch (ArgumentException e)
            {
                throw new InvalidDataException($"'{path}': '{key}' in {owner}: {e.Message}", e);
            }
        }
        return Parse(key, Initializers.Initializer.Parse);
    }

    T Parse<T>(string key, Func<string, T> parse)
    {
        string text = String(key);
        try
        {
            return parse(text);
        }
        catch (ArgumentException e)
        {
            throw new InvalidDataException($"'{path}': '{key}' in {owner}: {e.Message}", e);
        }
    }
}
