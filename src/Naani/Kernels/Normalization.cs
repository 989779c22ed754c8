using System.Numerics;

namespace Naani.Kernels;

// The loops of the normalization layers, on rows of a (rows, cols) matrix:
//   column form (batch and group normalization): x is (pixels, C) in NHWC, statistics per channel c
//     are sums down the columns, and y[r, c] = x[r, c] * scale[c] + shift[c];
//   row form (layer normalization): each row of D values is normalized by its own mean and variance,
//     y[r, d] = (x[r, d] - mean_r) * invstd_r * gamma[d] + beta[d].
// Sums are taken in float over blocks of rows and added into double, so a batch of 10^5 rows loses
// no more precision than a block of BlockRows does.
public static class Normalization
{
    const int BlockRows = 64;

    /// sums[c] += sum_r (x[r, c] - shift[c]), or of its square when squared; block is scratch of cols floats.
    public static void ColumnSums(ReadOnlySpan<float> x, int cols, ReadOnlySpan<float> shift, bool squared, Span<double> sums, Span<float> block)
    {
        int rows = x.Length / cols, w = Vector<float>.Count;
        block = block[..cols];
        for (int r0 = 0; r0 < rows; r0 += BlockRows)
        {
            block.Clear();
            int r1 = Math.Min(rows, r0 + BlockRows);
            for (int r = r0; r < r1; r++)
            {
                var row = x.Slice(r * cols, cols);
                int c = 0;
                for (; c <= cols - w; c += w)
                {
                    var d = new Vector<float>(row[c..]) - new Vector<float>(shift[c..]);
                    (new Vector<float>(block[c..]) + (squared ? d * d : d)).CopyTo(block[c..]);
                }
                for (; c < cols; c++)
                {
                    float d = row[c] - shift[c];
                    block[c] += squared ? d * d : d;
                }
            }
            for (int c = 0; c < cols; c++) sums[c] += block[c];
        }
    }

    /// The two sums every normalization backward needs, per column:
    /// sumDy[c] += sum_r dy[r, c],  sumDyX[c] += sum_r dy[r, c] * (x[r, c] - shift[c]).
    /// blocks is scratch of 2 * cols floats.
    public static void ColumnGradientSums(ReadOnlySpan<float> dy, ReadOnlySpan<float> x, int cols, ReadOnlySpan<float> shift,
        Span<double> sumDy, Span<double> sumDyX, Span<float> blocks)
    {
        int rows = x.Length / cols, w = Vector<float>.Count;
        var b0 = blocks[..cols];
        var b1 = blocks.Slice(cols, cols);
        for (int r0 = 0; r0 < rows; r0 += BlockRows)
        {
            b0.Clear();
            b1.Clear();
            int r1 = Math.Min(rows, r0 + BlockRows);
            for (int r = r0; r < r1; r++)
            {
                var xr = x.Slice(r * cols, cols);
                var dr = dy.Slice(r * cols, cols);
                int c = 0;
                for (; c <= cols - w; c += w)
                {
                    var d = new Vector<float>(dr[c..]);
                    (new Vector<float>(b0[c..]) + d).CopyTo(b0[c..]);
                    (new Vector<float>(b1[c..]) + d * (new Vector<float>(xr[c..]) - new Vector<float>(shift[c..]))).CopyTo(b1[c..]);
                }
                for (; c < cols; c++)
                {
                    b0[c] += dr[c];
                    b1[c] += dr[c] * (xr[c] - shift[c]);
                }
            }
            for (int c = 0; c < cols; c++)
            {
                sumDy[c] += b0[c];
                sumDyX[c] += b1[c];
            }
        }
    }

    /// y[r, c] = x[r, c] * scale[c] + shift[c]: the forward of batch and group normalization once the
    /// statistics are folded in (scale = gamma * invstd, shift = beta - mean * scale).
    public static void ScaleShiftColumns(ReadOnlySpan<float> x, int cols, ReadOnlySpan<float> scale, ReadOnlySpan<float> shift, Span<float> y)
    {
        int rows = x.Length / cols, w = Vector<float>.Count;
        for (int r = 0; r < rows; r++)
        {
            var xr = x.Slice(r * cols, cols);
            var yr = y.Slice(r * cols, cols);
            int c = 0;
            for (; c <= cols - w; c += w)
                (new Vector<float>(xr[c..]) * new Vector<float>(scale[c..]) + new Vector<float>(shift[c..])).CopyTo(yr[c..]);
            for (; c < cols; c++) yr[c] = xr[c] * scale[c] + shift[c];
        }
    }

    /// dx[r, c] = a[c] * dy[r, c] + b[c] * x[r, c] + k[c]. Overwrites dx.
    /// The input gradient of batch and group normalization has this form (see the layers for a, b, k).
    public static void AffineGradientColumns(ReadOnlySpan<float> dy, ReadOnlySpan<float> x, int cols,
        ReadOnlySpan<float> a, ReadOnlySpan<float> b, ReadOnlySpan<float> k, Span<float> dx)
    {
        int rows = x.Length / cols, w = Vector<float>.Count;
        for (int r = 0; r < rows; r++)
        {
            var xr = x.Slice(r * cols, cols);
            var dr = dy.Slice(r * cols, cols);
            var dxr = dx.Slice(r * cols, cols);
            int c = 0;
            for (; c <= cols - w; c += w)
                (new Vector<float>(a[c..]) * new Vector<float>(dr[c..]) + new Vector<float>(b[c..]) * new Vector<float>(xr[c..])
                    + new Vector<float>(k[c..])).CopyTo(dxr[c..]);
            for (; c < cols; c++) dxr[c] = a[c] * dr[c] + b[c] * xr[c] + k[c];
        }
    }

