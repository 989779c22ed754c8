using Naani.Kernels;
using Naani.Layers;
using Naani.Models;
using Naani.Tests.Kernels;

namespace Naani.Tests.Layers;

/// Inference fuses a Conv2D with the max pooling that reads its output (Conv2D.ForwardPooled): the result
/// equals running the two layers one after the other, for pool windows that tile the output (2x2, 3x3,
/// odd sizes whose last row and column the pooling drops), with one image split over threads or many.
[Collection(ThreadingCollection.Name)]
public sealed class ConvPoolFusionTests
{
    [Theory]
    [InlineData(32, 32, 3, 32, 3, Padding.Same, 2, Activation.Relu)]
    [InlineData(37, 35, 4, 10, 3, Padding.Valid, 2, Activation.Relu)]     // 35 x 33 output: the pooling drops a row and a column
    [InlineData(30, 30, 8, 40, 3, Padding.Same, 3, Activation.Linear)]
    [InlineData(20, 24, 2, 16, 5, Padding.Same, 2, Activation.Sigmoid)]
    [InlineData(12, 12, 64, 64, 3, Padding.Same, 2, Activation.Relu)]
    public void Fused_conv_and_pooling_equal_the_two_layers(int h, int w, int c, int filters, int k, Padding padding, int pool, Activation activation)
    {
        var conv = new Conv2D(filters, k, padding: padding, activation: activation);
        var (pooling, rng) = Build(conv, pool, h, w, c);
        Assert.True(conv.CanFusePooling(pooling));
        foreach (int batch in new[] { 1, 3 })
            foreach (int threads in new[] { 1, 2 })
            {
                var (x, y, expected, actual) = Tensors(conv, pooling, rng, batch);
                ThreadingCollection.WithThreads(threads, () =>
                {
                    conv.Forward(x, y, training: false);
                    pooling.Forward(y, expected, training: false);
                    conv.ForwardPooled(x, actual, pooling);
                });
                for (int i = 0; i < expected.Length; i++)
                    Assert.True(Math.Abs(expected.Data[i] - actual.Data[i]) <= 1e-6f * (1 + Math.Abs(expected.Data[i])),
                        $"batch {batch}, {threads} threads, value {i}: {actual.Data[i]} vs {expected.Data[i]}");
            }
    }

    /// A 2x2 pooling after a convolution that Winograd does not take: with AVX-512, the implicit convolution's micro-kernels
    /// pool 2 x 4 output pixels before storing them, and the result (with training, the argmax too) is bit for bit the two layers'. Odd
    /// output sizes (the pooling drops a row and a column), an odd number of pooled columns (the last micro-kernel stores
    /// one), a partial panel of filters (20; 40 = 32 + 8), 16-wide panels, padding, a strided convolution, one and two threads.
    [Theory]
    [InlineData(28, 28, 1, 32, 5, 1, Padding.Valid, Activation.Relu)]     // mnist-baseline's first layer
    [InlineData(27, 30, 1, 20, 5, 1, Padding.Valid, Activation.Relu)]     // 23 x 26 output: 11 x 13 pooled
    [InlineData(21, 19, 3, 40, 5, 1, Padding.Same, Activation.Linear)]
    [InlineData(16, 18, 2, 12, 5, 1, Padding.Same, Activation.Relu)]      // one 16-wide panel, 12 filters
    [InlineData(31, 33, 3, 16, 3, 2, Padding.Valid, Activation.Relu)]     // stride 2: 15 x 16 output
    public void Micro_kernels_that_pool_equal_the_two_layers_bit_for_bit(int h, int w, int c, int filters, int k, int stride, Padding padding, Activation activation)
    {
        var conv = new Conv2D(filters, k, stride, padding, activation);
        var (pooling, rng) = Build(conv, 2, h, w, c);
        foreach (int batch in new[] { 1, 3 })
            foreach (int threads in new[] { 1, 2 })
            {
                var (x, y, expected, actual) = Tensors(conv, pooling, rng, batch);
                actual.Data.AsSpan().Fill(float.NaN);
                ThreadingCollection.WithThreads(threads, () =>
                {
                    conv.Forward(x, y, training: false);
                    pooling.Forward(y, expected, training: false);
                    conv.ForwardPooled(x, actual, pooling);
                });
                Assert.Equal(System.Runtime.Intrinsics.Vector512.IsHardwareAccelerated, conv.PooledInKernel);
                Assert.Equal(ImplicitConvolution.SupportsPooling2x2(conv.Geometry), conv.PooledInKernel);
                for (int i = 0; i < expected.Length; i++)
                    Assert.True(expected.Data[i] == actual.Data[i], $"batch {batch}, {threads} threads, value {i}: {actual.Data[i]} vs {expected.Data[i]}");

                // Training: the same values, and the argmax the pooling records on the stored output (after the ReLU, the
                // first maximum in scan order: ties at 0 go to the window's top-left value).
                actual.Data.AsSpan().Fill(float.NaN);
                int[] fusedArgmax = [];
                ThreadingCollection.WithThreads(threads, () =>
                {
                    conv.ForwardPooled(x, actual, pooling, training: true);
                    fusedArgmax = pooling.RecordedArgmax(expected.Length).AsSpan(0, expected.Length).ToArray();
                    pooling.Forward(y, expected, training: true);
                });
                var argmax = pooling.RecordedArgmax(expected.Length);
                for (int i = 0; i < expected.Length; i++)
                {
                    Assert.True(expected.Data[i] == actual.Data[i], $"training: batch {batch}, {threads} threads, value {i}: {actual.Data[i]} vs {expected.Data[i]}");
                    Assert.True(argmax[i] == fusedArgmax[i], $"training: batch {batch}, {threads} threads, argmax {i}: {fusedArgmax[i]} vs {argmax[i]}");
                }
            }
    }

