using System.Buffers.Binary;
using System.Text;
using Naani.Fuzz;

namespace Naani.Tests.Fuzzing;

/// Hostile files made from the fuzz corpus's seeds: a model file whose JSON header is edited (and whose trailer is
/// made to match, so the header is what the reader judges), IDX headers with any dimensions.
static class CraftedFiles
{
    static readonly string Corpus = Path.Combine(AppContext.BaseDirectory, "FuzzCorpus");

    public static byte[] Seed(string target, string name) => File.ReadAllBytes(Path.Combine(Corpus, target, name));

    /// The seed Sequential's header as text, and its data region.
    public static (string Header, byte[] Data) SequentialModel()
    {
        var bytes = Seed("model", "sequential.naani");
        int headerLength = (int)BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(12));
        return (Encoding.UTF8.GetString(bytes, 16, headerLength), bytes[(16 + headerLength)..^12]);
    }

    /// A model file with this header (bytes, taken as they are) and data, with a correct CRC and length.
    public static byte[] ModelFile(byte[] header, byte[] data)
    {
        var bytes = new byte[16 + header.Length + data.Length + 12];
        "NAANI\0\0\0"u8.CopyTo(bytes);
        BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(8), 1);
        BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(12), (uint)header.Length);
        header.CopyTo(bytes, 16);
        data.CopyTo(bytes, 16 + header.Length);
        return FuzzTargets.WithModelTrailer(bytes);
    }

    /// The seed Sequential with its header's text edited (old must occur).
    public static byte[] ModelWithHeaderEdit(string old, string replacement)
    {
        var (header, data) = SequentialModel();
        Assert.Contains(old, header);
        return ModelFile(Encoding.UTF8.GetBytes(header.Replace(old, replacement)), data);
    }

    public static byte[] Idx(byte type, int[] dims, int payloadBytes)
    {
        var bytes = new byte[4 + 4 * dims.Length + payloadBytes];
        bytes[2] = type;
        bytes[3] = (byte)dims.Length;
        for (int i = 0; i < dims.Length; i++) BinaryPrimitives.WriteInt32BigEndian(bytes.AsSpan(4 + 4 * i), dims[i]);
        return bytes;
    }
}
