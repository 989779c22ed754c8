using System.Buffers.Binary;
using System.Text;
using System.Text.Json.Nodes;
using Naani.Layers;
using Naani.Losses;
using Naani.Models;
using Naani.Optimizers;
using Naani.Serialization;
using Xunit;
using static Naani.Tests.Serialization.SerializationTestData;

namespace Naani.Tests.Serialization;

public sealed class ModelFileTests : IDisposable
{
    readonly TempDirectory directory = new();

    public void Dispose() => directory.Dispose();

    [Fact]
    public void MnistBaseline_round_trip_gives_bit_identical_predictions_and_weights()
    {
        var model = Architectures.MnistBaseline(seed: 1);
        model.Compile(new Adam(), new CategoricalCrossEntropy(), "accuracy");
        TrainSteps(model, 2);
        string path = directory.File("mnist.naani");

        model.Save(path);
        var loaded = Model.Load(path);

        var (x, _) = Batch(model, 5, seed: 3);
        AssertBitIdentical(model.Predict(x).Data, loaded.Predict(x).Data, "predictions");
        AssertSameWeights(model, loaded);
        Assert.IsType<Sequential>(loaded);
        Assert.Equal("mnist-baseline", loaded.Name);
        Assert.Equal(1, loaded.Seed);
        Assert.Equal(model.Summary(), loaded.Summary());
    }

    [Fact]
    public void Every_layer_type_keeps_its_config_name_and_trainable_flag()
    {
        var model = EveryLayerModel();
        model.Compile(new Adam(learningRate: 0.003), new CategoricalCrossEntropy(), "accuracy");
        TrainSteps(model, 2);
        string path = directory.File("every.naani");

        model.Save(path);
        var loaded = Model.Load(path);

        Assert.Equal(model.Layers.Select(l => (l.TypeName, l.Name, l.Trainable, l.GetConfig().ToJsonString())),
                     loaded.Layers.Select(l => (l.TypeName, l.Name, l.Trainable, l.GetConfig().ToJsonString())));
        Assert.False(loaded.GetLayer("stem").Trainable);
        Assert.Equal(["cat", "dog", "bird"], loaded.ClassNames!);
        Assert.Equal(model.InputShape, loaded.InputShape);
        AssertSameWeights(model, loaded);
        var (x, _) = Batch(model, 4, seed: 5);
        AssertBitIdentical(model.Predict(x).Data, loaded.Predict(x).Data, "predictions");
    }

    [Fact]
    public void Compile_settings_and_optimizer_state_are_restored()
    {
        var model = EveryLayerModel();
        model.Compile(new Adam(0.002, beta1: 0.8, beta2: 0.99, epsilon: 1e-6), new CategoricalCrossEntropy(fromLogits: false), "accuracy");
        TrainSteps(model, 3);
        string path = directory.File("compiled.naani");

        model.Save(path);
        var loaded = Model.Load(path);

        var adam = Assert.IsType<Adam>(loaded.Optimizer);
        Assert.Equal(model.Optimizer!.GetConfig().ToJsonString(), adam.GetConfig().ToJsonString());
        Assert.Equal(3, adam.Iterations);
        Assert.IsType<CategoricalCrossEntropy>(loaded.Loss);
        Assert.Equal(["accuracy"], loaded.Metrics);
        var expected = model.Optimizer.GetSlots().ToDictionary(s => s.Parameter.FullName, s => s.Slots);
        var actual = adam.GetSlots().ToDictionary(s => s.Parameter.FullName, s => s.Slots);
        Assert.Equal(expected.Keys.Order(), actual.Keys.Order());
        Assert.DoesNotContain("stem/kernel", actual.Keys);   // frozen: Adam never made slots for it
        foreach (var (name, slots) in expected)
            for (int i = 0; i < slots.Length; i++) AssertBitIdentical(slots[i], actual[name][i], $"{name} slot {i}");
    }

    // Dropout draws its masks from a per-layer random stream that the file does not store (it stores
    // the seed, so a loaded model starts that stream afresh); resuming is bit-exact without dropout.
    public static TheoryData<string> Optimizers => ["adam", "sgd-nesterov", "rmsprop-momentum"];

