using Naani.Kernels;
using Naani.Layers;

namespace Naani.Models;

/// The seeds' models, by name. Parameter counts equal Keras's (tested).
public static class Architectures
{
    public static IReadOnlyList<string> Names { get; } =
    [
        "mnist-baseline", "naani-128", "cats-dogs-150", "small-32", "lenet5", "alexnet-conv1", "vgg16",
        "inception-naive", "inception-reduced", "googlenet-mini", "resnet50", "resnet-mini",
    ];

    /// Builds a named architecture. inputShape and classes override the defaults where the model allows it
    /// (e.g. mnist-baseline on 32x32x3 images, naani-128 with 5 classes ending in softmax). includeTop: false
    /// leaves out the classifier of vgg16 and resnet50 (Keras's include_top), for transfer learning.
    public static Model Create(string name, int? seed = null, Shape? inputShape = null, int? classes = null, bool includeTop = true,
        bool preprocessInput = false)
    {
        string key = name.ToLowerInvariant();
        if (classes is not null && SeedBlocks.Contains(key))
            throw new ArgumentException($"'{name}' is a single block from the seeds (for its shapes and parameter counts), not a classifier: it takes no classes and cannot be trained on labels. Train googlenet-mini, resnet-mini or lenet5 instead.");
        return key switch
        {
            "mnist-baseline" => MnistBaseline(seed, inputShape, classes ?? 10),
            "naani-128" => Naani128(seed, inputShape, classes ?? 2),
            "cats-dogs-150" => CatsDogs150(seed, inputShape, classes ?? 2),
            "small-32" => Small32(seed, inputShape, classes ?? 10),
            "lenet5" => LeNet5(seed, inputShape, classes ?? 10),
            "alexnet-conv1" => AlexNetConv1(seed, inputShape),
            "vgg16" => Vgg16(seed, inputShape, classes ?? 1000, includeTop, preprocessInput),
            "inception-naive" => InceptionNaive(seed, inputShape),
            "inception-reduced" => InceptionReduced(seed, inputShape),
            "googlenet-mini" => GoogLeNetMini(seed, inputShape, classes ?? 10),
            "resnet50" => ResNet50(seed, inputShape, classes ?? 1000, includeTop, preprocessInput),
            "resnet-mini" => ResNetMini(seed, inputShape, classes ?? 10),
            _ => throw new ArgumentException($"Unknown model '{name}'; built-in models: {string.Join(", ", Names)}."),
        };
    }

    /// The input shape a named architecture is built for when none is given, without building it (VGG16
    /// and ResNet50 allocate their weights when built: 553 MB and 103 MB).
    public static Shape DefaultInputShape(string name) => name.ToLowerInvariant() switch
    {
        "mnist-baseline" or "lenet5" or "googlenet-mini" or "resnet-mini" => new Shape(28, 28, 1),
        "naani-128" => new Shape(128, 128, 3),
        "cats-dogs-150" => new Shape(150, 150, 3),
        "small-32" => new Shape(32, 32, 3),
        "alexnet-conv1" => new Shape(227, 227, 3),
        "vgg16" or "resnet50" => new Shape(224, 224, 3),
        "inception-naive" or "inception-reduced" => new Shape(28, 28, 256),
        _ => throw new ArgumentException($"Unknown model '{name}'; built-in models: {string.Join(", ", Names)}."),
    };

    /// The names that are single blocks (a layer, a module) rather than classifiers.
    static readonly string[] SeedBlocks = ["alexnet-conv1", "inception-naive", "inception-reduced"];

    /// The loss weights a named architecture trains with, or null for one output: googlenet-mini's
    /// total loss is loss1 + 0.3 loss2 + 0.3 loss3, as GoogLeNet's (the seed "Fundamentals of CNN").
    public static IReadOnlyList<double>? LossWeights(string name) =>
        name.Equals("googlenet-mini", StringComparison.OrdinalIgnoreCase) ? GoogLeNetLossWeights : null;

    /// GoogLeNet's weights of the main loss and the two auxiliary ones.
    public static IReadOnlyList<double> GoogLeNetLossWeights { get; } = [1.0, 0.3, 0.3];

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