    // Row form: y[r, d] = (x[r, d] - mean_r) * invstd_r * gamma[d] + beta[d], with the biased variance of the row.

    /// Normalizes each row of D values; records mean_r and invstd_r = 1 / sqrt(var_r + epsilon) for Backward.
    /// gamma and beta may be empty (scale = false, center = false).
    public static void RowsForward(ReadOnlySpan<float> x, int d, ReadOnlySpan<float> gamma, ReadOnlySpan<float> beta, float epsilon,
        Span<float> y, Span<float> mean, Span<float> invstd)
    {
        int rows = x.Length / d, w = Vector<float>.Count;
        for (int r = 0; r < rows; r++)
        {
            var xr = x.Slice(r * d, d);
            var yr = y.Slice(r * d, d);
            float m = (float)(Sum(xr, 0f, squared: false) / d);
            float s = (float)(1.0 / Math.Sqrt(Sum(xr, m, squared: true) / d + epsilon));
            mean[r] = m;
            invstd[r] = s;
            var vm = new Vector<float>(m);
            var vs = new Vector<float>(s);
            int i = 0;
            for (; i <= d - w; i += w)
            {
                var v = (new Vector<float>(xr[i..]) - vm) * vs;
                if (!gamma.IsEmpty) v *= new Vector<float>(gamma[i..]);
                if (!beta.IsEmpty) v += new Vector<float>(beta[i..]);
                v.CopyTo(yr[i..]);
            }
            for (; i < d; i++)
            {
                float v = (xr[i] - m) * s;
                if (!gamma.IsEmpty) v *= gamma[i];
                if (!beta.IsEmpty) v += beta[i];
                yr[i] = v;
            }
        }
    }

    // in the forward pass, per row: xhat = (x - mean) * invstd, y = gamma * xhat + beta, so with g = dy * gamma
    //   dx = invstd * (g - mean_d(g) - xhat * mean_d(g * xhat)),  dgamma[d] += dy * xhat,  dbeta[d] += dy.
    /// Overwrites dx (skipped when empty); ADDS into dgamma and dbeta (each skipped when empty).
    public static void RowsBackward(ReadOnlySpan<float> x, ReadOnlySpan<float> dy, int d, ReadOnlySpan<float> gamma,
        ReadOnlySpan<float> mean, ReadOnlySpan<float> invstd, Span<float> dx, Span<float> dgamma, Span<float> dbeta)
    {
        int rows = x.Length / d, w = Vector<float>.Count;
        for (int r = 0; r < rows; r++)
        {
            var xr = x.Slice(r * d, d);
            var dr = dy.Slice(r * d, d);
            var vm = new Vector<float>(mean[r]);
            var vs = new Vector<float>(invstd[r]);
            // sums of g and g * xhat over the row
            var sg = Vector<float>.Zero;
            var sgx = Vector<float>.Zero;
            int i = 0;
            for (; i <= d - w; i += w)
            {
                var xhat = (new Vector<float>(xr[i..]) - vm) * vs;
                var dv = new Vector<float>(dr[i..]);
                var g = gamma.IsEmpty ? dv : dv * new Vector<float>(gamma[i..]);
                sg += g;
                sgx += g * xhat;
                if (!dgamma.IsEmpty) (new Vector<float>(dgamma[i..]) + dv * xhat).CopyTo(dgamma[i..]);
                if (!dbeta.IsEmpty) (new Vector<float>(dbeta[i..]) + dv).CopyTo(dbeta[i..]);
            }
            double sumG = Vector.Sum(sg), sumGX = Vector.Sum(sgx);
            for (; i < d; i++)
            {
                float xhat = (xr[i] - mean[r]) * invstd[r];
                float g = gamma.IsEmpty ? dr[i] : dr[i] * gamma[i];
                sumG += g;
                sumGX += g * xhat;
                if (!dgamma.IsEmpty) dgamma[i] += dr[i] * xhat;
                if (!dbeta.IsEmpty) dbeta[i] += dr[i];
            }
            if (dx.IsEmpty) continue;
            var dxr = dx.Slice(r * d, d);
            var meanG = new Vector<float>((float)(sumG / d));
            var meanGX = new Vector<float>((float)(sumGX / d));
            i = 0;
            for (; i <= d - w; i += w)
            {
                var xhat = (new Vector<float>(xr[i..]) - vm) * vs;
                var dv = new Vector<float>(dr[i..]);
                var g = gamma.IsEmpty ? dv : dv * new Vector<float>(gamma[i..]);
                (vs * (g - meanG - xhat * meanGX)).CopyTo(dxr[i..]);
            }
            for (; i < d; i++)
            {
                float xhat = (xr[i] - mean[r]) * invstd[r];
                float g = gamma.IsEmpty ? dr[i] : dr[i] * gamma[i];
                dxr[i] = invstd[r] * (g - meanG[0] - xhat * meanGX[0]);
            }
        }
    }

    /// sum_i (x[i] - shift) or of its square, accumulated in float per vector lane over short runs and in double overall.
    static double Sum(ReadOnlySpan<float> x, float shift, bool squared)
    {
        int w = Vector<float>.Count, i = 0;
        double total = 0;
        var vshift = new Vector<float>(shift);
        while (i <= x.Length - w)
        {
            var acc = Vector<float>.Zero;
            int end = Math.Min(x.Length - w, i + BlockRows * w);
            for (; i <= end; i += w)
            {
                var v = new Vector<float>(x[i..]) - vshift;
                acc += squared ? v * v : v;
            }
            total += Vector.Sum(acc);
        }
        for (; i < x.Length; i++)
        {
            float v = x[i] - shift;
            total += squared ? v * v : v;
        }
        return total;
    }
}
