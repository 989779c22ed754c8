using Naani.Kernels;
using Naani.Layers;
using Naani.Losses;
using Naani.Models;
using Naani.Optimizers;
using Naani.Tests.Layers;
using Xunit;
using Xunit.Abstractions;

namespace Naani.Tests.Models;

/// Gradients through graphs with branches and merges against central differences of the loss, in
/// double: fan-out (a tensor read by several layers gets the SUM of their gradients), Concatenate,
/// Add, a node read twice by one layer, two inputs, and two outputs whose weighted losses add up.
///
/// The analytic gradients are those of a real TrainStep, which leaves them in Parameter.Gradient; the
/// weights it moved are then put back. The numeric ones differentiate Evaluate's "loss", the weighted
/// total sum_k w_k loss_k. Smooth activations only
/// (tanh, sigmoid, softmax, average pooling): no kinks, so every entry is checked at the tolerance of
/// ModelGradientTests (2e-3 at a step of 1e-2). A graph that overwrote instead of summing a fan-out
/// gradient would miss a whole branch's term in every weight before the fork.
public sealed class GraphGradientTests(ITestOutputHelper output)
{
    const double Step = 1e-2;

    void AssertGradients(Model model, IReadOnlyList<Tensor> x, IReadOnlyList<Tensor> y)
    {
        var before = model.GetWeights();
        model.TrainStep(x, y);
        model.SetWeights(before);

        double Objective() => model.Evaluate(x, y, batchSize: x[0].Batch)["loss"];
        foreach (var p in model.Parameters)
        {
            var analytic = (float[])p.Gradient.Data.Clone();
            var numeric = GradientCheck.Numeric(p.Value.Data, Objective, Step);
            double worst = GradientCheck.AssertMatches(p.FullName, analytic, numeric);
            output.WriteLine($"{p.FullName}: worst error {worst:E2}");
        }
    }

    static Tensor Uniform(ulong seed, params int[] dims) => GradientCheck.Uniform(new Rng(seed), -1, 1, dims);

    static Tensor OneHot(ulong seed, int count, int classes)
    {
        var rng = new Rng(seed);
        var y = new Tensor(count, classes);
        for (int n = 0; n < count; n++) y[n, rng.NextInt(classes)] = 1;
        return y;
    }

    static Conv2D Conv(int filters, int size, Activation activation = Activation.Tanh) =>
        new(filters, size, padding: Padding.Same, activation: activation);

    /// A shared layer (Keras's layer called twice): both calls use one set of weights, whose gradient is the sum of the
    /// two calls' gradients, and the optimizer updates it once. A Siamese pair: one Dense applied to two inputs.
    [Fact]
    public void A_layer_shared_by_two_inputs_sums_both_calls_gradients_into_one_set_of_weights()
    {
        var left = Input.Create(4, 4, 1);
        var right = Input.Create(4, 4, 1);
        var shared = new Dense(3, Activation.Tanh, name: "twin");
        var a = shared.Call(new Flatten().Call(left));
        var b = shared.Call(new Flatten().Call(right));
        Assert.Equal(2, shared.Calls.Count);
        var outputs = new Dense(2, Activation.Softmax).Call(new Concatenate().Call(a, b));
        var model = new Functional([left, right], [outputs], seed: 8);
        model.Compile(new SGD(0.1), new CategoricalCrossEntropy());

        Assert.Single(model.Layers, l => l.Name == "twin");
        Assert.Equal(2, model.Parameters.Count(p => p.Owner == shared));
        Assert.Equal((16 * 3 + 3) + (6 * 2 + 2), model.ParameterCount);
        AssertGradients(model, [Uniform(31, 3, 4, 4, 1), Uniform(32, 3, 4, 4, 1)], [OneHot(33, 3, 2)]);

        // Saved (format version 3: the second call is an entry naming the layer it calls again) and read back: one set of
        // weights, the same predictions.
        string file = Path.Combine(Path.GetTempPath(), $"naani-shared-{Guid.NewGuid():N}.naani");
        try
        {
            model.Save(file);
            var loaded = Model.Load(file);
            Assert.Equal(model.ParameterCount, loaded.ParameterCount);
            var inputs = new[] { Uniform(35, 2, 4, 4, 1), Uniform(36, 2, 4, 4, 1) };
            Assert.Equal(model.Predict(inputs).Data, loaded.Predict(inputs).Data);
            // Keras JSON says the same: the twin layer's two inbound nodes, read back as one layer called twice.
            var fromKeras = Model.FromKerasJson(model.ToKerasJson());
            fromKeras.SetWeights(model.GetWeights());
            Assert.Equal(model.Predict(inputs).Data, fromKeras.Predict(inputs).Data);
        }
        finally
        {
            File.Delete(file);
        }

        // Both calls see the update: predicting with the same image on both sides gives the same half-features.
        var x = Uniform(34, 1, 4, 4, 1);
        var twin = new Functional([left, right], [a, b], "twin-features");
        var features = twin.PredictOutputs([x, x]);
        Assert.Equal(features[0].Data, features[1].Data);
    }

