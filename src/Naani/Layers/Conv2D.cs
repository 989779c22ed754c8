using System.Text.Json.Nodes;
using Naani.Initializers;
using Naani.Kernels;

namespace Naani.Layers;

/// 2-D convolution over NHWC input with an HWIO kernel, as Keras's Conv2D:
/// y = activation(conv(x, kernel) + bias). Parameters: KH * KW * C * filters + filters.
public sealed class Conv2D : Layer
{
    public Conv2D(int filters, (int Height, int Width) kernelSize, (int Height, int Width)? strides = null,
        Padding padding = Padding.Valid, Activation activation = Activation.Linear, bool useBias = true,
        Initializer? kernelInitializer = null, Initializer? biasInitializer = null, string? name = null) : base(name)
    {
        if (filters <= 0) throw new ArgumentOutOfRangeException(nameof(filters), $"Conv2D needs at least one filter; got {filters}.");
        if (kernelSize.Height <= 0 || kernelSize.Width <= 0) throw new ArgumentOutOfRangeException(nameof(kernelSize), $"Conv2D kernel size must be positive; got {kernelSize}.");
        var s = strides ?? (1, 1);
        if (s.Height <= 0 || s.Width <= 0) throw new ArgumentOutOfRangeException(nameof(strides), $"Conv2D strides must be positive; got {s}.");
        Filters = filters;
        KernelSize = kernelSize;
        Strides = s;
        Padding = padding;
        Activation = activation;
        UseBias = useBias;
        KernelInitializer = kernelInitializer ?? Initializer.GlorotUniform;
        BiasInitializer = biasInitializer ?? Initializer.Zeros;
    }

    /// Square kernel and stride: new Conv2D(32, 3, activation: Activation.Relu).
    public Conv2D(int filters, int kernelSize, int strides = 1, Padding padding = Padding.Valid,
        Activation activation = Activation.Linear, bool useBias = true, string? name = null)
        : this(filters, (kernelSize, kernelSize), (strides, strides), padding, activation, useBias, name: name) { }

    public int Filters { get; }
    public (int Height, int Width) KernelSize { get; }
    public (int Height, int Width) Strides { get; }
    public Padding Padding { get; }
    public Activation Activation { get; }
    public bool UseBias { get; }
    public Initializer KernelInitializer { get; }
    public Initializer BiasInitializer { get; }
    public override Activation OutputActivation => Activation;

    /// Set by the model's graph when the max pooling after this layer applies the ReLU's derivative to the
    /// gradient (MaxPooling2D.MasksGradientByOutput): Backward then receives dL/dz directly.
    internal bool ReluAppliedByNextLayer { get; set; }

    public Parameter Kernel { get; private set; } = null!;
    public Parameter? Bias { get; private set; }
    public ConvGeometry Geometry { get; private set; }

    float[][] cols = [];
    // The batch being processed, held in fields so the per-thread bodies are delegates made once.
    Tensor? x, y, dy, dx;
    Action<int, int, int>? forwardRange, backwardRange;
    float[][] kernelGradParts = [];
    float[][] biasGradParts = [];

    protected override Shape Build(Shape input)
    {
        if (input.Rank != 3)
            throw new ArgumentException($"Conv2D '{Name}' needs input (height, width, channels); got {input.ToKerasString()}.");
        Geometry = ConvGeometry.Create(input[0], input[1], input[2], KernelSize.Height, KernelSize.Width, Strides.Height, Strides.Width, Padding);
        if (Geometry.OutHeight <= 0 || Geometry.OutWidth <= 0)
            throw new ArgumentException($"Conv2D '{Name}': a {KernelSize.Height}x{KernelSize.Width} kernel with 'valid' padding does not fit input {input.ToKerasString()}.");
        Kernel = AddWeight("kernel", new Shape(KernelSize.Height, KernelSize.Width, input[2], Filters), KernelInitializer);
        if (UseBias) Bias = AddWeight("bias", new Shape(Filters), BiasInitializer);
        return new Shape(Geometry.OutHeight, Geometry.OutWidth, Filters);
    }

    // Small images are grouped into one larger GEMM, as many as keep their im2col rows and outputs
    // within about 384 KB, so both stay in the core's L2 cache between im2col, GEMM and bias+activation.
    const int GroupBudget = 96 * 1024;

