namespace Naani.Models;

/// How an image file becomes a model's input, beyond what the input shape says (height, width, and 1 channel for
/// grayscale or 3 for RGB): pixel values are scaled to [0, 1] and the image resized bilinearly, as Keras's
/// image_dataset_from_directory does; CropToAspectRatio takes the largest centred crop of the input's aspect ratio
/// first instead of stretching the whole image. Stored in the model file ("preprocessing", docs/FORMAT.md).
public sealed record ImagePreprocessing(bool CropToAspectRatio = false);