    /// A convolution applied twice in a row (weights tied across depth): the second call reads the first's output.
    [Fact]
    public void A_convolution_called_twice_in_a_chain_has_the_gradient_of_both_calls()
    {
        var inputs = Input.Create(5, 5, 2);
        var conv = Conv(2, 3);
        var once = conv.Call(inputs);
        var twice = conv.Call(new AveragePooling2D(1).Call(once));
        var outputs = new Dense(3, Activation.Softmax).Call(new Flatten().Call(twice));
        var model = new Functional(inputs, outputs, seed: 9);
        model.Compile(new SGD(0.1), new CategoricalCrossEntropy());
        Assert.Equal(3 * 3 * 2 * 2 + 2 + 50 * 3 + 3, model.ParameterCount);
        AssertGradients(model, [Uniform(41, 2, 5, 5, 2)], [OneHot(42, 2, 3)]);

        // A call whose input the weights do not fit is refused, naming the layer.
        var other = Input.Create(5, 5, 3);
        var misfit = conv.Call(other);
        var e = Assert.Throws<ArgumentException>(() => new Functional([inputs, other], [outputs, misfit]));
        Assert.Contains("a shared or reused layer takes only inputs its weights fit", e.Message);
    }

    [Fact]
    public void A_residual_block_sums_the_gradients_of_the_fork_and_the_shortcut()
    {
        // conv0's output feeds conv1 and the Add: its gradient is the sum of both paths.
        var inputs = Input.Create(5, 5, 2);
        var fork = Conv(3, 3).Call(inputs);
        var branch = Conv(3, 1, Activation.Linear).Call(Conv(3, 3).Call(fork));
        var sum = new Add().Call(branch, fork);
        var x = new ActivationLayer(Activation.Tanh).Call(sum);
        var outputs = new Dense(4, Activation.Softmax).Call(new Flatten().Call(x));
        var model = new Functional(inputs, outputs, seed: 3);
        model.Compile(new SGD(0.1), new CategoricalCrossEntropy());

        AssertGradients(model, [Uniform(11, 3, 5, 5, 2)], [OneHot(12, 3, 4)]);
    }

    [Fact]
    public void An_inception_style_module_concatenates_branches_and_sums_the_fan_out()
    {
        var inputs = Input.Create(6, 6, 2);
        var stem = Conv(3, 3).Call(inputs);
        var a = Conv(2, 1).Call(stem);
        var b = Conv(2, 3).Call(Conv(2, 1).Call(stem));
        var c = Conv(2, 1).Call(new AveragePooling2D(3, strides: 1, padding: Padding.Same).Call(stem));
        var joined = new Concatenate().Call(a, b, c, stem);
        var x = Conv(3, 1).Call(joined);
        var outputs = new Dense(3, Activation.Softmax).Call(new Flatten().Call(new AveragePooling2D(2).Call(x)));
        var model = new Functional(inputs, outputs, seed: 4);
        model.Compile(new SGD(0.1), new CategoricalCrossEntropy());

        AssertGradients(model, [Uniform(21, 2, 6, 6, 2)], [OneHot(22, 2, 3)]);
    }

    [Theory]
    [InlineData("categorical_crossentropy")]   // both heads fused with their softmax
    [InlineData("mean_squared_error")]         // the auxiliary head's loss taken through its softmax
    public void Two_outputs_train_on_the_weighted_sum_of_their_losses(string auxiliaryLoss)
    {
        var inputs = Input.Create(4, 4, 2);
        var features = new Flatten().Call(Conv(3, 3).Call(inputs));
        var hidden = new Dense(5, Activation.Tanh).Call(features);
        var main = new Dense(3, Activation.Softmax, name: "main").Call(hidden);
        var aux = new Dense(3, Activation.Softmax, name: "aux").Call(features);
        var model = new Functional(inputs, [main, aux], seed: 5);
        model.Compile(new SGD(0.1), [new CategoricalCrossEntropy(), Loss.Parse(auxiliaryLoss)], [1.0, 0.3]);

        var x = Uniform(31, 4, 4, 4, 2);
        var y = OneHot(32, 4, 3);
        AssertGradients(model, [x], [y, y]);

        var outputs = model.PredictOutputs([x]);
        double expected = new CategoricalCrossEntropy().Compute(outputs[0], y, null) + 0.3 * Loss.Parse(auxiliaryLoss).Compute(outputs[1], y, null);
        Assert.Equal(expected, model.Evaluate([x], [y])["loss"], 10);
    }

