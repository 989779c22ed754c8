// Transfer learning on Fashion-MNIST, the two ways the seed "Fundamentals of CNN" describes:
//   base:  a CNN trained on the base dataset, classes 0-4 (T-shirt/top, Trouser, Pullover, Dress, Coat);
//   (a)    a target network on classes 5-9 (Sandal, Shirt, Sneaker, Bag, Ankle boot) that keeps the base's first n_k
//          layers, frozen (Trainable = false), and trains new layers on top;
//   (b)    bottleneck features: the frozen base's output is computed once for every target image (Predict on the
//          truncated model), and only a small dense head is trained on those features.
// For scale, the same architecture is also trained from scratch on the target data alone.
// The target training set is kept small (--target N images, default 1,000 against the base's 30,000), as the seed's
// target dataset is "much smaller" than the base one; the test accuracies are on all 5,000 test images of classes 5-9.
// Times are training times (for (b): extracting the training set's features once, then the head's epochs).
//
//   dotnet run -c Release --project samples/TransferLearning [-- --epochs 2 --target 1000 --head-epochs 10 --seed 42]

using System.Diagnostics;
using Naani;
using Naani.Data;
using Naani.Layers;
using Naani.Models;

int epochs = Option("--epochs", 2), targetCount = Option("--target", 1000), headEpochs = Option("--head-epochs", 10), seed = Option("--seed", 42);

var (train, test, source) = Datasets.Load("fashion-mnist");
Console.WriteLine($"Fashion-MNIST from {source}: {train.Count:N0} training and {test.Count:N0} test images; {Threading.MaxThreads} threads");
var baseTrain = train.Where(c => c < 5, relabel: true);
var baseTest = test.Where(c => c < 5, relabel: true);
var targetAll = train.Where(c => c >= 5, relabel: true);
var targetTrain = targetAll.Subset(0, Math.Min(targetCount, targetAll.Count));
var targetTest = test.Where(c => c >= 5, relabel: true);
Console.WriteLine($"base: classes {string.Join(", ", baseTrain.ClassNames)}: {baseTrain.Count:N0} training images");
Console.WriteLine($"target: classes {string.Join(", ", targetTrain.ClassNames)}: {targetTrain.Count:N0} training images (of {targetAll.Count:N0}), {targetTest.Count:N0} test images");

// The base network: a convolutional feature extractor (the first n_k layers) and a classifier on top.
// Batch normalization's moving averages move by (1 - momentum) per step: with Keras's 0.99 they still hold
// 0.99^100 = 37% of their initial (0, 1) after the ~100 steps a small target set gets, and the from-scratch network
// would be judged on stale statistics. 0.9 lets them settle within a few dozen steps.
Layer[] FeatureLayers() =>
[
    new Conv2D(32, 3, activation: Activation.Relu),
    new BatchNormalization(momentum: 0.9),
    new MaxPooling2D(2),
    new Conv2D(64, 3, activation: Activation.Relu),
    new BatchNormalization(momentum: 0.9),
    new MaxPooling2D(2),
    new Flatten(),
];
Layer[] Top(string prefix) =>
[
    new Dense(128, Activation.Relu, name: prefix + "_dense"),
    new Dropout(0.3, name: prefix + "_dropout"),
    new Dense(5, Activation.Softmax, name: prefix + "_output"),
];

var baseModel = Stack("base", new Input(28, 28, 1), [.. FeatureLayers(), .. Top("base")]);
var (baseSeconds, baseAccuracy) = Train(baseModel, baseTrain.Images, baseTrain.SparseLabels(), baseTest.Images, baseTest.SparseLabels(), epochs);
Console.WriteLine($"\nBase network on classes 0-4: test accuracy {baseAccuracy:P2} ({baseSeconds:0.0} s)");

// The first n_k layers: everything up to and including Flatten. The layer objects are shared with the base model,
// already built, so they carry its trained weights (and the batch normalization layers their moving statistics).
int nk = baseModel.Layers.ToList().FindIndex(l => l is Flatten) + 1;
var featureLayers = baseModel.Layers.Take(nk).ToArray();
foreach (var layer in featureLayers) layer.Trainable = false;   // frozen BatchNormalization also runs in inference mode
Console.WriteLine($"n_k = {nk}: {string.Join(", ", featureLayers.Select(l => l.Name))} kept and frozen");

