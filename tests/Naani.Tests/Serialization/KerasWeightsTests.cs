using System.Text.Json.Nodes;
using Naani.Kernels;
using Naani.Layers;
using Naani.Models;
using Naani.Serialization;
using Xunit;

namespace Naani.Tests.Serialization;

/// KerasWeights against the small files Reference/make_keras_weights.py wrote with h5py in Keras's layout, and the
/// output PyTorch computed with the same weights; the same weights in other HDF5 layouts (make_hdf5_fixtures.py). No
/// test downloads anything.
public sealed class KerasWeightsTests : IDisposable
{
    static readonly string Folder = Path.Combine(AppContext.BaseDirectory, "Reference", "keras");
    static string WeightsPath => Path.Combine(Folder, "small_weights.h5");
    static string WholeModelPath => Path.Combine(Folder, "small_model.h5");

    readonly string directory = Path.Combine(Path.GetTempPath(), "naani-keras-" + Guid.NewGuid().ToString("N"));

    public KerasWeightsTests() => Directory.CreateDirectory(directory);

    public void Dispose() => Directory.Delete(directory, recursive: true);

    /// The Keras model the file holds weights for; names: Keras's, or Naani's automatic ones.
    static Sequential SmallModel(bool kerasNames = true, int filters = 4, bool extraDense = false)
    {
        var model = new Sequential("small", seed: 1)
            .Add(new Input(6, 6, 1))
            .Add(new Conv2D(filters, 3, activation: Activation.Relu, name: kerasNames ? "block1_conv1" : null))
            .Add(new BatchNormalization(name: kerasNames ? "block1_bn" : null))
            .Add(new MaxPooling2D(2, name: kerasNames ? "block1_pool" : null))
            .Add(new Flatten(name: kerasNames ? "flatten" : null));
        if (extraDense) model.Add(new Dense(16, Activation.Relu));
        return model.Add(new Dense(3, Activation.Softmax, name: kerasNames ? "fc" : null));
    }

    static (Tensor X, float[] Y) Expected()
    {
        var json = JsonNode.Parse(File.ReadAllText(Path.Combine(Folder, "small_expected.json")))!;
        float[] x = [.. json["x"]!.AsArray().Select(v => (float)(double)v!)];
        return (new Tensor(new Shape(2, 6, 6, 1), x), [.. json["y"]!.AsArray().Select(v => (float)(double)v!)]);
    }

    static void AssertPredictsLikeKeras(Model model)
    {
        var (x, expected) = Expected();
        var y = model.Predict(x);
        for (int i = 0; i < expected.Length; i++)
            Assert.True(Math.Abs(expected[i] - y.Data[i]) < 1e-5, $"output {i}: expected {expected[i]}, got {y.Data[i]}");
    }

    [Fact]
    public void Loads_save_weights_file_by_name_and_predicts_what_Keras_would()
    {
        var model = SmallModel();

        var result = KerasWeights.Load(model, WeightsPath);

        Assert.Equal(KerasWeightMatching.ByName, result.Matching);
        Assert.Equal(["block1_conv1", "block1_bn", "fc"], result.Loaded.Select(p => p.FileLayer));
        Assert.Empty(result.Unused);
        AssertPredictsLikeKeras(model);
        var bn = (BatchNormalization)model.GetLayer("block1_bn");
        Assert.NotEqual(0f, bn.MovingMean.Value.Data[0]);   // the non-trainable statistics came from the file too
    }

    [Fact]
    public void Loads_a_whole_model_file_with_weights_under_model_weights_and_chunked_layer_names()
    {
        var model = SmallModel();

        KerasWeights.Load(model, WholeModelPath);

        AssertPredictsLikeKeras(model);
    }

    [Fact]
    public void Falls_back_to_layer_order_when_the_names_differ_as_Keras_load_weights_does()
    {
        var model = SmallModel(kerasNames: false);

        var result = KerasWeights.Load(model, WeightsPath);

        Assert.Equal(KerasWeightMatching.ByOrder, result.Matching);
        Assert.Equal([("conv2d", "block1_conv1"), ("batch_normalization", "block1_bn"), ("dense", "fc")], result.Loaded);
        AssertPredictsLikeKeras(model);
    }

