using Naani.Callbacks;
using Naani.Kernels;
using Naani.Layers;
using Naani.Losses;
using Naani.Models;
using Naani.Optimizers;
using Naani.Tests.Kernels;
using Naani.Tests.Layers;
using Xunit;

namespace Naani.Tests.Models;

/// The functional API: building graphs, their summary, several outputs in Fit/Evaluate/Predict, and
/// Sequential running on the same machinery.
public sealed class FunctionalTests
{
    static Tensor Uniform(ulong seed, params int[] dims) => GradientCheck.Uniform(new Rng(seed), -1, 1, dims);

    static Tensor Labels(ulong seed, int count, int classes)
    {
        var rng = new Rng(seed);
        var y = new Tensor(count);
        for (int n = 0; n < count; n++) y.Data[n] = rng.NextInt(classes);
        return y;
    }

    /// Input -> conv -> two branches (1x1 and 3x3) -> Concatenate -> main head; an auxiliary head on the conv.
    static Functional TwoHeads(int seed = 1)
    {
        var inputs = Input.Create(8, 8, 1);
        var x = new Conv2D(4, 3, activation: Activation.Relu).Call(inputs);
        var a = new Conv2D(2, 1, activation: Activation.Relu).Call(x);
        var b = new Conv2D(3, 3, padding: Padding.Same, activation: Activation.Relu).Call(x);
        var joined = new Concatenate().Call(a, b);
        var main = new Dense(3, Activation.Softmax, name: "main").Call(new Flatten().Call(joined));
        var aux = new Dense(3, Activation.Softmax, name: "aux").Call(new Flatten(name: "aux_flatten").Call(x));
        return new Functional(inputs, [main, aux], "two-heads", seed);
    }

    [Fact]
    public void A_chain_made_with_the_functional_API_equals_the_same_Sequential_bit_for_bit()
    {
        // Both fork one random stream per layer in order, so the same seed gives the same weights,
        // and both run on Graph, so training gives the same numbers.
        var sequential = new Sequential("chain", seed: 9)
            .Add(new Input(8, 8, 1))
            .Add(new Conv2D(4, 3, activation: Activation.Relu))
            .Add(new MaxPooling2D(2))
            .Add(new Dropout(0.3))
            .Add(new Flatten())
            .Add(new Dense(3, Activation.Softmax));
        var inputs = Input.Create(8, 8, 1);
        var x = new Conv2D(4, 3, activation: Activation.Relu).Call(inputs);
        x = new Dropout(0.3).Call(new MaxPooling2D(2).Call(x));
        var functional = new Functional(inputs, new Dense(3, Activation.Softmax).Call(new Flatten().Call(x)), "chain", seed: 9);

        var data = Uniform(3, 20, 8, 8, 1);
        var labels = Labels(4, 20, 3);
        foreach (var model in new Model[] { sequential, functional })
        {
            model.Compile(new Adam(0.01), new SparseCategoricalCrossEntropy(), "accuracy");
            model.Fit(data, labels, batchSize: 6, epochs: 2);
        }

        Assert.Equal(sequential.Parameters.Select(p => p.FullName), functional.Parameters.Select(p => p.FullName));
        var expected = sequential.GetWeights();
        var actual = functional.GetWeights();
        for (int i = 0; i < expected.Count; i++) Assert.Equal(expected[i].Data, actual[i].Data);
        Assert.Equal(sequential.Predict(data).Data, functional.Predict(data).Data);
    }

    [Fact]
    public void Summary_shows_the_inputs_and_what_each_layer_is_connected_to_as_Keras()
    {
        var summary = TwoHeads().Summary();
        var lines = summary.Split('\n').Select(l => l.TrimEnd()).ToList();

        Assert.Contains("Model: \"two-heads\"", summary);
        // Keras 2's layout for a functional model: columns of 32, 22, 12 and 32 characters.
        Assert.Contains(" Layer (type)                   Output Shape          Param #     Connected to", lines);
        Assert.Contains(" input_layer (InputLayer)       [(None, 8, 8, 1)]     0           []", lines);
        Assert.Contains(" conv2d (Conv2D)                (None, 6, 6, 4)       40          ['input_layer[0][0]']", lines);
        int concat = lines.IndexOf(" concatenate (Concatenate)      (None, 6, 6, 5)       0           ['conv2d_1[0][0]',");
        Assert.True(concat > 0, summary);
        Assert.Equal("                                                                   'conv2d_2[0][0]']", lines[concat + 1]);
        Assert.Contains(" aux (Dense)                    (None, 3)             435         ['aux_flatten[0][0]']", lines);
        Assert.Equal(98, lines[1].Length);
        Assert.Contains("Total params: 1,139", summary);
    }