    /// Images per GEMM (at least one).
    int GroupSize => Math.Max(1, GroupBudget / (Geometry.Patches * ((Geometry.IsPointwise ? 0 : Geometry.PatchSize) + Filters)));

    void EnsureWorkspace()
    {
        if (cols.Length != Threading.MaxThreads) AllocateWorkspace(Threading.MaxThreads);
    }

    // Kept apart from EnsureWorkspace: its lambdas' closure would otherwise be allocated on every call.
    void AllocateWorkspace(int parts)
    {
        int colsSize = Geometry.IsPointwise ? 0 : GroupSize * Geometry.Patches * Geometry.PatchSize;
        cols = [.. Enumerable.Range(0, parts).Select(_ => new float[colsSize])];
        kernelGradParts = [.. Enumerable.Range(0, parts).Select(_ => new float[Kernel.Size])];
        biasGradParts = [.. Enumerable.Range(0, parts).Select(_ => new float[Filters])];
    }

    public override void Forward(Tensor x, Tensor y, bool training)
    {
        CheckInput(x);
        EnsureWorkspace();
        (this.x, this.y) = (x, y);
        colsSaved = SaveCols(x.Batch, training);
        PackKernel(x.Batch);
        if (colsSaved && savedCols.Length < x.Batch * Geometry.Patches * Geometry.PatchSize)
            savedCols = new float[x.Batch * Geometry.Patches * Geometry.PatchSize];
        PrepareWinograd(!colsSaved);   // a pass that saves its im2col rows for the backward pass goes through them
        if (forwardTile > 0)
        {
            // Winograd: whole images per thread, or, with fewer images than threads, rows of tiles (2 or 4 output rows).
            if (x.Batch >= Threading.Available || Geometry.OutHeight < 4 * Threading.Available)
                Threading.For(x.Batch, winogradImages ??= WinogradImages);
            else
                for (image = 0; image < x.Batch; image++)
                    Threading.For((Geometry.OutHeight + forwardTile - 1) / forwardTile, winogradRows ??= WinogradRows);
        }
        else if (x.Batch >= Threading.Available || Geometry.OutHeight < 2 * Threading.Available || colsSaved)
            Threading.For(x.Batch, forwardRange ??= ForwardRange);
        else
        {
            // Fewer images than threads (inference on one image): the threads share each image by output rows.
            for (image = 0; image < x.Batch; image++)
                Threading.For(Geometry.OutHeight, forwardRows ??= ForwardRows);
        }
        (this.x, this.y) = (null, null);
    }

    // Winograd for the 3x3 stride-1 layers where it pays: the tile of each pass (Winograd.Tile: 4 for F(4x4, 3x3),
    // 2 for F(2x2, 3x3), 0 for the direct convolution), the transformed kernel, made once per batch, and a scratch
    // per thread for a block of tiles.
    float[] winogradKernel = [];
    float[][] winogradScratch = [];
    int forwardTile;
    Action<int, int, int>? winogradImages, winogradRows;

    /// The Winograd tile of the last forward pass and of the last backward pass's input and kernel gradients (0: direct).
    internal (int Forward, int Input, int Kernel) WinogradTiles => (forwardTile, inputGradientTile, kernelGradientTile);

    void PrepareWinograd(bool allowed)
    {
        forwardTile = allowed ? Winograd.Tile(Geometry, Filters) : 0;
        if (forwardTile == 0) return;
        int c = Geometry.Channels, size = Winograd.TransformedKernelSize(c, Filters, forwardTile);
        EnsureWinogradScratch(Winograd.ScratchSize(c, Filters, forwardTile));
        // Transformed again only when the kernel differs, bit for bit, from the one transformed last: inference
        // at batch 1 would otherwise transform every kernel for every image (VGG16: 235 MB written a call, about
        // as long as the convolutions themselves). After a training step the first values already differ.
        var kernel = Kernel.Value.Data.AsSpan();
        if (winogradKernel.Length == size && winogradKernelTile == forwardTile && transformedFrom.Matches(kernel)) return;
        if (winogradKernel.Length != size) winogradKernel = new float[size];
        Winograd.TransformKernel(kernel, c, Filters, winogradKernel, forwardTile);
        transformedFrom.Take(kernel);
        winogradKernelTile = forwardTile;
    }

    readonly WeightSnapshot transformedFrom = new();   // the kernel winogradKernel was transformed from
    int winogradKernelTile;

