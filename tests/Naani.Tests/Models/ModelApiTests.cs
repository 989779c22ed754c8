using Naani.Callbacks;
using Naani.Layers;
using Naani.Losses;
using Naani.Models;
using Naani.Optimizers;
using Naani.Tests.Layers;
using Xunit;

namespace Naani.Tests.Models;

public sealed class ModelApiTests
{
    static Sequential SmallClassifier(int seed = 1) => new Sequential("small", seed)
        .Add(new Input(6, 6, 1))
        .Add(new Conv2D(4, 3, activation: Activation.Relu))
        .Add(new MaxPooling2D(2))
        .Add(new Flatten())
        .Add(new Dense(3, Activation.Softmax));

    static (Tensor X, Tensor Y, Tensor Labels) Data(int count, ulong seed)
    {
        var rng = new Rng(seed);
        var x = GradientCheck.Uniform(rng, 0, 1, count, 6, 6, 1);
        var y = new Tensor(count, 3);
        var labels = new Tensor(count);
        for (int n = 0; n < count; n++)
        {
            int c = rng.NextInt(3);
            y[n, c] = 1;
            labels.Data[n] = c;
        }
        return (x, y, labels);
    }

    [Fact]
    public void Predict_in_one_batch_reads_x_in_place_and_equals_predicting_in_small_batches()
    {
        var (x, _, _) = Data(23, seed: 7);
        var before = (float[])x.Data.Clone();
        var model = SmallClassifier();
        var whole = model.Predict(x, batchSize: 64);   // one batch: x is read where it is
        var pieces = model.Predict(x, batchSize: 5);   // five batches, the last of 3
        Assert.Equal(before, x.Data);
        Assert.Equal(pieces.Data, whole.Data);
        Assert.NotSame(x.Data, whole.Data);
        Assert.Equal(new Shape(23, 3), whole.Shape);
    }

    [Fact]
    public void Predict_outputs_give_the_loss_and_accuracy_that_Evaluate_reports()
    {
        var (x, y, labels) = Data(23, seed: 2);
        var model = SmallClassifier();
        model.Compile(new Adam(0.01), new CategoricalCrossEntropy(), "accuracy");
        model.Fit(x, y, batchSize: 8, epochs: 2);

        var p = model.Predict(x, batchSize: 7);
        var evaluation = model.Evaluate(x, y, batchSize: 5);

        double loss = 0;
        int correct = 0;
        for (int n = 0; n < x.Batch; n++)
        {
            int label = (int)labels.Data[n];
            loss -= Math.Log(Math.Clamp(p[n, label], 1e-7, 1 - 1e-7));
            int best = 0;
            for (int c = 1; c < 3; c++) if (p[n, c] > p[n, best]) best = c;
            if (best == label) correct++;
            Assert.Equal(1.0, p[n, 0] + p[n, 1] + p[n, 2], 1e-5);
        }
        Assert.Equal(loss / x.Batch, evaluation["loss"], 1e-5);
        Assert.Equal((double)correct / x.Batch, evaluation["accuracy"]);
    }

    [Fact]
    public void Predict_does_not_depend_on_the_batch_size_and_ignores_dropout()
    {
        var model = new Sequential("dropout", seed: 3)
            .Add(new Input(6, 6, 1))
            .Add(new Conv2D(4, 3, activation: Activation.Relu))
            .Add(new Dropout(0.5))
            .Add(new Flatten())
            .Add(new Dense(3, Activation.Softmax));
        var (x, _, _) = Data(10, seed: 4);

        var whole = model.Predict(x, batchSize: 10);
        var single = model.Predict(x, batchSize: 1);
        var again = model.Predict(x, batchSize: 3);

        for (int i = 0; i < whole.Length; i++)
        {
            Assert.Equal(whole.Data[i], single.Data[i], 1e-6);
            Assert.Equal(whole.Data[i], again.Data[i], 1e-6);
        }
    }

