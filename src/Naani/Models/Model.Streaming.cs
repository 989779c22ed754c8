using Naani.Callbacks;
using Naani.Data;
using Naani.Losses;

namespace Naani.Models;

/// Training and evaluation on batches that arrive one at a time (an IBatchSource: an image folder streamed from
/// disk, augmented data), rather than on whole tensors in memory. The step itself is TrainStep, as in Fit.
public abstract partial class Model
{
    /// Trains for a number of epochs on the batches of train, evaluating on validation after each epoch when given.
    /// Labels become the targets the loss expects: 0/1 in a column for one sigmoid unit, class indices for a sparse
    /// categorical loss, one-hot rows otherwise.
    public History Fit(IBatchSource train, int epochs = 1, IBatchSource? validation = null, IEnumerable<Callback>? callbacks = null)
    {
        ArgumentNullException.ThrowIfNull(train);
        if (Optimizer is null || Loss is null) throw new InvalidOperationException($"Model '{Name}' must be compiled before Fit: call Compile(optimizer, loss, metrics).");
        if (epochs < 0) throw new ArgumentOutOfRangeException(nameof(epochs), $"Epochs must be at least 0; got {epochs}.");
        CheckSource(train, "training");
        if (validation is not null) CheckSource(validation, "validation");

        var info = new TrainingInfo(epochs, train.StepsPerEpoch, train.Count, train.BatchSize, validation?.Count ?? 0);
        var run = NewRun(info, callbacks, () => DataFingerprint.Of(train.Identity),
            $"{train.Count} images of {train.ImageShape} in batches of {train.BatchSize}, classes {string.Join(", ", train.ClassNames)}");
        // The source decides the order and augmentation from the epoch number alone, so a run resumed in the middle of
        // an epoch reads that epoch again and passes over the batches already trained on.
        return RunEpochs(run,
            (epoch, firstStep) => train.GetEpoch(epoch).Skip(firstStep).Select(batch => new TrainingBatch([batch.Images], [TargetsFor(batch.Labels)], batch.Count)),
            validation is null ? null : () => Evaluate(validation));
    }

    /// Mean loss (and accuracy if compiled with it) over every batch of one pass (epoch 0) of data, in inference mode.
    public Dictionary<string, double> Evaluate(IBatchSource data)
    {
        if (Loss is null) throw new InvalidOperationException($"Model '{Name}' must be compiled before Evaluate.");
        var (outputs, labels) = Predict(data);
        var targets = TargetsFor(labels);
        var result = new Dictionary<string, double> { ["loss"] = Loss.Compute(outputs, targets, null) };
        if (Metrics.Count > 0) result["accuracy"] = (double)CountCorrect(outputs, targets) / labels.Length;
        return result;
    }

    /// The outputs for every image of one pass (epoch 0) of data, in inference mode, with the images' labels in the same order.
    public (Tensor Outputs, int[] Labels) Predict(IBatchSource data)
    {
        ArgumentNullException.ThrowIfNull(data);
        using (ExclusiveUse()) CheckSource(data, "prediction");
        int units = OutputShape.Size;
        var outputs = new List<float>(data.Count * units);
        var labels = new List<int>(data.Count);
        foreach (var batch in data.GetEpoch(0))
        {
            using (ExclusiveUse())
            {
                var y = ForwardBatch(batch.Images, training: false);
                outputs.AddRange(y.Data.AsSpan(0, batch.Count * units));
            }
            labels.AddRange(batch.Labels);
        }
        if (labels.Count == 0) throw new InvalidOperationException("The data had no readable images.");
        return (new Tensor(OutputShape.WithBatch(labels.Count), [.. outputs]), [.. labels]);
    }

    /// The target tensor the compiled loss expects for these class indices.
    public Tensor TargetsFor(ReadOnlySpan<int> labels)
    {
        Build();
        int n = labels.Length, units = OutputShape[^1];
        int classes = Math.Max(2, units);
        foreach (var label in labels)
            if ((uint)label >= (uint)classes)
                throw new ArgumentException($"Label {label} is outside the {classes} classes model '{Name}' tells apart.");
        if (units == 1)
        {
            var column = new Tensor(n, 1);
            for (int i = 0; i < n; i++) column.Data[i] = labels[i];
            return column;
        }
        if (Loss is SparseCategoricalCrossEntropy)
        {
            var sparse = new Tensor(n);
            for (int i = 0; i < n; i++) sparse.Data[i] = labels[i];
            return sparse;
        }
        var oneHot = new Tensor(n, units);
        for (int i = 0; i < n; i++) oneHot.Data[i * units + labels[i]] = 1f;
        return oneHot;
    }

    void CheckSource(IBatchSource data, string what)
    {
        Build();
        if (data.ImageShape != InputShape)
            throw new ArgumentException($"Model '{Name}' expects {what} images of {InputShape}; the data holds images of {data.ImageShape}.");
        int classes = Math.Max(2, OutputShape[^1]);
        if (data.ClassNames.Count > classes)
            throw new ArgumentException($"The {what} data has {data.ClassNames.Count} classes ({string.Join(", ", data.ClassNames)}) but model '{Name}' tells {classes} apart.");
    }
}
