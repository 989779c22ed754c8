using Naani.Kernels;
using Naani.Losses;
using Naani.Tests.Layers;
using Xunit;

namespace Naani.Tests.Losses;

// Losses are differentiated with h = 1e-3: -log p has |L'''| ~ 2/p^3 <= 250 for p >= 0.2, so the
// truncation error h^2/6 |L'''| stays below 1e-4 of the gradient; the rounding noise is the float32
// normalization p/sum (~6e-8) over 2h, ~3e-5 of the gradient. The check's tolerance is 2e-3.
public sealed class LossGradientTests
{
    const double Step = 1e-3;

    static Tensor OneHot(Rng rng, int rows, int classes, out Tensor sparse)
    {
        var y = new Tensor(rows, classes);
        sparse = new Tensor(rows);
        for (int r = 0; r < rows; r++)
        {
            int c = rng.NextInt(classes);
            y[r, c] = 1;
            sparse.Data[r] = c;
        }
        return y;
    }

    static void AssertGradient(Loss loss, Tensor yPred, Tensor yTrue)
    {
        var grad = new Tensor(yPred.Shape);
        grad.Fill(float.NaN);
        double value = loss.Compute(yPred, yTrue, grad);
        Assert.True(double.IsFinite(value) && value > 0, $"{loss.Name} gave {value}");
        var numeric = GradientCheck.Numeric(yPred.Data, () => loss.Compute(yPred, yTrue, null), Step);
        GradientCheck.AssertMatches(loss.Name, grad.Data, numeric);
    }

    [Fact]
    public void BinaryCrossEntropy_from_probabilities_gradient_matches_central_differences()
    {
        var rng = new Rng(1);
        var p = GradientCheck.Uniform(rng, 0.2f, 0.8f, 4, 3);
        var y = GradientCheck.Uniform(rng, 0, 1, 4, 3);   // soft labels exercise both terms
        for (int i = 0; i < 6; i++) y.Data[i] = i % 2;

        AssertGradient(new BinaryCrossEntropy(), p, y);
    }

    [Fact]
    public void BinaryCrossEntropy_from_logits_gradient_matches_central_differences()
    {
        var rng = new Rng(2);
        var z = GradientCheck.Uniform(rng, -4, 4, 5, 2);
        var y = new Tensor(5, 2);
        for (int i = 0; i < y.Length; i++) y.Data[i] = rng.NextInt(2);

        AssertGradient(new BinaryCrossEntropy(fromLogits: true), z, y);
    }

    [Fact]
    public void CategoricalCrossEntropy_from_probabilities_gradient_matches_central_differences()
    {
        // Unnormalized probabilities: Keras divides by their sum first, and so must the gradient.
        var rng = new Rng(3);
        var p = GradientCheck.Uniform(rng, 0.2f, 1f, 4, 5);
        var y = OneHot(rng, 4, 5, out _);

        AssertGradient(new CategoricalCrossEntropy(), p, y);
    }

    [Fact]
    public void CategoricalCrossEntropy_with_soft_labels_gradient_matches_central_differences()
    {
        var rng = new Rng(4);
        var p = GradientCheck.Uniform(rng, 0.2f, 1f, 3, 4);
        var y = GradientCheck.Uniform(rng, 0, 1, 3, 4);

        AssertGradient(new CategoricalCrossEntropy(), p, y);
    }