    void EnsureWinogradScratch(int size)
    {
        if (winogradScratch.Length != cols.Length || winogradScratch[0].Length < size) AllocateWinogradScratch(size);
    }

    // Apart from PrepareWinograd, whose locals its lambda would otherwise capture: a closure allocated on every call.
    void AllocateWinogradScratch(int size) => winogradScratch = [.. Enumerable.Range(0, cols.Length).Select(_ => new float[size])];

    void AllocateWinogradGradParts(int size) => winogradGradParts = [.. Enumerable.Range(0, cols.Length).Select(_ => new float[size])];

    void WinogradImages(int part, int start, int end)
    {
        var g = Geometry;
        int inSize = g.InputSize, outSize = g.Patches * Filters;
        for (int n = start; n < end; n++)
            Winograd.ForwardRows(g, x!.Data.AsSpan(n * inSize, inSize), winogradKernel, Filters, y!.Data.AsSpan(n * outSize, outSize),
                winogradScratch[part], 0, g.OutHeight, Bias is null ? default : Bias.Value.Data, Activation, forwardTile);
    }

    // Tile rows [start, end) of image `image`: output rows [tile start, tile end).
    void WinogradRows(int part, int start, int end)
    {
        var g = Geometry;
        int inSize = g.InputSize, outSize = g.Patches * Filters, rowStart = forwardTile * start, rowEnd = Math.Min(g.OutHeight, forwardTile * end);
        Winograd.ForwardRows(g, x!.Data.AsSpan(image * inSize, inSize), winogradKernel, Filters,
            y!.Data.AsSpan(image * outSize + rowStart * g.OutWidth * Filters, (rowEnd - rowStart) * g.OutWidth * Filters),
            winogradScratch[part], rowStart, rowEnd, Bias is null ? default : Bias.Value.Data, Activation, forwardTile);
    }

    int image;
    Action<int, int, int>? forwardRows;
    float[] packedKernel = [];   // the kernel as the implicit convolution reads it, for the current batch
    bool packs;                  // whether packedKernel holds this batch's kernel (else the kernel is read in place)
    ReadOnlySpan<float> PackedKernel => packs ? packedKernel : default;

    // The kernel as the implicit convolution reads it, packed once per batch here rather than by every
    // thread for every group of images, where enough pixels use it to pay (else it is read in place).
    void PackKernel(int batch)
    {
        packs = ImplicitConvolution.Supports(Geometry) && ImplicitConvolution.PackingPays(Filters, (long)batch * Geometry.Patches);
        if (!packs) return;
        int size = ImplicitConvolution.PackedKernelSize(Geometry.PatchSize, Filters);
        if (packedKernel.Length != size) packedKernel = new float[size];
        ImplicitConvolution.PackKernel(Kernel.Value.Data, Geometry.PatchSize, Filters, packedKernel);
    }

    void ForwardRows(int part, int rowStart, int rowEnd)
    {
        var g = Geometry;
        int inSize = g.InputSize, outSize = g.Patches * Filters;
        var yn = y!.Data.AsSpan(image * outSize, outSize);
        Convolution.ForwardRows(g, x!.Data.AsSpan(image * inSize, inSize), Kernel.Value.Data, Filters, yn, cols[part], rowStart, rowEnd, PackedKernel,
            Bias is null ? default : Bias.Value.Data, Activation);
    }

    // A training forward pass that goes through im2col keeps the whole batch's im2col rows (within this
    // budget of values) for the backward pass, which then need not gather them again.
    const int SavedColsBudget = 8 << 20;
    float[] savedCols = [];
    bool colsSaved;

    bool SaveCols(int batch, bool training) =>
        training && !Geometry.IsPointwise && !ImplicitConvolution.Supports(Geometry) && Winograd.Tile(Geometry, Filters) == 0
        && (long)batch * Geometry.Patches * Geometry.PatchSize <= SavedColsBudget;

    void ForwardRange(int part, int start, int end)
    {
        var g = Geometry;
        int inSize = g.InputSize, outSize = g.Patches * Filters, patchValues = g.Patches * g.PatchSize;
        var k = Kernel.Value.Data;
        for (int n = start; n < end; n += GroupSize)
        {
            int count = Math.Min(GroupSize, end - n);
            var yn = y!.Data.AsSpan(n * outSize, count * outSize);
            var scratch = colsSaved ? savedCols.AsSpan(n * patchValues, count * patchValues) : cols[part];
            Convolution.Forward(g, x!.Data.AsSpan(n * inSize, count * inSize), k, Filters, yn, scratch, count, PackedKernel,
                Bias is null ? default : Bias.Value.Data, Activation);
        }
    }