    // The convolution and a max pooling of `pool` built on an h x w x c input, the convolution's bias random.
    static (MaxPooling2D Pooling, Rng Rng) Build(Conv2D conv, int pool, int h, int w, int c)
    {
        var pooling = new MaxPooling2D(pool);
        conv.Build(new Shape(h, w, c), new Rng(1));
        pooling.Build(conv.OutputShape, new Rng(2));
        var rng = new Rng(3);
        for (int i = 0; i < conv.Bias!.Size; i++) conv.Bias.Value.Data[i] = rng.NextFloat() - 0.5f;
        return (pooling, rng);
    }

    // A random input of `batch` images, and the convolution's and the pooling's outputs for it (twice: expected, actual).
    static (Tensor X, Tensor Y, Tensor Expected, Tensor Actual) Tensors(Conv2D conv, MaxPooling2D pooling, Rng rng, int batch)
    {
        var x = new Tensor(conv.InputShape.WithBatch(batch));
        for (int i = 0; i < x.Length; i++) x.Data[i] = rng.NextFloat() - 0.5f;
        return (x, new Tensor(conv.OutputShape.WithBatch(batch)), new Tensor(pooling.OutputShape.WithBatch(batch)), new Tensor(pooling.OutputShape.WithBatch(batch)));
    }

    [Fact]
    public void Pooling_that_does_not_tile_the_output_is_not_fused()
    {
        var conv = new Conv2D(8, 3, padding: Padding.Same);
        conv.Build(new Shape(9, 9, 1), new Rng(1));
        var overlapping = new MaxPooling2D(3, strides: 2);
        overlapping.Build(conv.OutputShape, new Rng(1));
        var padded = new MaxPooling2D(2, padding: Padding.Same);   // 9 is odd: 'same' pads the last row and column
        padded.Build(conv.OutputShape, new Rng(1));
        Assert.False(conv.CanFusePooling(overlapping));
        Assert.False(conv.CanFusePooling(padded));
        var e = Assert.Throws<ArgumentException>(() => conv.ForwardPooled(new Tensor(1, 9, 9, 1), new Tensor(1, 4, 4, 8), overlapping));
        Assert.Contains(conv.Name, e.Message);
    }

