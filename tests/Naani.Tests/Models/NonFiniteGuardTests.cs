using Naani.Callbacks;
using Naani.Kernels;
using Naani.Layers;
using Naani.Models;
using Naani.Optimizers;

namespace Naani.Tests.Models;

/// A NaN or infinite loss or gradient stops training before the optimizer applies it, naming the epoch,
/// the step and the first layer (in backward order) whose gradient went non-finite.
public sealed class NonFiniteGuardTests
{
    static (Tensor X, Tensor Y) Data(int n)
    {
        var rng = new Rng(2);
        var x = new Tensor(n, 6, 6, 1);
        var y = new Tensor(n, 1);
        for (int i = 0; i < x.Length; i++) x.Data[i] = rng.Uniform(-1, 1);
        for (int i = 0; i < n; i++) y.Data[i] = i % 2;
        return (x, y);
    }

    /// Mean squared error on a linear output has no clipping: an absurd learning rate makes it overflow.
    static Sequential Regressor(double learningRate)
    {
        var model = new Sequential("guard", seed: 3)
            .Add(new Input(6, 6, 1))
            .Add(new Conv2D(3, 3, activation: Activation.Relu, name: "conv"))
            .Add(new Flatten())
            .Add(new Dense(8, Activation.Relu, name: "hidden"))
            .Add(new Dense(1, name: "out"));
        model.Compile(new SGD(learningRate), new Naani.Losses.MeanSquaredError());
        return model;
    }

    [Fact]
    public void An_absurd_learning_rate_stops_training_with_epoch_step_and_layer_and_keeps_the_last_finite_weights()
    {
        var (x, y) = Data(32);
        var model = Regressor(1e12);
        List<Tensor>? before = null;
        var watcher = new WeightsBeforeEachStep(model, w => before = w);
        var e = Assert.Throws<NonFiniteTrainingException>(() => model.Fit(x, y, batchSize: 4, epochs: 5, shuffle: false, callbacks: [watcher]));

        Assert.Matches(@"^Training stopped at epoch \d+, step \d+: ", e.Message);
        Assert.True(e.Detail.Epoch >= 0 && e.Detail.Step >= 1);
        Assert.NotNull(e.History);
        if (e.Detail.Layer is not null)
        {
            Assert.Contains(e.Detail.Layer, new[] { "conv", "hidden", "out" });
            Assert.Contains($"layer '{e.Detail.Layer}'", e.Message);
        }
        else Assert.Contains("the loss", e.Message);
        // The weights are those the last good step left, all finite.
        var after = model.GetWeights();
        Assert.All(after, t => Assert.True(Finite.All(t.Data)));
        if (before is not null)
            for (int i = 0; i < after.Count; i++) Assert.Equal(before[i].Data, after[i].Data);
    }

    /// Records the weights after every finished step: the guard must leave the model exactly there.
    sealed class WeightsBeforeEachStep(Model model, Action<List<Tensor>> record) : Callback
    {
        public override void OnBatchEnd(BatchProgress progress) => record(model.GetWeights());
    }

    [Fact]
    public void A_nan_in_the_data_names_the_first_layer_whose_gradient_went_non_finite()
    {
        var (x, y) = Data(8);
        // A NaN pixel poisons the loss itself.
        x.Data[5] = float.NaN;
        var model = Regressor(0.01);
        var e = Assert.Throws<NonFiniteTrainingException>(() => model.Fit(x, y, batchSize: 8, epochs: 1));
        Assert.Equal((0, 1), (e.Detail.Epoch, e.Detail.Step));
        Assert.StartsWith("Training stopped at epoch 1, step 1: the loss became NaN", e.Message);

        // Inputs of 1e20 give a prediction of about 4e18 and a loss of about 1e37, finite in float, but the kernel's
        // gradient x^T dy of about 1e39 overflows: the guard names that layer and applies nothing.
        var guarded = new Sequential("linear", seed: 1).Add(new Input(6, 6, 1)).Add(new Flatten()).Add(new Dense(1, name: "out"));
        guarded.Compile(new SGD(0.01), new Naani.Losses.MeanSquaredError());
        guarded.GetLayer("out").Parameters[0].Value.Data.AsSpan().Fill(1e-3f);
        x.Data.AsSpan().Fill(1e20f);
        var w0 = guarded.GetWeights();
        var g = Assert.Throws<NonFiniteTrainingException>(() => guarded.TrainStep(x, y));
        Assert.Equal(-1, g.Detail.Epoch);
        Assert.True(double.IsFinite(g.Detail.Loss));
        Assert.Equal("out", g.Detail.Layer);
        Assert.Equal("out/kernel", g.Detail.Weight);
        Assert.StartsWith("Training stopped at step 1: the gradient of layer 'out' (weight out/kernel) went non-finite", g.Message);
        var w1 = guarded.GetWeights();
        for (int i = 0; i < w0.Count; i++) Assert.Equal(w0[i].Data, w1[i].Data);
        Assert.Equal(0, guarded.Optimizer!.Iterations);
    }