    /// Whether inference may fuse this layer with the max pooling that reads its output: the pooling
    /// windows must tile the output (stride = window, no padding), so each band of output rows pools on its own.
    public bool CanFusePooling(MaxPooling2D pool)
    {
        if (!IsBuilt || !pool.IsBuilt) return false;
        var p = pool.Geometry;
        return p.InHeight == Geometry.OutHeight && p.InWidth == Geometry.OutWidth && p.Channels == Filters
            && p.PadTop == 0 && p.PadLeft == 0 && p.StrideHeight == p.KernelHeight && p.StrideWidth == p.KernelWidth
            && p.OutHeight * p.KernelHeight <= Geometry.OutHeight && p.OutWidth * p.KernelWidth <= Geometry.OutWidth;
    }

    /// Inference of this layer and the max pooling after it (see CanFusePooling) in one pass: a band of
    /// output rows at a time is computed (with bias and activation) into a small per-thread buffer that
    /// stays in cache, and pooled from there into `pooled`. The full-size output is never written to
    /// memory and read back (for naani-128's first layer, 2 MB per image). Bands of all the images are
    /// shared among the threads, so a single image uses every thread too. A 2x2 pooling the implicit convolution can
    /// take into its micro-kernels (ImplicitConvolution.SupportsPooling2x2) needs no buffer: they store the pooled values.
    /// With training, the pooling's argmax is recorded for its backward pass (the convolution's own output is never
    /// written: a training graph fuses only a ReLU convolution, whose backward pass does not read it).
    public void ForwardPooled(Tensor x, Tensor pooled, MaxPooling2D pool, bool training = false)
    {
        CheckInput(x);
        if (!CanFusePooling(pool))
            throw new ArgumentException($"Conv2D '{Name}' cannot be fused with pooling '{pool.Name}': its windows do not tile the output {OutputShape.ToKerasString()}.");
        if (pooled.Batch != x.Batch || pooled.SampleSize != pool.OutputShape.Size)
            throw new ArgumentException($"Conv2D '{Name}': fused pooling output {pooled.Shape} does not match {pool.OutputShape.ToKerasString()} for a batch of {x.Batch}.");
        EnsureWorkspace();
        var p = pool.Geometry;
        int rowValues = p.KernelHeight * Geometry.OutWidth * Filters;   // the output rows behind one pooled row
        // Cache-sized bands, but at least as many pixels as a patch has values: every band streams the
        // whole kernel, which must not cost more than the band's output (VGG16's block 4: a 4608 x 512
        // kernel against 28 x 28 pixels means one band per image). And enough bands for every thread.
        int pixelsPerRow = p.KernelHeight * Geometry.OutWidth;
        int rows = Math.Max(BandBudget / rowValues, (Geometry.PatchSize + pixelsPerRow - 1) / pixelsPerRow);
        int bandsForThreads = (Threading.Available + x.Batch - 1) / x.Batch;
        rows = Math.Min(rows, (p.OutHeight + bandsForThreads - 1) / bandsForThreads);
        pooledRowsPerBand = Math.Max(1, Math.Min(p.OutHeight, rows));
        bandsPerImage = (p.OutHeight + pooledRowsPerBand - 1) / pooledRowsPerBand;
        PackKernel(x.Batch);
        PrepareWinograd(true);
        // A 2x2 pooling after a ReLU (or linear) convolution that is not Winograd's: the micro-kernels pool (and record the
        // argmax, for training), straight into the pooled output; the bands then only split the work.
        poolsInKernel = forwardTile == 0 && p.KernelHeight == 2 && p.KernelWidth == 2
            && Activation is Activation.Relu or Activation.Linear && ImplicitConvolution.SupportsPooling2x2(Geometry);
        int bandSize = pooledRowsPerBand * rowValues;
        if (!poolsInKernel && (bands.Length != cols.Length || bands[0].Length < bandSize)) AllocateBands(bandSize);
        (this.x, y, fusedPool) = (x, pooled, pool);
        pooledArgmax = training ? pool.ArgmaxForTraining(pooled.Length) : null;
        Threading.For(x.Batch * bandsPerImage, forwardPooledRange ??= ForwardPooledRange);
        (this.x, y, fusedPool, pooledArgmax) = (null, null, null, null);
    }

