using Naani.Layers;
using Naani.Models;
using Naani.Optimizers;
using Naani.Tests.Layers;
using Xunit;

namespace Naani.Tests.Optimizers;

/// Each optimizer's step against an independent double-precision implementation of Keras's formula.
public sealed class OptimizerStepTests
{
    /// Keras's update rules, written out in double from the documentation, one parameter at a time.
    abstract class Reference(double[] w)
    {
        public readonly double[] W = (double[])w.Clone();
        public int T;
        public void Step(float[] g)
        {
            T++;
            for (int i = 0; i < W.Length; i++) Update(i, g[i]);
        }
        protected abstract void Update(int i, double g);
    }

    sealed class SgdReference(double[] w, double lr, double momentum, bool nesterov) : Reference(w)
    {
        readonly double[] v = new double[w.Length];
        protected override void Update(int i, double g)
        {
            if (momentum == 0) { W[i] -= lr * g; return; }
            v[i] = momentum * v[i] - lr * g;
            W[i] += nesterov ? momentum * v[i] - lr * g : v[i];
        }
    }

    sealed class AdamReference(double[] w, double lr, double beta1, double beta2, double eps) : Reference(w)
    {
        readonly double[] m = new double[w.Length], v = new double[w.Length];
        protected override void Update(int i, double g)
        {
            m[i] = beta1 * m[i] + (1 - beta1) * g;
            v[i] = beta2 * v[i] + (1 - beta2) * g * g;
            double alpha = lr * Math.Sqrt(1 - Math.Pow(beta2, T)) / (1 - Math.Pow(beta1, T));
            W[i] -= alpha * m[i] / (Math.Sqrt(v[i]) + eps);
        }
    }

    sealed class RmsPropReference(double[] w, double lr, double rho, double momentum, double eps) : Reference(w)
    {
        readonly double[] v = new double[w.Length], mom = new double[w.Length];
        protected override void Update(int i, double g)
        {
            v[i] = rho * v[i] + (1 - rho) * g * g;
            double increment = lr * g / Math.Sqrt(v[i] + eps);
            if (momentum > 0)
            {
                mom[i] = momentum * mom[i] + increment;
                W[i] -= mom[i];
            }
            else W[i] -= increment;
        }
    }

    public static TheoryData<string> Cases =>
    [
        "sgd", "sgd-momentum", "sgd-nesterov", "adam", "adam-large-epsilon", "adam-betas",
        "rmsprop", "rmsprop-momentum", "rmsprop-large-epsilon",
    ];