    [Fact]
    public void Reads_the_layer_list_with_weight_names_and_shapes()
    {
        var layers = KerasWeights.ReadLayers(WeightsPath);

        Assert.Equal(["input_1", "block1_conv1", "block1_bn", "block1_pool", "flatten", "fc"], layers.Select(l => l.Name));
        Assert.Empty(layers[0].Weights);
        Assert.Equal(["kernel", "bias"], layers[1].Weights.Select(w => w.Name));
        Assert.Equal([3, 3, 1, 4], layers[1].Weights[0].Shape);
        Assert.Equal("block1_conv1/block1_conv1/kernel:0", layers[1].Weights[0].Dataset);
        Assert.Equal(["gamma", "beta", "moving_mean", "moving_variance"], layers[2].Weights.Select(w => w.Name));
    }

    [Fact]
    public void A_shape_mismatch_names_the_layer_the_weight_both_shapes_and_the_file_and_changes_nothing()
    {
        var model = SmallModel(filters: 5);
        model.Build();
        var before = model.GetWeights();

        var e = Assert.Throws<InvalidDataException>(() => KerasWeights.Load(model, WeightsPath));

        Assert.Contains("'block1_conv1' (Conv2D)", e.Message);
        Assert.Contains("'kernel'", e.Message);
        Assert.Contains("(3, 3, 1, 5) in the model", e.Message);
        Assert.Contains("(3, 3, 1, 4) in", e.Message);
        Assert.Contains("small_weights.h5", e.Message);
        var after = model.GetWeights();
        for (int i = 0; i < before.Count; i++) Assert.Equal(before[i].Data, after[i].Data);
    }

    [Fact]
    public void A_different_number_of_layers_with_weights_is_an_error_listing_both_sides()
    {
        var model = SmallModel(kerasNames: false, extraDense: true);

        var e = Assert.Throws<InvalidDataException>(() => KerasWeights.Load(model, WeightsPath));

        Assert.Contains("3 layer(s) (block1_conv1, block1_bn, fc)", e.Message);
        Assert.Contains("4 layer(s) with weights (conv2d, batch_normalization, dense, dense_1)", e.Message);
    }

    [Fact]
    public void By_name_a_model_layer_missing_from_the_file_is_named()
    {
        var model = SmallModel(kerasNames: false);

        var e = Assert.Throws<InvalidDataException>(() => KerasWeights.Load(model, WeightsPath, KerasWeightMatching.ByName));

        Assert.Contains("'conv2d'", e.Message);
        Assert.Contains("block1_conv1, block1_bn, fc", e.Message);
    }

    [Fact]
    public void By_name_the_file_may_hold_more_layers_than_the_model_as_a_top_file_for_a_headless_network()
    {
        var model = new Sequential("headless", seed: 2)
            .Add(new Input(6, 6, 1))
            .Add(new Conv2D(4, 3, activation: Activation.Relu, name: "block1_conv1"))
            .Add(new BatchNormalization(name: "block1_bn"))
            .Add(new GlobalAveragePooling2D());

        var result = KerasWeights.Load(model, WeightsPath);

        Assert.Equal(["fc"], result.Unused);
        Assert.Equal(2, result.Loaded.Count);
    }

    [Fact]
    public void A_layer_whose_weights_differ_in_count_lists_both()
    {
        var model = new Sequential("small", seed: 1)
            .Add(new Input(6, 6, 1))
            .Add(new Conv2D(4, 3, useBias: false, name: "block1_conv1"))
            .Add(new BatchNormalization(name: "block1_bn"))
            .Add(new MaxPooling2D(2))
            .Add(new Flatten())
            .Add(new Dense(3, name: "fc"));

        var e = Assert.Throws<InvalidDataException>(() => KerasWeights.Load(model, WeightsPath));

        Assert.Contains("'block1_conv1' (Conv2D) has 1 weight(s) (kernel)", e.Message);
        Assert.Contains("has 2 for it (kernel, bias)", e.Message);
    }

    [Fact]
    public void Files_that_are_not_Keras_weights_get_errors_naming_them()
    {
        string garbage = Path.Combine(directory, "garbage.h5");
        File.WriteAllText(garbage, "not an HDF5 file at all");
        string missing = Path.Combine(directory, "missing.h5");

        var notHdf5 = Assert.Throws<InvalidDataException>(() => KerasWeights.Load(SmallModel(), garbage));
        var absent = Assert.Throws<FileNotFoundException>(() => KerasWeights.Load(SmallModel(), missing));

        Assert.Contains("garbage.h5", notHdf5.Message);
        Assert.Contains("missing.h5", absent.Message);
    }