    // Apart from ForwardPooled, whose locals its lambda would otherwise capture: a closure allocated on every call.
    void AllocateBands(int bandSize) => bands = [.. Enumerable.Range(0, cols.Length).Select(_ => new float[bandSize])];

    // A band's output rows: about 128 KB, which stays in L2 between the convolution and the pooling.
    const int BandBudget = 32 * 1024;
    float[][] bands = [];
    int pooledRowsPerBand, bandsPerImage;
    MaxPooling2D? fusedPool;
    int[]? pooledArgmax;
    bool poolsInKernel;

    /// Whether the last ForwardPooled pooled in the implicit convolution's micro-kernels (for tests).
    internal bool PooledInKernel => poolsInKernel;
    Action<int, int, int>? forwardPooledRange;

    void ForwardPooledRange(int part, int start, int end)
    {
        var g = Geometry;
        var p = fusedPool!.Geometry;
        int pooledRow = p.OutWidth * Filters, pooledImage = p.OutHeight * pooledRow;
        for (int u = start; u < end; u++)
        {
            int n = u / bandsPerImage, first = u % bandsPerImage * pooledRowsPerBand;
            int count = Math.Min(pooledRowsPerBand, p.OutHeight - first);
            int rowStart = first * p.KernelHeight, rowEnd = (first + count) * p.KernelHeight;
            int at = n * pooledImage + first * pooledRow;
            if (poolsInKernel)
            {
                ImplicitConvolution.Forward(g, x!.Data.AsSpan(n * g.InputSize, g.InputSize), Kernel.Value.Data, Filters, y!.Data.AsSpan(at, count * pooledRow),
                    1, rowStart, rowEnd, PackedKernel, Bias is null ? default : Bias.Value.Data, Activation == Activation.Relu, yIsBand: true, pool2x2: true,
                    argmax: pooledArgmax is null ? default : pooledArgmax.AsSpan(at, count * pooledRow));
                continue;
            }
            var band = bands[part];
            if (forwardTile == 4 || forwardTile == 2 && rowStart % 2 == 0)   // F(2x2)'s tiles start on even rows
                Winograd.ForwardRows(g, x!.Data.AsSpan(n * g.InputSize, g.InputSize), winogradKernel, Filters, band, winogradScratch[part],
                    rowStart, rowEnd, Bias is null ? default : Bias.Value.Data, Activation, forwardTile);
            else
                Convolution.ForwardBand(g, x!.Data.AsSpan(n * g.InputSize, g.InputSize), Kernel.Value.Data, Filters, band, cols[part],
                    rowStart, rowEnd, PackedKernel, Bias is null ? default : Bias.Value.Data, Activation);
            // The band is an image of (rowEnd - rowStart) rows for the pooling; its pooled rows land at row `first`.
            var bandGeometry = ConvGeometry.Create(rowEnd - rowStart, g.OutWidth, Filters, p.KernelHeight, p.KernelWidth, p.StrideHeight, p.StrideWidth, Padding.Valid);
            if (pooledArgmax is null)
            {
                Pooling.MaxForward(bandGeometry, band, y!.Data.AsSpan(at, count * pooledRow));
                continue;
            }
            // Training: the argmax within the band, moved to the band's place in the (unwritten) output image.
            var argmax = pooledArgmax.AsSpan(at, count * pooledRow);
            Pooling.MaxForward(bandGeometry, band, y!.Data.AsSpan(at, count * pooledRow), argmax);
            int offset = rowStart * g.OutWidth * Filters;
            if (offset != 0) Activations.AddInPlace(argmax, offset);
        }
    }

    public override void Backward(Tensor x, Tensor y, Tensor dy, Tensor? dx) => BackwardCore(x, y, dy, dx);

