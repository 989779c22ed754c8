using Naani.Layers;
using Xunit;

namespace Naani.Tests.Layers;

// Numerical gradient checks by central differences, evaluated in double around a float32 layer.
//
// The objective is a random projection L = sum_i y_i r_i with r fixed (uniform in [-1, 1]), so every
// output element contributes and dL/dy = r is what Backward receives. For a value v (an input or a
// weight) the numerical derivative is (L(v + h) - L(v - h)) / (v+ - v-), where v+ and v- are the
// float32 values actually stored (so the rounding of v +- h does not bias the quotient).
//
// Step and tolerance, for float32 layers with O(1) inputs and weights:
// - Perturbing one value changes only the outputs it feeds; all other outputs are recomputed
//   bit for bit, so their terms cancel exactly in L+ - L-. The noise is the float32 rounding of the
//   touched outputs, about 1e-7 each, i.e. ~1e-6 in L+ - L- and ~1e-4 in the quotient at h = 1e-2.
// - Truncation error of central differences is h^2/6 |L'''|: zero for linear maps, pooling and relu
//   away from their kinks, and ~1e-5 for tanh/sigmoid/softmax at h = 1e-2.
// - So each element must satisfy |analytic - numeric| <= Tolerance * max(|numeric|, 0.1 * scale),
//   with scale the largest |numeric| of that tensor and Tolerance = 2e-3. The floor 0.1 * scale keeps
//   near-zero entries (whose relative error is pure noise) from failing on noise alone.
// - A real bug (a missing term, a wrong index, a missed activation derivative, a gradient that
//   overwrites instead of adding across the batch) changes an entry by at least one product
//   w * dy or x * dy, i.e. by 5% to 100% of the typical entry: 25x to 500x above the tolerance.
//   GradientCheckTests shows it rejects layers with exactly such bugs.
//
// Piecewise-linear layers (relu, max pooling) have kinks; a perturbation that crosses one makes
// the central difference wrong by up to half the change of slope. With allowKinks, each value's
// one-sided differences (L+ - L0)/h and (L0 - L-)/h are compared: away from kinks they agree to
// noise (2e-4 of the scale, which bounds the error of an undetected kink at 1e-3 < Tolerance).
// Where they disagree, the analytic value must match one of the two one-sided differences: the one
// on the kink-free side is exact for a piecewise-linear function (with kinks on both sides, h
// shrinks tenfold and the three differences are tried again). No value is skipped, so a bug cannot
// hide behind a kink.
internal static class GradientCheck
{
    public const double Step = 1e-2;
    public const double Tolerance = 2e-3;
    const double KinkTolerance = 2e-4;

    /// Uniform values in [low, high).
    public static Tensor Uniform(Rng rng, float low, float high, params int[] dims)
    {
        var t = new Tensor(dims);
        for (int i = 0; i < t.Length; i++) t.Data[i] = rng.Uniform(low, high);
        return t;
    }

    /// Distinct values, spacing apart, centred on 0, in random order: with spacing above the step h,
    /// max pooling has no ties and no perturbation can change which value of a window is largest.
    public static Tensor Distinct(Rng rng, float spacing, params int[] dims)
    {
        var t = new Tensor(dims);
        var order = Enumerable.Range(0, t.Length).ToArray();
        rng.Shuffle(order);
        for (int i = 0; i < t.Length; i++) t.Data[i] = (order[i] - t.Length / 2) * spacing;
        return t;
    }

    public sealed record Mismatch(string Tensor, int Index, double Analytic, double Numeric, double Error);

    public sealed record Report(double WorstError, int Checked, int OneSided, IReadOnlyList<Mismatch> Failures)
    {
        public bool Passed => Failures.Count == 0 && Checked > 0;

        public override string ToString() =>
            $"worst error {WorstError:E2} (tolerance {Tolerance:E0}), {Checked} checked, {OneSided} by one-sided differences at kinks" +
            string.Concat(Failures.Take(8).Select(f => $"\n  {f.Tensor}[{f.Index}]: analytic {f.Analytic:G6}, numeric {f.Numeric:G6}, error {f.Error:E2}"));
    }

    /// Asserts that the layer's input gradient and every parameter gradient match central differences at x.
    /// A smaller step suits layers with strong curvature (e.g. normalization over few values).
    public static Report AssertLayer(Layer layer, Tensor x, bool allowKinks = false, bool checkInput = true, ulong seed = 12345, double step = Step)
    {
        var report = Measure(layer, x, allowKinks, checkInput, seed, step);
        Assert.True(report.Passed, $"{layer.TypeName} gradients disagree with central differences: {report}");
        return report;
    }

