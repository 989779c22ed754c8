using System.Security.Cryptography;
using Naani.Models;
using Naani.Vision;

namespace Naani.Serving;

/// One model the server answers for: loaded, with its Predictor and its batching queue.
public sealed class ServedModel : IAsyncDisposable
{
    ServedModel(string name, string path, Model model, Predictor predictor, DynamicBatcher batcher, string sha256)
    {
        Name = name;
        Path = path;
        Model = model;
        Predictor = predictor;
        Batcher = batcher;
        Sha256 = sha256;
    }

    public string Name { get; }
    public string Path { get; }
    public Model Model { get; }
    public Predictor Predictor { get; }
    public DynamicBatcher Batcher { get; }

    /// The model file's SHA-256, so a client can tell which weights answered.
    public string Sha256 { get; }

    /// How an uploaded image becomes an input: the model's size, its channel count's color mode, values in [0, 1],
    /// and the crop the model was trained with.
    public ColorMode Color => Model.InputShape[^1] == 1 ? ColorMode.Grayscale : ColorMode.Rgb;
    public bool CropToAspectRatio => Model.Preprocessing?.CropToAspectRatio ?? false;

    /// Loads the file (once per replica), builds the predictors and runs every batch bucket of each once, so the
    /// first requests find workspaces ready and the JIT done.
    public static ServedModel Load(string name, string path, ServeOptions options, Action<int> batchObserved)
    {
        var model = Model.Load(path);
        if (model.InputShape.Rank != 3 || model.InputShape[^1] is not (1 or 3))
            throw new NotSupportedException($"'{path}': model '{model.Name}' takes inputs of {model.InputShape}; the server serves image models, (H, W, 1) or (H, W, 3).");
        var predictors = new Predictor[options.Replicas];
        predictors[0] = model.CreatePredictor(options.MaxBatch);
        for (int r = 1; r < predictors.Length; r++) predictors[r] = Model.Load(path).CreatePredictor(options.MaxBatch);
        var warm = new float[options.MaxBatch * predictors[0].InputShape.Size];
        var outputs = new float[options.MaxBatch * predictors[0].OutputSize];
        foreach (var predictor in predictors)
        {
            using var serial = options.Replicas > 1 ? Threading.RunSerially() : default;
            for (int n = 1; n < options.MaxBatch; n *= 2) predictor.PredictInto(warm.AsSpan(0, n * predictor.InputShape.Size), n, outputs);
            predictor.PredictInto(warm, options.MaxBatch, outputs);
        }
        string sha;
        using (var file = File.OpenRead(path)) sha = Convert.ToHexStringLower(SHA256.HashData(file));
        var batcher = new DynamicBatcher(predictors, name, options.MaxQueue, TimeSpan.FromMilliseconds(options.MaxDelayMilliseconds), batchObserved);
        return new ServedModel(name, path, model, predictors[0], batcher, sha);
    }

    public ValueTask DisposeAsync() => Batcher.DisposeAsync();
}