    [Fact]
    public void An_output_that_also_feeds_another_layer_gets_both_gradients_and_is_not_fused()
    {
        var inputs = Input.Create(6);
        var first = new Dense(4, Activation.Softmax, name: "first").Call(new Dense(5, Activation.Tanh).Call(inputs));
        var second = new Dense(3, Activation.Softmax, name: "second").Call(first);
        var model = new Functional(inputs, [first, second], seed: 6);
        model.Compile(new SGD(0.1), new CategoricalCrossEntropy(), lossWeights: [0.5, 1.0]);

        Assert.False(model.GetLayer("first").GradientIsPreActivation);
        Assert.True(model.GetLayer("second").GradientIsPreActivation);
        AssertGradients(model, [Uniform(41, 3, 6)], [OneHot(42, 3, 4), OneHot(43, 3, 3)]);
    }

    [Fact]
    public void A_node_read_twice_by_one_merge_layer_gets_twice_the_gradient()
    {
        var inputs = Input.Create(5);
        var h = new Dense(4, Activation.Tanh).Call(inputs);
        var doubled = new Add().Call(h, h);
        var joined = new Concatenate().Call(doubled, h, doubled);
        var outputs = new Dense(3, Activation.Softmax).Call(joined);
        var model = new Functional(inputs, outputs, seed: 7);
        model.Compile(new SGD(0.1), new CategoricalCrossEntropy());

        AssertGradients(model, [Uniform(51, 4, 5)], [OneHot(52, 4, 3)]);
    }

    [Fact]
    public void Two_inputs_each_get_the_gradients_of_their_own_branch()
    {
        var image = Input.Create(4, 4, 1);
        var extra = Input.Create(3);
        var a = new Flatten().Call(Conv(2, 3).Call(image));
        var b = new Dense(4, Activation.Sigmoid).Call(extra);
        var outputs = new Dense(2, Activation.Softmax).Call(new Concatenate().Call(a, b));
        var model = new Functional([image, extra], [outputs], seed: 8);
        model.Compile(new SGD(0.1), new CategoricalCrossEntropy());

        AssertGradients(model, [Uniform(61, 3, 4, 4, 1), Uniform(62, 3, 3)], [OneHot(63, 3, 2)]);
    }

    /// Merge layers on their own: dL/dx_k of L = sum(y r) against central differences, every input.
    static void AssertMergeLayer(MergeLayer layer, Tensor[] inputs)
    {
        layer.Build([.. inputs.Select(t => t.Shape.WithoutBatch())], new Rng(1));
        var y = new Tensor(layer.OutputShape.WithBatch(inputs[0].Batch));
        var r = Uniform(99, y.Shape.ToArray());
        layer.Forward(inputs, y, training: true);
        var dxs = inputs.Select(t =>
        {
            var dx = new Tensor(t.Shape);
            dx.Fill(float.NaN);   // Backward must write every element
            return dx;
        }).ToArray();
        layer.Backward(inputs, y, r.Clone(), dxs);

        double Objective()
        {
            layer.Forward(inputs, y, training: true);
            double sum = 0;
            for (int i = 0; i < y.Length; i++) sum += (double)y.Data[i] * r.Data[i];
            return sum;
        }
        for (int k = 0; k < inputs.Length; k++)
            GradientCheck.AssertMatches($"dx{k}", dxs[k].Data, GradientCheck.Numeric(inputs[k].Data, Objective));
    }

    [Fact]
    public void Concatenate_passes_each_input_its_own_channels_of_the_gradient()
    {
        AssertMergeLayer(new Concatenate("concat"), [Uniform(1, 2, 3, 3, 2), Uniform(2, 2, 3, 3, 1), Uniform(3, 2, 3, 3, 4)]);
    }

    [Fact]
    public void Add_passes_every_input_the_whole_gradient()
    {
        AssertMergeLayer(new Add("add"), [Uniform(4, 2, 3, 3, 2), Uniform(5, 2, 3, 3, 2), Uniform(6, 2, 3, 3, 2)]);
    }

    [Fact]
    public void Concatenate_joins_the_channels_of_each_pixel_in_call_order()
    {
        var layer = new Concatenate("concat");
        layer.Build([new Shape(1, 2, 1), new Shape(1, 2, 2)], new Rng(1));
        var y = new Tensor(1, 1, 2, 3);
        layer.Forward([Tensor.FromArray([1, 2], 1, 1, 2, 1), Tensor.FromArray([10, 20, 30, 40], 1, 1, 2, 2)], y, training: false);
        Assert.Equal([1, 10, 20, 2, 30, 40], y.Data);
    }
}