    public static Report Measure(Layer layer, Tensor x, bool allowKinks = false, bool checkInput = true, ulong seed = 12345, double step = Step)
    {
        var y = new Tensor(layer.OutputShape.WithBatch(x.Batch));
        var rng = new Rng(seed);
        var r = new float[y.Length];
        for (int i = 0; i < r.Length; i++) r[i] = rng.Uniform(-1f, 1f);

        // Analytic: Backward must ADD into Parameter.Gradient, so start from a known non-zero value
        // and subtract it afterwards; dx must be written, so start it as NaN.
        // Backward follows a training forward (max pooling records its argmax there).
        layer.Forward(x, y, training: true);
        const float preset = 0.25f;
        foreach (var p in layer.Parameters) p.Gradient.Fill(preset);
        var dy = new Tensor(y.Shape, (float[])r.Clone());
        var dx = new Tensor(x.Shape);
        dx.Fill(float.NaN);
        layer.Backward(x, y, dy, checkInput ? dx : null);

        double Objective()
        {
            layer.Forward(x, y, training: true);
            double sum = 0;
            for (int i = 0; i < r.Length; i++) sum += (double)y.Data[i] * r[i];
            return sum;
        }

        var failures = new List<Mismatch>();
        double worst = 0;
        int checkedCount = 0, oneSided = 0;
        void Check(string name, float[] values, Func<int, double> analytic)
        {
            double l0 = Objective();
            var differences = new Differences[values.Length];
            for (int i = 0; i < values.Length; i++) differences[i] = Differentiate(values, i, Objective, l0, step);
            double scale = Math.Max(differences.Max(d => Math.Abs(d.Central)), 1e-30);
            double Error(double a, double n) => Math.Abs(a - n) / Math.Max(Math.Abs(n), 0.1 * scale);
            for (int i = 0; i < values.Length; i++)
            {
                double a = analytic(i), n = differences[i].Central;
                double error = Error(a, n);
                if (allowKinks && differences[i].HasKink(scale))
                {
                    // A kink within h: the one-sided difference on the kink-free side is exact for a
                    // piecewise-linear function. Where both sides have one, shrink h tenfold.
                    oneSided++;
                    var d = differences[i];
                    error = Math.Min(Error(a, d.Forward), Error(a, d.Backward));
                    if (error > Tolerance)
                    {
                        d = Differentiate(values, i, Objective, l0, step / 10);
                        error = Math.Min(Error(a, d.Central), Math.Min(Error(a, d.Forward), Error(a, d.Backward)));
                    }
                }
                if (double.IsNaN(error)) error = double.PositiveInfinity;
                checkedCount++;
                worst = Math.Max(worst, error);
                if (error > Tolerance) failures.Add(new Mismatch(name, i, a, n, error));
            }
        }

        if (checkInput) Check("dx", x.Data, i => dx.Data[i]);
        foreach (var p in layer.Parameters)
        {
            var g = p.Gradient.Data;
            Check("d" + p.Name, p.Value.Data, i => (double)g[i] - preset);
        }
        return new Report(worst, checkedCount, oneSided, failures);
    }

    /// Asserts analytic[i] ~ numeric[i] under the same rule as the layer checks (Tolerance, floor 0.1 * scale).
    public static double AssertMatches(string what, ReadOnlySpan<float> analytic, double[] numeric, double tolerance = Tolerance)
    {
        Assert.Equal(numeric.Length, analytic.Length);
        double scale = Math.Max(numeric.Max(Math.Abs), 1e-30), worst = 0;
        for (int i = 0; i < numeric.Length; i++)
        {
            double error = Math.Abs(analytic[i] - numeric[i]) / Math.Max(Math.Abs(numeric[i]), 0.1 * scale);
            if (!(error <= tolerance))
                Assert.Fail($"{what}[{i}]: analytic {analytic[i]:G7}, numeric {numeric[i]:G7}, error {error:E2} > {tolerance:E0}");
            worst = Math.Max(worst, error);
        }
        return worst;
    }

    /// Central and one-sided differences of an objective at one entry of values (restored afterwards).
    public readonly record struct Differences(double Central, double Forward, double Backward)
    {
        /// One-sided differences that disagree beyond noise: a kink lies within the step.
        public bool HasKink(double scale) => Math.Abs(Forward - Backward) > KinkTolerance * scale;
    }

    public static Differences Differentiate(float[] values, int i, Func<double> objective, double l0, double step)
    {
        float v = values[i];
        float vp = (float)(v + step), vm = (float)(v - step);
        values[i] = vp;
        double lp = objective();
        values[i] = vm;
        double lm = objective();
        values[i] = v;
        return new Differences((lp - lm) / ((double)vp - vm), (lp - l0) / ((double)vp - v), (l0 - lm) / ((double)v - vm));
    }

    /// Central differences of objective with respect to every entry of values.
    public static double[] Numeric(float[] values, Func<double> objective, double step = Step)
    {
        var numeric = new double[values.Length];
        for (int i = 0; i < values.Length; i++) numeric[i] = Differentiate(values, i, objective, 0, step).Central;
        return numeric;
    }
}