    [Fact]
    public void A_model_predicts_what_its_layers_compute_one_by_one()
    {
        var model = new Sequential("fused", 4)
            .Add(new Input(26, 26, 3))
            .Add(new Conv2D(16, 3, padding: Padding.Same, activation: Activation.Relu))
            .Add(new MaxPooling2D(2))
            .Add(new Conv2D(20, 3, activation: Activation.Relu))
            .Add(new MaxPooling2D(3))
            .Add(new Flatten())
            .Add(new Dense(5, Activation.Softmax));
        var x = new Tensor(4, 26, 26, 3);
        var rng = new Rng(5);
        for (int i = 0; i < x.Length; i++) x.Data[i] = rng.NextFloat();
        model.Profiler = new Profiler { Steps = 1 };
        var predicted = model.Predict(x);
        var report = model.Profiler.Report();
        foreach (var conv in model.Layers.OfType<Conv2D>())
            Assert.Contains($"(fused: its time is in {conv.Name})", report);
        var value = x;
        foreach (var layer in model.Layers.Where(l => l is not Input))
        {
            var next = new Tensor(layer.OutputShape.WithBatch(4));
            layer.Forward(value, next, training: false);
            value = next;
        }
        for (int i = 0; i < value.Length; i++)
            Assert.True(Math.Abs(value.Data[i] - predicted.Data[i]) <= 1e-6f, $"value {i}: {predicted.Data[i]} vs {value.Data[i]}");
    }

    [Fact]
    public void A_convolution_moved_from_a_pooled_model_to_one_without_pooling_applies_its_own_relu_again()
    {
        // In model A the pooling applies conv's ReLU derivative; in model B nothing follows conv but Flatten,
        // so conv must apply it itself: B's gradient must equal that of an identical model that never pooled.
        var conv = new Conv2D(4, 3, activation: Activation.Relu, name: "shared_conv");
        var a = new Sequential("a", 1).Add(new Input(8, 8, 1)).Add(conv).Add(new MaxPooling2D(2)).Add(new Flatten()).Add(new Dense(2, Activation.Softmax));
        a.Compile("sgd", "sparse_categorical_crossentropy");
        var x = new Tensor(6, 8, 8, 1);
        var rng = new Rng(9);
        for (int i = 0; i < x.Length; i++) x.Data[i] = rng.NextFloat() - 0.5f;
        var labels = Tensor.FromArray([0, 1, 0, 1, 1, 0], 6);
        a.TrainStep(x, labels);

        var headB = new Dense(2, Activation.Softmax);
        var b = new Sequential("b", 2).Add(new Input(8, 8, 1)).Add(conv).Add(new Flatten()).Add(headB);
        b.Compile("sgd", "sparse_categorical_crossentropy");
        var fresh = new Conv2D(4, 3, activation: Activation.Relu);
        var headC = new Dense(2, Activation.Softmax);
        var c = new Sequential("c", 3).Add(new Input(8, 8, 1)).Add(fresh).Add(new Flatten()).Add(headC);
        c.Compile("sgd", "sparse_categorical_crossentropy");
        conv.Kernel.Value.Data.CopyTo(fresh.Kernel.Value.Data, 0);
        conv.Bias!.Value.Data.CopyTo(fresh.Bias!.Value.Data, 0);
        headB.Kernel.Value.Data.CopyTo(headC.Kernel.Value.Data, 0);

        b.TrainStep(x, labels);
        c.TrainStep(x, labels);
        Assert.Equal(fresh.Kernel.Gradient.Data, conv.Kernel.Gradient.Data);
        Assert.Contains(conv.Kernel.Gradient.Data, v => v != 0);
    }
    /// Training fuses a ReLU convolution with the max pooling after it too: the convolution's output is never written,
    /// the pooling's argmax comes from the bands. Forward values and every weight gradient equal those of the layers
    /// run one by one (each applying its own ReLU), with the pooled rows of one image split among threads.
    [Fact]
    public void A_training_pass_through_fused_layers_gives_the_gradients_of_the_layers_one_by_one()
    {
        // One image on two threads: its pooled rows are split into bands, whose argmax must move to their place.
        // Both passes fuse the pooling into its convolution, whose backward pass goes, by the second layer's size and
        // kernel, through Winograd F(2x2) (26 x 26, 3x3), F(4x4) (36 x 36, 3x3) or im2col and the GEMMs (5x5); the
        // first layer's through its kernel gradient alone.
        foreach (var (size, kernel) in new[] { (26, 3), (36, 3), (26, 5) })
            foreach (int batch in new[] { 1, 3 })
                ThreadingCollection.WithThreads(2, () => CheckFusedTraining(batch, size, kernel));
    }