    [Fact]
    public void An_update_that_overflows_says_the_weights_are_spoiled_and_no_checkpoint_is_saved_after_it()
    {
        // Finite gradients (about 2e3) times a learning rate of 1e36 overflow float: the guard catches it after the update.
        var x = new Tensor(4, 2, 2, 1);
        x.Data.AsSpan().Fill(1f);
        var y = new Tensor(4, 1);
        y.Data.AsSpan().Fill(1000f);
        var model = new Sequential("overflow", seed: 1).Add(new Input(2, 2, 1)).Add(new Flatten()).Add(new Dense(1, name: "out"));
        model.Compile(new SGD(1e36), new Naani.Losses.MeanSquaredError());

        using var temp = new Serialization.TempDirectory();
        var e = Assert.Throws<NonFiniteTrainingException>(() => model.Fit(x, y, batchSize: 2, epochs: 1, shuffle: false,
            callbacks: [new BackupAndRestore(temp.Path, saveEverySteps: 1, deleteOnTrainEnd: false)]));
        Assert.False(e.Detail.WeightsIntact);
        Assert.Equal("out/kernel", e.Detail.Weight);
        Assert.Contains("the update made weight out/kernel of layer 'out' non-finite", e.Message);
        Assert.Contains("the last checkpoint before this step holds good ones", e.Message);
        // No checkpoint was written after the spoiled step (it was the first), so none holds non-finite weights.
        foreach (var file in BackupAndRestore.List(temp.Path))
            Assert.All(Naani.Models.Model.Load(file).GetWeights(), t => Assert.True(Finite.All(t.Data)));

        var fresh = new Sequential("overflow", seed: 1).Add(new Input(2, 2, 1)).Add(new Flatten()).Add(new Dense(1, name: "out"));
        fresh.Compile(new SGD(1e36), new Naani.Losses.MeanSquaredError());
        fresh.OnNonFinite = NonFiniteAction.SkipBatch;
        var again = Assert.Throws<NonFiniteTrainingException>(() => fresh.Fit(x, y, batchSize: 2, epochs: 1, shuffle: false));
        Assert.Contains("could not be skipped: its update was already applied", again.Message);
    }

    [Fact]
    public void Skip_batch_leaves_poisoned_batches_out_and_counts_them()
    {
        var (x, y) = Data(32);
        for (int i = 0; i < 36; i++) x.Data[8 * 36 + i] = float.NaN;   // sample 8: the third batch of 4
        var model = Regressor(0.01);
        model.OnNonFinite = NonFiniteAction.SkipBatch;
        model.Fit(x, y, batchSize: 4, epochs: 2, shuffle: false);
        Assert.Equal(2 * 7, model.Optimizer!.Iterations);
        Assert.All(model.GetWeights(), t => Assert.True(Finite.All(t.Data)));

        // When every batch of an epoch is poisoned there is nothing left to train on: that is an error, said as such.
        x.Data.AsSpan().Fill(float.NaN);
        var e = Assert.Throws<NonFiniteTrainingException>(() => model.Fit(x, y, batchSize: 4, epochs: 1, shuffle: false));
        Assert.Contains("every batch of the epoch was skipped", e.Message);
    }

    [Fact]
    public void TerminateOnNaN_ends_training_quietly_with_the_finished_epochs()
    {
        var (x, y) = Data(32);
        var model = Regressor(1e12);
        var terminate = new TerminateOnNaN();
        var history = model.Fit(x, y, batchSize: 4, epochs: 20, shuffle: false, callbacks: [terminate]);
        Assert.NotNull(terminate.Terminated);
        Assert.True(history.Epochs <= terminate.Terminated!.Epoch + 1);
        Assert.All(model.GetWeights(), t => Assert.True(Finite.All(t.Data)));
    }

    [Fact]
    public void Finite_all_finds_nan_and_infinity_anywhere()
    {
        for (int n = 1; n < 70; n += 7)
            for (int at = 0; at < n; at++)
                foreach (var bad in new[] { float.NaN, float.PositiveInfinity, float.NegativeInfinity })
                {
                    var values = Enumerable.Range(0, n).Select(i => (float)i - 3e38f / (i + 1)).ToArray();
                    Assert.True(Finite.All(values));
                    values[at] = bad;
                    Assert.False(Finite.All(values));
                }
    }
}
