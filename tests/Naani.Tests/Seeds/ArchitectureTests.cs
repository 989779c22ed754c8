using Naani.Layers;
using Naani.Models;
using Xunit;

namespace Naani.Tests.Seeds;

/// The seeds' models: Keras's parameter counts and output shapes, layer by layer.
public sealed class ArchitectureTests
{
    static void AssertLayers(Model model, (string Type, string Shape, long Params)[] expected)
    {
        model.Build();
        var actual = model.Layers.Select(l => (l.TypeName, l.OutputShape.ToKerasString(), l.ParameterCount)).ToArray();
        Assert.Equal(expected, actual);
    }

    [Fact]
    public void Mnist_baseline_has_592074_parameters_with_Keras_layer_shapes()
    {
        var model = Architectures.Create("mnist-baseline", seed: 1);

        AssertLayers(model,
        [
            ("Conv2D", "(None, 24, 24, 32)", 832),
            ("MaxPooling2D", "(None, 12, 12, 32)", 0),
            ("Dropout", "(None, 12, 12, 32)", 0),
            ("Flatten", "(None, 4608)", 0),
            ("Dense", "(None, 128)", 589_952),
            ("Dense", "(None, 10)", 1_290),
        ]);
        Assert.Equal(592_074, model.ParameterCount);
        Assert.Equal(592_074, model.TrainableParameterCount);
    }

    [Fact]
    public void Naani_128_has_4287809_parameters()
    {
        var model = Architectures.Create("naani-128", seed: 1);

        AssertLayers(model,
        [
            ("Conv2D", "(None, 128, 128, 32)", 896),
            ("MaxPooling2D", "(None, 64, 64, 32)", 0),
            ("Conv2D", "(None, 64, 64, 64)", 18_496),
            ("MaxPooling2D", "(None, 32, 32, 64)", 0),
            ("Conv2D", "(None, 32, 32, 128)", 73_856),
            ("MaxPooling2D", "(None, 16, 16, 128)", 0),
            ("Flatten", "(None, 32768)", 0),
            ("Dense", "(None, 128)", 4_194_432),
            ("Dense", "(None, 1)", 129),
        ]);
        Assert.Equal(4_287_809, model.ParameterCount);
        Assert.Equal(["conv1", "conv2", "conv3", "fcl", "output"], model.Layers.Where(l => l.ParameterCount > 0).Select(l => l.Name));
    }

    [Fact]
    public void Cats_dogs_150_has_19024513_parameters()
    {
        var model = Architectures.Create("cats-dogs-150", seed: 1);

        AssertLayers(model,
        [
            ("Conv2D", "(None, 148, 148, 16)", 448),
            ("MaxPooling2D", "(None, 74, 74, 16)", 0),
            ("Conv2D", "(None, 72, 72, 64)", 9_280),
            ("MaxPooling2D", "(None, 36, 36, 64)", 0),
            ("Conv2D", "(None, 34, 34, 128)", 73_856),
            ("MaxPooling2D", "(None, 17, 17, 128)", 0),
            ("Flatten", "(None, 36992)", 0),
            ("Dense", "(None, 512)", 18_940_416),
            ("Dense", "(None, 1)", 513),
        ]);
        Assert.Equal(19_024_513, model.ParameterCount);
    }

    [Fact]
    public void Small_32_has_15120_parameters_with_stride_2_same_convolutions()
    {
        var model = Architectures.Create("small-32", seed: 1);

        AssertLayers(model,
        [
            ("Conv2D", "(None, 16, 16, 10)", 490),
            ("Conv2D", "(None, 8, 8, 20)", 1_820),
            ("Flatten", "(None, 1280)", 0),
            ("Dense", "(None, 10)", 12_810),
        ]);
        Assert.Equal(15_120, model.ParameterCount);
    }

    [Fact]
    public void Summary_prints_the_Keras_table_and_totals()
    {
        var summary = Architectures.Create("mnist-baseline", seed: 1).Summary();

        Assert.Contains("Model: \"mnist-baseline\"", summary);
        Assert.Contains("Total params: 592,074", summary);
        Assert.Contains("Trainable params: 592,074", summary);
        Assert.Contains("Non-trainable params: 0", summary);
        Assert.Contains("(None, 24, 24, 32)", summary);
        Assert.Contains("589,952", summary);
        var convLine = summary.Split('\n').Single(l => l.Contains("conv2d (Conv2D)"));
        Assert.Contains("(None, 24, 24, 32)", convLine);
        Assert.Contains("832", convLine);
    }

    [Fact]
    public void Summary_counts_a_frozen_layer_as_non_trainable()
    {
        var model = Architectures.Create("small-32", seed: 1);
        model.Build();
        model.Layers[0].Trainable = false;

        var summary = model.Summary();

        Assert.Contains("Total params: 15,120", summary);
        Assert.Contains("Trainable params: 14,630", summary);
        Assert.Contains("Non-trainable params: 490", summary);
    }

    [Theory]
    [InlineData("mnist-baseline", 10, "Softmax")]
    [InlineData("naani-128", 2, "Sigmoid")]
    [InlineData("naani-128", 5, "Softmax")]
    [InlineData("small-32", 3, "Softmax")]
    public void The_head_is_one_sigmoid_for_two_classes_and_softmax_otherwise(string name, int classes, string activation)
    {
        // Small images keep the dense layers small; the head does not depend on the input size.
        var model = Architectures.Create(name, seed: 1, inputShape: new Shape(32, 32, 3), classes: classes);
        model.Build();

        var head = Assert.IsType<Dense>(model.Layers[^1]);
        Assert.Equal(Enum.Parse<Activation>(activation), head.Activation);
        Assert.Equal(classes == 2 ? 1 : classes, head.Units);
        Assert.Equal(classes == 2 ? "binary_crossentropy" : "categorical_crossentropy", Architectures.DefaultLoss(model, sparseLabels: false));
    }

    [Fact]
    public void Unknown_architecture_lists_the_built_in_ones()
    {
        var e = Assert.Throws<ArgumentException>(() => Architectures.Create("resnet-50"));

        foreach (var name in Architectures.Names) Assert.Contains(name, e.Message);
    }

    [Fact]
    public void Default_input_shapes_are_those_the_architectures_are_built_with()
    {
        foreach (var name in Architectures.Names.Where(n => n is not ("vgg16" or "resnet50")))
            Assert.Equal(Architectures.Create(name, seed: 1).InputShape, Architectures.DefaultInputShape(name));
        // The two large ones (553 and 103 MB of weights) against their Keras defaults, without building them here.
        Assert.Equal(new Shape(224, 224, 3), Architectures.DefaultInputShape("VGG16"));
        Assert.Equal(new Shape(224, 224, 3), Architectures.DefaultInputShape("resnet50"));
        var e = Assert.Throws<ArgumentException>(() => Architectures.DefaultInputShape("vgg19"));
        Assert.Contains("vgg19", e.Message);
    }
}