    [Fact]
    public void Feeding_the_wrong_image_size_names_the_model_and_both_shapes()
    {
        var model = Architectures.Create("mnist-baseline", seed: 1);
        var wrong = new Tensor(2, 32, 32, 3);

        var predict = Assert.Throws<ArgumentException>(() => model.Predict(wrong));
        Assert.Contains("mnist-baseline", predict.Message);
        Assert.Contains("(None, 28, 28, 1)", predict.Message);
        Assert.Contains("(2, 32, 32, 3)", predict.Message);

        model.Compile("adam", "categorical_crossentropy", "accuracy");
        var fit = Assert.Throws<ArgumentException>(() => model.Fit(wrong, new Tensor(2, 10)));
        Assert.Contains("(None, 28, 28, 1)", fit.Message);
        Assert.Contains("(2, 32, 32, 3)", fit.Message);
    }

    [Fact]
    public void Feeding_a_layer_the_wrong_shape_names_the_layer_and_both_shapes()
    {
        var model = Architectures.Create("mnist-baseline", seed: 1);
        model.Build();
        var conv = model.Layers[0];

        var e = Assert.Throws<ArgumentException>(() => conv.Forward(new Tensor(2, 32, 32, 3), new Tensor(2, 24, 24, 32), training: false));

        Assert.Contains($"'{conv.Name}'", e.Message);
        Assert.Contains("(None, 28, 28, 1)", e.Message);
        Assert.Contains("(2, 32, 32, 3)", e.Message);
    }

    [Fact]
    public void Labels_for_a_different_number_of_samples_are_rejected()
    {
        var model = SmallClassifier();
        model.Compile("sgd", "categorical_crossentropy");
        var (x, _, _) = Data(5, seed: 5);

        var e = Assert.Throws<ArgumentException>(() => model.Fit(x, new Tensor(4, 3)));

        Assert.Contains("5", e.Message);
        Assert.Contains("(4, 3)", e.Message);
    }

    [Fact]
    public void A_model_built_for_another_input_size_works_on_it()
    {
        var model = Architectures.Create("mnist-baseline", seed: 1, inputShape: new Shape(32, 32, 3));

        var p = model.Predict(new Tensor(2, 32, 32, 3));

        Assert.Equal(new Shape(2, 10), p.Shape);
        Assert.Equal(new Shape(28, 28, 32), model.Layers[0].OutputShape);
    }

    [Fact]
    public void GetWeights_and_SetWeights_round_trip_the_model()
    {
        var (x, y, _) = Data(12, seed: 6);
        var model = SmallClassifier();
        model.Compile(new SGD(0.5), new CategoricalCrossEntropy());
        var saved = model.GetWeights();
        var before = model.Predict(x);

        model.Fit(x, y, batchSize: 4, epochs: 2);
        Assert.NotEqual(before.Data, model.Predict(x).Data);
        model.SetWeights(saved);

        Assert.Equal(before.Data, model.Predict(x).Data);
        Assert.Equal(["conv2d/kernel", "conv2d/bias", "dense/kernel", "dense/bias"], model.Parameters.Select(p => p.FullName));
        Assert.Equal([new Shape(3, 3, 1, 4), new Shape(4), new Shape(16, 3), new Shape(3)], saved.Select(t => t.Shape));
    }

    [Fact]
    public void GetWeights_returns_copies()
    {
        var model = SmallClassifier();
        var weights = model.GetWeights();
        float original = model.Parameters.First().Value.Data[0];

        weights[0].Data[0] = original + 1;

        Assert.Equal(original, model.Parameters.First().Value.Data[0]);
    }

    [Fact]
    public void SetWeights_with_a_wrong_shape_or_count_says_which_weight_and_what_was_expected()
    {
        var model = SmallClassifier();
        var weights = model.GetWeights();
        weights[2] = new Tensor(15, 3);

        var shape = Assert.Throws<ArgumentException>(() => model.SetWeights(weights));
        var count = Assert.Throws<ArgumentException>(() => model.SetWeights(weights.Take(3).ToList()));

        Assert.Contains("dense/kernel", shape.Message);
        Assert.Contains("(16, 3)", shape.Message);
        Assert.Contains("(15, 3)", shape.Message);
        Assert.Contains("4", count.Message);
        Assert.Contains("3", count.Message);
    }

