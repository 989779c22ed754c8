using System.Buffers.Binary;

namespace Naani.Tests.Fuzzing;

/// A deterministic mutator in the manner of AFL's havoc stage: each input is a seed file with one to four of bit flips,
/// bytes set to 0/0xFF/0x7F/0x80, interesting 32-bit values (sizes near 2^31, 2^32 - 1, ...) written over the header,
/// decimal numbers swapped into text (a JSON header's sizes), truncations, extensions and duplicated chunks.
/// The same seed gives the same inputs on every machine (System.Random with a seed is a fixed algorithm).
sealed class Mutator(int seed)
{
    readonly Random random = new(seed);

    static readonly uint[] Interesting32 = [0, 1, 0x7F, 0x80, 0xFF, 0x100, 0xFFFF, 0x10000, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 0x40000000, 0x3FFFFFFF, 0x04000000, 0x01000000];
    static readonly string[] InterestingNumbers = ["0", "-1", "1", "2147483647", "2147483648", "-2147483648", "4294967295", "99999999999999", "1e9", "1e308", "-0", "0.5", "65536", "67108864"];
    static readonly byte[] InterestingBytes = [0, 0xFF, 0x7F, 0x80];

    /// The header is where a reader's decisions are: half the writes land in the first 64 bytes.
    int Offset(int length) => random.Next(2) == 0 ? random.Next(Math.Min(length, 64)) : random.Next(length);

    public byte[] Mutate(byte[] seedBytes)
    {
        var bytes = new List<byte>(seedBytes);
        int steps = 1 + random.Next(4);
        for (int s = 0; s < steps; s++)
        {
            if (bytes.Count == 0) bytes.Add(0);
            switch (random.Next(9))
            {
                case 0:
                    {
                        int at = Offset(bytes.Count);
                        bytes[at] ^= (byte)(1 << random.Next(8));
                        break;
                    }
                case 1:
                    bytes[Offset(bytes.Count)] = InterestingBytes[random.Next(InterestingBytes.Length)];
                    break;
                case 2:
                case 3:
                    {
                        if (bytes.Count < 4) break;
                        int at = Offset(bytes.Count - 3);
                        Span<byte> value = stackalloc byte[4];
                        uint v = Interesting32[random.Next(Interesting32.Length)];
                        if (random.Next(2) == 0) BinaryPrimitives.WriteUInt32BigEndian(value, v);
                        else BinaryPrimitives.WriteUInt32LittleEndian(value, v);
                        for (int i = 0; i < 4; i++) bytes[at + i] = value[i];
                        break;
                    }
                case 4:
                    ReplaceNumber(bytes);
                    break;
                case 5:
                    {
                        int keep = random.Next(bytes.Count);
                        bytes.RemoveRange(keep, bytes.Count - keep);
                        break;
                    }
                case 6:
                    {
                        int extra = 1 + random.Next(64);
                        byte fill = random.Next(2) == 0 ? (byte)0 : (byte)random.Next(256);
                        bytes.AddRange(Enumerable.Repeat(fill, extra));
                        break;
                    }
                case 7:
                    {
                        int from = random.Next(bytes.Count), length = 1 + random.Next(Math.Min(256, bytes.Count - from));
                        bytes.InsertRange(random.Next(bytes.Count + 1), bytes.GetRange(from, length));
                        break;
                    }
                default:
                    {
                        int from = random.Next(bytes.Count), length = 1 + random.Next(Math.Min(32, bytes.Count - from));
                        bytes.RemoveRange(from, length);
                        break;
                    }
            }
        }
        return [.. bytes];
    }

    /// Replaces a run of ASCII digits (a number in a JSON header) with an interesting number.
    void ReplaceNumber(List<byte> bytes)
    {
        for (int tries = 0; tries < 16; tries++)
        {
            int at = random.Next(bytes.Count);
            if (!char.IsAsciiDigit((char)bytes[at])) continue;
            int start = at, end = at;
            while (start > 0 && char.IsAsciiDigit((char)bytes[start - 1])) start--;
            while (end < bytes.Count && char.IsAsciiDigit((char)bytes[end])) end++;
            bytes.RemoveRange(start, end - start);
            bytes.InsertRange(start, InterestingNumbers[random.Next(InterestingNumbers.Length)].Select(c => (byte)c));
            return;
        }
    }
}
