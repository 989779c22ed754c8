using Naani.Kernels;
using Naani.Layers;

namespace Naani.Models;

/// The building blocks of the named architectures, written with the functional API so that a user can
/// stack them too: Inception modules (the seed "Fundamentals of CNN"), GoogLeNet's auxiliary classifier
/// and ResNet's residual blocks (Keras's keras.applications.resnet). Each takes a node and returns one.
/// A name, when given, prefixes every layer's name so that a summary reads like the paper's tables.
public static class Blocks
{
    /// The naive Inception module: 1x1, 3x3 and 5x5 convolutions ('same', relu) and a 3x3 max pooling
    /// (stride 1, 'same') side by side on the same input, joined along the channels. On a C-channel
    /// input it has (1 + 9 + 25) C f + 3 f parameters for f filters per branch, and C + 3 f channels out.
    public static Node InceptionNaive(Node x, int filters, string? name = null) =>
        new Concatenate(Named(name, "concat")).Call(
            Conv(filters, 1, Named(name, "1x1")).Call(x),
            Conv(filters, 3, Named(name, "3x3")).Call(x),
            Conv(filters, 5, Named(name, "5x5")).Call(x),
            new MaxPooling2D(3, strides: 1, padding: Padding.Same, name: Named(name, "pool")).Call(x));

    /// The Inception module with dimension reductions (GoogLeNet's): 1x1 convolutions shrink the
    /// channels before the 3x3 and 5x5 convolutions and after the max pooling, then the four branches
    /// are joined. Output channels: filters1 + filters3 + filters5 + poolProjection.
    public static Node Inception(Node x, int filters1, int reduce3, int filters3, int reduce5, int filters5, int poolProjection, string? name = null)
    {
        var branch1 = Conv(filters1, 1, Named(name, "1x1")).Call(x);
        var branch3 = Conv(filters3, 3, Named(name, "3x3")).Call(Conv(reduce3, 1, Named(name, "3x3_reduce")).Call(x));
        var branch5 = Conv(filters5, 5, Named(name, "5x5")).Call(Conv(reduce5, 1, Named(name, "5x5_reduce")).Call(x));
        var pooled = new MaxPooling2D(3, strides: 1, padding: Padding.Same, name: Named(name, "pool")).Call(x);
        var branch4 = Conv(poolProjection, 1, Named(name, "pool_proj")).Call(pooled);
        return new Concatenate(Named(name, "concat")).Call(branch1, branch3, branch5, branch4);
    }

    /// GoogLeNet's auxiliary classifier, small: 3x3 average pooling with stride 2, a 1x1 convolution,
    /// a dense layer, dropout and a softmax over the classes (the paper: 5x5/3 pooling, 128 filters,
    /// 1024 units, dropout 0.7). Its output layer is named name, which prefixes its loss in the logs.
    public static Node AuxiliaryClassifier(Node x, int classes, string name, int filters = 32, int units = 64, double dropout = 0.5)
    {
        x = new AveragePooling2D(3, strides: 2, name: $"{name}_pool").Call(x);
        x = Conv(filters, 1, $"{name}_conv").Call(x);
        x = new Flatten($"{name}_flatten").Call(x);
        x = new Dense(units, Activation.Relu, name: $"{name}_fc").Call(x);
        x = new Dropout(dropout, $"{name}_dropout").Call(x);
        return new Dense(classes, Activation.Softmax, name: name).Call(x);
    }

    /// Keras's ResNet50 block (block1 of keras.applications.resnet): 1x1 (stride), 3x3, 1x1 x4
    /// convolutions, each with batch normalization, relu after the first two; the shortcut is the input
    /// (identity) or, with a projection, a strided 1x1 convolution and batch normalization to 4 filters
    /// channels; relu after the Add.
    public static Node Bottleneck(Node x, int filters, int stride = 1, bool projection = true, string name = "block")
    {
        var shortcut = x;
        if (projection)
        {
            shortcut = new Conv2D(4 * filters, 1, strides: stride, name: $"{name}_0_conv").Call(x);
            shortcut = ResNetNorm($"{name}_0_bn").Call(shortcut);
        }
        x = new Conv2D(filters, 1, strides: stride, name: $"{name}_1_conv").Call(x);
        x = ResNetNorm($"{name}_1_bn").Call(x);
        x = new ActivationLayer(Activation.Relu, $"{name}_1_relu").Call(x);
        x = new Conv2D(filters, 3, padding: Padding.Same, name: $"{name}_2_conv").Call(x);
        x = ResNetNorm($"{name}_2_bn").Call(x);
        x = new ActivationLayer(Activation.Relu, $"{name}_2_relu").Call(x);
        x = new Conv2D(4 * filters, 1, name: $"{name}_3_conv").Call(x);
        x = ResNetNorm($"{name}_3_bn").Call(x);
        x = new Add($"{name}_add").Call(shortcut, x);
        return new ActivationLayer(Activation.Relu, $"{name}_out").Call(x);
    }

    /// The basic residual block of the ResNet paper (two 3x3 convolutions, for the small ResNets): 3x3
    /// (stride) and 3x3 convolutions without bias, each followed by batch normalization, relu between
    /// them; the shortcut is the input or, when the stride or the channels change, a strided 1x1
    /// convolution with batch normalization; relu after the Add.
    public static Node Basic(Node x, int filters, int stride = 1, bool projection = false, string name = "block")
    {
        var shortcut = x;
        if (projection)
        {
            shortcut = new Conv2D(filters, 1, strides: stride, useBias: false, name: $"{name}_0_conv").Call(x);
            shortcut = new BatchNormalization(name: $"{name}_0_bn").Call(shortcut);
        }
        x = new Conv2D(filters, 3, strides: stride, padding: Padding.Same, useBias: false, name: $"{name}_1_conv").Call(x);
        x = new BatchNormalization(name: $"{name}_1_bn").Call(x);
        x = new ActivationLayer(Activation.Relu, $"{name}_1_relu").Call(x);
        x = new Conv2D(filters, 3, padding: Padding.Same, useBias: false, name: $"{name}_2_conv").Call(x);
        x = new BatchNormalization(name: $"{name}_2_bn").Call(x);
        x = new Add($"{name}_add").Call(shortcut, x);
        return new ActivationLayer(Activation.Relu, $"{name}_out").Call(x);
    }

    static Conv2D Conv(int filters, int size, string? name) =>
        new(filters, size, padding: Padding.Same, activation: Activation.Relu, name: name);

    /// Keras's ResNet normalizes with epsilon 1.001e-5 (and the default momentum 0.99).
    static BatchNormalization ResNetNorm(string name) => new(epsilon: 1.001e-5, name: name);

    static string? Named(string? prefix, string part) => prefix is null ? null : $"{prefix}_{part}";
}
