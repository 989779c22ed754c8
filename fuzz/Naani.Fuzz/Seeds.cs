using System.Buffers.Binary;
using System.IO.Compression;
using Naani.Kernels;
using Naani.Layers;
using Naani.Models;
using Naani.Optimizers;
using Naani.Serialization;
using Naani.Vision;
using SkiaSharp;

namespace Naani.Fuzz;

/// Small valid files for every target, written by Naani itself (KBs each: AFL mutates small inputs fastest).
static class Seeds
{
    public static void Write(string root, string? kerasFolder)
    {
        string Dir(string target) => Directory.CreateDirectory(Path.Combine(root, target)).FullName;

        // A Sequential (format version 1) with an optimizer state, and a Functional graph (version 2).
        var sequential = new Sequential("seed", seed: 3)
            .Add(new Input(6, 6, 1))
            .Add(new Conv2D(2, 3, activation: Activation.Relu, name: "conv"))
            .Add(new BatchNormalization(name: "bn"))
            .Add(new MaxPooling2D(2))
            .Add(new Flatten())
            .Add(new Dense(3, Activation.Softmax, name: "head"));
        sequential.Compile(new Adam(), new Losses.CategoricalCrossEntropy(), "accuracy");
        var x = new Tensor(2, 6, 6, 1);
        var y = new Tensor(2, 3);
        y.Data[0] = y.Data[5] = 1;
        sequential.TrainStep(x, y);
        sequential.ClassNames = ["a", "b", "c"];
        ModelFile.Save(sequential, Path.Combine(Dir("model"), "sequential.naani"));

        var input = Input.Create(new Shape(4, 4, 2), "image");
        var left = new Conv2D(2, 1, name: "left").Call(input);
        var right = new ZeroPadding2D(1, name: "pad").Call(new Conv2D(2, 3, name: "right").Call(input));
        var joined = new Concatenate(name: "join").Call([left, right]);
        var sum = new Add(name: "sum").Call([left, right]);
        var pooled = new GlobalAveragePooling2D(name: "gap").Call(joined);
        var head = new Dense(2, Activation.Sigmoid, name: "out").Call(pooled);
        var aux = new Dense(1, name: "aux").Call(new Flatten(name: "flat").Call(new AveragePooling2D(2, name: "avg").Call(sum)));
        var graph = new Functional([input], [head, aux], "graph", seed: 5);
        graph.Compile(new SGD(0.1, 0.9), [new Losses.BinaryCrossEntropy(), new Losses.MeanSquaredError()], [1.0, 0.5]);
        ModelFile.Save(graph, Path.Combine(Dir("model"), "functional.naani"));
        foreach (var file in Directory.GetFiles(Dir("model")))
            File.Copy(file, Path.Combine(Dir("model-raw"), Path.GetFileName(file)), overwrite: true);

        // IDX: a ubyte image file (3 images of 4x4), a label file, a float32 file; and their gzip forms.
        byte[] images = Idx(0x08, [3, 4, 4], [.. Enumerable.Range(0, 48).Select(i => (byte)(i * 5))]);
        byte[] labels = Idx(0x08, [3], [0, 1, 2]);
        byte[] floats = Idx(0x0D, [2, 2], [.. new[] { 0.5f, -1f, 3f, 1e-3f }.SelectMany(BigEndian)]);
        File.WriteAllBytes(Path.Combine(Dir("idx"), "images-idx3-ubyte"), images);
        File.WriteAllBytes(Path.Combine(Dir("idx"), "labels-idx1-ubyte"), labels);
        File.WriteAllBytes(Path.Combine(Dir("idx"), "floats-idx2-float"), floats);
        File.WriteAllBytes(Path.Combine(Dir("idx-gz"), "images-idx3-ubyte.gz"), Gzip(images));
        File.WriteAllBytes(Path.Combine(Dir("idx-gz"), "labels-idx1-ubyte.gz"), Gzip(labels));

        // CIFAR: one record each (label bytes, then 3072 pixel bytes: planar R, G, B).
        var pixels = Enumerable.Range(0, 3072).Select(i => (byte)(i * 7)).ToArray();
        File.WriteAllBytes(Path.Combine(Dir("cifar10"), "one_record.bin"), [3, .. pixels]);
        File.WriteAllBytes(Path.Combine(Dir("cifar100"), "one_record.bin"), [7, 42, .. pixels]);

        // Images: an 8x6 gradient in each format SkiaSharp encodes, plus a hand-made 24-bit BMP.
        using var bitmap = new SKBitmap(new SKImageInfo(8, 6, SKColorType.Rgba8888, SKAlphaType.Unpremul));
        for (int r = 0; r < 6; r++)
            for (int c = 0; c < 8; c++)
                bitmap.SetPixel(c, r, new SKColor((byte)(c * 32), (byte)(r * 40), (byte)(255 - c * 20), (byte)(200 + r * 9)));
        foreach (var (format, extension) in new[] { (SKEncodedImageFormat.Png, "png"), (SKEncodedImageFormat.Jpeg, "jpg"), (SKEncodedImageFormat.Webp, "webp") })
        {
            using var data = bitmap.Encode(format, 80);
            File.WriteAllBytes(Path.Combine(Dir("image"), $"seed.{extension}"), data.ToArray());
        }
        File.WriteAllBytes(Path.Combine(Dir("image"), "seed.bmp"), Bmp(bitmap));
        var gray = new Tensor(3, 5, 1);
        for (int i = 0; i < gray.Length; i++) gray.Data[i] = i / 15f;
        ImageFile.SavePng(gray, Path.Combine(Dir("image"), "gray.png"));

        if (kerasFolder is not null)
            foreach (var name in new[] { "small_weights.h5", "small_model.h5", "small_weights_latest.h5" })
                File.Copy(Path.Combine(kerasFolder, name), Path.Combine(Dir("keras-h5"), name), overwrite: true);
    }

