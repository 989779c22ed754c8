using System.Runtime.InteropServices;

namespace Naani.Models;

/// A 64-bit checksum of training data, so that a checkpoint resumes only on the data it was made on. Not
/// cryptographic: it tells data apart, it does not defend against someone forging a collision.
public static class DataFingerprint
{
    /// Of the first samples of each tensor (shape and values), in order, as 16 hex digits.
    public static string Of(IReadOnlyList<(Tensor Tensor, int Samples)> tensors)
    {
        ulong h = 0x6A09E667F3BCC908UL;
        foreach (var (t, samples) in tensors)
        {
            h = Mix(h, (ulong)samples);
            for (int i = 1; i < t.Rank; i++) h = Mix(h, (ulong)t.Shape[i]);
            h = Hash(h, MemoryMarshal.AsBytes(t.Data.AsSpan(0, samples * t.SampleSize)));
        }
        return h.ToString("x16", System.Globalization.CultureInfo.InvariantCulture);
    }

    /// Of a string (what identifies a streamed source: its files, sizes and labels).
    public static string Of(string text) =>
        Hash(0x6A09E667F3BCC908UL, System.Text.Encoding.UTF8.GetBytes(text)).ToString("x16", System.Globalization.CultureInfo.InvariantCulture);

    // Four independent lanes over 32-byte blocks, folded at the end: about 2 bytes per cycle, 0.1 s for Fashion-MNIST.
    static ulong Hash(ulong seed, ReadOnlySpan<byte> bytes)
    {
        var words = MemoryMarshal.Cast<byte, ulong>(bytes);
        ulong a = seed, b = ~seed, c = seed * 3, d = seed ^ 0x9E3779B97F4A7C15UL;
        int i = 0;
        for (; i + 4 <= words.Length; i += 4)
        {
            a = Mix(a, words[i]);
            b = Mix(b, words[i + 1]);
            c = Mix(c, words[i + 2]);
            d = Mix(d, words[i + 3]);
        }
        ulong h = Mix(Mix(Mix(Mix(seed, a), b), c), d);
        for (; i < words.Length; i++) h = Mix(h, words[i]);
        for (int j = words.Length * 8; j < bytes.Length; j++) h = Mix(h, bytes[j]);
        return Mix(h, (ulong)bytes.Length);
    }

    static ulong Mix(ulong h, ulong v)
    {
        h ^= v * 0x9E3779B97F4A7C15UL;
        h = ulong.RotateLeft(h, 29) * 0xBF58476D1CE4E5B9UL;
        return h ^ (h >> 32);
    }
}
