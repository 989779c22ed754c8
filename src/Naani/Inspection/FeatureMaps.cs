using Naani.Layers;
using Naani.Models;

namespace Naani.Inspection;

/// What one layer made of one image: Output is (1, H, W, C) for a convolution or pooling layer (C feature maps),
/// (1, units) for a dense one.
public sealed record LayerOutput(Layer Layer, Tensor Output);

/// Runs a model's layers one by one on a single image, in inference mode, and keeps every layer's output:
/// the seed's figure of the 32 feature maps of conv1, and the same after max pooling.
public static class FeatureMaps
{
    /// Every layer's output for image, (H, W, C) or (1, H, W, C) of the model's input shape.
    public static IReadOnlyList<LayerOutput> Compute(Model model, Tensor image)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(image);
        model.Build();
        var input = model.InputShape;
        bool single = image.Rank == input.Rank && image.Shape == input;
        bool batchOfOne = image.Rank == input.Rank + 1 && image.Batch == 1 && image.Shape.WithoutBatch() == input;
        if (!single && !batchOfOne)
            throw new ArgumentException($"Model '{model.Name}' takes images of {input}; got a tensor of {image.Shape}. Resize the image to the model's input first.");
        var x = single ? image.Reshape([1, .. input.Dims]) : image;
        var outputs = new List<LayerOutput>(model.Layers.Count);
        foreach (var layer in model.Layers)
        {
            var y = new Tensor(layer.OutputShape.WithBatch(1));
            layer.Forward(x, y, training: false);
            outputs.Add(new LayerOutput(layer, y));
            x = y;
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