    /// Backward of this layer and the max pooling after it, fused as a training ForwardPooled fused their forward
    /// passes: given the pooled output, its gradient and the pooling's recorded argmax, each thread spreads the
    /// gradient of a few images at a time back to the windows' maxima (and through the ReLU: 0 where the pooled output
    /// is 0) into a buffer of its own, which the kernel- and input-gradient passes then read from cache. The
    /// full-size gradient of this layer's output is never written to memory and read back (for naani-128's first
    /// layer, 2 MB per image, written once and read twice). Updates the weight gradients and writes dx when not null;
    /// `pooledGradient` is left as it is.
    public void BackwardPooled(Tensor x, Tensor pooled, Tensor pooledGradient, MaxPooling2D pool, Tensor? dx)
    {
        CheckInput(x);
        if (!CanFusePooling(pool))
            throw new ArgumentException($"Conv2D '{Name}' cannot be fused with pooling '{pool.Name}': its windows do not tile the output {OutputShape.ToKerasString()}.");
        if (Activation is not (Activation.Relu or Activation.Linear))
            throw new ArgumentException($"Conv2D '{Name}': a fused backward pass through pooling '{pool.Name}' needs a ReLU or linear activation; got {Activation}.");
        CheckPooled(pooled, "output");   // (no array of the two to loop over: this runs every training step)
        CheckPooled(pooledGradient, "gradient");
        (fusedPool, pooledValues, pooledGradients) = (pool, pooled, pooledGradient);
        pooledArgmax = pool.RecordedArgmax(pooled.Length);
        try
        {
            BackwardCore(x, null, null, dx);
        }
        finally
        {
            (fusedPool, pooledValues, pooledGradients, pooledArgmax) = (null, null, null, null);
        }

        void CheckPooled(Tensor t, string what)
        {
            if (t.Batch != x.Batch || t.SampleSize != pool.OutputShape.Size)
                throw new ArgumentException($"Conv2D '{Name}': fused pooling {what} {t.Shape} does not match {pool.OutputShape.ToKerasString()} for a batch of {x.Batch}.");
        }
    }

    Tensor? pooledValues, pooledGradients;   // BackwardPooled: the pooling's output and its gradient
    float[][] expandedGradients = [];         // BackwardPooled: per thread, the gradient of a group of images' outputs

    // BackwardPooled: the gradient of images [n, n + count)'s outputs, from their pooled gradient (Pooling.MaxBackward),
    // into this thread's buffer.
    Span<float> ExpandPooledGradient(int part, int n, int count)
    {
        var p = fusedPool!.Geometry;
        int outSize = Geometry.Patches * Filters, pooledSize = pooledGradients!.SampleSize;
        var expanded = expandedGradients[part].AsSpan(0, count * outSize);
        for (int i = 0; i < count; i++)
        {
            int at = (n + i) * pooledSize;
            Pooling.MaxBackward(p, pooledArgmax.AsSpan(at, pooledSize), pooledGradients.Data.AsSpan(at, pooledSize), expanded.Slice(i * outSize, outSize),
                Activation == Activation.Relu ? pooledValues!.Data.AsSpan(at, pooledSize) : default);
        }
        return expanded;
    }

    // Apart from BackwardCore, whose locals its lambda would otherwise capture: a closure allocated on every call.
    void AllocateExpandedGradients(int size) => expandedGradients = [.. Enumerable.Range(0, cols.Length).Select(_ => new float[size])];

    void BackwardCore(Tensor x, Tensor? y, Tensor? dy, Tensor? dx)
    {
        if (!Trainable && dx is null)
        {
            colsSaved = false;
            return;   // a frozen first layer: no weight gradients and no input gradient to compute
        }
        EnsureWorkspace();
        if (fusedPool is not null && (expandedGradients.Length != cols.Length || expandedGradients[0].Length < GroupSize * Geometry.Patches * Filters))
            AllocateExpandedGradients(GroupSize * Geometry.Patches * Filters);
        int parts = Threading.Parts(x.Batch);
        for (int p = 0; p < parts; p++)
        {
            kernelGradParts[p].AsSpan().Clear();
            biasGradParts[p].AsSpan().Clear();
        }
        (this.x, this.y, this.dy, this.dx) = (x, y, dy, dx);
        PrepareWinogradBackward(dx is not null && !colsSaved);
        if (kernelGradientTile > 0)
            for (int p = 0; p < parts; p++) winogradGradParts[p].AsSpan().Clear();
        Threading.For(x.Batch, backwardRange ??= BackwardRange);
        colsSaved = false;   // the backward pass used the saved rows as scratch
        (this.x, this.y, this.dy, this.dx) = (null, null, null, null);
        // Sum the per-thread partial gradients in a fixed order, so runs are reproducible.
        for (int p = 0; p < parts; p++)
        {
            if (kernelGradientTile == 0) Activations.AddInPlace(Kernel.Gradient.Data, kernelGradParts[p]);
            if (Bias is not null) Activations.AddInPlace(Bias.Gradient.Data, biasGradParts[p]);
        }
        if (kernelGradientTile > 0)
        {
            for (int p = 1; p < parts; p++) Activations.AddInPlace(winogradGradParts[0], winogradGradParts[p]);
            Winograd.KernelGradient(winogradGradParts[0], Geometry.Channels, Filters, Kernel.Gradient.Data, kernelGradientTile);
        }
    }

