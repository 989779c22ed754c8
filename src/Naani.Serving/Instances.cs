using System.Text.Json;

namespace Naani.Serving;

/// TensorFlow Serving's REST request body, {"instances": [...]} (row format) or {"inputs": [...]} (columnar, one
/// input), each instance an (H, W, C) nested array, read into samples laid end to end (NHWC). A model with one
/// channel also takes (H, W) instances, as clients of grayscale models send them.
public static class Instances
{
    /// The samples of a request body and their count; BadRequestException for anything malformed, naming the
    /// instance and the position at fault.
    public static (float[] Samples, int Count) Read(ReadOnlySpan<byte> json, Shape inputShape)
    {
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(json.ToArray(), new JsonDocumentOptions { MaxDepth = 16 });
        }
        catch (JsonException e)
        {
            throw new BadRequestException($"The body is not valid JSON: {e.Message}");
        }
        using (document)
        {
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
                throw new BadRequestException("The body must be a JSON object with \"instances\" (or \"inputs\"): a list of samples.");
            if (!root.TryGetProperty("instances", out var list) && !root.TryGetProperty("inputs", out list))
                throw new BadRequestException("The body has no \"instances\" (or \"inputs\"): give a list of samples, each of shape " + Dims(inputShape) + ".");
            if (list.ValueKind != JsonValueKind.Array)
                throw new BadRequestException("\"instances\" must be a list of samples.");
            int count = list.GetArrayLength();
            if (count == 0) throw new BadRequestException("\"instances\" is empty: give at least one sample.");
            int size = inputShape.Size;
            var samples = new float[(long)count * size <= int.MaxValue ? count * size : throw new BadRequestException($"{count} instances are too many.")];
            int index = 0;
            foreach (var instance in list.EnumerateArray())
            {
                int written = 0;
                var dims = inputShape.ToArray();
                // A one-channel model takes (H, W) instances too.
                if (dims[^1] == 1 && Depth(instance) == dims.Length - 1) dims = dims[..^1];
                Fill(instance, dims, 0, samples.AsSpan(index * size, size), ref written, index, []);
                index++;
            }
            return (samples, count);
        }
    }

    /// A binary body: samples of the input shape as float32, little-endian, NHWC, laid end to end (the layout of
    /// Triton's binary tensor data, without its JSON header). The count is the body's length over a sample's bytes;
    /// a length that is not a whole number of samples, or a value that is not finite, is refused naming the sample.
    public static (float[] Samples, int Count) ReadBinary(ReadOnlySpan<byte> body, Shape inputShape)
    {
        int count = BinaryCount(body.Length, inputShape);
        var samples = new float[count * inputShape.Size];
        if (BitConverter.IsLittleEndian) body.CopyTo(System.Runtime.InteropServices.MemoryMarshal.AsBytes(samples.AsSpan()));
        else
            for (int i = 0; i < samples.Length; i++)
                samples[i] = System.Buffers.Binary.BinaryPrimitives.ReadSingleLittleEndian(body[(i * 4)..]);
        CheckFinite(samples, inputShape);
        return (samples, count);
    }

    /// The number of samples in a binary body of byteLength bytes, or a BadRequestException saying why it holds none.
    public static int BinaryCount(long byteLength, Shape inputShape)
    {
        long sampleBytes = (long)inputShape.Size * sizeof(float);
        if (byteLength % sampleBytes != 0)
            throw new BadRequestException(
                $"The body holds {byteLength} bytes, not a whole number of samples: each sample of shape {Dims(inputShape)} is {sampleBytes} bytes of float32 (little-endian, NHWC).");
        return checked((int)(byteLength / sampleBytes));
    }

    /// Refuses samples holding a value that is not finite, naming the sample and the element.
    public static void CheckFinite(ReadOnlySpan<float> samples, Shape inputShape)
    {
        if (Naani.Kernels.Finite.All(samples)) return;
        int at = 0;
        while (float.IsFinite(samples[at])) at++;
        throw new BadRequestException($"Sample {at / inputShape.Size} holds a value that is not finite ({samples[at]}) at element {at % inputShape.Size}.");
    }

    static int Depth(JsonElement e)
    {
        int depth = 0;
        while (e.ValueKind == JsonValueKind.Array && e.GetArrayLength() > 0)
        {
            depth++;
            e = e[0];
        }
        return depth;
    }

    static void Fill(JsonElement e, int[] dims, int axis, Span<float> destination, ref int written, int instance, List<int> at)
    {
        if (axis == dims.Length)
        {
            if (e.ValueKind != JsonValueKind.Number || !e.TryGetSingle(out float value) || !float.IsFinite(value))
                throw new BadRequestException($"Instance {instance}{Where(at)} is {Describe(e)}; expected a finite number.");
            destination[written++] = value;
            return;
        }
        if (e.ValueKind != JsonValueKind.Array || e.GetArrayLength() != dims[axis])
            throw new BadRequestException(
                $"Instance {instance}{Where(at)} is {Describe(e)}; expected a list of {dims[axis]} (each instance has shape [{string.Join(", ", dims)}]).");
        int i = 0;
        foreach (var item in e.EnumerateArray())
        {
            at.Add(i++);
            Fill(item, dims, axis + 1, destination, ref written, instance, at);
            at.RemoveAt(at.Count - 1);
        }
    }

    static string Where(List<int> at) => at.Count == 0 ? "" : $" at [{string.Join(", ", at)}]";

    static string Describe(JsonElement e) => e.ValueKind switch
    {
        JsonValueKind.Array => $"a list of {e.GetArrayLength()}",
        JsonValueKind.Number => $"the number {e.GetRawText()}",
        JsonValueKind.String => "a string",
        JsonValueKind.Object => "an object",
        _ => e.ValueKind.ToString().ToLowerInvariant(),
    };

    static string Dims(Shape shape) => "[" + string.Join(", ", shape.ToArray()) + "]";
}
