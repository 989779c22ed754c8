using Naani.Layers;
using Naani.Tests.Kernels;
using Xunit;

namespace Naani.Tests.Layers;

/// The normalization layers split their rows or samples across threads and sum per-thread statistics in a fixed
/// order: any thread count gives the same numbers up to float rounding, and the same count gives them bit for bit.
[Collection(ThreadingCollection.Name)]
public sealed class NormalizationThreadingTests
{
    public static TheoryData<string> Layers => new() { "batch", "batch-inference", "layer", "layer-sample", "group", "instance" };

    static Layer Create(string kind) => kind switch
    {
        "batch" or "batch-inference" => new BatchNormalization(),
        "layer" => new LayerNormalization(),
        "layer-sample" => new LayerNormalization([1, 2, 3]),
        "group" => new GroupNormalization(4),
        "instance" => new InstanceNormalization(),
        _ => throw new ArgumentException(kind),
    };

    static (float[] Y, float[] Dx, float[] Grads) Run(string kind, int threads)
    {
        (float[], float[], float[]) result = default;
        ThreadingCollection.WithThreads(threads, () =>
        {
            var layer = Create(kind);
            layer.Build(new Shape(9, 7, 12), new Rng(1));
            var rng = new Rng(2);
            foreach (var p in layer.Parameters)
                for (int i = 0; i < p.Size; i++) p.Value.Data[i] = p.Name == "moving_variance" ? rng.Uniform(0.5f, 2f) : rng.Uniform(-1f, 1f);
            var x = GradientCheck.Uniform(rng, -1, 3, 8, 9, 7, 12);
            var y = new Tensor(x.Shape);
            var dx = new Tensor(x.Shape);
            layer.Forward(x, y, training: kind != "batch-inference");
            layer.Backward(x, y, GradientCheck.Uniform(rng, -1, 1, 8, 9, 7, 12), dx);
            result = (y.Data, dx.Data, [.. layer.Parameters.SelectMany(p => p.Gradient.Data.Concat(p.Value.Data))]);
        });
        return result;
    }

    [Theory]
    [MemberData(nameof(Layers))]
    public void Any_thread_count_gives_the_same_result_and_the_same_count_the_same_bits(string kind)
    {
        var one = Run(kind, 1);
        var three = Run(kind, 3);
        var threeAgain = Run(kind, 3);

        Assert.Equal(three.Y, threeAgain.Y);
        Assert.Equal(three.Dx, threeAgain.Dx);
        Assert.Equal(three.Grads, threeAgain.Grads);
        foreach (var (a, b, what) in new[] { (one.Y, three.Y, "y"), (one.Dx, three.Dx, "dx"), (one.Grads, three.Grads, "weights and gradients") })
        {
            double scale = a.Max(v => Math.Abs(v));
            for (int i = 0; i < a.Length; i++)
                Assert.True(Math.Abs(a[i] - b[i]) <= 1e-5 * scale, $"{kind} {what}[{i}]: 1 thread {a[i]}, 3 threads {b[i]}");
        }
    }
}
