using System.Buffers.Binary;
using Naani.Data;
using Naani.Layers;
using Naani.Models;
using Naani.Serialization;
using Naani.Vision;

namespace Naani.Fuzz;

/// The readers of untrusted bytes, each behind one name, with the exceptions each documents for a bad file.
/// Run returns when the reader loaded the bytes or refused them with its documented exception, and lets anything
/// else escape: that is a finding (AFL sees it as a crash; the test suite's seeded mutation run fails on it).
/// Shared by the SharpFuzz harness (Program.cs) and tests/Naani.Tests/Fuzzing, so both hold readers to one contract.
///
/// The contract, per reader (a missing file is FileNotFoundException everywhere, but a fuzzed file always exists):
///   model, model-raw  ModelFile.Load          InvalidDataException
///   idx, idx-gz       IdxReader.Read          InvalidDataException (a corrupt gzip stream too, wrapped with the offset)
///   cifar10, cifar100 Cifar.ReadFile          InvalidDataException
///   keras-h5          KerasWeights.ReadLayers and Load   InvalidDataException
///   image             ImageFile.ReadHeader    InvalidDataException; ImageFile.TryLoad returns false with a reason
///   keras-json        KerasJson.Read (model.to_json() text)   InvalidDataException
///   keras-archive     KerasModelFile.Load (.keras zips and whole-model .h5)   InvalidDataException
public static class FuzzTargets
{
    public static IReadOnlyList<string> Names { get; } = ["model", "model-raw", "idx", "idx-gz", "cifar10", "cifar100", "keras-h5", "image", "keras-json", "keras-archive"];

    /// The weights a fuzzed Keras JSON may ask for (its seeds need about 50,000): more is refused by the reader's bound.
    public const long KerasJsonMaxParameters = 1 << 20;

    /// The largest image the image target decodes: a fuzzed header claiming more is refused by the reader's own
    /// check, which keeps an execution fast (the default, 100 megapixels, is tested in the suite).
    public const long ImageMaxPixels = 1 << 22;

    /// Writes bytes to scratchPath (the readers take paths) and runs the target's reader on it. Returns null when the
    /// reader loaded the bytes, the exception when it refused them as documented; anything else escapes.
    public static InvalidDataException? Run(string target, byte[] bytes, string scratchPath)
    {
        if (target == "model") bytes = WithModelTrailer(bytes);
        File.WriteAllBytes(scratchPath, bytes);
        try
        {
            switch (target)
            {
                case "model":
                case "model-raw":
                    ModelFile.Load(scratchPath);
                    break;
                case "idx":
                case "idx-gz":
                    IdxReader.Read(scratchPath);
                    break;
                case "cifar10":
                    Cifar.ReadFile(scratchPath, CifarKind.Cifar10);
                    break;
                case "cifar100":
                    Cifar.ReadFile(scratchPath, CifarKind.Cifar100, fineLabels: false);
                    break;
                case "keras-h5":
                    KerasWeights.ReadLayers(scratchPath);
                    KerasWeights.Load(KerasModel(), scratchPath);
                    break;
                case "image":
                    RunImage(scratchPath);
                    break;
                case "keras-json":
                    KerasJson.Read(System.Text.Encoding.UTF8.GetString(bytes), scratchPath, seed: 1, maxParameters: KerasJsonMaxParameters);
                    break;
                case "keras-archive":
                    KerasModelFile.Load(scratchPath, seed: 1);
                    break;
                default:
                    throw new ArgumentException($"Unknown fuzz target '{target}'; the targets are: {string.Join(", ", Names)}.", nameof(target));
            }
        }
        catch (InvalidDataException refused)
        {
            return refused;
        }
        return null;
    }

    /// The model file guards its bytes with a CRC-32 and its length in a 12-byte trailer, so nearly every mutation is
    /// refused there. The "model" target rewrites the trailer to match the mutated bytes, so mutations reach the JSON
    /// header, the layer configs and the weights; "model-raw" leaves the bytes as they are.
    public static byte[] WithModelTrailer(byte[] bytes)
    {
        const int trailer = 12;
        if (bytes.Length < 16 + trailer) return bytes;
        var fixedUp = (byte[])bytes.Clone();
        int body = fixedUp.Length - trailer;
        BinaryPrimitives.WriteUInt32LittleEndian(fixedUp.AsSpan(body), Crc32(fixedUp.AsSpan(0, body)));
        BinaryPrimitives.WriteUInt64LittleEndian(fixedUp.AsSpan(body + 4), (ulong)fixedUp.Length);
        return fixedUp;
    }

    /// CRC-32 as zlib and PNG compute it (the model file's checksum), bit by bit: inputs here are a few KB.
    public static uint Crc32(ReadOnlySpan<byte> data)
    {
        uint c = ~0u;
        foreach (byte b in data)
        {
            c ^= b;
            for (int k = 0; k < 8; k++) c = (c & 1) != 0 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        }
        return ~c;
    }

    static void RunImage(string path)
    {
        ImageFile.ReadHeader(path, ImageMaxPixels);
        Span<float> pixels = stackalloc float[8 * 6 * 3];
        ImageFile.TryLoad(path, 8, 6, ColorMode.Rgb, pixels, out _, cropToAspectRatio: false, maxPixels: ImageMaxPixels);
        ImageFile.TryLoad(path, 6, 8, ColorMode.Grayscale, pixels, out _, cropToAspectRatio: true, maxPixels: ImageMaxPixels);
    }

    /// The architecture of fuzz/corpus/keras-h5's seeds (tests/Naani.Tests/Reference/keras): a conv, a batch
    /// normalization and a dense head, with Keras's layer names. New each time: Load changes the weights.
    public static Sequential KerasModel() => new Sequential("small", seed: 1)
        .Add(new Input(6, 6, 1))
        .Add(new Conv2D(4, 3, activation: Activation.Relu, name: "block1_conv1"))
        .Add(new BatchNormalization(name: "block1_bn"))
        .Add(new MaxPooling2D(2, name: "block1_pool"))
        .Add(new Flatten(name: "flatten"))
        .Add(new Dense(3, Activation.Softmax, name: "fc"));
}