    /// LeNet-5 with a softmax output (the seed "Fundamentals of CNN"), as Keras tutorials write it for
    /// 28x28 digits: C1 6 5x5 tanh 'same' (the 28x28 image stands for LeNet's 32x32 with its 2-pixel
    /// border), S2 2x2 average pooling, C3 16 5x5 tanh, S4 2x2 average pooling, C5 120 and F6 84 tanh
    /// units, and the output: 61,706 params.
    public static Sequential LeNet5(int? seed = null, Shape? inputShape = null, int classes = 10) =>
        new Sequential("lenet5", seed)
            .Add(new Input(inputShape ?? new Shape(28, 28, 1)))
            .Add(new Conv2D(6, 5, padding: Padding.Same, activation: Activation.Tanh, name: "c1"))
            .Add(new AveragePooling2D(2, name: "s2"))
            .Add(new Conv2D(16, 5, activation: Activation.Tanh, name: "c3"))
            .Add(new AveragePooling2D(2, name: "s4"))
            .Add(new Flatten())
            .Add(new Dense(120, Activation.Tanh, name: "c5"))
            .Add(new Dense(84, Activation.Tanh, name: "f6"))
            .Add(Head(classes, "output"));

    /// AlexNet's first layer, the seed "Convolutional Neural Networks" example: 96 filters of 11x11x3
    /// (363 weights each) with stride 4 on a 227x227x3 image give 55x55x96 feature maps; 34,944 params.
    /// (The seed says 90 filters in one place; Keras's AlexNet and the paper have 96.)
    public static Sequential AlexNetConv1(int? seed = null, Shape? inputShape = null) =>
        new Sequential("alexnet-conv1", seed)
            .Add(new Input(inputShape ?? new Shape(227, 227, 3)))
            .Add(new Conv2D(96, 11, strides: 4, activation: Activation.Relu, name: "conv1"));

    /// VGG16 exactly as keras.applications.VGG16: five blocks of 3x3 'same' relu convolutions (64, 128,
    /// 256, 512, 512 filters; 2, 2, 3, 3, 3 of them) each ending in 2x2 max pooling, then Flatten, fc1
    /// and fc2 of 4096 relu units and the softmax predictions. 138,357,544 params on 224x224x3 with 1000
    /// classes; without the top (includeTop: false, ending at block5_pool) 14,714,688.
    public static Functional Vgg16(int? seed = null, Shape? inputShape = null, int classes = 1000, bool includeTop = true, bool preprocessInput = false)
    {
        var inputs = Input.Create(inputShape ?? new Shape(224, 224, 3), "input_layer");
        var x = preprocessInput ? new Conv2D(3, (1, 1), name: PreprocessInputName).Call(inputs) : inputs;
        (int Filters, int Convolutions)[] blocks = [(64, 2), (128, 2), (256, 3), (512, 3), (512, 3)];
        for (int b = 0; b < blocks.Length; b++)
        {
            for (int c = 0; c < blocks[b].Convolutions; c++)
                x = new Conv2D(blocks[b].Filters, 3, padding: Padding.Same, activation: Activation.Relu, name: $"block{b + 1}_conv{c + 1}").Call(x);
            x = new MaxPooling2D(2, name: $"block{b + 1}_pool").Call(x);
        }
        if (includeTop)
        {
            x = new Flatten("flatten").Call(x);
            x = new Dense(4096, Activation.Relu, name: "fc1").Call(x);
            x = new Dense(4096, Activation.Relu, name: "fc2").Call(x);
            x = new Dense(classes, Activation.Softmax, name: "predictions").Call(x);
        }
        return WithCaffePreprocessing(new Functional(inputs, x, "vgg16", seed));
    }

    /// The seed's naive Inception module on its 28x28x256 input with 8 filters per branch: the 1x1, 3x3
    /// and 5x5 convolutions have 2,056 + 18,440 + 51,208 = 71,704 params; out come 8 + 8 + 8 + 256 channels.
    public static Functional InceptionNaive(int? seed = null, Shape? inputShape = null, int filters = 8)
    {
        var inputs = Input.Create(inputShape ?? new Shape(28, 28, 256), "input_layer");
        return new Functional(inputs, Blocks.InceptionNaive(inputs, filters, "inception"), "inception-naive", seed);
    }

    /// The seed's Inception module with 1x1 dimension reductions, same input and 8 filters everywhere:
    /// 2,056 + (2,056 + 584) + (2,056 + 1,608) + 2,056 = 10,416 params, 32 channels out.
    public static Functional InceptionReduced(int? seed = null, Shape? inputShape = null, int filters = 8)
    {
        var inputs = Input.Create(inputShape ?? new Shape(28, 28, 256), "input_layer");
        var outputs = Blocks.Inception(inputs, filters, filters, filters, filters, filters, filters, "inception");
        return new Functional(inputs, outputs, "inception-reduced", seed);
    }

