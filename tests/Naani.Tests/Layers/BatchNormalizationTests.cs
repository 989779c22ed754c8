using Naani.Kernels;
using Naani.Layers;
using Naani.Models;
using Xunit;

namespace Naani.Tests.Layers;

/// What batch normalization does besides its gradients: moving averages, modes, parameter counts.
public sealed class BatchNormalizationTests
{
    [Fact]
    public void Training_forward_updates_the_moving_statistics_by_Keras_rule_with_the_biased_variance()
    {
        // Two channels, a batch of two 1x2 images: channel 0 sees 1, 2, 3, 6 and channel 1 sees 0, 0, 4, 4.
        var layer = new BatchNormalization(momentum: 0.9);
        layer.Build(new Shape(1, 2, 2), new Rng(1));
        layer.MovingMean.Value.Data[0] = 1f;
        layer.MovingVariance.Value.Data[1] = 2f;
        var x = Tensor.FromArray([1f, 0f, 2f, 0f, 3f, 4f, 6f, 4f], 2, 1, 2, 2);
        var y = new Tensor(x.Shape);

        layer.Forward(x, y, training: true);

        // mean (3, 2); biased variance ((4 + 1 + 0 + 9) / 4, (4 + 4 + 4 + 4) / 4) = (3.5, 4)
        Assert.Equal(0.9 * 1 + 0.1 * 3, layer.MovingMean.Value.Data[0], 6);
        Assert.Equal(0.9 * 0 + 0.1 * 2, layer.MovingMean.Value.Data[1], 6);
        Assert.Equal(0.9 * 1 + 0.1 * 3.5, layer.MovingVariance.Value.Data[0], 6);
        Assert.Equal(0.9 * 2 + 0.1 * 4, layer.MovingVariance.Value.Data[1], 6);
        // normalized with the batch statistics: (x - mean) / sqrt(var + 1e-3), gamma 1, beta 0
        Assert.Equal((1 - 3) / Math.Sqrt(3.5 + 1e-3), y[0, 0, 0, 0], 5);
        Assert.Equal((4 - 2) / Math.Sqrt(4 + 1e-3), y[1, 0, 1, 1], 5);
    }

    [Fact]
    public void Inference_uses_the_moving_statistics_and_leaves_them_alone()
    {
        var layer = new BatchNormalization(epsilon: 0.01);
        layer.Build(new Shape(3), new Rng(1));
        layer.MovingMean.Value.Data.AsSpan().Fill(2f);
        layer.MovingVariance.Value.Data.AsSpan().Fill(4f);
        layer.Gamma!.Value.Data.AsSpan().Fill(3f);
        layer.Beta!.Value.Data.AsSpan().Fill(-1f);
        var x = Tensor.FromArray([2f, 4f, 0f], 1, 3);
        var y = new Tensor(1, 3);

        layer.Forward(x, y, training: false);

        double s = 3 / Math.Sqrt(4.01);
        Assert.Equal(-1, y.Data[0], 5);
        Assert.Equal(2 * s - 1, y.Data[1], 5);
        Assert.Equal(-2 * s - 1, y.Data[2], 5);
        Assert.All(layer.MovingMean.Value.Data, v => Assert.Equal(2f, v));
        Assert.All(layer.MovingVariance.Value.Data, v => Assert.Equal(4f, v));
    }

    [Fact]
    public void Frozen_layer_runs_in_inference_mode_even_in_a_training_step()
    {
        var layer = new BatchNormalization { Trainable = false };
        layer.Build(new Shape(2, 2, 3), new Rng(1));
        var x = GradientCheck.Uniform(new Rng(2), 1, 3, 4, 2, 2, 3);
        var inference = new Tensor(x.Shape);
        var training = new Tensor(x.Shape);

        layer.Forward(x, inference, training: false);
        layer.Forward(x, training, training: true);

        Assert.Equal(inference.Data, training.Data);
        Assert.All(layer.MovingMean.Value.Data, v => Assert.Equal(0f, v));
        Assert.All(layer.MovingVariance.Value.Data, v => Assert.Equal(1f, v));
    }

    [Fact]
    public void On_C_channels_it_has_4C_params_of_which_2C_are_non_trainable_as_in_Keras()
    {
        var model = new Sequential("bn", seed: 1)
            .Add(new Input(8, 8, 3))
            .Add(new Conv2D(16, 3))
            .Add(new BatchNormalization())
            .Add(new GlobalAveragePooling2D())
            .Add(new Dense(2, Activation.Softmax));
        model.Build();

        var bn = (BatchNormalization)model.Layers[1];
        Assert.Equal(64, bn.ParameterCount);
        Assert.Equal(32, bn.TrainableParameterCount);
        Assert.Equal(["gamma", "beta", "moving_mean", "moving_variance"], bn.Parameters.Select(p => p.Name));
        string summary = model.Summary();
        // 448 + 64 + 34 = 546, of which the 32 moving statistics are non-trainable
        Assert.Contains("batch_normalization (BatchNormalization)", summary);
        Assert.Contains("Total params: 546", summary);
        Assert.Contains("Trainable params: 514", summary);
        Assert.Contains("Non-trainable params: 32", summary);
    }

    [Fact]
    public void Training_a_model_moves_the_averages_and_a_frozen_copy_keeps_every_weight()
    {
        var model = new Sequential("bn", seed: 3)
            .Add(new Input(6, 6, 2))
            .Add(new Conv2D(4, 3, activation: Activation.Relu))
            .Add(new BatchNormalization(name: "bn"))
            .Add(new Flatten())
            .Add(new Dense(3, Activation.Softmax));
        model.Compile("adam", "sparse_categorical_crossentropy", "accuracy");
        var rng = new Rng(4);
        var x = GradientCheck.Uniform(rng, 0, 1, 16, 6, 6, 2);
        var labels = Tensor.FromArray([.. Enumerable.Range(0, 16).Select(i => (float)(i % 3))], 16);
        var bn = (BatchNormalization)model.GetLayer("bn");

        model.TrainStep(x, labels);

        Assert.Contains(bn.MovingMean.Value.Data, v => v != 0f);
        Assert.Contains(bn.MovingVariance.Value.Data, v => v != 1f);

        bn.Trainable = false;
        var before = bn.Parameters.Select(p => p.Value.Data.ToArray()).ToList();
        var outputBefore = model.Predict(x);
        model.TrainStep(x, labels);
        for (int i = 0; i < before.Count; i++) Assert.Equal(before[i], bn.Parameters[i].Value.Data);
        Assert.NotEqual(outputBefore.Data, model.Predict(x).Data);   // the other layers did train
    }
}
