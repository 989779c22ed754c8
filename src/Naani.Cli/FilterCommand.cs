using System.CommandLine;
using System.Globalization;
using System.Text;
using Naani.Kernels;
using Naani.Vision;
using Spectre.Console;
using Padding = Naani.Kernels.Padding;

namespace Naani.Cli;

/// naani filter: the seed's classic kernels (or one from a file) applied to an image by Naani's convolution.
static class FilterCommand
{
    public static Command Create()
    {
        var image = Inspect.ImageOption("The image to filter (JPEG, PNG, BMP, WebP, GIF).");
        var kernel = new Option<string>("--kernel", "-k")
        {
            Description = "horizontal, vertical, laplacian, blur ((1/9)*ones; the seed's -(1/9)*ones is negative-blur), or a text file of rows of numbers.",
            HelpName = "NAME|FILE",
            Required = true,
        }.Check(value => ClassicKernels.Named(value) is not null || File.Exists(value) ? null
            : $"--kernel '{value}' is neither a built-in kernel ({string.Join(", ", ClassicKernels.Names)}) nor an existing file.");
        var stride = new Option<int>("--stride") { Description = "Step of the kernel.", HelpName = "S", DefaultValueFactory = _ => 1 }.MustBePositive();
        var padding = new Option<string>("--padding") { Description = "valid (output (n - k) / s + 1) or same (output ceil(n / s), zeros around).", HelpName = "MODE", DefaultValueFactory = _ => "valid" };
        padding.AcceptOnlyFromAmong("valid", "same");
        var color = new Option<string>("--color") { Description = "Filter the grayscale image, or each RGB channel.", HelpName = "MODE", DefaultValueFactory = _ => "grayscale" };
        color.AcceptOnlyFromAmong("grayscale", "rgb");
        var display = new Option<string>("--display")
        {
            Description = "Outputs outside [0, 1] become pixels by clip (saturate, as saving any 8-bit image does), abs (edges of both signs bright) or stretch (min..max to black..white).",
            HelpName = "MODE",
            DefaultValueFactory = _ => "clip",
        };
        display.AcceptOnlyFromAmong("clip", "abs", "stretch");
        var size = new Option<string?>("--size") { Description = "Resize the image to N or HxW first [default: its own size].", HelpName = "N|HxW" }
            .Check(value => value is null || ImageDataOptions.TryParseSize(value, out _) ? null : $"--size '{value}': expected N or HxW.");
        var output = Inspect.OutOption("The filtered PNG [default: <image>-<kernel>.png beside the current folder].");
        var command = new Command("filter", "Apply a classic kernel (edges, Laplacian, blur) or your own to an image and write the result as PNG.")
        {
            image, kernel, stride, padding, color, display, size, output,
        };
        Commands.SetAction(command, parse => Run(parse.GetValue(image)!, parse.GetValue(kernel)!, parse.GetValue(stride),
            parse.GetValue(padding) == "same" ? Padding.Same : Padding.Valid, parse.GetValue(color) == "rgb" ? ColorMode.Rgb : ColorMode.Grayscale,
            Enum.Parse<FilterDisplay>(parse.GetValue(display)!, ignoreCase: true), parse.GetValue(size), parse.GetValue(output)));
        return command;
    }

    static int Run(string imagePath, string kernelName, int stride, Padding padding, ColorMode color, FilterDisplay display, string? size, string? output)
    {
        float[,] kernel;
        string kernelLabel;
        if (ClassicKernels.Named(kernelName) is { } named)
            (kernel, kernelLabel) = (named, kernelName.ToLowerInvariant());
        else
        {
            try
            {
                kernel = ClassicKernels.Parse(File.ReadAllText(kernelName), kernelName);
            }
            catch (InvalidDataException e)
            {
                throw new UsageException(e.Message);
            }
            kernelLabel = Path.GetFileNameWithoutExtension(kernelName);
        }

        (int, int)? target = size is not null && ImageDataOptions.TryParseSize(size, out var s) ? s : null;
        var image = ImageFile.Load(imagePath, target, color);
        int h = image.Shape[0], w = image.Shape[1], c = image.Shape[2];
        int kh = kernel.GetLength(0), kw = kernel.GetLength(1);
        if (padding == Padding.Valid && (kh > h || kw > w))
            throw new UsageException($"A {kh}x{kw} kernel does not fit a {h}x{w} image with 'valid' padding.");
        var filtered = ImageFilter.Apply(image, kernel, stride, padding);
        int oh = filtered.Shape[0], ow = filtered.Shape[1];

        AnsiConsole.MarkupLine($"Kernel [bold]{Markup.Escape(kernelLabel)}[/] ({kh}x{kw}):");
        Commands.WriteRaw(ClassicKernels.Format(kernel) + Environment.NewLine);
        string formula = padding == Padding.Valid
            ? $"floor(({h} - {kh}) / {stride}) + 1 = {oh} by floor(({w} - {kw}) / {stride}) + 1 = {ow}"
            : $"ceil({h} / {stride}) = {oh} by ceil({w} / {stride}) = {ow}";
        AnsiConsole.MarkupLine($"Image {Markup.Escape(Path.GetFullPath(imagePath))}: {h}x{w}x{c}; stride {stride}, padding {padding.ToString().ToLowerInvariant()}: output {formula}");
        var data = filtered.Data;
        float min = data.Min(), max = data.Max();
        AnsiConsole.MarkupLine(string.Create(CultureInfo.InvariantCulture, $"Output values from {min * 255:0.#} to {max * 255:0.#} (on the 0..255 pixel scale); shown with {display.ToString().ToLowerInvariant()}"));
        Commands.WriteRaw(Corner(image, "Input", c) + Corner(filtered, "Output", c));

        var path = output ?? $"{Path.GetFileNameWithoutExtension(imagePath)}-{kernelLabel}.png";
        ImageFile.SavePng(ImageFilter.ForDisplay(filtered, display), path);
        Inspect.Saved(path);
        return Commands.Success;
    }

    /// The top-left corner of channel 0 on the 0..255 scale, as the seed prints its channel matrices.
    static string Corner(Tensor t, string title, int channels)
    {
        int h = t.Shape[0], w = t.Shape[1], n = Math.Min(6, Math.Min(h, w));
        var sb = new StringBuilder();
        sb.AppendLine(CultureInfo.InvariantCulture, $"{title} ({(channels == 1 ? "gray" : "red channel")}, top-left {n}x{n}, x255):");
        for (int i = 0; i < n; i++)
        {
            sb.Append("  ");
            for (int j = 0; j < n; j++)
            {
                float v = t[i, j, 0] * 255;
                sb.Append((MathF.Abs(v) < 0.05f ? 0 : v).ToString("0.#", CultureInfo.InvariantCulture).PadLeft(8));
            }
            sb.AppendLine(w > n ? "  ..." : "");
        }
        if (h > n) sb.AppendLine("  ...");
        return sb.ToString();
    }
}
