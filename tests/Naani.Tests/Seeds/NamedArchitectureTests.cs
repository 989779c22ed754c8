using Naani.Kernels;
using Naani.Layers;
using Naani.Losses;
using Naani.Models;
using Naani.Optimizers;
using Xunit;

namespace Naani.Tests.Seeds;

/// The architectures of issue 4 by name: the seeds' Inception tables, GoogLeNet's auxiliary losses,
/// VGG16's memory walk-through, LeNet-5, AlexNet's first layer and the ResNets, with Keras's counts.
public sealed class NamedArchitectureTests
{
    static long ParamsOf(Model model, string layer) => model.GetLayer(layer).ParameterCount;

    [Fact]
    public void The_naive_Inception_module_on_28x28x256_with_8_filters_has_the_seeds_71704_parameters()
    {
        var model = Architectures.Create("inception-naive", seed: 1);

        // 256 x 1 x 8 + 8, 256 x 9 x 8 + 8, 256 x 25 x 8 + 8; max pooling has none.
        Assert.Equal(2_056, ParamsOf(model, "inception_1x1"));
        Assert.Equal(18_440, ParamsOf(model, "inception_3x3"));
        Assert.Equal(51_208, ParamsOf(model, "inception_5x5"));
        Assert.Equal(0, ParamsOf(model, "inception_pool"));
        Assert.Equal(71_704, model.ParameterCount);
        Assert.Equal(new Shape(28, 28, 8 + 8 + 8 + 256), model.OutputShape);
    }

    [Fact]
    public void The_Inception_module_with_1x1_reductions_has_the_seeds_10416_parameters()
    {
        var model = Architectures.Create("inception-reduced", seed: 1);

        Assert.Equal(2_056, ParamsOf(model, "inception_1x1"));
        Assert.Equal(2_056 + 584, ParamsOf(model, "inception_3x3_reduce") + ParamsOf(model, "inception_3x3"));
        Assert.Equal(2_056 + 1_608, ParamsOf(model, "inception_5x5_reduce") + ParamsOf(model, "inception_5x5"));
        Assert.Equal(2_056, ParamsOf(model, "inception_pool_proj"));
        Assert.Equal(10_416, model.ParameterCount);
        Assert.Equal(new Shape(28, 28, 32), model.OutputShape);
    }

    [Fact]
    public void On_one_channel_with_32_filters_the_parallel_module_has_1216_parameters_against_34944_in_sequence()
    {
        var parallel = Architectures.InceptionNaive(seed: 1, inputShape: new Shape(28, 28, 1), filters: 32);
        var inSequence = new Sequential(seed: 1)
            .Add(new Input(28, 28, 1))
            .Add(new Conv2D(32, 1, padding: Padding.Same))
            .Add(new Conv2D(32, 3, padding: Padding.Same))
            .Add(new Conv2D(32, 5, padding: Padding.Same));
        inSequence.Build();

        Assert.Equal(64 + 320 + 832, parallel.ParameterCount);
        Assert.Equal(1_216, parallel.ParameterCount);
        Assert.Equal([64, 9_248, 25_632], inSequence.Layers.Select(l => l.ParameterCount));
        Assert.Equal(34_944, inSequence.ParameterCount);
    }

    [Fact]
    public void Vgg16_has_Keras_138357544_parameters_and_14714688_without_the_top()
    {
        var model = Architectures.Create("vgg16", seed: 1);
        Assert.Equal(138_357_544, model.ParameterCount);
        Assert.Equal(new Shape(1000), model.OutputShape);
        Assert.Equal(1_728 + 64, ParamsOf(model, "block1_conv1"));                 // the seed's (3*3*3)*64 weights, plus biases
        Assert.Equal(102_760_448 + 4_096, ParamsOf(model, "fc1"));                 // 7*7*512*4096

        var features = Architectures.Create("vgg16", seed: 1, includeTop: false);
        Assert.Equal(14_714_688, features.ParameterCount);
        Assert.Equal(new Shape(7, 7, 512), features.OutputShape);
        Assert.Equal("block5_pool", features.OutputLayers[0].Name);
    }