    /// A small GoogLeNet for 28x28x1 (or 32x32x3) images: a 3x3 stem, two Inception modules at 14x14,
    /// three at 7x7 and one more, global average pooling, dropout 0.4 and the softmax "predictions";
    /// two auxiliary classifiers ("aux1" after inception_4a, "aux2" after inception_4c) are outputs 2 and
    /// 3. Train it with the loss weights [1, 0.3, 0.3] (LossWeights("googlenet-mini")); Predict returns
    /// the main output and skips the auxiliary heads.
    public static Functional GoogLeNetMini(int? seed = null, Shape? inputShape = null, int classes = 10)
    {
        if (classes < 2) throw new ArgumentOutOfRangeException(nameof(classes), $"A classifier needs at least 2 classes; got {classes}.");
        var inputs = Input.Create(inputShape ?? new Shape(28, 28, 1), "input_layer");
        var x = new Conv2D(32, 3, padding: Padding.Same, activation: Activation.Relu, name: "conv1").Call(inputs);
        x = new MaxPooling2D(2, name: "pool1").Call(x);                                       // 14x14x32
        x = Blocks.Inception(x, 16, 16, 24, 8, 8, 8, "inception_3a");                          // 14x14x56
        x = Blocks.Inception(x, 24, 24, 32, 8, 16, 16, "inception_3b");                        // 14x14x88
        x = new MaxPooling2D(2, name: "pool2").Call(x);                                       // 7x7x88
        x = Blocks.Inception(x, 32, 32, 48, 8, 16, 16, "inception_4a");                        // 7x7x112
        var aux1 = Blocks.AuxiliaryClassifier(x, classes, "aux1");
        x = Blocks.Inception(x, 32, 32, 48, 8, 16, 16, "inception_4b");                        // 7x7x112
        x = Blocks.Inception(x, 32, 32, 48, 8, 16, 16, "inception_4c");                        // 7x7x112
        var aux2 = Blocks.AuxiliaryClassifier(x, classes, "aux2");
        x = Blocks.Inception(x, 48, 32, 64, 8, 16, 16, "inception_5a");                        // 7x7x144
        x = new GlobalAveragePooling2D(name: "avg_pool").Call(x);
        x = new Dropout(0.4, "dropout").Call(x);
        var main = new Dense(classes, Activation.Softmax, name: "predictions").Call(x);
        return new Functional(inputs, [main, aux1, aux2], "googlenet-mini", seed);
    }

    /// ResNet50 exactly as keras.applications.ResNet50: ZeroPadding2D 3 and a 7x7/2 convolution of 64
    /// filters with batch normalization and relu, ZeroPadding2D 1 and 3x3/2 max pooling, then stages of
    /// 3, 4, 6 and 3 bottleneck blocks (64, 128, 256, 512 filters; the first block of each projects the
    /// shortcut, strided from the second stage on), global average pooling and the softmax predictions.
    /// 25,636,712 params on 224x224x3 with 1000 classes (25,583,592 trainable; the 53,120 non-trainable
    /// are the batch normalizations' moving statistics); without the top, 23,587,712.
    public static Functional ResNet50(int? seed = null, Shape? inputShape = null, int classes = 1000, bool includeTop = true, bool preprocessInput = false)
    {
        var inputs = Input.Create(inputShape ?? new Shape(224, 224, 3), "input_layer");
        var x = new ZeroPadding2D(((3, 3), (3, 3)), "conv1_pad").Call(preprocessInput ? new Conv2D(3, (1, 1), name: PreprocessInputName).Call(inputs) : inputs);
        x = new Conv2D(64, 7, strides: 2, name: "conv1_conv").Call(x);
        x = new BatchNormalization(epsilon: 1.001e-5, name: "conv1_bn").Call(x);
        x = new ActivationLayer(Activation.Relu, "conv1_relu").Call(x);
        x = new ZeroPadding2D(((1, 1), (1, 1)), "pool1_pad").Call(x);
        x = new MaxPooling2D(3, strides: 2, name: "pool1_pool").Call(x);
        (int Filters, int Blocks, int Stride)[] stages = [(64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)];
        for (int s = 0; s < stages.Length; s++)
            for (int b = 0; b < stages[s].Blocks; b++)
                x = Blocks.Bottleneck(x, stages[s].Filters, stride: b == 0 ? stages[s].Stride : 1, projection: b == 0, name: $"conv{s + 2}_block{b + 1}");
        if (includeTop)
        {
            x = new GlobalAveragePooling2D(name: "avg_pool").Call(x);
            x = new Dense(classes, Activation.Softmax, name: "predictions").Call(x);
        }
        return WithCaffePreprocessing(new Functional(inputs, x, "resnet50", seed));
    }