    [Fact]
    public void Reads_float64_weights_and_variable_length_names_from_a_latest_format_file()
    {
        // Writers other than Keras store the names as variable-length strings (in the global heap), and the latest
        // format uses version 2 object headers and link messages: the reader must not care.
        var model = new Sequential("float64", seed: 1).Add(new Input(2)).Add(new Dense(3, name: "dense_a"));

        KerasWeights.Load(model, Path.Combine(Folder, "float64_vlen_latest.h5"));

        var dense = (Dense)model.GetLayer("dense_a");
        Assert.Equal([0.125f, 0.25f, 0.375f, 0.5f, 0.625f, 0.75f], dense.Kernel.Value.Data);
        Assert.Equal([-1f, 0f, 1f], dense.Bias!.Value.Data);
    }

    [Fact]
    public void Loads_a_latest_format_file_whose_layers_are_in_dense_link_storage()
    {
        // small_weights.h5's weights written with libver='latest' and 24 more layers without weights: the root's links
        // are in a fractal heap.
        string path = Path.Combine(Folder, "small_weights_latest.h5");
        var model = SmallModel();

        var result = KerasWeights.Load(model, path);

        Assert.Equal(KerasWeightMatching.ByName, result.Matching);
        Assert.Equal(30, KerasWeights.ReadLayers(path).Count);
        AssertPredictsLikeKeras(model);
    }

    [Fact]
    public void A_Keras_3_weights_file_of_another_model_is_refused_naming_the_key_it_lacks()
    {
        string path = Path.Combine(Folder, "keras3_layout.weights.h5");   // holds layers/dense only

        var e = Assert.Throws<InvalidDataException>(() => KerasWeights.Load(SmallModel(), path));

        Assert.Contains("keras3_layout.weights.h5", e.Message);
        Assert.Contains("Keras 3 keeps them at 'layers/conv2d/vars'", e.Message);
        Assert.Contains("block1_conv1", e.Message);
    }

    [Fact]
    public void A_Keras_3_weights_file_loads_by_class_keys_and_predicts_what_Keras_would()
    {
        var model = SmallModel(kerasNames: false);   // Keras 3 keys layers by class and position, so names do not matter

        var result = KerasWeights.Load(model, Path.Combine(Folder, "small_keras3.weights.h5"));

        Assert.Equal(KerasWeightMatching.ByOrder, result.Matching);
        Assert.Equal(["conv2d", "batch_normalization", "dense"], result.Loaded.Select(p => p.FileLayer));
        AssertPredictsLikeKeras(model);
        Assert.Throws<InvalidDataException>(() => KerasWeights.Load(SmallModel(), Path.Combine(Folder, "small_keras3.weights.h5"), KerasWeightMatching.ByName));
    }

    [Fact]
    public void Whole_Keras_models_read_from_dot_keras_and_from_model_config_h5_predict_what_Keras_would()
    {
        var keras3 = KerasModelFile.Load(Path.Combine(Folder, "small.keras"));
        Assert.Equal("small", keras3.Name);
        Assert.Equal("Adam", keras3.Optimizer!.Name);
        Assert.Equal(0.0005, keras3.Optimizer.LearningRate, 9);
        Assert.Equal("sparse_categorical_crossentropy", keras3.Loss!.Name);
        AssertPredictsLikeKeras(keras3);

        var keras2 = KerasModelFile.Load(Path.Combine(Folder, "small_model_config.h5"));
        Assert.Equal(new Shape(6, 6, 1), keras2.InputShape);
        AssertPredictsLikeKeras(keras2);

        // A weights-only file has no architecture to read.
        var e = Assert.Throws<InvalidDataException>(() => KerasModelFile.Load(WeightsPath));
        Assert.Contains("model_config", e.Message);
    }

    [Fact]
    public void Naani_writes_dot_keras_and_weights_h5_that_read_back_to_identical_predictions()
    {
        var model = SmallModel();
        KerasWeights.Load(model, WeightsPath);
        string keras = Path.Combine(directory, "small.keras"), weights = Path.Combine(directory, "small.weights.h5");
        KerasModelFile.Save(model, keras);
        KerasModelFile.SaveWeights(model, weights);

        var back = KerasModelFile.Load(keras);
        AssertPredictsLikeKeras(back);
        var fresh = SmallModel(kerasNames: false);
        KerasWeights.Load(fresh, weights);
        AssertPredictsLikeKeras(fresh);
        var (x, _) = Expected();
        Assert.Equal(model.Predict(x).Data, back.Predict(x).Data);

        // The zip holds what Keras 3's load_model opens, and only that.
        using var zip = System.IO.Compression.ZipFile.OpenRead(keras);
        Assert.Equal(["metadata.json", "config.json", "model.weights.h5"], zip.Entries.Select(e => e.FullName));
        Assert.Throws<ArgumentException>(() => KerasModelFile.Save(model, Path.Combine(directory, "small.zip")));
    }