    [Fact]
    public void Vgg16s_forward_activations_at_224x224x3_are_15237608_values_about_61_MB_an_image()
    {
        var model = Architectures.Vgg16(seed: 1, includeTop: false, inputShape: new Shape(224, 224, 3));
        // Without the top: 15,237,608 less fc1, fc2 and predictions (4,096 + 4,096 + 1,000).
        Assert.Equal(15_237_608 - 9_192, model.ForwardActivationValues);

        var full = Architectures.Create("vgg16", seed: 1);
        Assert.Equal(15_237_608, full.ForwardActivationValues);
        var summary = full.Summary(memory: true);
        Assert.Contains("Forward activations per image: 15,237,608 values (input included) = 60.95 MB", summary);
        var conv = summary.Split('\n').Single(l => l.StartsWith(" block1_conv1 (Conv2D)"));
        Assert.Contains("3,211,264", conv);      // the seed's 224*224*64 = 3.2M
        Assert.Contains("12.85 MB", conv);
        Assert.Contains("7.2 kB", conv);         // 1,792 weights
        Assert.Contains("Weights: 138,357,544 values = 553.43 MB", summary);
        Assert.Contains("Training step at batch size 32", summary);
    }

    [Fact]
    public void The_memory_summary_counts_training_buffers_from_the_graph()
    {
        var model = new Sequential("tiny", seed: 1)
            .Add(new Input(4, 4, 1))
            .Add(new Conv2D(2, 3))          // (2, 2, 2): 8 values, 20 weights
            .Add(new Flatten())             // 8 values again
            .Add(new Dense(3));             // 3 values, 27 weights
        model.Compile(new SGD(0.1, momentum: 0.9), new MeanSquaredError());

        var summary = model.Summary(memory: true, batchSize: 10);

        Assert.Contains("Forward activations per image: 27 values (input included)", summary);      // 16 + 8 + 3
        Assert.Contains("activations kept for backward  10 x 27 = 1.1 kB", summary);                // Flatten's is a view of conv's
        Assert.Contains("activation gradients           10 x 11 = 440 B", summary);                 // conv's (shared with Flatten's) and the output's (the loss's)
        Assert.Contains("optimizer state                1 x 47 = 188 B", summary);                  // SGD with momentum: 1 slot
        Assert.Contains("SGD: 1 optimizer value per trainable weight", summary);
    }

    [Fact]
    public void Resnet50_has_Keras_25636712_parameters_53120_of_them_non_trainable()
    {
        var model = Architectures.Create("resnet50", seed: 1);
        Assert.Equal(25_636_712, model.ParameterCount);
        Assert.Equal(25_583_592, model.TrainableParameterCount);
        Assert.Equal(53_120, model.ParameterCount - model.TrainableParameterCount);
        Assert.Equal(new Shape(112, 112, 64), model.GetLayer("conv1_conv").OutputShape);   // the 7x7/2 stem
        Assert.Equal(new Shape(56, 56, 256), model.GetLayer("conv2_block3_out").OutputShape);
        Assert.Equal(new Shape(7, 7, 2048), model.GetLayer("conv5_block3_out").OutputShape);
        Assert.Equal(16, model.Layers.OfType<Add>().Count());
        Assert.Contains("Non-trainable params: 53,120", model.Summary());

        Assert.Equal(23_587_712, Architectures.Create("resnet50", seed: 1, includeTop: false).ParameterCount);
    }

    [Theory]
    [InlineData(28, 28, 1)]
    [InlineData(32, 32, 3)]
    public void Resnet_mini_takes_28x28_and_32x32_images(int height, int width, int channels)
    {
        var model = Architectures.Create("resnet-mini", seed: 1, inputShape: new Shape(height, width, channels), classes: 10);
        Assert.Equal(new Shape(10), model.OutputShape);
        Assert.Equal(176_090 + 144 * (channels - 1), model.ParameterCount);     // the stem's 3x3x16 kernel grows with the channels
        Assert.Equal(1_120, model.ParameterCount - model.TrainableParameterCount);
        Assert.Equal(new Shape((height + 3) / 4, (width + 3) / 4, 64), model.GetLayer("conv4_block2_out").OutputShape);
    }