    /// A small residual network for 28x28x1 or 32x32x3 images (the CIFAR ResNets of the ResNet paper,
    /// shortened): a 3x3 convolution of 16 filters with batch normalization and relu, three stages of two
    /// basic blocks with 16, 32 and 64 filters (the second and third start with stride 2 and a projected
    /// shortcut), global average pooling and the softmax predictions.
    public static Functional ResNetMini(int? seed = null, Shape? inputShape = null, int classes = 10)
    {
        if (classes < 2) throw new ArgumentOutOfRangeException(nameof(classes), $"A classifier needs at least 2 classes; got {classes}.");
        var inputs = Input.Create(inputShape ?? new Shape(28, 28, 1), "input_layer");
        var x = new Conv2D(16, 3, padding: Padding.Same, useBias: false, name: "conv1_conv").Call(inputs);
        x = new BatchNormalization(name: "conv1_bn").Call(x);
        x = new ActivationLayer(Activation.Relu, "conv1_relu").Call(x);
        int[] filters = [16, 32, 64];
        for (int s = 0; s < filters.Length; s++)
            for (int b = 0; b < 2; b++)
            {
                bool first = b == 0 && s > 0;
                x = Blocks.Basic(x, filters[s], stride: first ? 2 : 1, projection: first, name: $"conv{s + 2}_block{b + 1}");
            }
        x = new GlobalAveragePooling2D(name: "avg_pool").Call(x);
        x = new Dense(classes, Activation.Softmax, name: "predictions").Call(x);
        return new Functional(inputs, x, "resnet-mini", seed);
    }

    /// Two classes: one sigmoid unit (binary cross-entropy); more: softmax over the classes.
    static Dense Head(int classes, string? name = null)
    {
        if (classes < 2) throw new ArgumentOutOfRangeException(nameof(classes), $"A classifier needs at least 2 classes; got {classes}.");
        return classes == 2 ? new Dense(1, Activation.Sigmoid, name: name) : new Dense(classes, Activation.Softmax, name: name);
    }

    /// The loss that goes with a model's output: binary cross-entropy for one sigmoid unit,
    /// categorical (one-hot labels) or sparse categorical (class indices) otherwise.
    /// The name of the layer that applies keras.applications' preprocess_input inside VGG16 and ResNet50 (preprocessInput:
    /// true); KerasWeights leaves it out when matching a weight file's layers.
    public const string PreprocessInputName = "preprocess_input";

    // Keras's VGG16 and ResNet50 weights were trained on "caffe" inputs: 0-255, BGR, less ImageNet's mean per channel
    // (keras.applications.imagenet_utils.preprocess_input). Naani reads pixels as RGB in [0, 1], so the models that take
    // those weights start with a frozen 1x1 convolution doing exactly that: y_c = 255 x_(2-c) - mean_c.
    static Functional WithCaffePreprocessing(Functional model)
    {
        if (model.Layers.FirstOrDefault(l => l.Name == PreprocessInputName) is not Conv2D conv) return model;
        var kernel = conv.Parameters[0].Value.Data;   // (1, 1, 3 in, 3 out)
        Array.Clear(kernel);
        for (int c = 0; c < 3; c++) kernel[(2 - c) * 3 + c] = 255f;
        float[] mean = [103.939f, 116.779f, 123.68f];   // B, G, R
        for (int c = 0; c < 3; c++) conv.Parameters[1].Value.Data[c] = -mean[c];
        conv.Trainable = false;
        return model;
    }

    /// A classifier on top of a feature extractor, as the seeds' transfer learning builds on VGG16 without its top:
    /// the extractor's layers (shared, with their weights), GlobalAveragePooling2D where its output is an image,
    /// Dense(hidden, relu), and Dense(classes, softmax) or, for two classes, Dense(1, sigmoid).
    public static Functional Classifier(Functional features, int classes, int hidden = 1024, string? name = null)
    {
        ArgumentNullException.ThrowIfNull(features);
        if (classes < 2) throw new ArgumentOutOfRangeException(nameof(classes), $"A classifier tells at least 2 classes apart; got {classes}.");
        if (features.Outputs.Count != 1) throw new ArgumentException($"Model '{features.Name}' has {features.Outputs.Count} outputs; a classifier goes on a model with one.");
        var x = features.Outputs[0];
        if (x.Shape.Rank == 3) x = new GlobalAveragePooling2D(name: "top_pool").Call(x);
        else if (x.Shape.Rank != 1) x = new Flatten(name: "top_flatten").Call(x);
        x = new Dense(hidden, Activation.Relu, name: "top_dense").Call(x);
        var output = classes == 2 ? new Dense(1, Activation.Sigmoid, name: "top_output").Call(x) : new Dense(classes, Activation.Softmax, name: "top_output").Call(x);
        return new Functional(features.Inputs, [output], name ?? features.Name, features.Seed);
    }

    public static string DefaultLoss(Model model, bool sparseLabels) =>
        model.OutputShape[^1] == 1 ? "binary_crossentropy" : sparseLabels ? "sparse_categorical_crossentropy" : "categorical_crossentropy";
}
