using Naani.Kernels;
using Naani.Layers;
using Naani.Models;
using Xunit;

namespace Naani.Tests.Models;

/// Transfer learning as the seed "Fundamentals of CNN" describes it: a base network's first n_k layers kept and
/// frozen under new layers, or used once to extract bottleneck features for a small head. Layers are objects that
/// keep their weights, so a new Sequential made of a trained model's layers starts from the trained weights.
public sealed class TransferLearningTests
{
    static Sequential TrainedBase()
    {
        var model = new Sequential("base", seed: 11)
            .Add(new Input(8, 8, 1))
            .Add(new Conv2D(4, 3, activation: Activation.Relu, name: "conv"))
            .Add(new BatchNormalization(name: "bn"))
            .Add(new MaxPooling2D(2, name: "pool"))
            .Add(new Flatten(name: "flatten"))
            .Add(new Dense(3, Activation.Softmax, name: "base_head"));
        model.Compile("adam", "sparse_categorical_crossentropy", "accuracy");
        var (x, y) = Data(12, 16, 3);
        for (int i = 0; i < 5; i++) model.TrainStep(x, y);
        return model;
    }

    static (Tensor X, Tensor Y) Data(int seed, int count, int classes)
    {
        var rng = new Rng((ulong)seed);
        var x = new Tensor(count, 8, 8, 1);
        for (int i = 0; i < x.Length; i++) x.Data[i] = rng.NextFloat();
        return (x, Tensor.FromArray([.. Enumerable.Range(0, count).Select(i => (float)(i % classes))], count));
    }

    static Sequential Stack(string name, Input input, IEnumerable<Layer> layers)
    {
        var model = new Sequential(name, seed: 3).Add(input);
        foreach (var layer in layers) model.Add(layer);
        return model;
    }

    [Fact]
    public void Frozen_base_layers_keep_their_weights_while_the_new_top_trains()
    {
        var baseModel = TrainedBase();
        var kept = baseModel.Layers.Take(4).ToArray();   // conv, bn, pool, flatten: n_k = 4
        foreach (var layer in kept) layer.Trainable = false;
        var trained = kept.SelectMany(l => l.Parameters).Select(p => p.Value.Data.ToArray()).ToList();
        var target = Stack("target", new Input(8, 8, 1), [.. kept, new Dense(2, Activation.Softmax, name: "new_head")]);
        target.Compile("adam", "sparse_categorical_crossentropy", "accuracy");
        var newHead = (Dense)target.GetLayer("new_head");
        var (x, y) = Data(13, 16, 2);

        Assert.Same(kept[0], target.Layers[0]);
        var headBefore = newHead.Kernel.Value.Data.ToArray();
        for (int i = 0; i < 3; i++) target.TrainStep(x, y);

        var after = kept.SelectMany(l => l.Parameters).Select(p => p.Value.Data).ToList();
        for (int i = 0; i < trained.Count; i++) Assert.Equal(trained[i], after[i]);   // incl. the BN moving statistics
        Assert.NotEqual(headBefore, newHead.Kernel.Value.Data);
        // Keras's summary: the frozen layers' parameters (conv 40, bn 16) are non-trainable; the new head has 36 * 2 + 2.
        string summary = target.Summary();
        Assert.Contains("Total params: 130", summary);
        Assert.Contains("Trainable params: 74", summary);
        Assert.Contains("Non-trainable params: 56", summary);
    }

    /// The identity, counting its backward passes.
    sealed class CountingIdentity(string name) : Layer(name)
    {
        public int BackwardCalls;
        protected override Shape Build(Shape input) => input;
        public override void Forward(Tensor x, Tensor y, bool training) => x.Data.AsSpan().CopyTo(y.Data);
        public override void Backward(Tensor x, Tensor y, Tensor dy, Tensor? dx)
        {
            BackwardCalls++;
            dy.Data.AsSpan().CopyTo(dx!.Data);
        }
    }

