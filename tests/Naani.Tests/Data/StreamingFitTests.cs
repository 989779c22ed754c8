using Naani.Data;
using Naani.Kernels;
using Naani.Layers;
using Naani.Models;
using Naani.Tests.Kernels;
using Xunit;

namespace Naani.Tests.Data;

/// Model.Fit on an IBatchSource is the same training as Fit on tensors, batch for batch.
[Collection(ThreadingCollection.Name)]
public sealed class StreamingFitTests
{
    static ImageDataset Data(int n, int classes)
    {
        var rng = new Rng(7);
        var images = new Tensor(n, 8, 8, 2);
        var labels = new int[n];
        for (int i = 0; i < n; i++)
        {
            labels[i] = i % classes;
            var sample = images.Sample(i);
            for (int j = 0; j < sample.Length; j++) sample[j] = rng.NextFloat() * 0.5f + (j % (labels[i] + 2) == 0 ? 0.5f : 0f);
        }
        return new ImageDataset(images, labels, [.. Enumerable.Range(0, classes).Select(c => $"c{c}")]);
    }

    static Sequential Model(int classes, string loss)
    {
        var model = new Sequential(seed: 5)
            .Add(new Input(8, 8, 2))
            .Add(new Conv2D(4, 3, activation: Activation.Relu))
            .Add(new MaxPooling2D(2))
            .Add(new Flatten())
            .Add(classes == 2 ? new Dense(1, Activation.Sigmoid) : new Dense(classes, Activation.Softmax));
        model.Compile("adam", loss, "accuracy");
        return model;
    }

    [Theory]
    [InlineData(3, "sparse_categorical_crossentropy")]
    [InlineData(3, "categorical_crossentropy")]
    [InlineData(2, "binary_crossentropy")]
    public void Streaming_fit_without_shuffling_matches_fit_on_tensors(int classes, string loss)
    {
        var data = Data(37, classes);
        var viaTensors = Model(classes, loss);
        var streamed = Model(classes, loss);
        var targets = viaTensors.TargetsFor(data.Labels);

        var h1 = viaTensors.Fit(data.Images, targets, batchSize: 8, epochs: 2, shuffle: false);
        using var pipeline = new BatchPipeline(new ImageDatasetSource(data), new PipelineOptions { BatchSize = 8, Shuffle = false, Workers = 2 });
        var h2 = streamed.Fit(pipeline, epochs: 2);

        Assert.Equal(h1["loss"], h2["loss"]);
        Assert.Equal(h1["accuracy"], h2["accuracy"]);
        var w1 = viaTensors.GetWeights();
        var w2 = streamed.GetWeights();
        for (int i = 0; i < w1.Count; i++) Assert.Equal(w1[i].Data, w2[i].Data);

        var e1 = viaTensors.Evaluate(data.Images, targets, 8);
        var e2 = streamed.Evaluate(pipeline);
        Assert.Equal(e1["accuracy"], e2["accuracy"]);
        Assert.Equal(e1["loss"], e2["loss"], 5);
    }

    [Fact]
    public void Validation_source_is_evaluated_after_each_epoch_and_callbacks_see_every_batch()
    {
        var data = Data(40, 3);
        var model = Model(3, "sparse_categorical_crossentropy");
        using var train = new BatchPipeline(new ImageDatasetSource(data, [.. Enumerable.Range(0, 30)]), new PipelineOptions { BatchSize = 8 });
        using var validation = new BatchPipeline(new ImageDatasetSource(data, [.. Enumerable.Range(30, 10)]), new PipelineOptions { BatchSize = 8, Shuffle = false });
        var counter = new BatchCounter();

        var history = model.Fit(train, epochs: 3, validation, [counter]);

        Assert.Equal(3, history["val_accuracy"].Count);
        Assert.Equal(3 * 4, counter.Batches);
        Assert.Equal(new Callbacks.TrainingInfo(3, 4, 30, 8, 10), counter.Info);
    }

    [Fact]
    public void Targets_follow_the_loss_and_the_output()
    {
        var sparse = Model(3, "sparse_categorical_crossentropy");
        var oneHot = Model(3, "categorical_crossentropy");
        var binary = Model(2, "binary_crossentropy");
        Assert.Equal(new Shape(2), sparse.TargetsFor([2, 0]).Shape);
        Assert.Equal([0f, 0f, 1f, 1f, 0f, 0f], oneHot.TargetsFor([2, 0]).Data);
        Assert.Equal(new Shape(2, 1), binary.TargetsFor([1, 0]).Shape);
        Assert.Throws<ArgumentException>(() => binary.TargetsFor([2]));
    }

    [Fact]
    public void Images_of_the_wrong_shape_are_refused_with_both_shapes()
    {
        var model = Model(3, "sparse_categorical_crossentropy");
        var other = new ImageDataset(new Tensor(4, 6, 6, 2), [0, 1, 2, 0], ["a", "b", "c"]);
        using var pipeline = new BatchPipeline(new ImageDatasetSource(other));
        var e = Assert.Throws<ArgumentException>(() => model.Fit(pipeline));
        Assert.Contains("(8, 8, 2)", e.Message);
        Assert.Contains("(6, 6, 2)", e.Message);
    }

    sealed class BatchCounter : Callbacks.Callback
    {
        public int Batches;
        public Callbacks.TrainingInfo? Info;
        public override void OnTrainBegin(Callbacks.TrainingInfo info) => Info = info;
        public override void OnBatchEnd(Callbacks.BatchProgress progress) => Batches++;
    }
}