    [Fact]
    public void EarlyStopping_restores_the_weights_of_the_best_epoch_when_it_stops()
    {
        var model = SmallClassifier();
        model.Build();
        var stopping = new EarlyStopping("val_loss", patience: 1, restoreBestWeights: true) { Model = model };
        double[] valLoss = [1.0, 0.4, 0.6, 0.7, 0.8, 0.9, 1.0];
        stopping.OnTrainBegin(new TrainingInfo(valLoss.Length, 1, 1, 1, 1));

        int epoch = 0;
        for (; epoch < valLoss.Length && !model.StopTraining; epoch++)
        {
            // Stand-in for an epoch of training: every weight becomes the epoch number.
            foreach (var p in model.Parameters) p.Value.Fill(epoch);
            stopping.OnEpochEnd(epoch, new Dictionary<string, double> { ["val_loss"] = valLoss[epoch] });
        }

        Assert.True(model.StopTraining);
        Assert.Equal(1, stopping.BestEpoch);
        Assert.Equal(0.4, stopping.Best);
        Assert.All(model.Parameters, p => Assert.All(p.Value.Data, v => Assert.Equal(1f, v)));
    }

    [Theory]
    [InlineData(1, 2)]   // Keras: wait reaches patience after 1 epoch without improvement
    [InlineData(2, 3)]
    [InlineData(3, 4)]
    public void EarlyStopping_stops_after_patience_epochs_without_improvement_as_Keras(int patience, int stoppedEpoch)
    {
        // keras/src/callbacks/early_stopping.py: wait += 1 each epoch, reset on improvement, and stop
        // when wait >= patience. With the best value at epoch 1, training stops at epoch 1 + patience.
        var model = SmallClassifier();
        var stopping = new EarlyStopping("val_loss", patience: patience) { Model = model };
        double[] valLoss = [1.0, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.1];
        stopping.OnTrainBegin(new TrainingInfo(valLoss.Length, 1, 1, 1, 1));

        for (int epoch = 0; epoch < valLoss.Length && !model.StopTraining; epoch++)
            stopping.OnEpochEnd(epoch, new Dictionary<string, double> { ["val_loss"] = valLoss[epoch] });

        Assert.Equal(stoppedEpoch, stopping.StoppedEpoch);
    }

    [Fact]
    public void EarlyStopping_maximizes_accuracy_and_respects_min_delta()
    {
        var model = SmallClassifier();
        var stopping = new EarlyStopping("val_accuracy", patience: 0, minDelta: 0.05) { Model = model };
        stopping.OnTrainBegin(new TrainingInfo(5, 1, 1, 1, 1));

        stopping.OnEpochEnd(0, new Dictionary<string, double> { ["val_accuracy"] = 0.5 });
        stopping.OnEpochEnd(1, new Dictionary<string, double> { ["val_accuracy"] = 0.6 });
        Assert.False(model.StopTraining);
        stopping.OnEpochEnd(2, new Dictionary<string, double> { ["val_accuracy"] = 0.62 });   // +0.02 < minDelta

        Assert.True(model.StopTraining);
        Assert.Equal(1, stopping.BestEpoch);
        Assert.Equal(2, stopping.StoppedEpoch);
    }

    [Fact]
    public void EarlyStopping_on_a_value_that_is_not_logged_says_what_is()
    {
        var model = SmallClassifier();
        var stopping = new EarlyStopping("val_loss") { Model = model };
        stopping.OnTrainBegin(new TrainingInfo(1, 1, 1, 1, 0));

        var e = Assert.Throws<InvalidOperationException>(() => stopping.OnEpochEnd(0, new Dictionary<string, double> { ["loss"] = 1 }));

        Assert.Contains("val_loss", e.Message);
        Assert.Contains("loss", e.Message.Replace("val_loss", ""));
    }

    [Fact]
    public void Fit_before_Compile_is_an_error_that_says_so()
    {
        var model = SmallClassifier();
        var (x, y, _) = Data(4, seed: 7);

        var e = Assert.Throws<InvalidOperationException>(() => model.Fit(x, y));

        Assert.Contains("Compile", e.Message);
    }

    [Fact]
    public void Compile_fuses_the_loss_with_the_output_activation_only_when_they_match()
    {
        var model = SmallClassifier();
        model.Compile("adam", "categorical_crossentropy");
        Assert.True(model.Layers[^1].GradientIsPreActivation);

        model.Compile("adam", "mean_squared_error");
        Assert.False(model.Layers[^1].GradientIsPreActivation);
        Assert.All(model.Layers, l => Assert.False(l.GradientIsPreActivation));
    }
}