    [Fact]
    public void Lenet5_has_61706_parameters()
    {
        var model = Architectures.Create("lenet5", seed: 1);
        model.Build();
        Assert.Equal([156, 0, 2_416, 0, 0, 48_120, 10_164, 850], model.Layers.Select(l => l.ParameterCount));
        Assert.Equal(61_706, model.ParameterCount);
        Assert.Equal(new Shape(5, 5, 16), model.GetLayer("s4").OutputShape);
    }

    [Fact]
    public void AlexNets_first_layer_makes_55x55x96_maps_from_227x227x3_with_363_weights_a_filter()
    {
        var model = Architectures.Create("alexnet-conv1", seed: 1);
        model.Build();
        var conv = Assert.IsType<Conv2D>(model.GetLayer("conv1"));
        Assert.Equal(new Shape(55, 55, 96), conv.OutputShape);                     // (227 - 11) / 4 + 1 = 55
        Assert.Equal(new Shape(11, 11, 3, 96), conv.Kernel.Shape);
        Assert.Equal(363, conv.Kernel.Size / conv.Filters);                        // 11 x 11 x 3
        Assert.Equal(96 * 363 + 96, model.ParameterCount);
        Assert.Equal(3_025, conv.OutputShape[0] * conv.OutputShape[1]);            // the seed's 55 x 55 blocks
    }

    [Fact]
    public void Googlenet_mini_has_a_main_and_two_auxiliary_outputs_weighted_1_03_03()
    {
        var model = Architectures.Create("googlenet-mini", seed: 1);
        Assert.Equal(["predictions", "aux1", "aux2"], model.OutputNames);
        Assert.All(model.OutputShapes, s => Assert.Equal(new Shape(10), s));
        Assert.Equal(180_678, model.ParameterCount);
        Assert.Equal(6, model.Layers.OfType<Concatenate>().Count());
        Assert.Equal([1.0, 0.3, 0.3], Architectures.LossWeights("googlenet-mini"));
        Assert.Null(Architectures.LossWeights("lenet5"));
    }

    [Fact]
    public void Googlenet_mini_learns_with_its_auxiliary_losses()
    {
        var model = Architectures.GoogLeNetMini(seed: 2, inputShape: new Shape(16, 16, 1), classes: 2);
        model.Compile(new Adam(0.003), new SparseCategoricalCrossEntropy(), Architectures.GoogLeNetLossWeights, "accuracy");
        // Bright top half (class 1) or bright bottom half (class 0), with noise.
        var rng = new Rng(3);
        var x = new Tensor(64, 16, 16, 1);
        var y = new Tensor(64);
        for (int n = 0; n < 64; n++)
        {
            y.Data[n] = n % 2;
            for (int i = 0; i < 256; i++) x.Data[n * 256 + i] = rng.NextFloat() * 0.5f + ((i < 128) == (n % 2 == 1) ? 0.5f : 0f);
        }

        var history = model.Fit(x, y, batchSize: 16, epochs: 4);

        Assert.True(history["predictions_loss"][^1] < history["predictions_loss"][0]);
        Assert.True(history["aux1_loss"][^1] < history["aux1_loss"][0]);
        Assert.Equal(history["predictions_loss"][^1] + 0.3 * history["aux1_loss"][^1] + 0.3 * history["aux2_loss"][^1], history["loss"][^1], 6);
        Assert.True(model.Evaluate(x, y)["accuracy"] > 0.9);
    }

    [Fact]
    public void Single_blocks_take_no_classes()
    {
        var e = Assert.Throws<ArgumentException>(() => Architectures.Create("inception-naive", classes: 10));
        Assert.Contains("not a classifier", e.Message);
    }

    [Fact]
    public void Every_name_builds_and_its_summary_prints_its_total()
    {
        foreach (var name in Architectures.Names.Except(["vgg16", "resnet50", "naani-128", "cats-dogs-150"]))
        {
            var model = Architectures.Create(name, seed: 1);
            Assert.Contains($"Total params: {model.ParameterCount:N0}", model.Summary(memory: true));
        }
    }
}