    static (Optimizer Optimizer, Func<double[], Reference> Reference) Create(string name) => name switch
    {
        "sgd" => (new SGD(0.1), w => new SgdReference(w, 0.1, 0, false)),
        "sgd-momentum" => (new SGD(0.1, momentum: 0.9), w => new SgdReference(w, 0.1, 0.9, false)),
        "sgd-nesterov" => (new SGD(0.05, momentum: 0.8, nesterov: true), w => new SgdReference(w, 0.05, 0.8, true)),
        "adam" => (new Adam(0.1), w => new AdamReference(w, 0.1, 0.9, 0.999, 1e-7)),
        // eps comparable to sqrt(v): sqrt(v) + eps and sqrt(v + eps) differ by far more than the tolerance
        "adam-large-epsilon" => (new Adam(0.1, epsilon: 0.5), w => new AdamReference(w, 0.1, 0.9, 0.999, 0.5)),
        "adam-betas" => (new Adam(0.05, beta1: 0.5, beta2: 0.8), w => new AdamReference(w, 0.05, 0.5, 0.8, 1e-7)),
        "rmsprop" => (new RMSprop(0.05), w => new RmsPropReference(w, 0.05, 0.9, 0, 1e-7)),
        "rmsprop-momentum" => (new RMSprop(0.02, rho: 0.8, momentum: 0.7), w => new RmsPropReference(w, 0.02, 0.8, 0.7, 1e-7)),
        "rmsprop-large-epsilon" => (new RMSprop(0.05, epsilon: 0.5), w => new RmsPropReference(w, 0.05, 0.9, 0, 0.5)),
        _ => throw new ArgumentException(name),
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void Optimizer_steps_follow_the_Keras_formula(string name)
    {
        var (optimizer, makeReference) = Create(name);
        // 7 x 5 kernel and 5 biases: the vectorized loops and their scalar tails both run.
        var layer = new Dense(5);
        layer.Build(new Shape(7), new Rng(1));
        var rng = new Rng(2);
        foreach (var p in layer.Parameters)
            for (int i = 0; i < p.Size; i++) p.Value.Data[i] = rng.Uniform(-1, 1);
        var references = layer.Parameters.Select(p => makeReference([.. p.Value.Data.Select(v => (double)v)])).ToList();

        for (int step = 1; step <= 6; step++)
        {
            foreach (var (p, reference) in layer.Parameters.Zip(references))
            {
                for (int i = 0; i < p.Size; i++) p.Gradient.Data[i] = rng.Uniform(-1, 1) * (1 + i % 3);
                reference.Step(p.Gradient.Data);
            }
            optimizer.Step(layer.Parameters);

            Assert.Equal(step, optimizer.Iterations);
            foreach (var (p, reference) in layer.Parameters.Zip(references))
                for (int i = 0; i < p.Size; i++)
                {
                    // float32 arithmetic on O(1) weights over a few steps: ~1e-6; a wrong formula moves
                    // a weight by a good fraction of a step (>= 1e-3).
                    double error = Math.Abs(p.Value.Data[i] - reference.W[i]);
                    Assert.True(error < 5e-6, $"{name} step {step}, {p.FullName}[{i}]: {p.Value.Data[i]:G9} vs Keras {reference.W[i]:G9}");
                }
        }
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Optimizer_leaves_frozen_layers_alone(string name)
    {
        var (optimizer, _) = Create(name);
        var frozen = new Dense(3, name: "frozen");
        var trained = new Dense(3, name: "trained");
        frozen.Build(new Shape(2), new Rng(1));
        trained.Build(new Shape(2), new Rng(2));
        frozen.Trainable = false;
        var before = frozen.Parameters.Select(p => p.Value.Clone()).ToList();
        var trainedBefore = trained.Kernel.Value.Clone();
        foreach (var p in frozen.Parameters.Concat(trained.Parameters)) p.Gradient.Fill(0.5f);

        optimizer.Step([.. frozen.Parameters, .. trained.Parameters]);
        optimizer.Step([.. frozen.Parameters, .. trained.Parameters]);

        Assert.Equal(0, frozen.TrainableParameterCount);
        foreach (var (p, b) in frozen.Parameters.Zip(before)) Assert.Equal(b.Data, p.Value.Data);
        Assert.NotEqual(trainedBefore.Data, trained.Kernel.Value.Data);
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Optimizer_minimizes_a_quadratic_through_a_dense_layer(string name)
    {
        // y = x . w* + b* exactly, so mean squared error can reach 0: a convex quadratic in (W, b).
        var (optimizer, _) = Create(name);
        var rng = new Rng(3);
        var x = GradientCheck.Uniform(rng, -1, 1, 64, 3);
        float[] wStar = [1.5f, -2f, 0.5f];
        const float bStar = 0.7f;
        var y = new Tensor(64, 1);
        for (int n = 0; n < 64; n++) y.Data[n] = bStar + x[n, 0] * wStar[0] + x[n, 1] * wStar[1] + x[n, 2] * wStar[2];
        var model = new Sequential("quadratic", seed: 4).Add(new Input(3)).Add(new Dense(1));
        model.Compile(optimizer, new Naani.Losses.MeanSquaredError());
        double initial = model.Evaluate(x, y)["loss"];

        model.Fit(x, y, batchSize: 16, epochs: 60);

        double final = model.Evaluate(x, y)["loss"];
        Assert.True(final < 1e-3 * initial, $"{name}: loss went from {initial:G4} to {final:G4}");
        var dense = (Dense)model.Layers[0];
        for (int i = 0; i < 3; i++) Assert.Equal((double)wStar[i], dense.Kernel.Value.Data[i], 0.1);
        Assert.Equal((double)bStar, dense.Bias!.Value.Data[0], 0.1);
    }

    [Fact]
    public void Frozen_layer_of_a_model_keeps_its_weights_while_the_rest_trains()
    {
        var model = new Sequential("frozen", seed: 5)
            .Add(new Input(4))
            .Add(new Dense(6, Activation.Tanh, name: "base"))
            .Add(new Dense(3, Activation.Softmax, name: "head"));
        model.Compile(new Adam(0.05), new Naani.Losses.CategoricalCrossEntropy());
        model.GetLayer("base").Trainable = false;
        var baseBefore = model.GetLayer("base").Parameters.Select(p => p.Value.Clone()).ToList();
        var headBefore = model.GetLayer("head").Parameters.Select(p => p.Value.Clone()).ToList();
        var rng = new Rng(6);
        var x = GradientCheck.Uniform(rng, -1, 1, 16, 4);
        var y = new Tensor(16, 3);
        for (int n = 0; n < 16; n++) y[n, n % 3] = 1;

        model.Fit(x, y, batchSize: 4, epochs: 2);

        Assert.Equal(6 * 3 + 3, model.TrainableParameterCount);
        foreach (var (p, b) in model.GetLayer("base").Parameters.Zip(baseBefore)) Assert.Equal(b.Data, p.Value.Data);
        foreach (var (p, b) in model.GetLayer("head").Parameters.Zip(headBefore)) Assert.NotEqual(b.Data, p.Value.Data);
    }
}
