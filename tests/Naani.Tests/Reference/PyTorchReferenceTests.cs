using Naani.Kernels;
using Naani.Layers;
using Naani.Losses;
using Xunit;

namespace Naani.Tests.Reference;

/// Naani reproduces PyTorch's outputs and gradients (files written by make_reference.py).
public sealed class PyTorchReferenceTests
{
    static Padding ParsePadding(string padding) => padding switch
    {
        "same" => Padding.Same,
        "valid" => Padding.Valid,
        _ => throw new ArgumentException(padding),
    };

    static Layer Create(ReferenceFile file) => file.Layer switch
    {
        "Conv2D" => new Conv2D(file.ConfigInt("filters"), file.ConfigPair("kernel_size"), file.ConfigPair("strides"),
            ParsePadding(file.ConfigString("padding")), ActivationNames.Parse(file.ConfigString("activation"))),
        "MaxPooling2D" => new MaxPooling2D(file.ConfigPair("pool_size"), file.ConfigPair("strides"), ParsePadding(file.ConfigString("padding"))),
        "AveragePooling2D" => new AveragePooling2D(file.ConfigPair("pool_size"), file.ConfigPair("strides"), ParsePadding(file.ConfigString("padding"))),
        "Dense" => new Dense(file.ConfigInt("units"), ActivationNames.Parse(file.ConfigString("activation"))),
        var other => throw new ArgumentException($"{file.Name}: unknown layer {other}"),
    };

    [Theory]
    [InlineData("conv2d_3x3_same.json")]
    [InlineData("conv2d_4x4_stride2_same.json")]
    [InlineData("conv2d_3x3_stride2_same_even.json")]
    [InlineData("conv2d_5x5_valid_1ch.json")]
    [InlineData("conv2d_2x3_stride2x1_valid.json")]
    [InlineData("maxpool_2x2.json")]
    [InlineData("maxpool_3x3_stride2_same.json")]
    [InlineData("avgpool_2x2_valid.json")]
    [InlineData("avgpool_3x3_stride2_same.json")]
    [InlineData("dense_relu.json")]
    public void Layer_output_and_gradients_match_PyTorch(string name)
    {
        var file = ReferenceFile.Load(name);
        var layer = Create(file);
        var x = file.Tensor("x");
        layer.Build(x.Shape.WithoutBatch(), new Rng(1));
        var kernel = layer.Parameters.FirstOrDefault(p => p.Name == "kernel");
        var bias = layer.Parameters.FirstOrDefault(p => p.Name == "bias");
        if (kernel is not null)
        {
            Assert.Equal(file.Tensor("kernel").Shape, kernel.Shape);
            file.Tensor("kernel").Data.CopyTo(kernel.Value.Data, 0);
            file.Tensor("bias").Data.CopyTo(bias!.Value.Data, 0);
        }
        var y = new Tensor(layer.OutputShape.WithBatch(x.Batch));

        layer.Forward(x, y, training: true);

        Assert.Equal(file.Tensor("y").Shape, y.Shape);
        file.AssertClose("y", y.Data);

        var dx = new Tensor(x.Shape);
        layer.Backward(x, y, file.Tensor("dy"), dx);

        file.AssertClose("dx", dx.Data);
        if (kernel is not null)
        {
            file.AssertClose("dkernel", kernel.Gradient.Data);
            file.AssertClose("dbias", bias!.Gradient.Data);
        }
    }

    [Fact]
    public void Sigmoid_and_binary_cross_entropy_match_PyTorch()
    {
        var file = ReferenceFile.Load("loss_binary_crossentropy.json");
        var z = file.Tensor("z");
        var p = file.Tensor("p32");
        var y = file.Tensor("y");

        var sigmoid = z.Clone();
        Activations.Apply(sigmoid.Data, z.Shape[^1], Activation.Sigmoid);
        file.AssertClose("p", sigmoid.Data);

        var grad = new Tensor(p.Shape);
        file.AssertClose("loss", new BinaryCrossEntropy().Compute(p, y, grad));
        file.AssertClose("grad_p", grad.Data);

        new BinaryCrossEntropy().Compute(p, y, grad, fused: true);
        file.AssertClose("grad_z", grad.Data);

        file.AssertClose("loss_logits", new BinaryCrossEntropy(fromLogits: true).Compute(z, y, grad));
        file.AssertClose("grad_logits", grad.Data);
    }

    [Fact]
    public void Softmax_and_categorical_cross_entropy_match_PyTorch()
    {
        var file = ReferenceFile.Load("loss_categorical_crossentropy.json");
        var z = file.Tensor("z");
        var p = file.Tensor("p32");
        var y = file.Tensor("y");
        var labels = file.Tensor("labels");

        var softmax = z.Clone();
        Activations.Apply(softmax.Data, z.Shape[^1], Activation.Softmax);
        file.AssertClose("p", softmax.Data);

        foreach (var (loss, target) in new (Loss, Tensor)[] { (new CategoricalCrossEntropy(), y), (new SparseCategoricalCrossEntropy(), labels) })
        {
            var grad = new Tensor(p.Shape);
            file.AssertClose("loss", loss.Compute(p, target, grad));
            file.AssertClose("grad_p", grad.Data);
            loss.Compute(p, target, grad, fused: true);
            file.AssertClose("grad_z", grad.Data);
        }

        foreach (var (loss, target) in new (Loss, Tensor)[] { (new CategoricalCrossEntropy(fromLogits: true), y), (new SparseCategoricalCrossEntropy(fromLogits: true), labels) })
        {
            var grad = new Tensor(z.Shape);
            file.AssertClose("loss_logits", loss.Compute(z, target, grad));
            file.AssertClose("grad_logits", grad.Data);
        }
    }

    [Fact]
    public void Reference_files_are_small_and_describe_themselves()
    {
        var directory = Path.Combine(AppContext.BaseDirectory, "Reference");
        string[] mine = ["conv2d_", "maxpool_", "avgpool_", "dense_", "loss_"];
        var files = Directory.GetFiles(directory, "*.json").Where(f => mine.Any(Path.GetFileName(f).StartsWith)).ToList();

        Assert.Equal(12, files.Count);
        foreach (var path in files)
        {
            Assert.True(new FileInfo(path).Length < 16 * 1024, $"{path} is larger than 16 KB");
            Assert.False(string.IsNullOrWhiteSpace(ReferenceFile.Load(Path.GetFileName(path)).Description));
        }
    }
}
