using Naani.Layers;
using Naani.Models;

namespace Naani.Inspection;

/// What one layer made of one image: Output is (1, H, W, C) for a convolution or pooling layer (C feature maps),
/// (1, units) for a dense one.
public sealed record LayerOutput(Layer Layer, Tensor Output);

/// A model's layer calls in the order they run: each call's layer (a shared layer's later calls are its copies), the
/// calls it reads (-1: the image), and which call is the main output.
public sealed record LayerCalls(IReadOnlyList<Layer> Layers, IReadOnlyList<int[]> Reads, int Main);

/// Runs a model's layers one by one on a single image, in inference mode, and keeps every layer's output:
/// the seed's figure of the 32 feature maps of conv1, and the same after max pooling; and every map of a network with
/// branches (Inception, ResNet), each call fed what it reads.
public static class FeatureMaps
{
    /// The calls of model: a Sequential is its chain of layers; a Functional's graph is walked back from its outputs
    /// (the main one first), each node after the nodes it reads, so that a branch is listed whole before the next.
    public static LayerCalls Calls(Model model)
    {
        ArgumentNullException.ThrowIfNull(model);
        model.Build();
        if (model is not Functional functional)
        {
            var chain = model.Layers.Where(l => l is not Input).ToList();
            return new LayerCalls(chain, [.. chain.Select((_, i) => new[] { i - 1 })], chain.Count - 1);
        }
        if (functional.Inputs.Count != 1)
            throw new ArgumentException($"Model '{model.Name}' takes {functional.Inputs.Count} inputs; its maps are followed from one image.");
        var layers = new List<Layer>();
        var reads = new List<int[]>();
        var index = new Dictionary<Node, int>();
        int Visit(Node node)
        {
            if (node.Layer is Input) return -1;
            if (index.TryGetValue(node, out var known)) return known;
            var inputs = node.Inbound.Select(Visit).ToArray();
            layers.Add(node.Layer);
            reads.Add(inputs);
            return index[node] = layers.Count - 1;
        }
        int main = Visit(functional.Outputs[0]);
        foreach (var output in functional.Outputs.Skip(1)) Visit(output);
        return new LayerCalls(layers, reads, main);
    }

    /// Every call's output for image, (H, W, C) or (1, H, W, C) of the model's input shape, in the order of Calls.
    public static IReadOnlyList<LayerOutput> Compute(Model model, Tensor image) => Compute(model, Calls(model), image);

    /// The same for calls already listed (several images through one model).
    public static IReadOnlyList<LayerOutput> Compute(Model model, LayerCalls calls, Tensor image)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(calls);
        ArgumentNullException.ThrowIfNull(image);
        model.Build();
        var input = model.InputShape;
        bool single = image.Rank == input.Rank && image.Shape == input;
        bool batchOfOne = image.Rank == input.Rank + 1 && image.Batch == 1 && image.Shape.WithoutBatch() == input;
        if (!single && !batchOfOne)
            throw new ArgumentException($"Model '{model.Name}' takes images of {input}; got a tensor of {image.Shape}. Resize the image to the model's input first.");
        var x = single ? image.Reshape([1, .. input.Dims]) : image;
        var outputs = new List<LayerOutput>(calls.Layers.Count);
        for (int i = 0; i < calls.Layers.Count; i++)
        {
            var layer = calls.Layers[i];
            var y = new Tensor(layer.OutputShape.WithBatch(1));
            if (layer is MergeLayer merge) merge.Forward([.. calls.Reads[i].Select(r => r < 0 ? x : outputs[r].Output)], y, training: false);
            else layer.Forward(calls.Reads[i][0] < 0 ? x : outputs[calls.Reads[i][0]].Output, y, training: false);
            outputs.Add(new LayerOutput(layer, y));
        }
        return outputs;
    }

    /// The output of the named layer, and of the first pooling layer after it (null when none follows before the next
    /// convolution or the end of the spatial layers).
    public static (LayerOutput Layer, LayerOutput? Pooled) Of(Model model, Tensor image, string layerName)
    {
        var all = Compute(model, image);
        int i = all.ToList().FindIndex(o => o.Layer.Name == layerName);
        if (i < 0)
            throw new KeyNotFoundException($"Model '{model.Name}' has no layer '{layerName}'; it has: {string.Join(", ", model.Layers.Select(l => l.Name))}.");
        LayerOutput? pooled = null;
        for (int j = i + 1; j < all.Count; j++)
        {
            var layer = all[j].Layer;
            if (layer is Pooling2D) { pooled = all[j]; break; }
            if (layer is Conv2D or Flatten or Dense) break;
        }
        return (all[i], pooled);
    }
}
