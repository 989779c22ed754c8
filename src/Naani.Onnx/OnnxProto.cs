using System.Runtime.InteropServices;
using Google.Protobuf;

namespace Naani.Onnx;

// The part of onnx.proto (github.com/onnx/onnx, onnx/onnx.proto, proto2) that an exported CNN uses, written
// by hand on Google.Protobuf's CodedOutputStream. Naani only writes ONNX, never reads it, so a write-only
// subset of eight small messages is clearer than ~8,000 lines of protoc output and a build step that runs a
// native protoc. Field numbers are onnx.proto's; the tests load every file in ONNX Runtime, which parses it
// with the real generated code. To add a field: one property and one line in WriteFields, with its number.

/// A protobuf message whose fields are listed once, in WriteFields; the same list both measures the message
/// (the length that prefixes it when nested) and writes it.
internal abstract class ProtoMessage
{
    internal abstract void WriteFields(ProtoWriter w);

    public int CalculateSize()
    {
        var measure = new ProtoWriter(null);
        WriteFields(measure);
        return measure.Size;
    }

    public byte[] ToByteArray()
    {
        var bytes = new byte[CalculateSize()];
        var output = new CodedOutputStream(bytes);
        WriteFields(new ProtoWriter(output));
        output.CheckNoSpaceLeft();
        return bytes;
    }

    public void WriteTo(Stream stream)
    {
        using var output = new CodedOutputStream(stream, leaveOpen: true);
        WriteFields(new ProtoWriter(output));
        output.Flush();
    }
}

/// Writes protobuf fields to a CodedOutputStream, or, given none, only adds up their encoded size.
/// Repeated scalars are written unpacked, one tag per value, as proto2 declares them in onnx.proto.
internal sealed class ProtoWriter(CodedOutputStream? output)
{
    public int Size { get; private set; }

    void Tag(int field, WireFormat.WireType type)
    {
        if (output is null) Size += CodedOutputStream.ComputeTagSize(field);
        else output.WriteTag(field, type);
    }

    public void Int64(int field, long value)
    {
        Tag(field, WireFormat.WireType.Varint);
        if (output is null) Size += CodedOutputStream.ComputeInt64Size(value);
        else output.WriteInt64(value);
    }

    public void Int64s(int field, IEnumerable<long> values)
    {
        foreach (var value in values) Int64(field, value);
    }

    public void Float(int field, float value)
    {
        Tag(field, WireFormat.WireType.Fixed32);
        if (output is null) Size += CodedOutputStream.ComputeFloatSize(value);
        else output.WriteFloat(value);
    }

    /// An optional string: nothing is written when it is null.
    public void String(int field, string? value)
    {
        if (value is null) return;
        Tag(field, WireFormat.WireType.LengthDelimited);
        if (output is null) Size += CodedOutputStream.ComputeStringSize(value);
        else output.WriteString(value);
    }

    public void Strings(int field, IEnumerable<string> values)
    {
        foreach (var value in values) String(field, value);
    }

    public void Bytes(int field, ByteString? value)
    {
        if (value is null) return;
        Tag(field, WireFormat.WireType.LengthDelimited);
        if (output is null) Size += CodedOutputStream.ComputeBytesSize(value);
        else output.WriteBytes(value);
    }

    /// An optional nested message, prefixed with its length.
    public void Message(int field, ProtoMessage? message)
    {
        if (message is null) return;
        int length = message.CalculateSize();
        Tag(field, WireFormat.WireType.LengthDelimited);
        if (output is null) Size += CodedOutputStream.ComputeLengthSize(length) + length;
        else
        {
            output.WriteLength(length);
            message.WriteFields(this);
        }
    }

    public void Messages(int field, IEnumerable<ProtoMessage> messages)
    {
        foreach (var message in messages) Message(field, message);
    }
}

/// onnx.proto's ModelProto: the file. ir_version and opset_import say which spec the graph follows.
internal sealed class ModelProto : ProtoMessage
{
    public long IrVersion { get; init; }
    public string? ProducerName { get; init; }
    public string? ProducerVersion { get; init; }
    public string? DocString { get; init; }
    public required GraphProto Graph { get; init; }
    public List<OperatorSetIdProto> OpsetImport { get; } = [];
    public List<StringStringEntryProto> MetadataProps { get; } = [];

    internal override void WriteFields(ProtoWriter w)
    {
        w.Int64(1, IrVersion);
        w.String(2, ProducerName);
        w.String(3, ProducerVersion);
        w.String(6, DocString);
        w.Message(7, Graph);
        w.Messages(8, OpsetImport);
        w.Messages(14, MetadataProps);
    }
}

/// onnx.proto's OperatorSetIdProto: domain "" is the default ONNX operator set.
internal sealed class OperatorSetIdProto : ProtoMessage
{
    public string Domain { get; init; } = "";
    public long Version { get; init; }

    internal override void WriteFields(ProtoWriter w)
    {
        w.String(1, Domain);
        w.Int64(2, Version);
    }
}

internal sealed class StringStringEntryProto : ProtoMessage
{
    public required string Key { get; init; }
    public required string Value { get; init; }

    internal override void WriteFields(ProtoWriter w)
    {
        w.String(1, Key);
        w.String(2, Value);
    }
}

/// onnx.proto's GraphProto: nodes in topological order, the weights as initializers, typed inputs and outputs.
internal sealed class GraphProto : ProtoMessage
{
    public string? Name { get; init; }
    public List<NodeProto> Node { get; } = [];
    public List<TensorProto> Initializer { get; } = [];
    public List<ValueInfoProto> Input { get; } = [];
    public List<ValueInfoProto> Output { get; } = [];