    [Theory]
    [MemberData(nameof(Optimizers))]
    public void One_more_step_after_loading_matches_one_more_step_without_saving(string optimizer)
    {
        Optimizer Create() => optimizer switch
        {
            "adam" => new Adam(0.01),
            "sgd-nesterov" => new SGD(0.05, momentum: 0.9, nesterov: true),
            _ => new RMSprop(0.01, momentum: 0.5),
        };
        var model = EveryLayerModel(dropoutRate: 0);
        model.Compile(Create(), new CategoricalCrossEntropy(), "accuracy");
        TrainSteps(model, 2);
        string path = directory.File($"resume-{optimizer}.naani");
        model.Save(path);
        var loaded = Model.Load(path);

        var (x, y) = Batch(model, 6, seed: 1234);
        var before = model.TrainStep(x, y);
        var after = loaded.TrainStep(x, y);

        Assert.Equal(before.Loss, after.Loss);
        AssertSameWeights(model, loaded);
        Assert.Equal(model.Optimizer!.Iterations, loaded.Optimizer!.Iterations);
    }

    [Fact]
    public void Without_the_optimizer_the_model_is_compiled_with_a_fresh_optimizer()
    {
        var model = EveryLayerModel();
        model.Compile(new SGD(0.1, momentum: 0.9), new CategoricalCrossEntropy(), "accuracy");
        TrainSteps(model, 2);
        string full = directory.File("full.naani"), lean = directory.File("lean.naani");

        model.Save(full);
        model.Save(lean, includeOptimizer: false);
        var loaded = Model.Load(lean);

        Assert.True(new FileInfo(lean).Length < new FileInfo(full).Length);
        var sgd = Assert.IsType<SGD>(loaded.Optimizer);
        Assert.Equal(0.9, sgd.Momentum);
        Assert.Equal(0, sgd.Iterations);
        Assert.Empty(sgd.GetSlots());
        AssertSameWeights(model, loaded);
    }

    [Fact]
    public void An_uncompiled_model_loads_uncompiled_and_losses_keep_from_logits()
    {
        var model = EveryLayerModel();
        string path = directory.File("plain.naani");
        model.Save(path);
        var loaded = Model.Load(path);
        Assert.Null(loaded.Optimizer);
        Assert.Null(loaded.Loss);
        AssertSameWeights(model, loaded);

        var logits = EveryLayerModel();
        logits.Compile(new RMSprop(), new SparseCategoricalCrossEntropy(fromLogits: true));
        logits.Save(path);
        var loss = Assert.IsType<SparseCategoricalCrossEntropy>(Model.Load(path).Loss);
        Assert.True(loss.FromLogits);
        Assert.Empty(Model.Load(path).Metrics);
    }

