using Naani.Layers;
using Naani.Models;
using Naani.Tests.Kernels;

namespace Naani.Tests.Models;

/// A training step allocates nothing after the first batches: activations, gradients, im2col
/// buffers, pooling indices, dropout masks and optimizer slots are all made once and reused.
/// Counts the allocations of the test's thread and of every kernel worker thread.
[Collection(ThreadingCollection.Name)]
public sealed class AllocationTests
{
    static (Tensor X, Tensor Y) RandomBatch(Model model, int batch, bool sparse)
    {
        var rng = new Rng(5);
        var x = new Tensor(model.InputShape.WithBatch(batch));
        for (int i = 0; i < x.Length; i++) x.Data[i] = rng.NextFloat();
        int classes = model.OutputShape[^1];
        var y = sparse ? new Tensor(batch) : new Tensor(batch, classes);
        for (int n = 0; n < batch; n++)
        {
            int c = rng.NextInt(Math.Max(2, classes));
            if (sparse) y.Data[n] = c;
            else if (classes == 1) y.Data[n] = c;
            else y[n, c] = 1;
        }
        return (x, y);
    }

    static long AllocatedDuringSteps(Model model, Tensor x, Tensor y, int steps)
    {
        // Warm up until the JIT's tiered compilation has settled: its first, unoptimized code
        // allocates (runtime bookkeeping), the optimized code that replaces it within ~100 ms does not.
        var clock = System.Diagnostics.Stopwatch.StartNew();
        while (clock.ElapsedMilliseconds < 1000) model.TrainStep(x, y);
        Thread.Sleep(300);
        for (int i = 0; i < 3; i++) model.TrainStep(x, y);
        long before = Threading.AllocatedBytesOfKernelThreads();
        for (int i = 0; i < steps; i++) model.TrainStep(x, y);
        return Threading.AllocatedBytesOfKernelThreads() - before;
    }

    [Theory]
    [InlineData("adam", 1)]
    [InlineData("adam", 2)]
    [InlineData("sgd", 2)]
    [InlineData("rmsprop", 2)]
    public void Training_steps_of_mnist_baseline_allocate_nothing_after_warm_up(string optimizer, int threads)
    {
        ThreadingCollection.WithThreads(threads, () =>
        {
            var model = Architectures.MnistBaseline(seed: 1);
            model.Compile(optimizer, "sparse_categorical_crossentropy", "accuracy");
            var (x, y) = RandomBatch(model, 32, sparse: true);
            Assert.Equal(0, AllocatedDuringSteps(model, x, y, steps: 10));
        });
    }

    [Fact]
    public void Training_steps_through_every_layer_type_allocate_nothing_after_warm_up()
    {
        ThreadingCollection.WithThreads(2, () =>
        {
            var model = new Sequential(seed: 2)
                .Add(new Input(16, 16, 3))
                .Add(new Conv2D(8, 3, strides: 2, padding: Naani.Kernels.Padding.Same, activation: Activation.Tanh))
                .Add(new AveragePooling2D(2, padding: Naani.Kernels.Padding.Same))
                .Add(new Conv2D(6, 1))
                .Add(new MaxPooling2D(2))
                .Add(new ActivationLayer(Activation.Relu))
                .Add(new Flatten())
                .Add(new Dropout(0.3))
                .Add(new Dense(12, Activation.Sigmoid))
                .Add(new Dense(1, Activation.Sigmoid));
            model.Compile("adam", "binary_crossentropy", "accuracy");
            var (x, y) = RandomBatch(model, 8, sparse: false);
            Assert.Equal(0, AllocatedDuringSteps(model, x, y, steps: 10));
        });
    }
    [Fact]
    public void Training_steps_through_Winograd_convolutions_allocate_nothing_after_warm_up()
    {
        ThreadingCollection.WithThreads(2, () =>
        {
            // The second and third convolutions (32 channels, 3x3, stride 1) run forward and backward by Winograd.
            var model = new Sequential(seed: 3)
                .Add(new Input(12, 12, 3))
                .Add(new Conv2D(32, 3, padding: Naani.Kernels.Padding.Same, activation: Activation.Relu))
                .Add(new Conv2D(32, 3, padding: Naani.Kernels.Padding.Same, activation: Activation.Relu))
                .Add(new MaxPooling2D(2))
                .Add(new Conv2D(32, 3, activation: Activation.Relu))
                .Add(new Flatten())
                .Add(new Dense(3, Activation.Softmax));
            model.Compile("adam", "categorical_crossentropy", "accuracy");
            var (x, y) = RandomBatch(model, 8, sparse: false);
            Assert.Equal(0, AllocatedDuringSteps(model, x, y, steps: 10));
            Assert.All(model.Layers.OfType<Conv2D>().Skip(1), c => Assert.Equal((2, 2, 2), c.WinogradTiles));   // outputs under 16 x 16: F(2x2)
        });
    }
}