    void BackwardRange(int part, int start, int end)
    {
        var g = Geometry;
        int inSize = g.InputSize, outSize = g.Patches * Filters, patchValues = g.Patches * g.PatchSize;
        // Fused with the pooling after it, the gradient arrives through the ReLU already (dL/dz), as when the pooling
        // applies the ReLU's derivative (ReluAppliedByNextLayer).
        bool gradientOfZ = GradientIsPreActivation || ReluAppliedByNextLayer || fusedPool is not null;
        // A frozen layer (transfer learning) still passes dx on, but computes no weight gradients. The bias gradient
        // comes with a Winograd kernel gradient, which reads dy anyway.
        bool biasGradient = Bias is not null && Trainable;
        // Narrow layers through im2col (small-32's second, 3x3 stride 2 over 10 channels): the kernel gradient, and the
        // bias's with it, straight from the image as a first layer's, without im2col rows (0.13 ms per 64 images on one
        // Zen 5 core for small-32's, against 0.05 for im2col and 0.15 for the GEMM).
        bool rowsKernelGradient = Trainable && kernelGradientTile == 0 && inputGradientTile == 0 && !colsSaved && !g.IsPointwise
            && Convolution.DirectKernelGradient(g);
        for (int n = start; n < end; n += GroupSize)
        {
            int count = Math.Min(GroupSize, end - n);
            var dyn = fusedPool is null ? dy!.Data.AsSpan(n * outSize, count * outSize) : ExpandPooledGradient(part, n, count);
            if (dx is null && !colsSaved && !g.IsPointwise)
            {
                // A first layer: activation, bias and kernel gradients in one pass over dy, a few rows at a time.
                Convolution.KernelGradientOnly(g, x!.Data.AsSpan(n * inSize, count * inSize), gradientOfZ ? default : y!.Data.AsSpan(n * outSize, count * outSize),
                    gradientOfZ ? Activation.Linear : Activation, Filters, dyn, Trainable ? kernelGradParts[part] : default,
                    biasGradient ? biasGradParts[part] : default, cols[part], count);
                continue;
            }
            if (!gradientOfZ)
                Activations.Backward(y!.Data.AsSpan(n * outSize, count * outSize), dyn, Filters, Activation);
            if (biasGradient && kernelGradientTile == 0 && !rowsKernelGradient) Activations.SumRows(dyn, Filters, biasGradParts[part], accumulate: true);
            var scratch = colsSaved ? savedCols.AsSpan(n * patchValues, count * patchValues) : cols[part];
            if (inputGradientTile > 0 || kernelGradientTile > 0)
            {
                // The kernel gradient in Winograd's domain (summed over the parts, then transformed back, in Backward);
                // the input gradient, itself a 3x3 stride-1 convolution of dz with the flipped kernel, by Winograd.
                // Whichever does not pay goes through im2col and the GEMMs.
                bool directKernelGradient = kernelGradientTile == 0 && Trainable;
                if (directKernelGradient || inputGradientTile == 0)
                    Convolution.Backward(g, x!.Data.AsSpan(n * inSize, count * inSize), Kernel.Value.Data, Filters, dyn,
                        directKernelGradient ? kernelGradParts[part] : default,
                        inputGradientTile == 0 ? dx!.Data.AsSpan(n * inSize, count * inSize) : default, scratch, count, colsHoldIm2Col: false);
                for (int i = 0; i < count; i++)
                {
                    if (kernelGradientTile > 0)
                        Winograd.AccumulateKernelGradient(g, x!.Data.AsSpan((n + i) * inSize, inSize), dyn.Slice(i * outSize, outSize), Filters,
                            winogradGradParts[part], winogradScratch[part], 0, g.OutHeight, kernelGradientTile, biasGradient ? biasGradParts[part] : default);
                    if (inputGradientTile > 0)
                        Winograd.ForwardRows(backwardGeometry, dyn.Slice(i * outSize, outSize), winogradBackwardKernel, g.Channels,
                            dx!.Data.AsSpan((n + i) * inSize, inSize), winogradScratch[part], 0, g.InHeight, default, Activation.Linear, inputGradientTile);
                }
                continue;
            }
            // The kernel gradient as a first layer's (dyn is dz already); Backward then computes dx alone, without im2col.
            if (rowsKernelGradient)
                Convolution.KernelGradientOnly(g, x!.Data.AsSpan(n * inSize, count * inSize), default, Activation.Linear, Filters, dyn,
                    kernelGradParts[part], biasGradient ? biasGradParts[part] : default, scratch, count);
            Convolution.Backward(g, x!.Data.AsSpan(n * inSize, count * inSize), Kernel.Value.Data, Filters, dyn,
                Trainable && !rowsKernelGradient ? kernelGradParts[part] : default, dx is null ? default : dx.Data.AsSpan(n * inSize, count * inSize),
                scratch, count, colsHoldIm2Col: colsSaved);
        }
    }