    [Fact]
    public void The_file_starts_with_magic_version_and_header_and_ends_with_crc_and_length()
    {
        var model = EveryLayerModel();
        model.Compile(new Adam(), new CategoricalCrossEntropy());
        TrainSteps(model, 1);
        string path = directory.File("layout.naani");
        model.Save(path);

        var bytes = File.ReadAllBytes(path);
        Assert.Equal("NAANI\0\0\0"u8.ToArray(), bytes[..8]);
        Assert.Equal(1u, BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(8)));
        uint headerLength = BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(12));
        Assert.Equal(0u, (16 + headerLength) % 64);
        Assert.Equal(Crc32.Compute(bytes.AsSpan(0, bytes.Length - 12)), BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(bytes.Length - 12)));
        Assert.Equal((ulong)bytes.Length, BinaryPrimitives.ReadUInt64LittleEndian(bytes.AsSpan(bytes.Length - 8)));

        var header = ReadHeader(path);
        Assert.Equal("Sequential", (string)header["model_class"]!);
        Assert.Equal(bytes.Length - 16 - headerLength - 12, (long)header["data_length"]!);
        var kernel = header["tensors"]!.AsArray().Single(t => (string)t!["name"]! == "head/kernel")!;
        long offset = (long)kernel["offset"]!;
        float first = BinaryPrimitives.ReadSingleLittleEndian(bytes.AsSpan((int)(16 + headerLength + offset)));
        Assert.Equal(model.GetLayer("head").Parameters[0].Value.Data[0], first);
        Assert.Equal(2 * 5, header["optimizer_slots"]!.AsArray().Count);   // m and v of 5 trainable weights
    }

    [Fact]
    public void Saving_the_same_model_twice_gives_the_same_bytes()
    {
        var model = EveryLayerModel();
        model.Compile(new Adam(), new CategoricalCrossEntropy());
        TrainSteps(model, 1);
        model.Save(directory.File("a.naani"));
        model.Save(directory.File("b.naani"));
        Assert.Equal(File.ReadAllBytes(directory.File("a.naani")), File.ReadAllBytes(directory.File("b.naani")));
    }

    string SavedModel(string name)
    {
        var model = EveryLayerModel();
        model.Compile(new Adam(), new CategoricalCrossEntropy(), "accuracy");
        TrainSteps(model, 1);
        string path = directory.File(name);
        model.Save(path);
        return path;
    }

    static InvalidDataException LoadFails(string path, params string[] phrases)
    {
        var e = Assert.Throws<InvalidDataException>(() => Model.Load(path));
        Assert.Contains(path, e.Message);
        foreach (var phrase in phrases) Assert.Contains(phrase, e.Message);
        return e;
    }

    [Fact]
    public void A_truncated_file_is_rejected_as_corrupt_or_truncated()
    {
        string path = SavedModel("truncated.naani");
        var bytes = File.ReadAllBytes(path);
        foreach (int keep in new[] { bytes.Length - 1, bytes.Length - 200, 600, 20, 3 })
        {
            File.WriteAllBytes(path, bytes[..keep]);
            LoadFails(path, "corrupt or truncated");
        }
    }

    [Fact]
    public void A_flipped_byte_anywhere_fails_the_crc()
    {
        string path = SavedModel("flipped.naani");
        var bytes = File.ReadAllBytes(path);
        uint headerLength = BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(12));
        foreach (int at in new[] { 40, (int)(16 + headerLength + 5), bytes.Length - 20 })
        {
            var copy = (byte[])bytes.Clone();
            copy[at] ^= 0x10;
            File.WriteAllBytes(path, copy);
            LoadFails(path, "corrupt or truncated", "CRC-32");
        }
    }

    [Fact]
    public void A_wrong_magic_says_it_is_not_a_naani_file()
    {
        string path = SavedModel("magic.naani");
        var bytes = File.ReadAllBytes(path);
        "PK\u0003\u0004"u8.CopyTo(bytes);
        File.WriteAllBytes(path, bytes);
        LoadFails(path, "not a Naani model file");
    }

    [Fact]
    public void A_newer_format_version_asks_for_a_newer_naani()
    {
        string path = SavedModel("newer.naani");
        var bytes = File.ReadAllBytes(path);
        BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(8), ModelFile.FormatVersion + 1);
        FixTrailer(bytes);
        File.WriteAllBytes(path, bytes);
        LoadFails(path, $"format version {ModelFile.FormatVersion + 1}", "newer");
    }

    [Fact]
    public void A_header_length_past_the_limit_is_rejected_before_reading_it()
    {
        string path = SavedModel("header-length.naani");
        var bytes = File.ReadAllBytes(path);
        BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(12), uint.MaxValue);
        File.WriteAllBytes(path, bytes);
        LoadFails(path, "header length");
    }

    [Fact]
    public void A_header_claiming_a_huge_tensor_is_rejected()
    {
        string path = SavedModel("huge.naani");
        RewriteHeader(path, header =>
        {
            var tensor = header["tensors"]![0]!;
            tensor["shape"] = new JsonArray(100_000, 100_000, 10);
            tensor["length"] = 400_000_000_000L;
        });
        LoadFails(path, "stem/kernel", "(100000, 100000, 10)");
    }

    [Fact]
    public void A_tensor_reaching_past_the_data_is_rejected()
    {
        string path = SavedModel("past-end.naani");
        RewriteHeader(path, header => header["tensors"]![1]!["offset"] = (long)header["data_length"]! - 4);
        LoadFails(path, "stem/bias", "of the data");
    }

    [Fact]
    public void A_tensor_whose_shape_disagrees_with_the_architecture_names_the_layer_and_both_shapes()
    {
        string path = SavedModel("shape.naani");
        RewriteHeader(path, header =>
        {
            var head = header["tensors"]!.AsArray().Single(t => (string)t!["name"]! == "head/kernel")!;
            head["shape"] = new JsonArray(3, 8);   // the same size as the real (8, 3)
        });
        LoadFails(path, "layer 'head'", "(3, 8)", "(8, 3)");
    }

    [Fact]
    public void An_unknown_layer_type_names_the_type_and_the_file()
    {
        string path = SavedModel("unknown.naani");
        RewriteHeader(path, header => header["layers"]![1]!["type"] = "Conv3D");
        LoadFails(path, "Conv3D");
    }

    [Fact]
    public void A_missing_config_key_names_the_key_and_the_layer()
    {
        string path = SavedModel("config.naani");
        RewriteHeader(path, header => header["layers"]!.AsArray().Single(l => (string)l!["name"]! == "head")!["config"]!.AsObject().Remove("units"));
        LoadFails(path, "'units'", "layer 'head'");
    }

    [Fact]
    public void A_data_length_that_disagrees_with_the_file_is_rejected()
    {
        string path = SavedModel("data-length.naani");
        RewriteHeader(path, header => header["data_length"] = 12);
        LoadFails(path, "corrupt or truncated", "data");
    }

    [Fact]
    public void A_missing_file_is_a_file_not_found_exception()
    {
        string path = directory.File("absent.naani");
        var e = Assert.Throws<FileNotFoundException>(() => Model.Load(path));
        Assert.Contains(path, e.Message);
    }

    [Fact]
    public void A_failed_save_leaves_the_previous_file_intact_and_no_temporary_file()
    {
        string path = SavedModel("atomic.naani");
        var before = File.ReadAllBytes(path);
        var other = EveryLayerModel(seed: 8);
        string? temp = null;

        Naani.IO.AtomicFile.BeforeReplaceForTests = t =>
        {
            temp = t;
            Assert.True(File.Exists(t));
            throw new IOException("disk full (injected)");
        };
        try
        {
            var e = Assert.Throws<IOException>(() => other.Save(path));
            Assert.Contains("injected", e.Message);
        }
        finally
        {
            Naani.IO.AtomicFile.BeforeReplaceForTests = null;
        }

        Assert.Equal(before, File.ReadAllBytes(path));
        Assert.NotNull(temp);
        Assert.StartsWith(path + ".tmp-", temp);
        Assert.False(File.Exists(temp));
        Assert.Equal([path], Directory.GetFiles(directory.Path, "atomic.naani*"));

        other.Save(path);   // and a save that works replaces it
        AssertSameWeights(other, Model.Load(path));
    }

    [Fact]
    public void Only_sequential_models_can_be_saved_in_format_version_1()
    {
        var e = Assert.Throws<NotSupportedException>(() => new NotSequential().Save(directory.File("graph.naani")));
        Assert.Contains("only Sequential models", e.Message);
        Assert.Empty(Directory.GetFiles(directory.Path));
    }

    [Fact]
    public void A_layer_type_the_format_does_not_know_is_refused_at_save_time()
    {
        var model = new Sequential("custom", 1).Add(new Input(4)).Add(new Identity());
        var e = Assert.Throws<NotSupportedException>(() => model.Save(directory.File("custom.naani")));
        Assert.Contains("Identity", e.Message);
    }

    sealed class Identity() : Layer(null)
    {
        protected override Shape Build(Shape input) => input;
        public override void Forward(Tensor x, Tensor y, bool training) => x.Data.AsSpan().CopyTo(y.Data);
        public override void Backward(Tensor x, Tensor y, Tensor dy, Tensor? dx) { }
    }

    sealed class NotSequential() : Model("graph", 1)
    {
        public override IReadOnlyList<Layer> Layers => [];
        public override Shape InputShape => new(1);
        public override Shape OutputShape => new(1);
        public override void Build() { }
        protected internal override Tensor ForwardBatch(Tensor x, bool training) => x;
        protected internal override void BackwardBatch(Tensor outputGradient) { }
    }
}

public sealed class Crc32Tests
{
    static uint Reference(ReadOnlySpan<byte> data)
    {
        uint c = 0xFFFFFFFF;
        foreach (byte b in data)
        {
            c ^= b;
            for (int k = 0; k < 8; k++) c = (c & 1) != 0 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        }
        return ~c;
    }

    [Fact]
    public void Crc32_of_the_check_string_is_the_standard_value()
    {
        Assert.Equal(0xCBF43926u, Crc32.Compute(Encoding.ASCII.GetBytes("123456789")));
        Assert.Equal(0u, Crc32.Compute([]));
    }

    [Fact]
    public void Crc32_matches_a_bitwise_reference_and_can_be_continued()
    {
        var rng = new Rng(5);
        for (int length = 0; length < 100; length++)
        {
            var data = new byte[length];
            for (int i = 0; i < length; i++) data[i] = (byte)rng.NextInt(256);
            Assert.Equal(Reference(data), Crc32.Compute(data));
            int split = length / 3;
            Assert.Equal(Reference(data), Crc32.Append(Crc32.Compute(data.AsSpan(0, split)), data.AsSpan(split)));
        }
    }
}
