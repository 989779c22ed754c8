using Naani.Data;
using Naani.Kernels;
using Naani.Layers;
using Naani.Models;
using Naani.Tests.Data;
using Xunit.Abstractions;

namespace Naani.Tests.Kernels;

/// Winograd on real images and trained weights: a small CNN with two Winograd layers (32 -> 32 channels at 28 x 28
/// by F(4x4, 3x3), 32 -> 64 at 14 x 14 by F(2x2, 3x3); 3x3 'same') trains on Fashion-MNIST with Winograd and with the direct convolution; both learn as well,
/// and the trained model's outputs through either path agree to float32 precision. The figures are printed for
/// docs/ARCHITECTURE.md (Winograd's numerical error).
[Collection(ThreadingCollection.Name)]
[Trait("Category", "RealData")]
public sealed class WinogradRealDataTests(ITestOutputHelper output)
{
    static Sequential Model() => (Sequential)new Sequential(seed: 21)
        .Add(new Input(28, 28, 1))
        .Add(new Conv2D(32, 3, padding: Padding.Same, activation: Activation.Relu))
        .Add(new Conv2D(32, 3, padding: Padding.Same, activation: Activation.Relu))
        .Add(new MaxPooling2D((2, 2)))
        .Add(new Conv2D(64, 3, padding: Padding.Same, activation: Activation.Relu))
        .Add(new MaxPooling2D((2, 2)))
        .Add(new Flatten())
        .Add(new Dense(10, Activation.Softmax));

    static void Throw(Uri url, string destination) => throw new InvalidOperationException($"The test tried to download {url}.");

    [FashionMnistFact]
    public void Trains_as_well_as_the_direct_convolution_and_agrees_with_it_on_trained_weights()
    {
        var (train, test, _) = Datasets.Load("fashion-mnist", [Datasets.DebianRoot], Throw, null, Datasets.Catalog);
        train = train.Subset(0, 8000);
        test = test.Subset(0, 2000);
        bool saved = Winograd.Enabled;
        try
        {
            ThreadingCollection.WithThreads(2, () =>
            {
                var accuracy = new double[2];
                Sequential? trained = null;
                foreach (bool winograd in new[] { true, false })
                {
                    Winograd.Enabled = winograd;
                    var model = Model();
                    model.Compile("adam", "sparse_categorical_crossentropy", "accuracy");
                    model.Fit(train.Images, train.SparseLabels(), batchSize: 64, epochs: 1);
                    accuracy[winograd ? 0 : 1] = model.Evaluate(test.Images, test.SparseLabels(), batchSize: 256)["accuracy"];
                    var conv = model.Layers.OfType<Conv2D>().ToArray();
                    // 28 x 28: F(4x4); 14 x 14: F(2x2); the first layer (1 channel) direct. Evaluate ran last: forward only.
                    Assert.Equal(winograd ? new[] { 0, 4, 2 } : [0, 0, 0], conv.Select(c => c.WinogradTiles.Forward).ToArray());
                    if (winograd) trained = model;
                }
                output.WriteLine($"test accuracy after one epoch on 8,000 images: Winograd {accuracy[0]:P2}, direct {accuracy[1]:P2}");
                Assert.True(accuracy[0] > 0.75 && accuracy[1] > 0.75, $"accuracy {accuracy[0]:P2} / {accuracy[1]:P2}");
                Assert.True(Math.Abs(accuracy[0] - accuracy[1]) < 0.02, $"accuracy {accuracy[0]:P2} with Winograd, {accuracy[1]:P2} direct");

                // The same trained weights, on the test images, through each path.
                Winograd.Enabled = true;
                var viaWinograd = trained!.Predict(test.Images).Data;
                Winograd.Enabled = false;
                var direct = trained.Predict(test.Images).Data;
                double maxDifference = 0;
                int disagreements = 0;
                for (int n = 0; n < test.Count; n++)
                {
                    int a = 0, b = 0;
                    for (int c = 0; c < 10; c++)
                    {
                        maxDifference = Math.Max(maxDifference, Math.Abs(viaWinograd[n * 10 + c] - direct[n * 10 + c]));
                        if (viaWinograd[n * 10 + c] > viaWinograd[n * 10 + a]) a = c;
                        if (direct[n * 10 + c] > direct[n * 10 + b]) b = c;
                    }
                    if (a != b) disagreements++;
                }
                output.WriteLine($"trained weights, 2,000 test images: largest probability difference {maxDifference:E2}, {disagreements} predicted classes differ");
                Assert.True(maxDifference < 1e-4, $"probabilities differ by up to {maxDifference}");
                Assert.True(disagreements <= 1, $"{disagreements} predictions differ");
            });
        }
        finally
        {
            Winograd.Enabled = saved;
        }
    }
}
