namespace Naani.Kernels;

/// Keras's padding modes: 'valid' adds nothing; 'same' pads so that out = ceil(in / stride),
/// putting the odd pixel of padding at the bottom/right (as TensorFlow does).
public enum Padding
{
    Valid,
    Same,
}

/// The sizes of one 2-D sliding-window operation (convolution or pooling) on NHWC data.
public readonly record struct ConvGeometry(
    int InHeight, int InWidth, int Channels,
    int KernelHeight, int KernelWidth,
    int StrideHeight, int StrideWidth,
    int PadTop, int PadLeft,
    int OutHeight, int OutWidth)
{
    /// Output size along one axis: valid: floor((in - k) / s) + 1; same: ceil(in / s).
    public static int OutputSize(int input, int kernel, int stride, Padding padding) => padding switch
    {
        Padding.Valid => input < kernel ? 0 : (input - kernel) / stride + 1,
        Padding.Same => (input + stride - 1) / stride,
        _ => throw new ArgumentOutOfRangeException(nameof(padding)),
    };

    /// Padding before the first element along one axis: total = max((out - 1) s + k - in, 0), split with the extra pixel after.
    public static int PadBefore(int input, int kernel, int stride, Padding padding)
    {
        if (padding == Padding.Valid) return 0;
        int output = OutputSize(input, kernel, stride, padding);
        int total = Math.Max((output - 1) * stride + kernel - input, 0);
        return total / 2;
    }

    public static ConvGeometry Create(int inHeight, int inWidth, int channels, int kernelHeight, int kernelWidth,
        int strideHeight, int strideWidth, Padding padding) => new(
            inHeight, inWidth, channels, kernelHeight, kernelWidth, strideHeight, strideWidth,
            PadBefore(inHeight, kernelHeight, strideHeight, padding), PadBefore(inWidth, kernelWidth, strideWidth, padding),
            OutputSize(inHeight, kernelHeight, strideHeight, padding), OutputSize(inWidth, kernelWidth, strideWidth, padding));

    /// Rows of the im2col matrix for one image: one per output pixel.
    public int Patches => OutHeight * OutWidth;

    /// Columns of the im2col matrix: KH * KW * C values per patch, in (i, j, c) order to match an HWIO kernel.
    public int PatchSize => KernelHeight * KernelWidth * Channels;

    public int InputSize => InHeight * InWidth * Channels;

    /// True when the im2col matrix of an image is the image itself (1x1 kernel, stride 1, no padding).
    public bool IsPointwise => KernelHeight == 1 && KernelWidth == 1 && StrideHeight == 1 && StrideWidth == 1 && PadTop == 0 && PadLeft == 0;
}