    /// A model starting with Naani's preprocess_input layer: a .keras file Naani writes keys that layer as Keras will
    /// (conv2d, the convolution after it conv2d_1) and reads back whole; a Keras-written file, which lacks the layer, still
    /// loads into the layers after it, and the layer keeps its values.
    [Fact]
    public void The_preprocess_input_layer_is_written_like_any_layer_and_skipped_where_a_Keras_file_lacks_it()
    {
        Sequential WithPreprocessing(int seed) => new Sequential("small", seed)
            .Add(new Input(6, 6, 1))
            .Add(new Conv2D(1, (1, 1), name: Architectures.PreprocessInputName))
            .Add(new Conv2D(4, 3, activation: Activation.Relu, name: "block1_conv1"))
            .Add(new BatchNormalization(name: "block1_bn"))
            .Add(new MaxPooling2D(2, name: "block1_pool"))
            .Add(new Flatten(name: "flatten"))
            .Add(new Dense(3, Activation.Softmax, name: "fc"));
        var model = WithPreprocessing(1);
        string keras = Path.Combine(directory, "pre.keras");
        KerasModelFile.Save(model, keras);
        Assert.Equal("conv2d_1", KerasWeights.Keras3Keys(model).Single(k => k.Layer.Name == "block1_conv1").Key);
        var (x, _) = Expected();
        Assert.Equal(model.Predict(x).Data, KerasModelFile.Load(keras).Predict(x).Data);

        var other = WithPreprocessing(2);
        other.Build();
        var before = other.GetLayer(Architectures.PreprocessInputName).Parameters[0].Value.Data.ToArray();
        var result = KerasWeights.Load(other, Path.Combine(Folder, "small_keras3.weights.h5"));
        Assert.Equal(["conv2d", "batch_normalization", "dense"], result.Loaded.Select(p => p.FileLayer));
        Assert.Equal(before, other.GetLayer(Architectures.PreprocessInputName).Parameters[0].Value.Data);
        KerasWeights.Load(other, WeightsPath);   // Keras 2's layout, matched by name
    }

    /// h5py (the HDF5 library Keras itself reads with) opens Naani's .weights.h5 and finds Keras 3's layout with the
    /// weights' values; skipped where Debian's python3-h5py is not installed.
    [H5pyFact]
    public void H5py_reads_the_weights_file_Naani_writes()
    {
        var model = SmallModel();
        KerasWeights.Load(model, WeightsPath);
        string weights = Path.Combine(directory, "check.weights.h5");
        KerasModelFile.SaveWeights(model, weights);
        const string script = "import h5py, sys\n" +
            "f = h5py.File(sys.argv[1], 'r')\n" +
            "print(sorted(f['layers'].keys()))\n" +
            "print(f['layers/conv2d/vars/0'].shape, f['layers/conv2d/vars/0'].dtype, float(f['layers/conv2d/vars/0'][0, 0, 0, 0]))\n" +
            "print(len(f['layers/batch_normalization/vars']), float(f['layers/dense/vars/1'][2]))\n";
        var start = new System.Diagnostics.ProcessStartInfo(H5pyFactAttribute.Python, ["-c", script, weights]) { RedirectStandardOutput = true, RedirectStandardError = true };
        using var python = System.Diagnostics.Process.Start(start)!;
        string output = python.StandardOutput.ReadToEnd() + python.StandardError.ReadToEnd();
        python.WaitForExit();
        Assert.True(python.ExitCode == 0, output);
        var lines = output.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal("['batch_normalization', 'conv2d', 'dense', 'flatten', 'max_pooling2d']", lines[0]);
        var kernel = model.GetLayer("block1_conv1").Parameters[0].Value.Data[0];
        Assert.StartsWith("(3, 3, 1, 4) float32 ", lines[1]);
        Assert.Equal(kernel, float.Parse(lines[1].Split(' ')[^1], System.Globalization.CultureInfo.InvariantCulture), 6);
        var bias = model.GetLayer("fc").Parameters[1].Value.Data[2];
        Assert.Equal($"4 {bias.ToString("R", System.Globalization.CultureInfo.InvariantCulture)}"[..6], lines[2][..6]);
    }