    [Fact]
    public void Predict_returns_the_main_output_and_does_not_run_the_auxiliary_head()
    {
        var model = TwoHeads();
        var x = Uniform(5, 7, 8, 8, 1);
        model.Profiler = new Profiler();

        var main = model.Predict(x, batchSize: 4);
        var all = model.PredictOutputs([x], batchSize: 3);

        Assert.Equal(new Shape(7, 3), main.Shape);
        Assert.Equal(2, all.Count);
        Assert.Equal(all[0].Data, main.Data);
        Assert.NotEqual(all[0].Data, all[1].Data);
        model.Profiler = new Profiler();
        model.Predict(x);
        Assert.DoesNotContain("aux", model.Profiler.Report());
        Assert.Contains("main", model.Profiler.Report());
    }

    [Fact]
    public void Evaluate_reports_the_weighted_total_the_main_accuracy_and_each_outputs_loss()
    {
        var model = TwoHeads();
        model.Compile(new Adam(), new SparseCategoricalCrossEntropy(), lossWeights: [1, 0.3], "accuracy");
        var x = Uniform(6, 11, 8, 8, 1);
        var y = Labels(7, 11, 3);

        var result = model.Evaluate(x, y, batchSize: 4);
        var outputs = model.PredictOutputs([x]);

        var loss = new SparseCategoricalCrossEntropy();
        double main = loss.Compute(outputs[0], y, null), aux = loss.Compute(outputs[1], y, null);
        Assert.Equal(main, result["main_loss"], 6);
        Assert.Equal(aux, result["aux_loss"], 6);
        Assert.Equal(main + 0.3 * aux, result["loss"], 6);
        var predicted = Naani.Metrics.Predictions.ArgMax(outputs[0]);
        double accuracy = predicted.Where((p, n) => p == (int)y.Data[n]).Count() / 11.0;
        Assert.Equal(accuracy, result["accuracy"]);
    }

    [Fact]
    public void Fit_logs_each_outputs_loss_and_their_weighted_total()
    {
        var model = TwoHeads();
        model.Compile(new Adam(0.01), new SparseCategoricalCrossEntropy(), lossWeights: [1, 0.3], "accuracy");
        var x = Uniform(8, 24, 8, 8, 1);
        var y = Labels(9, 24, 3);

        var history = model.Fit(x, y, batchSize: 8, epochs: 3, validationSplit: 0.25);

        for (int e = 0; e < 3; e++)
        {
            Assert.Equal(history["main_loss"][e] + 0.3 * history["aux_loss"][e], history["loss"][e], 6);
            Assert.Equal(history["val_main_loss"][e] + 0.3 * history["val_aux_loss"][e], history["val_loss"][e], 6);
        }
        Assert.True(history["loss"][^1] < history["loss"][0]);
    }

    [Fact]
    public void A_model_with_two_inputs_trains_on_one_tensor_per_input()
    {
        var image = Input.Create(new Shape(6, 6, 1), "image");
        var side = Input.Create(Shape(2), "side");
        var a = new Flatten().Call(new Conv2D(3, 3, activation: Activation.Relu).Call(image));
        var outputs = new Dense(2, Activation.Softmax).Call(new Concatenate().Call(a, new Dense(4, Activation.Relu).Call(side)));
        var model = new Functional([image, side], [outputs], seed: 2);
        model.Compile(new Adam(0.02), new SparseCategoricalCrossEntropy(), "accuracy");
        var x1 = Uniform(10, 30, 6, 6, 1);
        var x2 = Uniform(11, 30, 2);
        var y = new Tensor(30);
        for (int n = 0; n < 30; n++) y.Data[n] = x2[n, 0] > 0 ? 1 : 0;   // the side input decides

        var history = model.Fit([x1, x2], [y], batchSize: 10, epochs: 30);

        Assert.Equal([new Shape(6, 6, 1), new Shape(2)], model.InputShapes);
        Assert.True(history["accuracy"][^1] > 0.9, $"accuracy {history["accuracy"][^1]}");
        Assert.Equal(new Shape(30, 2), model.Predict([x1, x2]).Shape);
        var e = Assert.Throws<ArgumentException>(() => model.Predict(x1));
        Assert.Contains("2 inputs", e.Message);
    }

