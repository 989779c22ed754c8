using System.Text.Json.Nodes;
using Naani.Initializers;
using Naani.Kernels;

namespace Naani.Layers;

/// Fully connected layer on the last axis: y = activation(x W + b), W of shape (inputs, units) as in Keras.
public sealed class Dense : Layer
{
    public Dense(int units, Activation activation = Activation.Linear, bool useBias = true,
        Initializer? kernelInitializer = null, Initializer? biasInitializer = null, string? name = null) : base(name)
    {
        if (units <= 0) throw new ArgumentOutOfRangeException(nameof(units), $"Dense needs at least one unit; got {units}.");
        Units = units;
        Activation = activation;
        UseBias = useBias;
        KernelInitializer = kernelInitializer ?? Initializer.GlorotUniform;
        BiasInitializer = biasInitializer ?? Initializer.Zeros;
    }

    public int Units { get; }
    public Activation Activation { get; }
    public bool UseBias { get; }
    public Initializer KernelInitializer { get; }
    public Initializer BiasInitializer { get; }
    public override Activation OutputActivation => Activation;

    public Parameter Kernel { get; private set; } = null!;
    public Parameter? Bias { get; private set; }
    int inputs;

    protected override Shape Build(Shape input)
    {
        inputs = input[^1];
        Kernel = AddWeight("kernel", new Shape(inputs, Units), KernelInitializer);
        if (UseBias) Bias = AddWeight("bias", new Shape(Units), BiasInitializer);
        return input.WithLast(Units);
    }

    public override void Forward(Tensor x, Tensor y, bool training)
    {
        CheckInput(x);
        int rows = x.Length / inputs;
        Gemm.Multiply(false, false, rows, Units, inputs, x.Data, inputs, Kernel.Value.Data, Units, y.Data, Units);
        Activations.AddBiasAndApply(y.Data, Units, Bias is null ? default : Bias.Value.Data, Activation);
    }

    public override void Backward(Tensor x, Tensor y, Tensor dy, Tensor? dx)
    {
        int rows = x.Length / inputs;
        if (!GradientIsPreActivation) Activations.Backward(y.Data, dy.Data, Units, Activation);
        // in the forward pass: y = x W + b   so   dW += x^T dy,  db += sum_rows dy,  dx = dy W^T
        // (a frozen layer passes dx on but computes no weight gradients)
        if (Trainable)
        {
            var (kernelGradient, accumulate) = Kernel.GradientForUpdate();
            Gemm.Multiply(true, false, inputs, Units, rows, x.Data, inputs, dy.Data, Units, kernelGradient, Units, accumulate);
            if (Bias is not null)
            {
                var (biasGradient, accumulateBias) = Bias.GradientForUpdate();
                Activations.SumRows(dy.Data, Units, biasGradient, accumulateBias);
            }
        }
        if (dx is not null)
            Gemm.Multiply(false, true, rows, inputs, Units, dy.Data, Units, Kernel.Value.Data, Units, dx.Data, inputs);
    }

    public override JsonObject GetConfig() => new()
    {
        ["units"] = Units,
        ["activation"] = Activation.ToKeras(),
        ["use_bias"] = UseBias,
        ["kernel_initializer"] = KernelInitializer.ToConfig(),
        ["bias_initializer"] = BiasInitializer.ToConfig(),
    };
}