    static byte[] Idx(byte type, int[] dims, byte[] payload)
    {
        var bytes = new byte[4 + 4 * dims.Length + payload.Length];
        bytes[2] = type;
        bytes[3] = (byte)dims.Length;
        for (int i = 0; i < dims.Length; i++) BinaryPrimitives.WriteInt32BigEndian(bytes.AsSpan(4 + 4 * i), dims[i]);
        payload.CopyTo(bytes, 4 + 4 * dims.Length);
        return bytes;
    }

    static byte[] BigEndian(float value)
    {
        var bytes = new byte[4];
        BinaryPrimitives.WriteSingleBigEndian(bytes, value);
        return bytes;
    }

    static byte[] Gzip(byte[] bytes)
    {
        using var buffer = new MemoryStream();
        using (var gzip = new GZipStream(buffer, CompressionLevel.Optimal)) gzip.Write(bytes);
        return buffer.ToArray();
    }

    /// A bottom-up 24-bit BMP (BITMAPINFOHEADER), rows padded to 4 bytes; SkiaSharp has no BMP encoder.
    static byte[] Bmp(SKBitmap bitmap)
    {
        int w = bitmap.Width, h = bitmap.Height, stride = (3 * w + 3) & ~3;
        var bytes = new byte[54 + stride * h];
        bytes[0] = (byte)'B';
        bytes[1] = (byte)'M';
        BinaryPrimitives.WriteInt32LittleEndian(bytes.AsSpan(2), bytes.Length);
        BinaryPrimitives.WriteInt32LittleEndian(bytes.AsSpan(10), 54);
        BinaryPrimitives.WriteInt32LittleEndian(bytes.AsSpan(14), 40);
        BinaryPrimitives.WriteInt32LittleEndian(bytes.AsSpan(18), w);
        BinaryPrimitives.WriteInt32LittleEndian(bytes.AsSpan(22), h);
        BinaryPrimitives.WriteInt16LittleEndian(bytes.AsSpan(26), 1);
        BinaryPrimitives.WriteInt16LittleEndian(bytes.AsSpan(28), 24);
        BinaryPrimitives.WriteInt32LittleEndian(bytes.AsSpan(34), stride * h);
        for (int r = 0; r < h; r++)
            for (int c = 0; c < w; c++)
            {
                var color = bitmap.GetPixel(c, h - 1 - r);
                int at = 54 + r * stride + 3 * c;
                (bytes[at], bytes[at + 1], bytes[at + 2]) = (color.Blue, color.Green, color.Red);
            }
        return bytes;
    }
}
