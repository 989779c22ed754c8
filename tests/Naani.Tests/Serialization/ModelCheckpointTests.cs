using Naani.Callbacks;
using Naani.Losses;
using Naani.Models;
using Naani.Optimizers;
using Xunit;
using static Naani.Tests.Serialization.SerializationTestData;

namespace Naani.Tests.Serialization;

public sealed class ModelCheckpointTests : IDisposable
{
    readonly TempDirectory directory = new();

    public void Dispose() => directory.Dispose();

    static Sequential CompiledModel()
    {
        var model = EveryLayerModel();
        model.Compile(new Adam(), new CategoricalCrossEntropy(), "accuracy");
        return model;
    }

    static Dictionary<string, double> Logs(double valLoss, double valAccuracy = 0) => new() { ["loss"] = 1, ["val_loss"] = valLoss, ["val_accuracy"] = valAccuracy };

    [Fact]
    public void Save_best_only_writes_only_when_the_monitored_loss_improves()
    {
        var checkpoint = new ModelCheckpoint(directory.File("ckpt-{epoch}.naani"), saveBestOnly: true) { Model = CompiledModel() };
        checkpoint.OnTrainBegin(new TrainingInfo(4, 1, 6, 6, 0));

        checkpoint.OnEpochEnd(0, Logs(1.0));
        checkpoint.OnEpochEnd(1, Logs(1.2));
        checkpoint.OnEpochEnd(2, Logs(0.8));
        checkpoint.OnEpochEnd(3, Logs(0.8));

        Assert.Equal(["ckpt-01.naani", "ckpt-03.naani"], Directory.GetFiles(directory.Path).Select(Path.GetFileName).Order());
        Assert.Equal(0.8, checkpoint.Best);
        Assert.Equal(directory.File("ckpt-03.naani"), checkpoint.LastSavedPath);
    }

    [Fact]
    public void Save_best_only_on_a_fixed_path_keeps_the_best_epoch_weights()
    {
        var model = CompiledModel();
        string path = directory.File("best.naani");
        var checkpoint = new ModelCheckpoint(path, "val_accuracy", saveBestOnly: true) { Model = model };
        checkpoint.OnTrainBegin(new TrainingInfo(3, 1, 6, 6, 0));

        checkpoint.OnEpochEnd(0, Logs(1, valAccuracy: 0.5));
        var best = model.GetWeights();
        TrainSteps(model, 1);
        checkpoint.OnEpochEnd(1, Logs(1, valAccuracy: 0.4));   // accuracy is maximized: no save

        var saved = Model.Load(path).GetWeights();
        for (int i = 0; i < best.Count; i++) AssertBitIdentical(best[i].Data, saved[i].Data, $"weight {i}");
    }

    [Fact]
    public void Without_save_best_only_every_epoch_is_written_during_fit()
    {
        var model = CompiledModel();
        var (x, y) = Batch(model, 12, seed: 4);
        var checkpoint = new ModelCheckpoint(Path.Combine(directory.Path, "run", "epoch-{epoch:02d}.naani"));

        model.Fit(x, y, batchSize: 4, epochs: 2, callbacks: [checkpoint]);

        Assert.Equal(["epoch-01.naani", "epoch-02.naani"], Directory.GetFiles(Path.Combine(directory.Path, "run")).Select(Path.GetFileName).Order());
        var last = Model.Load(checkpoint.LastSavedPath!);
        AssertSameWeights(model, last);
        Assert.Equal(6, last.Optimizer!.Iterations);
    }

    [Fact]
    public void Monitoring_a_value_training_does_not_log_says_what_is_available()
    {
        var checkpoint = new ModelCheckpoint(directory.File("x.naani"), "val_f1", saveBestOnly: true) { Model = CompiledModel() };
        checkpoint.OnTrainBegin(new TrainingInfo(1, 1, 6, 6, 0));
        var e = Assert.Throws<InvalidOperationException>(() => checkpoint.OnEpochEnd(0, Logs(1)));
        Assert.Contains("val_f1", e.Message);
        Assert.Contains("val_loss", e.Message);
    }
}