    static Shape Shape(params int[] dims) => new(dims);

    [Fact]
    public void A_new_head_on_a_trained_models_layer_keeps_its_weights()
    {
        // Transfer learning with the functional API: the base's layers and nodes are reused as they are.
        var trained = new Sequential("base", seed: 3)
            .Add(new Input(6, 6, 1))
            .Add(new Conv2D(3, 3, activation: Activation.Relu))
            .Add(new Flatten())
            .Add(new Dense(4, Activation.Softmax));
        trained.Build();
        var conv = trained.GetLayer("conv2d");
        conv.Trainable = false;
        var kernel = conv.Parameters[0].Value.Clone();

        var head = new Dense(2, Activation.Softmax, name: "new_head").Call(trained.GetLayer("flatten").Output);
        var model = new Functional(trained.Inputs, [head], "transferred", seed: 4);
        model.Compile("adam", "sparse_categorical_crossentropy");
        model.Fit(Uniform(12, 8, 6, 6, 1), Labels(13, 8, 2), batchSize: 4);

        Assert.Same(conv, model.GetLayer("conv2d"));
        Assert.Equal(kernel.Data, conv.Parameters[0].Value.Data);
        Assert.Equal(["input_layer", "conv2d", "flatten", "new_head"], model.Layers.Select(l => l.Name));
    }

    [Fact]
    public void Layers_are_named_as_Keras_names_them_and_names_must_be_unique()
    {
        var model = TwoHeads();
        Assert.Equal(["input_layer", "conv2d", "conv2d_1", "conv2d_2", "concatenate", "flatten", "main", "aux_flatten", "aux"], model.Layers.Select(l => l.Name));

        var inputs = Input.Create(4);
        var twice = new Add().Call(new Dense(2, name: "same").Call(inputs), new Dense(2, name: "same").Call(inputs));
        var e = Assert.Throws<ArgumentException>(() => new Functional(inputs, twice));
        Assert.Contains("'same'", e.Message);
    }

    [Fact]
    public void A_layer_called_twice_in_one_graph_applies_the_same_weights_twice()
    {
        var inputs = Input.Create(4);
        var shared = new Dense(4, name: "shared");
        var x = shared.Call(shared.Call(inputs));

        var model = new Functional(inputs, x, seed: 1);
        Assert.Single(model.Layers, l => l.Name == "shared");
        Assert.Equal(4 * 4 + 4, model.ParameterCount);
        Assert.Throws<InvalidOperationException>(() => shared.Output);   // two calls: which output is ambiguous

        // y = W (W v + b) + b, computed by hand.
        var v = Tensor.FromArray([1f, -2f, 0.5f, 3f], 1, 4);
        var w = shared.Parameters[0].Value.Data;
        var b = shared.Parameters[1].Value.Data;
        float[] Apply(float[] input) => [.. Enumerable.Range(0, 4).Select(j => Enumerable.Range(0, 4).Sum(i => input[i] * w[i * 4 + j]) + b[j])];
        var expected = Apply(Apply(v.Data));
        var actual = model.Predict(v).Data;
        for (int j = 0; j < 4; j++) Assert.Equal(expected[j], actual[j], 5);
    }

    [Fact]
    public void Merging_tensors_of_different_shapes_names_the_layer_and_the_shapes()
    {
        var inputs = Input.Create(6, 6, 2);
        var a = new Conv2D(4, 3, name: "a").Call(inputs);          // (4, 4, 4)
        var b = new Conv2D(4, 1, name: "b").Call(inputs);          // (6, 6, 4)
        var add = Assert.Throws<ArgumentException>(() => new Functional(inputs, new Add(name: "residual").Call(a, b)));
        Assert.Contains("residual", add.Message);
        Assert.Contains("(None, 4, 4, 4)", add.Message);
        Assert.Contains("(None, 6, 6, 4)", add.Message);

        var inputs2 = Input.Create(6, 6, 2);
        var concat = Assert.Throws<ArgumentException>(() => new Functional(inputs2,
            new Concatenate(name: "join").Call(new Conv2D(4, 3).Call(inputs2), new Conv2D(2, 1).Call(inputs2))));
        Assert.Contains("join", concat.Message);
        Assert.Contains("last axis", concat.Message);
    }

