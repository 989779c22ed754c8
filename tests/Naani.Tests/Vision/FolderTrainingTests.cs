using Naani.Data;
using Naani.Models;
using Naani.Tests.Data;
using Naani.Tests.Kernels;
using Naani.Vision;
using Xunit;

namespace Naani.Tests.Vision;

/// A folder of generated photographs-to-be (shapes over noisy gradients) trains the seed's model: two classes end in one
/// sigmoid unit with binary cross-entropy, more in softmax; both reach high validation accuracy through the pipeline.
[Collection(ThreadingCollection.Name)]
public sealed class FolderTrainingTests : IDisposable
{
    readonly TempDirectory temp = new();

    public void Dispose() => temp.Dispose();

    (Model Model, History History, double ValidationAccuracy) Train(int classes, int perClass, int epochs, Augmentation? augmentation = null)
    {
        var dir = temp.Sub($"shapes-{classes}");
        SyntheticImages.WriteFolder(dir, classes, perClass, size: 48, format: "jpg", seed: 2);
        var all = ImageFolderDataset.Open(dir, new ImageFolderOptions { ImageSize = (24, 24) });
        var (training, validation) = all.Split(0.2, seed: 1);

        var model = Architectures.Create("naani-128", seed: 3, new Shape(24, 24, 3), classes);
        model.Compile("adam", Architectures.DefaultLoss(model, sparseLabels: true), "accuracy");
        model.ClassNames = all.ClassNames;
        var options = new PipelineOptions { BatchSize = 16, Seed = 1, Workers = 2 };
        using var train = new BatchPipeline(new CachedImageSource(training, ImageCacheMode.Memory), options with { Augmentation = augmentation });
        using var valid = new BatchPipeline(new CachedImageSource(validation, ImageCacheMode.Memory), options with { Shuffle = false });
        var history = model.Fit(train, epochs, valid);
        return (model, history, history["val_accuracy"][^1]);
    }

    [Fact]
    public void Two_class_folder_trains_a_sigmoid_model_with_binary_cross_entropy()
    {
        var (model, history, accuracy) = Train(classes: 2, perClass: 80, epochs: 4);

        Assert.Equal(1, model.OutputShape[^1]);
        Assert.Equal("binary_crossentropy", model.Loss!.Name);
        Assert.Equal(["circle", "square"], model.ClassNames);
        Assert.True(history["loss"][^1] < history["loss"][0], $"loss went from {history["loss"][0]} to {history["loss"][^1]}");
        Assert.True(accuracy >= 0.85, $"validation accuracy {accuracy}");
    }

    [Fact]
    public void Three_class_folder_trains_a_softmax_model_with_augmentation()
    {
        var (model, _, accuracy) = Train(classes: 3, perClass: 60, epochs: 5, Augmentation.Parse("flip,shift=0.05"));

        Assert.Equal(3, model.OutputShape[^1]);
        Assert.Equal("sparse_categorical_crossentropy", model.Loss!.Name);
        Assert.True(accuracy >= 0.8, $"validation accuracy {accuracy}");
    }
}
