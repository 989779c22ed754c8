namespace Naani.Models;

/// One class and its probability.
public readonly record struct ClassScore(int Index, string Class, float Probability);

/// The answer for one sample: the most probable class, and the top classes in decreasing probability.
public sealed record Prediction(int Index, string Class, float Probability, IReadOnlyList<ClassScore> Top);

/// Inference for an application or a server: one model, called from any number of threads, answering one
/// sample or a batch with class probabilities. `using var predictor = Model.Load(path).CreatePredictor(32);`
///
/// Batches of up to MaxBatch samples run as one forward pass. A batch of n samples runs in the smallest
/// bucket of 1, 2, 4, ..., MaxBatch that holds it (the rest zero-filled and ignored), and every bucket keeps
/// its input tensor and the model's workspaces, so after the first call of each size a call allocates nothing
/// but its result (PredictInto allocates nothing at all). Calls from several threads take turns on the model
/// (its graph lock), each spread over Threading.MaxThreads threads; a server gathers concurrent requests into
/// batches before calling (dynamic batching), which is where the throughput comes from.
public sealed class Predictor
{
    readonly Model model;
    readonly int[] buckets;
    readonly Tensor[] inputs;
    readonly int sampleSize, outputSize;

    internal Predictor(Model model, int maxBatch)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxBatch, 1);
        model.Build();
        if (model.InputShapes.Count != 1)
            throw new NotSupportedException($"Model '{model.Name}' has {model.InputShapes.Count} inputs; a Predictor serves models with one input.");
        this.model = model;
        MaxBatch = maxBatch;
        List<int> sizes = [];
        for (int b = 1; b < maxBatch; b *= 2) sizes.Add(b);
        sizes.Add(maxBatch);
        buckets = [.. sizes];
        inputs = new Tensor[buckets.Length];
        sampleSize = model.InputShape.Size;
        outputSize = model.OutputShape.Size;
        int classes = Math.Max(2, outputSize);
        ClassNames = model.ClassNames is { } names && names.Count == classes
            ? [.. names]
            : [.. Enumerable.Range(0, classes).Select(i => i.ToString(System.Globalization.CultureInfo.InvariantCulture))];
        // One workspace per bucket, plus the two a training run keeps: switching buckets allocates nothing.
        model.KeepWorkspaces(buckets.Length + 2);
    }

    public Model Model => model;
    public int MaxBatch { get; }

    /// The per-sample input shape (H, W, C) and its size in values.
    public Shape InputShape => model.InputShape;

    /// Values per sample of the model's main output: the class count, or 1 for one sigmoid unit.
    public int OutputSize => outputSize;

    /// A name per class: the model's class names, or "0", "1", ... (two for one sigmoid unit).
    public IReadOnlyList<string> ClassNames { get; }

    /// The model's main output for count samples laid end to end in samples (count x InputShape.Size values,
    /// NHWC), written into outputs (count x OutputSize values). Allocates nothing once each bucket has run.
    public void PredictInto(ReadOnlySpan<float> samples, int count, Span<float> outputs)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        if (samples.Length != (long)count * sampleSize)
            throw new ArgumentException($"{count} samples of {InputShape} are {(long)count * sampleSize:N0} values; got {samples.Length:N0}.", nameof(samples));
        if (outputs.Length < (long)count * outputSize)
            throw new ArgumentException($"{count} outputs of {outputSize} values need {(long)count * outputSize:N0}; the span has {outputs.Length:N0}.", nameof(outputs));
        for (int start = 0; start < count; start += MaxBatch)
        {
            int n = Math.Min(MaxBatch, count - start);
            int bucket = 0;
            while (buckets[bucket] < n) bucket++;
            using var exclusive = model.ExclusiveUse();
            var x = inputs[bucket] ??= new Tensor(model.InputShape.WithBatch(buckets[bucket]));
            samples.Slice(start * sampleSize, n * sampleSize).CopyTo(x.Data);
            x.Data.AsSpan(n * sampleSize).Clear();
            var y = model.ForwardBatch(x, training: false);
            y.Data.AsSpan(0, n * outputSize).CopyTo(outputs.Slice(start * outputSize));
        }
    }

    /// The model's output for count samples: count x OutputSize values.
    public float[] Probabilities(ReadOnlySpan<float> samples, int count)
    {
        var outputs = new float[count * outputSize];
        PredictInto(samples, count, outputs);
        return outputs;
    }

    /// The prediction for one sample (InputShape.Size values), with the top classes.
    public Prediction Predict(ReadOnlySpan<float> sample, int top = 5)
    {
        Span<float> output = outputSize <= 256 ? stackalloc float[outputSize] : new float[outputSize];
        PredictInto(sample, 1, output);
        return Describe(output, top);
    }

    /// Predictions for count samples laid end to end, in batches of up to MaxBatch.
    public Prediction[] Predict(ReadOnlySpan<float> samples, int count, int top = 5)
    {
        var outputs = Probabilities(samples, count);
        var result = new Prediction[count];
        for (int i = 0; i < count; i++) result[i] = Describe(outputs.AsSpan(i * outputSize, outputSize), top);
        return result;
    }

    /// Predictions for a tensor of samples (N, H, W, C).
    public Prediction[] Predict(Tensor samples, int top = 5)
    {
        ArgumentNullException.ThrowIfNull(samples);
        if (samples.Rank != InputShape.Rank + 1 || samples.SampleSize != sampleSize || !samples.Shape.ToArray().AsSpan(1).SequenceEqual(InputShape.ToArray()))
            throw new ArgumentException($"Model '{model.Name}' takes samples of {InputShape}; got a tensor of {samples.Shape}.", nameof(samples));
        return Predict(samples.Data, samples.Batch, top);
    }

    /// Class, probability and top classes from one output row: softmax probabilities, or for one sigmoid unit
    /// p(class 1) = the output and p(class 0) = 1 - the output.
    public Prediction Describe(ReadOnlySpan<float> output, int top = 5)
    {
        if (output.Length != outputSize) throw new ArgumentException($"An output row has {outputSize} values; got {output.Length}.", nameof(output));
        int classes = ClassNames.Count;
        Span<float> p = classes <= 256 ? stackalloc float[classes] : new float[classes];
        if (outputSize == 1)
        {
            p[1] = output[0];
            p[0] = 1 - output[0];
        }
        else output.CopyTo(p);
        int k = Math.Clamp(top, 1, classes);
        var best = new ClassScore[k];
        int filled = 0;
        for (int c = 0; c < classes; c++)
        {
            // Insertion into the k best so far, highest first; ties keep the lower index first.
            if (filled == k && !(p[c] > best[k - 1].Probability)) continue;
            int at = Math.Min(filled, k - 1);
            while (at > 0 && p[c] > best[at - 1].Probability)
            {
                best[at] = best[at - 1];
                at--;
            }
            best[at] = new ClassScore(c, ClassNames[c], p[c]);
            if (filled < k) filled++;
        }
        return new Prediction(best[0].Index, best[0].Class, best[0].Probability, best);
    }
}
