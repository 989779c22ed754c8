using Naani.Kernels;
using Naani.Layers;
using Naani.Tests.Kernels;

namespace Naani.Tests.Layers;

/// With fewer images than threads (inference on one image), Conv2D splits each image by output rows;
/// the result is the same as one thread computing the whole image.
[Collection(ThreadingCollection.Name)]
public sealed class Conv2DSplitImageTests
{
    [Theory]
    [InlineData(40, 40, 3, 32, 3, 1, Padding.Same)]     // implicit GEMM
    [InlineData(19, 23, 5, 20, 3, 2, Padding.Same)]     // im2col + GEMM
    [InlineData(16, 16, 24, 40, 1, 1, Padding.Valid)]   // pointwise
    [InlineData(28, 28, 1, 32, 5, 1, Padding.Valid)]
    public void One_image_split_across_threads_equals_one_thread(int h, int w, int c, int filters, int k, int s, Padding padding)
    {
        var conv = new Conv2D(filters, (k, k), (s, s), padding, Activation.Relu);
        conv.Build(new Shape(h, w, c), new Rng(1));
        var rng = new Rng(2);
        for (int i = 0; i < conv.Bias!.Size; i++) conv.Bias.Value.Data[i] = rng.NextFloat() - 0.5f;
        var x = new Tensor(new Shape(h, w, c).WithBatch(1));
        for (int i = 0; i < x.Length; i++) x.Data[i] = rng.NextFloat() - 0.5f;
        var y1 = new Tensor(conv.OutputShape.WithBatch(1));
        var y2 = new Tensor(conv.OutputShape.WithBatch(1));
        ThreadingCollection.WithThreads(1, () => conv.Forward(x, y1, training: false));
        ThreadingCollection.WithThreads(3, () => conv.Forward(x, y2, training: false));
        Assert.Equal(y1.Data, y2.Data);
    }
}