    // The input gradient by Winograd: dx[iy, ix, c] = sum_{i, j, f} dz[iy - i + pt, ix - j + pl, f] k[i, j, c, f], a
    // 3x3 stride-1 convolution of dz (filters channels) with the kernel flipped and transposed, k'[2-i, 2-j, f, c],
    // padded by 2 - pt above and 2 - pl on the left, giving the input's size.
    // The kernel gradient by Winograd: dU (16 or 36 x C x filters) per part, summed in order, then dK += G^T dU G.
    float[] flippedKernel = [], winogradBackwardKernel = [];
    float[][] winogradGradParts = [];
    int inputGradientTile, kernelGradientTile;
    ConvGeometry backwardGeometry;

    void PrepareWinogradBackward(bool allowed)
    {
        var g = Geometry;
        kernelGradientTile = allowed && Trainable ? Winograd.Tile(g, Filters) : 0;
        inputGradientTile = 0;
        if (kernelGradientTile > 0)
        {
            int du = Winograd.TransformedKernelSize(g.Channels, Filters, kernelGradientTile);
            if (winogradGradParts.Length != cols.Length || winogradGradParts[0].Length != du) AllocateWinogradGradParts(du);
            EnsureWinogradScratch(Winograd.ScratchSize(g.Channels, Filters, kernelGradientTile));
        }
        if (!allowed || !Winograd.Supports(g, Filters)) return;   // a 3x3 stride-1 layer, for the geometry below
        backwardGeometry = new ConvGeometry(g.OutHeight, g.OutWidth, Filters, 3, 3, 1, 1, 2 - g.PadTop, 2 - g.PadLeft, g.InHeight, g.InWidth);
        int channels = g.Channels;
        inputGradientTile = Winograd.Tile(backwardGeometry, channels);
        if (inputGradientTile == 0) return;
        int size = 9 * channels * Filters;
        if (flippedKernel.Length != size) flippedKernel = new float[size];
        var k = Kernel.Value.Data;
        for (int i = 0; i < 3; i++)
            for (int j = 0; j < 3; j++)
            {
                int from = ((2 - i) * 3 + (2 - j)) * channels * Filters, to = (i * 3 + j) * Filters * channels;
                for (int c = 0; c < channels; c++)
                    for (int f = 0; f < Filters; f++)
                        flippedKernel[to + f * channels + c] = k[from + c * Filters + f];
            }
        int transformed = Winograd.TransformedKernelSize(Filters, channels, inputGradientTile);
        if (winogradBackwardKernel.Length != transformed) winogradBackwardKernel = new float[transformed];
        EnsureWinogradScratch(Winograd.ScratchSize(Filters, channels, inputGradientTile));
        Winograd.TransformKernel(flippedKernel, Filters, channels, winogradBackwardKernel, inputGradientTile);
    }

    public override JsonObject GetConfig() => new()
    {
        ["filters"] = Filters,
        ["kernel_size"] = new JsonArray(KernelSize.Height, KernelSize.Width),
        ["strides"] = new JsonArray(Strides.Height, Strides.Width),
        ["padding"] = Padding == Padding.Same ? "same" : "valid",
        ["activation"] = Activation.ToKeras(),
        ["use_bias"] = UseBias,
        ["kernel_initializer"] = KernelInitializer.ToConfig(),
        ["bias_initializer"] = BiasInitializer.ToConfig(),
    };
}
