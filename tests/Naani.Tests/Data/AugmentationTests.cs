using Naani.Data;
using Xunit;

namespace Naani.Tests.Data;

public sealed class AugmentationTests
{
    // x[h, w, c] = 100 h + 10 w + c, scaled into [0, 1]
    static float[] Ramp(int height, int width, int channels)
    {
        var x = new float[height * width * channels];
        for (int h = 0; h < height; h++)
            for (int w = 0; w < width; w++)
                for (int c = 0; c < channels; c++)
                    x[(h * width + w) * channels + c] = (100 * h + 10 * w + c) / 1000f;
        return x;
    }

    [Fact]
    public void Horizontal_flip_mirrors_each_row_and_keeps_channels_together()
    {
        var x = Ramp(2, 3, 2);
        Augmentation.FlipHorizontally(x, 2, 3, 2);
        Assert.Equal(Ramp(2, 3, 2)[(1 * 3 + 2) * 2 + 1], x[(1 * 3 + 0) * 2 + 1]);
        Assert.Equal(Ramp(2, 3, 2)[(0 * 3 + 1) * 2], x[(0 * 3 + 1) * 2]);   // the middle column stays
    }

    [Fact]
    public void Shift_moves_content_down_right_and_fills_with_zeros()
    {
        var x = Ramp(4, 5, 1);
        var original = (float[])x.Clone();
        Augmentation.Shift(x, 4, 5, 1, dy: 1, dx: 2, new float[x.Length]);
        Assert.Equal(0f, x[0]);
        Assert.Equal(0f, x[1 * 5 + 1]);
        Assert.Equal(original[0], x[1 * 5 + 2]);
        Assert.Equal(original[2 * 5 + 2], x[3 * 5 + 4]);
    }

    [Fact]
    public void Rotation_by_90_degrees_of_a_square_image_maps_pixels_exactly()
    {
        var x = Ramp(5, 5, 1);
        var original = (float[])x.Clone();
        Augmentation.Rotate(x, 5, 5, 1, Math.PI / 2, new float[x.Length]);
        // y[h, w] = x[sy, sx] with sy = -(w - 2) + 2, sx = (h - 2) + 2
        for (int h = 0; h < 5; h++)
            for (int w = 0; w < 5; w++)
                Assert.Equal(original[(4 - w) * 5 + h], x[h * 5 + w], 4);
    }

    [Fact]
    public void Brightness_and_contrast_clip_to_the_unit_range()
    {
        var x = new float[] { 0.1f, 0.5f, 0.95f };
        Augmentation.AdjustBrightness(x, 0.1f);
        Assert.Equal([0.2f, 0.6f, 1f], x, new FloatComparer(1e-6f));
        var y = new float[] { 0.2f, 0.4f, 0.6f };
        Augmentation.AdjustContrast(y, 1, 2f);
        Assert.Equal([0f, 0.4f, 0.8f], y, new FloatComparer(1e-6f));
    }

    [Fact]
    public void Same_seed_epoch_and_position_give_the_same_image_and_others_differ()
    {
        var aug = Augmentation.Default;
        float[] Run(int seed, int epoch, int position)
        {
            var x = Ramp(8, 8, 3);
            aug.Apply(x, 8, 8, 3, Augmentation.RandomFor(seed, epoch, position), new float[x.Length]);
            return x;
        }
        Assert.Equal(Run(1, 2, 3), Run(1, 2, 3));
        Assert.NotEqual(Run(1, 2, 3), Run(1, 3, 3));
        Assert.NotEqual(Run(1, 2, 3), Run(1, 2, 4));
        Assert.All(Run(5, 0, 0), v => Assert.InRange(v, 0f, 1f));
    }

    [Fact]
    public void Parse_reads_lists_defaults_and_refuses_nonsense()
    {
        Assert.Equal(Augmentation.Default, Augmentation.Parse(null));
        Assert.Equal(Augmentation.Default, Augmentation.Parse("default"));
        var a = Augmentation.Parse("flip, shift=0.125,rotate=15");
        Assert.True(a.HorizontalFlip);
        Assert.Equal(0.125, a.MaxShift);
        Assert.Equal(15, a.MaxRotationDegrees);
        Assert.Equal(0, a.MaxBrightness);
        Assert.Equal("flip,shift=0.125,rotate=15", a.ToString());
        Assert.Equal(Augmentation.Default.MaxContrast, Augmentation.Parse("contrast").MaxContrast);
        Assert.Contains("Unknown augmentation 'zoom'", Assert.Throws<ArgumentException>(() => Augmentation.Parse("zoom=2")).Message);
        Assert.Throws<ArgumentException>(() => Augmentation.Parse("shift=0.9"));
        Assert.Throws<ArgumentException>(() => Augmentation.Parse("rotate=-3"));
    }

    sealed class FloatComparer(float tolerance) : IEqualityComparer<float>
    {
        public bool Equals(float a, float b) => Math.Abs(a - b) <= tolerance;
        public int GetHashCode(float value) => 0;
    }
}
