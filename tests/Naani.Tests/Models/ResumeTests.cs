using Naani.Callbacks;
using Naani.Data;
using Naani.Kernels;
using Naani.Layers;
using Naani.Models;
using Naani.Serialization;
using Naani.Tests.Kernels;

namespace Naani.Tests.Models;

/// A run cut short and resumed from its checkpoint ends exactly where the uninterrupted run ends: the same
/// weights to the bit, the same history. The cut is a callback that throws, as a crash would end Fit.
[Collection(ThreadingCollection.Name)]
public sealed class ResumeTests : IDisposable
{
    readonly Serialization.TempDirectory temp = new();

    public void Dispose() => temp.Dispose();

    /// Three classes of 10x10 images a small CNN tells apart in a few epochs (also DataParallelTests' data).
    internal static (Tensor X, Tensor Y) Data(int n, ulong seed = 3)
    {
        var rng = new Rng(seed);
        var x = new Tensor(n, 10, 10, 1);
        var y = new Tensor(n);
        for (int i = 0; i < n; i++)
        {
            int label = i % 3;
            y.Data[i] = label;
            var s = x.Sample(i);
            for (int j = 0; j < s.Length; j++) s[j] = rng.NextFloat() * 0.5f + ((j / 10 + label) % 3 == 0 ? 0.5f : 0f);
        }
        return (x, y);
    }

    /// Dropout and shuffling both draw from the seed's streams, so a resume that lost their positions would diverge.
    static Sequential Model(string optimizer = "adam")
    {
        var model = new Sequential("resume", seed: 21)
            .Add(new Input(10, 10, 1))
            .Add(new Conv2D(4, 3, activation: Activation.Relu))
            .Add(new MaxPooling2D(2))
            .Add(new Dropout(0.3))
            .Add(new Flatten())
            .Add(new Dense(12, Activation.Relu))
            .Add(new Dropout(0.2))
            .Add(new Dense(3, Activation.Softmax));
        model.Compile(optimizer, "sparse_categorical_crossentropy", "accuracy");
        return model;
    }

    sealed class CrashAt(int epoch, int step) : Callback
    {
        public override void OnBatchEnd(BatchProgress progress)
        {
            if (progress.Epoch == epoch && progress.Step == step) throw new IOException("simulated crash");
        }
    }

    const int Epochs = 3, Batch = 8;

    static History Fit(Sequential model, (Tensor X, Tensor Y) data, params Callback[] callbacks) =>
        model.Fit(data.X, data.Y, batchSize: Batch, epochs: Epochs, validationSplit: 0.2, callbacks: callbacks);

    static void AssertSameRun(Sequential expected, History expectedHistory, Sequential actual, History actualHistory)
    {
        var w1 = expected.GetWeights();
        var w2 = actual.GetWeights();
        for (int i = 0; i < w1.Count; i++) Assert.Equal(w1[i].Data, w2[i].Data);
        foreach (var key in new[] { "loss", "accuracy", "val_loss", "val_accuracy" })
            Assert.Equal(expectedHistory[key], actualHistory[key]);
        Assert.Equal(expected.Optimizer!.Iterations, actual.Optimizer!.Iterations);
    }

    [Theory]
    [InlineData(0, 3, 1)]     // mid-epoch, before the first epoch ends
    [InlineData(1, 5, 4)]     // mid-epoch of the second, resumed from a step checkpoint
    [InlineData(1, 2, 0)]     // only the first epoch's end checkpoint exists
    [InlineData(2, 6, 3)]     // the last step of an epoch: the step and epoch-end checkpoints coincide
    public void A_run_killed_and_resumed_ends_with_the_uninterrupted_runs_weights_and_history(int crashEpoch, int crashStep, int everySteps)
    {
        ThreadingCollection.WithThreads(2, () =>
        {
            var data = Data(60);   // 48 training samples: 6 steps an epoch
            var reference = Model();
            var referenceHistory = Fit(reference, data);

            string dir = temp.File("ckpt");
            var crashed = Model();
            Assert.Throws<IOException>(() => Fit(crashed, data, new CrashAt(crashEpoch, crashStep),
                new BackupAndRestore(dir, saveEverySteps: everySteps, deleteOnTrainEnd: false)));
            Assert.NotEmpty(BackupAndRestore.List(dir));

            var resumed = Model();
            var backup = new BackupAndRestore(dir, saveEverySteps: everySteps, deleteOnTrainEnd: false);
            var history = Fit(resumed, data, backup);
            Assert.NotNull(backup.RestoredFrom);
            AssertSameRun(reference, referenceHistory, resumed, history);
        });
    }

