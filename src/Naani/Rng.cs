namespace Naani;

/// The one seeded random generator (xoshiro256**, seeded by SplitMix64). Every random choice in
/// Naani (initial weights, shuffling, dropout masks) is drawn from an Rng derived from the model's
/// seed, so the same seed and thread count reproduce a run bit for bit.
public sealed class Rng
{
    ulong s0, s1, s2, s3;

    public Rng(ulong seed)
    {
        ulong x = seed;
        s0 = SplitMix(ref x); s1 = SplitMix(ref x); s2 = SplitMix(ref x); s3 = SplitMix(ref x);
    }

    static ulong SplitMix(ref ulong x)
    {
        ulong z = x += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    public ulong NextUInt64()
    {
        ulong result = ulong.RotateLeft(s1 * 5, 7) * 9;
        ulong t = s1 << 17;
        s2 ^= s0; s3 ^= s1; s1 ^= s2; s0 ^= s3;
        s2 ^= t;
        s3 = ulong.RotateLeft(s3, 45);
        return result;
    }

    /// The generator's position in its stream (four 64-bit words), so a checkpoint can store it and a
    /// resumed run continue the same stream.
    public ulong[] GetState() => [s0, s1, s2, s3];

    /// Puts the generator back at a position GetState returned.
    public void SetState(ReadOnlySpan<ulong> state)
    {
        if (state.Length != 4) throw new ArgumentException($"A generator state has 4 words; got {state.Length}.", nameof(state));
        if ((state[0] | state[1] | state[2] | state[3]) == 0) throw new ArgumentException("A generator state of all zeros is not one xoshiro256** can be in.", nameof(state));
        (s0, s1, s2, s3) = (state[0], state[1], state[2], state[3]);
    }

    /// The state as 64 hex digits (how checkpoints write it), and back.
    public string StateToHex() => string.Concat(GetState().Select(w => w.ToString("x16", System.Globalization.CultureInfo.InvariantCulture)));

    public void SetStateFromHex(string hex)
    {
        if (hex is not { Length: 64 } || !hex.All(char.IsAsciiHexDigit))
            throw new FormatException($"A generator state is 64 hex digits; got '{hex}'.");
        Span<ulong> words = stackalloc ulong[4];
        for (int i = 0; i < 4; i++) words[i] = ulong.Parse(hex.AsSpan(16 * i, 16), System.Globalization.NumberStyles.HexNumber, System.Globalization.CultureInfo.InvariantCulture);
        SetState(words);
    }

    /// A new generator whose stream is independent of this one's (used per layer and per thread).
    public Rng Fork() => new(NextUInt64());

    /// Uniform in [0, 1) with 24 random bits, exactly representable as float.
    public float NextFloat() => (NextUInt64() >> 40) * (1.0f / (1 << 24));

    /// Uniform in [0, 1) with 53 random bits.
    public double NextDouble() => (NextUInt64() >> 11) * (1.0 / (1UL << 53));

    public float Uniform(float low, float high) => low + (high - low) * NextFloat();

    /// Uniform integer in [0, n).
    public int NextInt(int n)
    {
        if (n <= 0) throw new ArgumentOutOfRangeException(nameof(n));
        return (int)((NextUInt64() >> 32) * (ulong)n >> 32);
    }

    /// Standard normal by Box-Muller (one value per call; the pair's second value is discarded to keep the stream simple).
    public double NextGaussian()
    {
        double u1 = 1.0 - NextDouble();
        double u2 = NextDouble();
        return Math.Sqrt(-2.0 * Math.Log(u1)) * Math.Cos(2.0 * Math.PI * u2);
    }

    /// Normal truncated to two standard deviations, as Keras's TruncatedNormal.
    public double NextTruncatedGaussian()
    {
        while (true)
        {
            double g = NextGaussian();
            if (Math.Abs(g) <= 2.0) return g;
        }
    }

    /// Fisher-Yates shuffle in place.
    public void Shuffle(Span<int> values)
    {
        for (int i = values.Length - 1; i > 0; i--)
        {
            int j = NextInt(i + 1);
            (values[i], values[j]) = (values[j], values[i]);
        }
    }
}
