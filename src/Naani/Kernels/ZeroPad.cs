namespace Naani.Kernels;

// y[h + top, w + left, c] = x[h, w, c], zero elsewhere   (one NHWC image; y is (H + top + bottom, W + left + right, C))
public static class ZeroPad
{
    public static void Forward(ReadOnlySpan<float> x, int height, int width, int channels, int top, int bottom, int left, int right, Span<float> y)
    {
        int inRow = width * channels, outRow = (width + left + right) * channels;
        y[..(top * outRow)].Clear();
        for (int h = 0; h < height; h++)
        {
            var row = y.Slice((top + h) * outRow, outRow);
            row[..(left * channels)].Clear();
            x.Slice(h * inRow, inRow).CopyTo(row[(left * channels)..]);
            row[((left + width) * channels)..].Clear();
        }
        y[((top + height) * outRow)..((top + height + bottom) * outRow)].Clear();
    }

    // in the forward pass y[h + top, w + left] = x[h, w], so dx[h, w] = dy[h + top, w + left]: the padding's gradient is dropped.
    public static void Backward(ReadOnlySpan<float> dy, int height, int width, int channels, int top, int left, int right, Span<float> dx)
    {
        int inRow = width * channels, outRow = (width + left + right) * channels;
        for (int h = 0; h < height; h++)
            dy.Slice((top + h) * outRow + left * channels, inRow).CopyTo(dx.Slice(h * inRow, inRow));
    }
}
