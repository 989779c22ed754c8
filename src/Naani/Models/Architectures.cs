using Naani.Kernels;
using Naani.Layers;

namespace Naani.Models;

/// The seeds' models, by name. Parameter counts equal Keras's (tested).
public static class Architectures
{
    public static IReadOnlyList<string> Names { get; } = ["mnist-baseline", "naani-128", "cats-dogs-150", "small-32"];

    /// Builds a named architecture. inputShape and classes override the defaults where the model allows it
    /// (e.g. mnist-baseline on 32x32x3 images, naani-128 with 5 classes ending in softmax).
    public static Sequential Create(string name, int? seed = null, Shape? inputShape = null, int? classes = null) => name.ToLowerInvariant() switch
    {
        "mnist-baseline" => MnistBaseline(seed, inputShape, classes ?? 10),
        "naani-128" => Naani128(seed, inputShape, classes ?? 2),
        "cats-dogs-150" => CatsDogs150(seed, inputShape, classes ?? 2),
        "small-32" => Small32(seed, inputShape, classes ?? 10),
        _ => throw new ArgumentException($"Unknown model '{name}'; built-in models: {string.Join(", ", Names)}."),
    };

    /// The seed "Fundamentals of CNN" baseline: Conv2D 32 5x5 relu, MaxPooling 2, Dropout 0.2, Flatten,
    /// Dense 128 relu, Dense 10 softmax on 28x28x1 (592,074 params).
    public static Sequential MnistBaseline(int? seed = null, Shape? inputShape = null, int classes = 10) =>
        new Sequential("mnist-baseline", seed)
            .Add(new Input(inputShape ?? new Shape(28, 28, 1)))
            .Add(new Conv2D(32, 5, activation: Activation.Relu))
            .Add(new MaxPooling2D(2))
            .Add(new Dropout(0.2))
            .Add(new Flatten())
            .Add(new Dense(128, Activation.Relu))
            .Add(Head(classes));

    /// The seed "CNN implementation in Naani": 128x128x3, Conv2D 32/64/128 3x3 same relu, each followed by
    /// MaxPooling 2, Flatten, Dense 128 relu (fcl), Dense 1 sigmoid (output): 4,287,809 params.
    public static Sequential Naani128(int? seed = null, Shape? inputShape = null, int classes = 2) =>
        new Sequential("naani-128", seed)
            .Add(new Input(inputShape ?? new Shape(128, 128, 3)))
            .Add(new Conv2D(32, 3, padding: Padding.Same, activation: Activation.Relu, name: "conv1"))
            .Add(new MaxPooling2D(2))
            .Add(new Conv2D(64, 3, padding: Padding.Same, activation: Activation.Relu, name: "conv2"))
            .Add(new MaxPooling2D(2))
            .Add(new Conv2D(128, 3, padding: Padding.Same, activation: Activation.Relu, name: "conv3"))
            .Add(new MaxPooling2D(2))
            .Add(new Flatten())
            .Add(new Dense(128, Activation.Relu, name: "fcl"))
            .Add(Head(classes, "output"));

    /// The seed "Fundamentals of CNN" dogs-vs-cats model on 150x150x3: 19,024,513 params.
    public static Sequential CatsDogs150(int? seed = null, Shape? inputShape = null, int classes = 2) =>
        new Sequential("cats-dogs-150", seed)
            .Add(new Input(inputShape ?? new Shape(150, 150, 3)))
            .Add(new Conv2D(16, 3, activation: Activation.Relu))
            .Add(new MaxPooling2D(2))
            .Add(new Conv2D(64, 3, activation: Activation.Relu))
            .Add(new MaxPooling2D(2))
            .Add(new Conv2D(128, 3, activation: Activation.Relu))
            .Add(new MaxPooling2D(2))
            .Add(new Flatten())
            .Add(new Dense(512, Activation.Relu))
            .Add(Head(classes));

    /// The seed "Convolutional Neural Networks" model on 32x32x3: Conv2D 10 4x4 stride 2 same,
    /// Conv2D 20 3x3 stride 2 same, Flatten, Dense 10 (15,120 params).
    public static Sequential Small32(int? seed = null, Shape? inputShape = null, int classes = 10) =>
        new Sequential("small-32", seed)
            .Add(new Input(inputShape ?? new Shape(32, 32, 3)))
            .Add(new Conv2D(10, 4, strides: 2, padding: Padding.Same, activation: Activation.Relu))
            .Add(new Conv2D(20, 3, strides: 2, padding: Padding.Same, activation: Activation.Relu))
            .Add(new Flatten())
            .Add(Head(classes));

    /// Two classes: one sigmoid unit (binary cross-entropy); more: softmax over the classes.
    static Dense Head(int classes, string? name = null)
    {
        if (classes < 2) throw new ArgumentOutOfRangeException(nameof(classes), $"A classifier needs at least 2 classes; got {classes}.");
        return classes == 2 ? new Dense(1, Activation.Sigmoid, name: name) : new Dense(classes, Activation.Softmax, name: name);
    }

    /// The loss that goes with a model's output: binary cross-entropy for one sigmoid unit,
    /// categorical (one-hot labels) or sparse categorical (class indices) otherwise.
    public static string DefaultLoss(Model model, bool sparseLabels) =>
        model.OutputShape[^1] == 1 ? "binary_crossentropy" : sparseLabels ? "sparse_categorical_crossentropy" : "categorical_crossentropy";
}