    [Fact]
    public void Weights_are_imagenet_from_the_catalogue_or_a_local_file()
    {
        static void NoDownload(Uri url, string destination) => Assert.Fail("no download expected");

        Assert.Equal(WeightsPath, KerasApplications.WeightsFile("vgg16", includeTop: false, WeightsPath, directory, NoDownload, log: null));
        Assert.Throws<FileNotFoundException>(() => KerasApplications.WeightsFile("vgg16", false, Path.Combine(directory, "nope.h5"), directory, NoDownload, null));
        var e = Assert.Throws<ArgumentException>(() => KerasApplications.WeightsFile("alexnet", false, "imagenet", directory, NoDownload, null));
        Assert.Contains("vgg16", e.Message);
        // Keras's published MD5s (applications/vgg16.py, resnet.py), and Keras's addresses
        Assert.Equal("64373286793e3c8b2b4e3219cbf3544b", KerasApplications.Catalog.Single(c => c.Architecture == "vgg16" && c.IncludeTop).Md5);
        Assert.Equal("6d6bbae143d832006294945121d1f1fc", KerasApplications.Catalog.Single(c => c.Architecture == "vgg16" && !c.IncludeTop).Md5);
        Assert.All(KerasApplications.Catalog, c => Assert.EndsWith("/" + c.FileName, c.Url.AbsoluteUri));
    }

    /// A catalogue entry like Keras's, for a file whose content the test controls.
    static KerasApplications.PublishedWeights Entry(string content) => new("tiny", false, "tiny_notop.h5", new Uri("https://example.invalid/tiny_notop.h5"),
        Convert.ToHexStringLower(System.Security.Cryptography.MD5.HashData(System.Text.Encoding.UTF8.GetBytes(content))));

    [Fact]
    public void Published_weights_are_fetched_once_checked_against_their_MD5_and_moved_into_place()
    {
        var known = Entry("the weights");
        int downloads = 0;
        string serve = "truncated";
        void Download(Uri url, string destination)
        {
            downloads++;
            Assert.Equal(known.Url, url);
            File.WriteAllText(destination, serve);
        }

        var e = Assert.Throws<InvalidDataException>(() => KerasApplications.Cached(known, directory, Download, log: null));
        Assert.Contains(known.Md5, e.Message);
        Assert.Empty(Directory.GetFiles(directory));   // nothing half-written is left behind

        serve = "the weights";
        string path = KerasApplications.Cached(known, directory, Download, log: null);
        Assert.Equal(Path.Combine(directory, "tiny_notop.h5"), path);
        Assert.Equal("the weights", File.ReadAllText(path));
        Assert.Single(Directory.GetFiles(directory));

        Assert.Equal(path, KerasApplications.Cached(known, directory, Download, log: null));
        Assert.Equal(2, downloads);   // the second use found the verified file
    }

    [Fact]
    public void A_cached_file_with_the_wrong_MD5_is_fetched_again_and_replaced_only_by_a_verified_one()
    {
        var known = Entry("good");
        string cached = Path.Combine(directory, known.FileName);
        File.WriteAllText(cached, "stale");
        var log = new List<string>();

        var e = Assert.Throws<InvalidDataException>(() =>
            KerasApplications.Cached(known, directory, (url, destination) => File.WriteAllText(destination, "still wrong"), log.Add));
        Assert.Contains("nothing was saved", e.Message);
        Assert.Equal("stale", File.ReadAllText(cached));
        Assert.Contains(log, line => line.Contains("fetching it again"));

        KerasApplications.Cached(known, directory, (url, destination) => File.WriteAllText(destination, "good"), log.Add);
        Assert.Equal("good", File.ReadAllText(cached));
    }
}

/// A fact that runs where Debian's python3-h5py is installed (.ci/run installs it).
public sealed class H5pyFactAttribute : FactAttribute
{
    public const string Python = "/usr/bin/python3";

    public H5pyFactAttribute()
    {
        bool ok = false;
        try
        {
            using var p = System.Diagnostics.Process.Start(new System.Diagnostics.ProcessStartInfo(Python, ["-c", "import h5py"]) { RedirectStandardError = true });
            p?.WaitForExit();
            ok = p is { ExitCode: 0 };
        }
        catch (System.ComponentModel.Win32Exception)
        {
        }
        if (!ok) Skip = "python3-h5py is not installed (sudo apt-get install python3-h5py) to check the files Naani writes with the HDF5 library.";
    }
}
