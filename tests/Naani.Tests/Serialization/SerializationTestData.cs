using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json.Nodes;
using Naani.Initializers;
using Naani.Kernels;
using Naani.Layers;
using Naani.Models;
using Naani.Serialization;
using Xunit;

namespace Naani.Tests.Serialization;

/// Models, data and file surgery shared by the serialization tests.
static class SerializationTestData
{
    /// One of every layer type Naani can save, with non-default settings, the first conv frozen.
    public static Sequential EveryLayerModel(double dropoutRate = 0.25, int seed = 7)
    {
        var model = new Sequential("every-layer", seed)
            .Add(new Input(12, 12, 2))
            .Add(new Conv2D(4, 3, padding: Padding.Same, activation: Activation.Relu, name: "stem"))
            .Add(new MaxPooling2D(2))
            .Add(new Conv2D(6, (2, 3), (1, 1), Padding.Valid, Activation.Tanh, useBias: false, kernelInitializer: Initializer.HeNormal))
            .Add(new AveragePooling2D((2, 2), (1, 1), Padding.Same))
            .Add(new Dropout(dropoutRate))
            .Add(new Flatten())
            .Add(new Dense(8, biasInitializer: Initializer.Ones, kernelInitializer: Initializer.HeUniform))
            .Add(new ActivationLayer(Activation.Sigmoid))
            .Add(new Dense(3, Activation.Softmax, name: "head"));
        model.GetLayer("stem").Trainable = false;
        model.ClassNames = ["cat", "dog", "bird"];
        return model;
    }

    public static Tensor Uniform(Rng rng, params int[] dims)
    {
        var t = new Tensor(dims);
        for (int i = 0; i < t.Length; i++) t.Data[i] = rng.Uniform(-1, 1);
        return t;
    }

    public static Tensor OneHot(Rng rng, int count, int classes)
    {
        var t = new Tensor(count, classes);
        for (int r = 0; r < count; r++) t[r, rng.NextInt(classes)] = 1;
        return t;
    }

    /// Random (x, y) batch for a model with softmax outputs.
    public static (Tensor X, Tensor Y) Batch(Model model, int count, ulong seed)
    {
        var rng = new Rng(seed);
        return (Uniform(rng, [count, .. model.InputShape.ToArray()]), OneHot(rng, count, model.OutputShape[^1]));
    }

    public static void TrainSteps(Model model, int steps, ulong seed = 99)
    {
        for (int i = 0; i < steps; i++)
        {
            var (x, y) = Batch(model, 6, seed + (ulong)i);
            model.TrainStep(x, y);
        }
    }

    /// Equal bit for bit (so -0 differs from 0 and NaNs are compared by payload).
    public static void AssertBitIdentical(float[] expected, float[] actual, string what)
    {
        Assert.True(expected.Length == actual.Length, $"{what}: {expected.Length} values expected, {actual.Length} found.");
        var e = MemoryMarshal.Cast<float, int>(expected.AsSpan());
        var a = MemoryMarshal.Cast<float, int>(actual.AsSpan());
        int first = e.CommonPrefixLength(a);
        Assert.True(first == e.Length, $"{what}: value {first} differs: {(first < e.Length ? expected[first] : 0)} vs {(first < a.Length ? actual[first] : 0)}.");
    }

    public static void AssertSameWeights(Model expected, Model actual)
    {
        var e = expected.Parameters.ToList();
        var a = actual.Parameters.ToList();
        Assert.Equal(e.Select(p => p.FullName), a.Select(p => p.FullName));
        for (int i = 0; i < e.Count; i++)
        {
            Assert.Equal(e[i].Shape, a[i].Shape);
            AssertBitIdentical(e[i].Value.Data, a[i].Value.Data, e[i].FullName);
        }
    }

    public static JsonObject ReadHeader(string path)
    {
        var bytes = File.ReadAllBytes(path);
        int length = (int)BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(12));
        return JsonNode.Parse(bytes.AsSpan(16, length))!.AsObject();
    }

    /// Rewrites a saved file with an edited header and a fresh, valid trailer, so that only the
    /// edit can make loading fail (the CRC still matches).
    public static void RewriteHeader(string path, Action<JsonObject> edit)
    {
        var bytes = File.ReadAllBytes(path);
        int length = (int)BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(12));
        var header = JsonNode.Parse(bytes.AsSpan(16, length))!.AsObject();
        edit(header);
        var data = bytes.AsSpan(16 + length, bytes.Length - 16 - length - 12).ToArray();
        var json = Encoding.UTF8.GetBytes(header.ToJsonString());
        var file = new byte[16 + json.Length + data.Length + 12];
        bytes.AsSpan(0, 12).CopyTo(file);
        BinaryPrimitives.WriteUInt32LittleEndian(file.AsSpan(12), (uint)json.Length);
        json.CopyTo(file, 16);
        data.CopyTo(file, 16 + json.Length);
        FixTrailer(file);
        File.WriteAllBytes(path, file);
    }

    /// Recomputes the trailer (CRC-32 and length) of a whole file held in memory.
    public static void FixTrailer(byte[] file)
    {
        BinaryPrimitives.WriteUInt32LittleEndian(file.AsSpan(file.Length - 12), Crc32.Compute(file.AsSpan(0, file.Length - 12)));
        BinaryPrimitives.WriteUInt64LittleEndian(file.AsSpan(file.Length - 8), (ulong)file.Length);
    }
}

/// A fresh directory per test class, deleted afterwards.
public sealed class TempDirectory : IDisposable
{
    public string Path { get; } = Directory.CreateTempSubdirectory("naani-serialization-").FullName;

    public string File(string name) => System.IO.Path.Combine(Path, name);

    public void Dispose()
    {
        try
        {
            Directory.Delete(Path, recursive: true);
        }
        catch (IOException) { }
    }
}