// (a) frozen base + new top layers, trained on the target data.
var frozenModel = Stack("target-frozen-base", new Input(28, 28, 1), [.. featureLayers, .. Top("new")]);
Console.Write("\n" + frozenModel.Summary());
var (frozenSeconds, frozenAccuracy) = Train(frozenModel, targetTrain.Images, targetTrain.SparseLabels(), targetTest.Images, targetTest.SparseLabels(), epochs);

// (b) bottleneck features: Predict with the truncated, frozen base once, then train a small dense head on them.
var extractor = Stack("bottleneck", new Input(28, 28, 1), featureLayers);
var clock = Stopwatch.StartNew();
var trainFeatures = extractor.Predict(targetTrain.Images, batchSize: 256);
double extractSeconds = clock.Elapsed.TotalSeconds;
var testFeatures = extractor.Predict(targetTest.Images, batchSize: 256);
Console.WriteLine($"\nBottleneck features: {trainFeatures.Shape} in {extractSeconds:0.0} s (and {testFeatures.Shape} for the test images)");
var head = Stack("bottleneck-head", new Input(trainFeatures.Shape.WithoutBatch()), Top("head"));
var (headSeconds, headAccuracy) = Train(head, trainFeatures, targetTrain.SparseLabels(), testFeatures, targetTest.SparseLabels(), headEpochs);

// For scale: the whole network from scratch on the small target set.
var scratch = Stack("target-from-scratch", new Input(28, 28, 1), [.. FeatureLayers(), .. Top("scratch")]);
var (scratchSeconds, scratchAccuracy) = Train(scratch, targetTrain.Images, targetTrain.SparseLabels(), targetTest.Images, targetTest.SparseLabels(), epochs);

Console.WriteLine($"""

Target task: classes 5-9, {targetTrain.Count:N0} training images, {targetTest.Count:N0} test images
  approach                                          test accuracy   training time
  (a) frozen base (n_k = {nk}) + new top, {epochs} epoch(s)       {frozenAccuracy,8:P2}    {frozenSeconds,6:0.00} s  ({frozenSeconds / epochs:0.00} s per epoch)
  (b) bottleneck features + dense head, {headEpochs} epoch(s)   {headAccuracy,8:P2}    {extractSeconds + headSeconds,6:0.00} s  (features once {extractSeconds:0.00} s, then {headSeconds / headEpochs:0.00} s per epoch)
  from scratch, same network, {epochs} epoch(s)             {scratchAccuracy,8:P2}    {scratchSeconds,6:0.00} s  ({scratchSeconds / epochs:0.00} s per epoch)
  (base network: classes 0-4, {baseTrain.Count:N0} images, {epochs} epoch(s): {baseAccuracy:P2} in {baseSeconds:0.0} s)
""");

Sequential Stack(string name, Input input, IEnumerable<Layer> layers)
{
    var model = new Sequential(name, seed).Add(input);
    foreach (var layer in layers) model.Add(layer);
    return model;
}

(double Seconds, double Accuracy) Train(Sequential model, Tensor x, Tensor y, Tensor testX, Tensor testY, int epochCount)
{
    model.Compile("adam", "sparse_categorical_crossentropy", "accuracy");
    Console.WriteLine($"\nTraining {model.Name}: {model.TrainableParameterCount:N0} of {model.ParameterCount:N0} params trainable");
    var watch = Stopwatch.StartNew();
    model.Fit(x, y, batchSize: 64, epochs: epochCount, callbacks: [new Naani.Callbacks.EpochLogger()]);
    double seconds = watch.Elapsed.TotalSeconds;
    return (seconds, model.Evaluate(testX, testY, batchSize: 256)["accuracy"]);
}

int Option(string name, int fallback)
{
    int i = Array.IndexOf(args, name);
    return i >= 0 && i + 1 < args.Length && int.TryParse(args[i + 1], out int value) ? value : fallback;
}