    [Fact]
    public void Early_stopping_state_survives_a_resume()
    {
        ThreadingCollection.WithThreads(2, () =>
        {
            var data = Data(60);
            var reference = Model();
            var stopRef = new EarlyStopping("loss", patience: 2, minDelta: 10, restoreBestWeights: true);
            var h1 = reference.Fit(data.X, data.Y, batchSize: Batch, epochs: 6, callbacks: [stopRef]);

            string dir = temp.File("es");
            var crashed = Model();
            Assert.Throws<IOException>(() => crashed.Fit(data.X, data.Y, batchSize: Batch, epochs: 6,
                callbacks: [new EarlyStopping("loss", patience: 2, minDelta: 10, restoreBestWeights: true), new CrashAt(1, 3), new BackupAndRestore(dir, deleteOnTrainEnd: false)]));
            var resumed = Model();
            var stop = new EarlyStopping("loss", patience: 2, minDelta: 10, restoreBestWeights: true);
            var h2 = resumed.Fit(data.X, data.Y, batchSize: Batch, epochs: 6, callbacks: [new BackupAndRestore(dir, deleteOnTrainEnd: false), stop]);

            Assert.Equal(stopRef.StoppedEpoch, stop.StoppedEpoch);
            Assert.Equal(stopRef.BestEpoch, stop.BestEpoch);
            Assert.Equal(h1["loss"], h2["loss"]);
            var w1 = reference.GetWeights();
            var w2 = resumed.GetWeights();
            for (int i = 0; i < w1.Count; i++) Assert.Equal(w1[i].Data, w2[i].Data);
        });
    }

    [Fact]
    public void Streaming_fit_resumes_bit_for_bit_too()
    {
        ThreadingCollection.WithThreads(2, () =>
        {
            var (x, y) = Data(40);
            var labels = y.Data.Select(v => (int)v).ToArray();
            var dataset = new ImageDataset(x, labels, ["a", "b", "c"]);
            BatchPipeline Pipeline() => new(new ImageDatasetSource(dataset), new PipelineOptions { BatchSize = Batch, Seed = 4, Workers = 1 });

            var reference = Model();
            using (var p = Pipeline()) reference.Fit(p, epochs: 2);
            string dir = temp.File("stream");
            var crashed = Model();
            using (var p = Pipeline())
                Assert.Throws<IOException>(() => crashed.Fit(p, epochs: 2, callbacks: [new CrashAt(1, 2), new BackupAndRestore(dir, saveEverySteps: 3, deleteOnTrainEnd: false)]));
            var resumed = Model();
            using (var p = Pipeline()) resumed.Fit(p, epochs: 2, callbacks: [new BackupAndRestore(dir, saveEverySteps: 3, deleteOnTrainEnd: false)]);

            var w1 = reference.GetWeights();
            var w2 = resumed.GetWeights();
            for (int i = 0; i < w1.Count; i++) Assert.Equal(w1[i].Data, w2[i].Data);

            // The same images under other labels, or shuffled by another seed, are other data.
            var relabelled = new ImageDataset(x, [.. labels.Select(l => (l + 1) % 3)], ["a", "b", "c"]);
            using (var p = new BatchPipeline(new ImageDatasetSource(relabelled), new PipelineOptions { BatchSize = Batch, Seed = 4, Workers = 1 }))
                Assert.Contains("other data", Assert.Throws<InvalidOperationException>(() => Model().Fit(p, epochs: 2, callbacks: [new BackupAndRestore(dir)])).Message);
            using (var p = new BatchPipeline(new ImageDatasetSource(dataset), new PipelineOptions { BatchSize = Batch, Seed = 5, Workers = 1 }))
                Assert.Contains("other data", Assert.Throws<InvalidOperationException>(() => Model().Fit(p, epochs: 2, callbacks: [new BackupAndRestore(dir)])).Message);
        });
    }

