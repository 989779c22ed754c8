namespace Naani;

/// The activations a layer can apply to its output, by their Keras names.
public enum Activation
{
    Linear,
    Relu,
    Sigmoid,
    Tanh,
    Softmax,
}

public static class ActivationNames
{
    public static string ToKeras(this Activation a) => a switch
    {
        Activation.Linear => "linear",
        Activation.Relu => "relu",
        Activation.Sigmoid => "sigmoid",
        Activation.Tanh => "tanh",
        Activation.Softmax => "softmax",
        _ => throw new ArgumentOutOfRangeException(nameof(a)),
    };

    public static Activation Parse(string? name) => (name ?? "linear").ToLowerInvariant() switch
    {
        "linear" or "none" or "" => Activation.Linear,
        "relu" => Activation.Relu,
        "sigmoid" => Activation.Sigmoid,
        "tanh" => Activation.Tanh,
        "softmax" => Activation.Softmax,
        var other => throw new ArgumentException($"Unknown activation '{other}'; expected one of linear, relu, sigmoid, tanh, softmax."),
    };
}