    [Fact]
    public void Backward_stops_below_the_lowest_trainable_layer()
    {
        var below = new CountingIdentity("below");
        var above = new CountingIdentity("above");
        var conv1 = new Conv2D(4, 3, padding: Padding.Same, name: "conv1");
        var conv2 = new Conv2D(4, 3, padding: Padding.Same, name: "conv2");
        var model = new Sequential("frozen", seed: 2)
            .Add(new Input(8, 8, 1)).Add(conv1).Add(below).Add(conv2).Add(above)
            .Add(new Flatten()).Add(new Dense(2, Activation.Softmax, name: "head"));
        model.Compile("sgd", "sparse_categorical_crossentropy");
        var (x, y) = Data(5, 6, 2);
        conv1.Trainable = conv2.Trainable = false;
        model.TrainStep(x, y);
        Assert.Equal((0, 0), (below.BackwardCalls, above.BackwardCalls));   // a frozen base: only the head's backward runs

        conv2.Trainable = true;
        var conv2Before = conv2.Kernel.Value.Data.ToArray();
        model.TrainStep(x, y);
        Assert.Equal((0, 1), (below.BackwardCalls, above.BackwardCalls));   // conv2 trains, nothing below it needs a gradient
        Assert.NotEqual(conv2Before, conv2.Kernel.Value.Data);

        conv1.Trainable = true;
        model.TrainStep(x, y);
        Assert.Equal((1, 2), (below.BackwardCalls, above.BackwardCalls));
    }

    [Fact]
    public void A_frozen_batch_normalization_layer_runs_in_inference_mode_inside_a_training_step()
    {
        var baseModel = TrainedBase();
        var bn = (BatchNormalization)baseModel.GetLayer("bn");
        var kept = baseModel.Layers.Take(4).ToArray();
        foreach (var layer in kept) layer.Trainable = false;
        var target = Stack("target", new Input(8, 8, 1), [.. kept, new Dense(2, Activation.Softmax)]);
        target.Compile("sgd", "sparse_categorical_crossentropy");
        var (x, y) = Data(14, 8, 2);

        var movingBefore = bn.Parameters.Where(p => !p.TrainableByKind).Select(p => p.Value.Data.ToArray()).ToList();
        target.TrainStep(x, y);

        // In training mode the moving statistics would move towards this batch's; frozen, the layer normalizes with them
        // as in inference and leaves them alone (the layer computes here through a copy sharing its weights).
        var movingAfter = bn.Parameters.Where(p => !p.TrainableByKind).Select(p => p.Value.Data).ToList();
        for (int i = 0; i < movingBefore.Count; i++) Assert.Equal(movingBefore[i], movingAfter[i]);
    }

    [Fact]
    public void Bottleneck_features_with_a_head_give_what_the_frozen_model_gives()
    {
        var baseModel = TrainedBase();
        var kept = baseModel.Layers.Take(4).ToArray();
        foreach (var layer in kept) layer.Trainable = false;
        var head = new Dense(2, Activation.Softmax, name: "head");
        var whole = Stack("whole", new Input(8, 8, 1), [.. kept, head]);
        var extractor = Stack("extractor", new Input(8, 8, 1), kept);
        var (x, _) = Data(15, 10, 2);

        var features = extractor.Predict(x);
        var headOnly = Stack("head-only", new Input(features.Shape.WithoutBatch()), [head]);

        Assert.Equal(new Shape(10, 3 * 3 * 4), features.Shape);
        Assert.Equal(whole.Predict(x).Data, headOnly.Predict(features).Data);
    }

    [Fact]
    public void Reusing_a_built_layer_on_larger_images_shares_its_weights_and_on_other_channels_names_both_shapes()
    {
        var baseModel = TrainedBase();
        var conv = baseModel.GetLayer("conv");
        // The kernel fits any image size with one channel (as Keras reuses a convolution on larger images).
        var larger = Stack("larger", new Input(10, 10, 1), [conv]);
        Assert.Same(conv.Parameters[0], larger.Parameters[0]);

        var other = Stack("other", new Input(8, 8, 2), [conv]);
        var e = Assert.Throws<ArgumentException>(other.Build);

        Assert.Contains("(None, 8, 8, 1)", e.Message);
        Assert.Contains("(None, 8, 8, 2)", e.Message);
    }
}