    static void CheckFusedTraining(int batch, int size, int kernel)
    {
        var model = new Sequential("fused_training", 4)
            .Add(new Input(size, size, 3))
            .Add(new Conv2D(16, 3, padding: Padding.Same, activation: Activation.Relu))
            .Add(new MaxPooling2D(2))
            .Add(new Conv2D(24, kernel, padding: size == 36 ? Padding.Same : Padding.Valid, activation: Activation.Relu))
            .Add(new MaxPooling2D(3))
            .Add(new Flatten())
            .Add(new Dense(5));
        model.Build();
        var rng = new Rng(6);
        var x = new Tensor(batch, size, size, 3);
        for (int i = 0; i < x.Length; i++) x.Data[i] = rng.NextFloat() - 0.5f;
        var layers = model.Layers.Where(l => l is not Input).ToArray();
        foreach (var conv in layers.OfType<Conv2D>())
            for (int i = 0; i < conv.Bias!.Size; i++) conv.Bias.Value.Data[i] = 0.2f * (rng.NextFloat() - 0.3f);
        var dOut = new Tensor(batch, 5);
        for (int i = 0; i < dOut.Length; i++) dOut.Data[i] = rng.NextFloat() - 0.5f;
        var parameters = layers.SelectMany(l => l.Parameters).ToArray();

        model.Profiler = new Profiler { Steps = 1 };
        var output = model.ForwardBatch(x, training: true);
        var fusedOutput = (float[])output.Data.Clone();
        foreach (var p in parameters) p.ResetGradient();
        model.BackwardBatch(dOut.Clone());
        var report = model.Profiler.Report();
        foreach (var (pool, conv) in new[] { (layers[1], layers[0]), (layers[3], layers[2]) })
            Assert.Contains(report.Split('\n'), line => line.StartsWith(pool.Name + " ") && line.Contains($"(fused: its time is in {conv.Name})"));
        int expectedTile = size == 36 ? 4 : kernel == 3 ? 2 : 0;
        Assert.Equal((expectedTile, expectedTile, expectedTile), ((Conv2D)layers[2]).WinogradTiles);
        var fused = parameters.Select(p => (float[])p.Gradient.Data.Clone()).ToArray();

        // The same pass layer by layer, each on its own (no fusion, each convolution applies its ReLU's derivative).
        foreach (var p in parameters) p.ResetGradient();
        var values = new List<Tensor> { x };
        foreach (var layer in layers)
        {
            var next = new Tensor(layer.OutputShape.WithBatch(batch));
            if (layer is Flatten) values[^1].Data.CopyTo(next.Data, 0);
            else layer.Forward(values[^1], next, training: true);
            values.Add(next);
        }
        for (int i = 0; i < fusedOutput.Length; i++)
            Assert.True(Math.Abs(fusedOutput[i] - values[^1].Data[i]) <= 1e-5f * (1 + Math.Abs(fusedOutput[i])), $"{size}/{kernel}, batch {batch}, output {i}: {fusedOutput[i]} vs {values[^1].Data[i]}");
        var dy = dOut.Clone();
        for (int k = layers.Length - 1; k >= 0; k--)
        {
            var dx = k == 0 ? null : new Tensor(values[k].Shape);
            if (layers[k] is Flatten) dy.Data.CopyTo(dx!.Data, 0);
            else layers[k].Backward(values[k], values[k + 1], dy, dx);
            if (dx is not null) dy = dx;
        }
        for (int j = 0; j < parameters.Length; j++)
        {
            var expected = parameters[j].Gradient.Data;
            double scale = expected.Max(v => Math.Abs(v));
            Assert.True(scale > 0, $"{parameters[j].FullName} has no gradient");
            for (int i = 0; i < expected.Length; i++)
                Assert.True(Math.Abs(fused[j][i] - expected[i]) <= 1e-4 * scale, $"{size}/{kernel}, batch {batch}, {parameters[j].FullName}[{i}]: {fused[j][i]} vs {expected[i]}");
        }
    }
}