    [Fact]
    public void CategoricalCrossEntropy_from_logits_gradient_matches_central_differences()
    {
        var rng = new Rng(5);
        var z = GradientCheck.Uniform(rng, -3, 3, 4, 5);
        var y = OneHot(rng, 4, 5, out _);

        AssertGradient(new CategoricalCrossEntropy(fromLogits: true), z, y);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void SparseCategoricalCrossEntropy_gradient_matches_central_differences(bool fromLogits)
    {
        var rng = new Rng(6);
        var p = fromLogits ? GradientCheck.Uniform(rng, -3, 3, 4, 5) : GradientCheck.Uniform(rng, 0.2f, 1f, 4, 5);
        OneHot(rng, 4, 5, out var labels);

        AssertGradient(new SparseCategoricalCrossEntropy(fromLogits), p, labels);
        AssertGradient(new SparseCategoricalCrossEntropy(fromLogits), p, labels.Reshape(4, 1));
    }

    [Fact]
    public void SparseCategoricalCrossEntropy_equals_categorical_on_the_one_hot_labels()
    {
        var rng = new Rng(7);
        var p = GradientCheck.Uniform(rng, 0.2f, 1f, 6, 4);
        var oneHot = OneHot(rng, 6, 4, out var labels);
        var gSparse = new Tensor(p.Shape);
        var gDense = new Tensor(p.Shape);

        double sparse = new SparseCategoricalCrossEntropy().Compute(p, labels, gSparse);
        double dense = new CategoricalCrossEntropy().Compute(p, oneHot, gDense);

        Assert.Equal(dense, sparse, 1e-12);
        Assert.Equal(gDense.Data, gSparse.Data);
    }

    [Fact]
    public void MeanSquaredError_gradient_matches_central_differences()
    {
        var rng = new Rng(8);
        var p = GradientCheck.Uniform(rng, -2, 2, 3, 4);
        var y = GradientCheck.Uniform(rng, -2, 2, 3, 4);

        AssertGradient(new MeanSquaredError(), p, y);
    }

    [Fact]
    public void Fused_softmax_categorical_gradient_is_the_derivative_of_the_loss_of_softmax()
    {
        // With fused: true the loss returns dL/dz for p = softmax(z); compare with differentiating
        // z -> loss(softmax(z)) numerically.
        var rng = new Rng(9);
        var z = GradientCheck.Uniform(rng, -3, 3, 4, 5);
        var y = OneHot(rng, 4, 5, out var labels);
        foreach (Loss loss in new Loss[] { new CategoricalCrossEntropy(), new SparseCategoricalCrossEntropy() })
        {
            var target = loss is SparseCategoricalCrossEntropy ? labels : y;
            Assert.True(loss.FusesWith(Activation.Softmax));
            var grad = new Tensor(z.Shape);
            double value = loss.Compute(Softmax(z), target, grad, fused: true);

            var numeric = GradientCheck.Numeric(z.Data, () => loss.Compute(Softmax(z), target, null), Step);

            GradientCheck.AssertMatches(loss.Name + " fused", grad.Data, numeric);
            Assert.Equal(loss.Compute(Softmax(z), target, null), value, 1e-12);
        }
    }

    [Fact]
    public void Fused_sigmoid_binary_gradient_is_the_derivative_of_the_loss_of_sigmoid()
    {
        var rng = new Rng(10);
        var z = GradientCheck.Uniform(rng, -3, 3, 6, 2);
        var y = new Tensor(6, 2);
        for (int i = 0; i < y.Length; i++) y.Data[i] = rng.NextInt(2);
        var loss = new BinaryCrossEntropy();
        Assert.True(loss.FusesWith(Activation.Sigmoid));
        var grad = new Tensor(z.Shape);

        loss.Compute(Sigmoid(z), y, grad, fused: true);

        var numeric = GradientCheck.Numeric(z.Data, () => loss.Compute(Sigmoid(z), y, null), Step);
        GradientCheck.AssertMatches("binary_crossentropy fused", grad.Data, numeric);
    }

    /// Keras/TensorFlow parity: binary cross-entropy on probabilities clips p to [eps, 1 - eps] with clip_by_value, whose
    /// gradient is 0 outside the range, so a probability beyond the clip (saturated, or exactly 0 or 1) gets no gradient.
    /// Inside the range it is (p - y) / (p (1 - p)) / count, at the edges included.
    [Fact]
    public void Binary_cross_entropy_gives_no_gradient_where_the_probability_was_clipped_as_Keras_does()
    {
        const float eps = Loss.Epsilon;
        var p = Tensor.FromArray([0f, 1e-9f, 1f, 1 - 1e-9f, eps, 0.3f], 6, 1);
        var y = Tensor.FromArray([1f, 1f, 0f, 0f, 1f, 1f], 6, 1);
        var grad = new Tensor(p.Shape);
        double loss = new BinaryCrossEntropy().Compute(p, y, grad);
        Assert.Equal([0f, 0f, 0f, 0f], grad.Data.Take(4));
        Assert.Equal((eps - 1) / (eps * (1 - eps)) / 6, grad.Data[4], 1f);   // at the edge: still the formula (-1.67e6)
        Assert.Equal((0.3f - 1) / (0.3f * 0.7f) / 6, grad.Data[5], 1e-6f);
        // The loss itself takes the clipped values (1 - eps rounds to 0.99999988 in float).
        double high = 1 - (double)(1 - eps);
        double expected = (-Math.Log(eps) * 3 - Math.Log(high) * 2 - Math.Log(0.3f)) / 6;
        Assert.Equal(expected, loss, 4);
        // A NaN probability still gives a NaN gradient, for the non-finite guard to see.
        new BinaryCrossEntropy().Compute(Tensor.FromArray([float.NaN], 1, 1), Tensor.FromArray([1f], 1, 1), grad = new Tensor(1, 1));
        Assert.True(float.IsNaN(grad.Data[0]));
    }

    [Fact]
    public void Only_probability_losses_fuse_and_only_with_their_own_activation()
    {
        Assert.False(new CategoricalCrossEntropy().FusesWith(Activation.Sigmoid));
        Assert.False(new CategoricalCrossEntropy(fromLogits: true).FusesWith(Activation.Softmax));
        Assert.False(new SparseCategoricalCrossEntropy(fromLogits: true).FusesWith(Activation.Softmax));
        Assert.False(new BinaryCrossEntropy().FusesWith(Activation.Softmax));
        Assert.False(new BinaryCrossEntropy(fromLogits: true).FusesWith(Activation.Sigmoid));
        Assert.False(new MeanSquaredError().FusesWith(Activation.Sigmoid));
        Assert.False(new MeanSquaredError().FusesWith(Activation.Linear));
    }

    [Fact]
    public void Losses_have_their_closed_form_values()
    {
        var half = Tensor.FromArray([0.5f, 0.5f], 1, 2);
        Assert.Equal(Math.Log(2), new BinaryCrossEntropy().Compute(half, Tensor.FromArray([1f, 0f], 1, 2), null), 1e-6);
        // -log(0.25) for the right class of a uniform 4-way prediction, averaged over 2 samples
        var uniform = new Tensor(2, 4);
        uniform.Fill(0.25f);
        Assert.Equal(Math.Log(4), new SparseCategoricalCrossEntropy().Compute(uniform, Tensor.FromArray([3f, 0f], 2), null), 1e-6);
        Assert.Equal(Math.Log(4), new CategoricalCrossEntropy(fromLogits: true).Compute(new Tensor(2, 4), Tensor.FromArray([0f, 1, 0, 0, 0, 0, 0, 1], 2, 4), null), 1e-6);
        // mean of (1-0)^2, (2-4)^2, (3-3)^2, (0-1)^2 = 6/4
        Assert.Equal(1.5, new MeanSquaredError().Compute(Tensor.FromArray([1f, 2, 3, 0], 2, 2), Tensor.FromArray([0f, 4, 3, 1], 2, 2), null), 1e-6);
    }

    [Fact]
    public void Probabilities_are_clipped_to_epsilon_as_Keras_does()
    {
        // p = 0 for the true class costs -log(1e-7) = 16.118, not infinity.
        double bce = new BinaryCrossEntropy().Compute(Tensor.FromArray([0f], 1, 1), Tensor.FromArray([1f], 1, 1), null);
        double cce = new CategoricalCrossEntropy().Compute(Tensor.FromArray([0f, 1f], 1, 2), Tensor.FromArray([1f, 0f], 1, 2), null);

        Assert.Equal(-Math.Log(1e-7), bce, 1e-3);
        Assert.Equal(-Math.Log(1e-7), cce, 1e-3);
    }

    [Fact]
    public void Labels_of_the_wrong_shape_or_class_are_rejected_with_the_shapes()
    {
        var p = new Tensor(2, 3);
        var e = Assert.Throws<ArgumentException>(() => new CategoricalCrossEntropy().Compute(p, new Tensor(2, 4), null));
        Assert.Contains("(2, 3)", e.Message);
        Assert.Contains("(2, 4)", e.Message);
        var s = Assert.Throws<ArgumentException>(() => new SparseCategoricalCrossEntropy().Compute(p, Tensor.FromArray([0f, 3f], 2), null));
        Assert.Contains("3", s.Message);
    }

    static Tensor Softmax(Tensor z)
    {
        var p = z.Clone();
        Activations.Apply(p.Data, z.Shape[^1], Activation.Softmax);
        return p;
    }

    static Tensor Sigmoid(Tensor z)
    {
        var p = z.Clone();
        Activations.Apply(p.Data, z.Shape[^1], Activation.Sigmoid);
        return p;
    }
}