    [Fact]
    public void Inputs_and_outputs_must_be_connected()
    {
        var used = Input.Create(3);
        var unused = Input.Create(3, 1);
        var output = new Dense(2).Call(used);
        var e = Assert.Throws<ArgumentException>(() => new Functional([used, unused], [output]));
        Assert.Contains("not connected", e.Message);

        var other = Input.Create(3);
        var missing = Assert.Throws<ArgumentException>(() => new Functional(used, new Add().Call(output, new Dense(2).Call(other))));
        Assert.Contains("not among the model's inputs", missing.Message);

        Assert.Throws<ArgumentException>(() => new Add().Call(output));
    }

    [Fact]
    public void A_merge_layer_cannot_be_added_to_a_Sequential()
    {
        var e = Assert.Throws<ArgumentException>(() => new Sequential().Add(new Input(4)).Add(new Add()));
        Assert.Contains("Functional", e.Message);
    }

    [Fact]
    public void Compile_checks_the_losses_and_weights_against_the_outputs()
    {
        var model = TwoHeads();
        var losses = Assert.Throws<ArgumentException>(() => model.Compile(new Adam(), [new CategoricalCrossEntropy(), new CategoricalCrossEntropy(), new MeanSquaredError()], null));
        Assert.Contains("2 outputs (main, aux)", losses.Message);
        var weights = Assert.Throws<ArgumentException>(() => model.Compile(new Adam(), new CategoricalCrossEntropy(), lossWeights: [1.0]));
        Assert.Contains("one loss weight per output", weights.Message);

        model.Compile("adam", ["sparse_categorical_crossentropy", "mean_squared_error"], [1, 0.5]);
        Assert.Equal(["sparse_categorical_crossentropy", "mean_squared_error"], model.Losses.Select(l => l.Name));
        Assert.Equal([1, 0.5], model.LossWeights);
        Assert.Equal("sparse_categorical_crossentropy", model.Loss!.Name);
        Assert.True(model.GetLayer("main").GradientIsPreActivation);
        Assert.False(model.GetLayer("aux").GradientIsPreActivation);
    }

    [Fact]
    public void Sequential_exposes_its_chain_as_nodes()
    {
        var model = new Sequential(seed: 1).Add(new Input(3)).Add(new Dense(2));
        Assert.Equal("input_layer", model.Inputs.Single().Layer.Name);
        Assert.Same(model.Layers[^1], model.Outputs.Single().Layer);
    }
}

[Collection(ThreadingCollection.Name)]
public sealed class FunctionalAllocationTests
{
    [Fact]
    public void Training_steps_of_a_branched_graph_allocate_nothing_in_the_graph_after_warm_up()
    {
        // Layers whose own code allocates nothing: what is measured is the graph's forward, its fan-out
        // sums and scratch buffers, two weighted losses and the optimizer. On one thread everything runs
        // on this one, so its own count is exact whatever the test runner's threads do meanwhile.
        ThreadingCollection.WithThreads(1, () =>
        {
            var inputs = Input.Create(12);
            var h = new Dense(16, Activation.Tanh).Call(inputs);
            var a = new Dense(16, Activation.Tanh).Call(h);
            var sum = new Add().Call(a, h);
            var joined = new Concatenate().Call(sum, h);
            var main = new Dense(3, Activation.Softmax).Call(joined);
            var aux = new Dense(3, Activation.Softmax).Call(new ActivationLayer(Activation.Relu).Call(h));
            var model = new Functional(inputs, [main, aux], seed: 1);
            model.Compile(new Adam(), new SparseCategoricalCrossEntropy(), lossWeights: [1, 0.3], "accuracy");
            var x = GradientCheck.Uniform(new Rng(1), -1, 1, 8, 12);
            var y = new Tensor(8);

            var clock = System.Diagnostics.Stopwatch.StartNew();
            while (clock.ElapsedMilliseconds < 500) model.TrainStep(x, y);
            Thread.Sleep(200);
            for (int i = 0; i < 3; i++) model.TrainStep(x, y);
            long before = GC.GetAllocatedBytesForCurrentThread();
            for (int i = 0; i < 10; i++) model.TrainStep(x, y);
            Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
        });
    }
}
