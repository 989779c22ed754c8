using Naani.Kernels;
using Naani.Layers;
using Naani.Tests.Kernels;

namespace Naani.Tests.Layers;

/// A Conv2D whose forward pass, input gradient and kernel gradient run by F(4x4, 3x3) (16 x 16 outputs), against the same layer on the direct path (which the central-difference checks cover): outputs and
/// both gradients agree to float32 precision. (A central-difference check through F(4x4) itself sits at its noise
/// floor: a perturbed input changes the rounding of every output of its tiles, not only of those it feeds.)
[Collection(ThreadingCollection.Name)]
public sealed class WinogradLayerTests
{
    static (float[] Y, float[] Dx, float[] DKernel, float[] DBias) Run(bool winograd, Activation activation)
    {
        bool saved = Winograd.Enabled;
        Winograd.Enabled = winograd;
        try
        {
            var layer = new Conv2D(16, (3, 3), (1, 1), Padding.Same, activation, name: "conv");
            layer.Build(new Shape(16, 16, 16), new Rng(3));
            var rng = new Rng(19);
            for (int i = 0; i < layer.Bias!.Size; i++) layer.Bias.Value.Data[i] = rng.Uniform(-0.5f, 0.5f);
            var x = GradientCheck.Uniform(rng, -1f, 1f, 3, 16, 16, 16);
            var dy = GradientCheck.Uniform(rng, -1f, 1f, 3, 16, 16, 16);
            var y = new Tensor(layer.OutputShape.WithBatch(3));
            layer.Forward(x, y, training: true);
            var dx = new Tensor(x.Shape);
            layer.Backward(x, y, dy, dx);
            Assert.Equal(winograd ? (4, 4, 4) : (0, 0, 0), layer.WinogradTiles);
            return (y.Data, dx.Data, layer.Kernel.Gradient.Data, layer.Bias.Gradient.Data);
        }
        finally
        {
            Winograd.Enabled = saved;
        }
    }

    static void Close(float[] expected, float[] actual, double relative, string what)
    {
        double scale = expected.Max(v => Math.Abs((double)v));
        for (int i = 0; i < expected.Length; i++)
            Assert.True(Math.Abs(expected[i] - actual[i]) <= relative * scale, $"{what}[{i}]: {actual[i]} by Winograd, {expected[i]} direct (scale {scale})");
    }

    [Theory]
    [InlineData(Activation.Tanh)]
    [InlineData(Activation.Relu)]
    public void Forward_and_both_gradients_match_the_direct_path(Activation activation)
    {
        ThreadingCollection.WithThreads(2, () =>
        {
            var direct = Run(false, activation);
            var winograd = Run(true, activation);
            Close(direct.Y, winograd.Y, 1e-5, "y");
            Close(direct.Dx, winograd.Dx, 1e-5, "dx");
            Close(direct.DKernel, winograd.DKernel, 1e-5, "dkernel");
            Close(direct.DBias, winograd.DBias, 1e-5, "dbias");
        });
    }

    /// The transformed kernel is kept between forward passes while the kernel stays the same, and made again as
    /// soon as any of its values changes (here one value written straight into the kernel's data, as a user may).
    [Fact]
    public void A_changed_kernel_is_transformed_again()
    {
        var layer = new Conv2D(16, (3, 3), (1, 1), Padding.Same, Activation.Linear, name: "conv");
        layer.Build(new Shape(16, 16, 16), new Rng(3));
        var x = GradientCheck.Uniform(new Rng(4), -1f, 1f, 1, 16, 16, 16);
        float[] Forward()
        {
            var y = new Tensor(layer.OutputShape.WithBatch(1));
            layer.Forward(x, y, training: false);
            return y.Data;
        }
        var first = Forward();
        Assert.Equal((4, 0, 0), layer.WinogradTiles);
        Assert.Equal(first, Forward());   // the same kernel: the same output
        int at = (4 * 16 + 5) * 16 + 7;   // kernel[1, 1, 5, 7]: the centre tap of channel 5 for filter 7
        layer.Kernel.Value.Data[at] += 1f;
        var second = Forward();
        // Output (i, j, 7) moves by x(i, j, 5); every other filter stays.
        for (int p = 0; p < 16 * 16; p++)
            for (int f = 0; f < 16; f++)
            {
                double want = first[p * 16 + f] + (f == 7 ? x.Data[p * 16 + 5] : 0);
                Assert.True(Math.Abs(second[p * 16 + f] - want) <= 1e-4, $"pixel {p}, filter {f}: {second[p * 16 + f]}, expected {want}");
            }
    }
}