    internal override void WriteFields(ProtoWriter w)
    {
        w.Messages(1, Node);
        w.String(2, Name);
        w.Messages(5, Initializer);
        w.Messages(11, Input);
        w.Messages(12, Output);
    }
}

/// onnx.proto's NodeProto: one operator call, its input and output value names and its attributes.
internal sealed class NodeProto : ProtoMessage
{
    public required string OpType { get; init; }
    public string? Name { get; init; }
    public List<string> Input { get; } = [];
    public List<string> Output { get; } = [];
    public List<AttributeProto> Attribute { get; } = [];

    internal override void WriteFields(ProtoWriter w)
    {
        w.Strings(1, Input);
        w.Strings(2, Output);
        w.String(3, Name);
        w.String(4, OpType);
        w.Messages(5, Attribute);
    }
}

/// onnx.proto's AttributeProto, for the three kinds the exporter needs: an int, a float, a list of ints.
internal sealed class AttributeProto : ProtoMessage
{
    // AttributeProto.AttributeType
    const long FloatType = 1, IntType = 2, IntsType = 7;

    AttributeProto(string name, long type) => (Name, Type) = (name, type);

    public string Name { get; }
    public long Type { get; }
    public float F { get; private init; }
    public long I { get; private init; }
    public IReadOnlyList<long> Ints { get; private init; } = [];

    public static AttributeProto Int(string name, long value) => new(name, IntType) { I = value };
    public static AttributeProto Float(string name, float value) => new(name, FloatType) { F = value };
    public static AttributeProto IntList(string name, params long[] values) => new(name, IntsType) { Ints = values };

    internal override void WriteFields(ProtoWriter w)
    {
        w.String(1, Name);
        if (Type == FloatType) w.Float(2, F);
        if (Type == IntType) w.Int64(3, I);
        w.Int64s(8, Ints);
        w.Int64(20, Type);
    }
}

/// onnx.proto's TensorProto.DataType values used here.
internal static class DataType
{
    public const int Float = 1;
    public const int Int64 = 7;
}

/// onnx.proto's TensorProto: a constant (a weight), stored as raw little-endian bytes in row-major order.
internal sealed class TensorProto : ProtoMessage
{
    public required string Name { get; init; }
    public required long[] Dims { get; init; }
    public int DataType { get; init; }
    public required ByteString RawData { get; init; }

    public static TensorProto FromFloats(string name, long[] dims, ReadOnlySpan<float> values) =>
        new() { Name = name, Dims = dims, DataType = Onnx.DataType.Float, RawData = LittleEndian(MemoryMarshal.AsBytes(values)) };

    public static TensorProto FromInt64s(string name, long[] dims, ReadOnlySpan<long> values) =>
        new() { Name = name, Dims = dims, DataType = Onnx.DataType.Int64, RawData = LittleEndian(MemoryMarshal.AsBytes(values)) };

    static ByteString LittleEndian(ReadOnlySpan<byte> bytes)
    {
        if (!BitConverter.IsLittleEndian)
            throw new PlatformNotSupportedException("ONNX export writes tensors as raw little-endian bytes; this machine is big-endian.");
        return UnsafeByteOperations.UnsafeWrap(bytes.ToArray());
    }

    internal override void WriteFields(ProtoWriter w)
    {
        w.Int64s(1, Dims);
        w.Int64(2, DataType);
        w.String(8, Name);
        w.Bytes(9, RawData);
    }
}

/// onnx.proto's ValueInfoProto: a named, typed value (the graph's input and output).
internal sealed class ValueInfoProto : ProtoMessage
{
    public required string Name { get; init; }
    public required TypeProto Type { get; init; }

    /// A float tensor whose dimensions are sizes, or names for sizes known only at run time ("N" for the batch).
    public static ValueInfoProto FloatTensor(string name, IEnumerable<TensorShapeProto.Dimension> shape) => new()
    {
        Name = name,
        Type = new TypeProto { TensorType = new TypeProto.Tensor { ElemType = DataType.Float, Shape = new TensorShapeProto([.. shape]) } },
    };

    internal override void WriteFields(ProtoWriter w)
    {
        w.String(1, Name);
        w.Message(2, Type);
    }
}

/// onnx.proto's TypeProto, tensors only (its oneof also holds sequences, maps and optionals).
internal sealed class TypeProto : ProtoMessage
{
    public required Tensor TensorType { get; init; }

    internal override void WriteFields(ProtoWriter w) => w.Message(1, TensorType);

    public sealed class Tensor : ProtoMessage
    {
        public int ElemType { get; init; }
        public TensorShapeProto? Shape { get; init; }

        internal override void WriteFields(ProtoWriter w)
        {
            w.Int64(1, ElemType);
            w.Message(2, Shape);
        }
    }
}

/// onnx.proto's TensorShapeProto.
internal sealed class TensorShapeProto(IReadOnlyList<TensorShapeProto.Dimension> dims) : ProtoMessage
{
    public IReadOnlyList<Dimension> Dim { get; } = dims;

    internal override void WriteFields(ProtoWriter w) => w.Messages(1, Dim);

    /// Either a size (dim_value) or a symbol (dim_param), the oneof of onnx.proto.
    public sealed class Dimension : ProtoMessage
    {
        public long? Value { get; init; }
        public string? Symbol { get; init; }

        public static implicit operator Dimension(int value) => new() { Value = value };
        public static Dimension Named(string symbol) => new() { Symbol = symbol };

        internal override void WriteFields(ProtoWriter w)
        {
            if (Value is long value) w.Int64(1, value);
            w.String(2, Symbol);
        }
    }
}