    [Fact]
    public void Only_the_newest_checkpoints_are_kept_and_a_finished_run_deletes_them_by_default()
    {
        var data = Data(60);
        string dir = temp.File("keep");
        var model = Model();
        var backup = new BackupAndRestore(dir, saveEverySteps: 2, keep: 2, deleteOnTrainEnd: false);
        Fit(model, data, backup);
        var files = BackupAndRestore.List(dir);
        Assert.Equal(["checkpoint-000000018.naani", "checkpoint-000000016.naani"], files.Select(Path.GetFileName));
        var info = Checkpoint.Read(files[0]);
        Assert.Equal((Epochs, 0), (info.Epoch, info.Step));
        // A checkpoint is a model file too.
        var loaded = Naani.Models.Model.Load(files[0]);
        Assert.Equal(model.GetWeights()[0].Data, loaded.GetWeights()[0].Data);

        string dir2 = temp.File("delete");
        Fit(Model(), data, new BackupAndRestore(dir2, saveEverySteps: 2));
        Assert.Empty(BackupAndRestore.List(dir2));
    }

    [Fact]
    public void Resuming_on_other_data_or_batch_size_or_optimizer_is_refused_with_what_differs()
    {
        var data = Data(60);
        string dir = temp.File("refuse");
        Assert.Throws<IOException>(() => Fit(Model(), data, new CrashAt(0, 2), new BackupAndRestore(dir, saveEverySteps: 1, deleteOnTrainEnd: false)));

        var other = Data(60, seed: 99);
        var e = Assert.Throws<InvalidOperationException>(() => Fit(Model(), other, new BackupAndRestore(dir)));
        Assert.Contains("other data", e.Message);
        Assert.Contains("checkpoint-000000001.naani", e.Message);   // the crash came before step 2's save

        e = Assert.Throws<InvalidOperationException>(() => Model().Fit(data.X, data.Y, batchSize: 16, epochs: 1, validationSplit: 0.2, callbacks: [new BackupAndRestore(dir)]));
        Assert.Contains("batches of 8", e.Message);

        e = Assert.Throws<InvalidOperationException>(() => Fit(Model("sgd"), data, new BackupAndRestore(dir)));
        Assert.Contains("optimizer", e.Message);
    }

    [Fact]
    public void A_damaged_newest_checkpoint_is_passed_over_for_the_one_before()
    {
        var data = Data(60);
        string dir = temp.File("damaged");
        Assert.Throws<IOException>(() => Fit(Model(), data, new CrashAt(0, 5), new BackupAndRestore(dir, saveEverySteps: 2, deleteOnTrainEnd: false)));
        var files = BackupAndRestore.List(dir);
        Assert.Equal(2, files.Count);
        var bytes = File.ReadAllBytes(files[0]);
        bytes[bytes.Length / 2] ^= 0x40;
        File.WriteAllBytes(files[0], bytes);
        File.WriteAllText(Path.Combine(dir, "checkpoint-000000004.naani.tmp-0123456789ab.naani"), "half a save");

        var messages = new List<string>();
        var backup = new BackupAndRestore(dir, log: messages.Add);
        Fit(Model(), data, backup);
        Assert.Equal(files[1], backup.RestoredFrom!.Path);
        Assert.Contains(messages, m => m.Contains("Skipping damaged checkpoint") && m.Contains("CRC"));
        Assert.Empty(Directory.EnumerateFiles(dir, "*.tmp-*"));
    }

    [Fact]
    public void A_model_file_without_training_state_is_not_a_checkpoint()
    {
        var model = Model();
        string path = temp.File("plain.naani");
        model.Save(path);
        var e = Assert.Throws<InvalidDataException>(() => Checkpoint.Read(path));
        Assert.Contains("not a checkpoint", e.Message);
    }

    [Fact]
    public void Rng_state_round_trips_and_continues_the_stream()
    {
        var a = new Rng(17);
        for (int i = 0; i < 5; i++) a.NextUInt64();
        var b = new Rng(1);
        b.SetStateFromHex(a.StateToHex());
        for (int i = 0; i < 10; i++) Assert.Equal(a.NextUInt64(), b.NextUInt64());
        Assert.Throws<ArgumentException>(() => b.SetState(new ulong[4]));
        Assert.Throws<FormatException>(() => b.SetStateFromHex("xyz"));
    }
}
