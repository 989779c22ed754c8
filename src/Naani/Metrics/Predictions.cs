namespace Naani.Metrics;

/// Turns a model's output into class indices.
public static class Predictions
{
    /// The predicted class of each row of probabilities, (N, K) or (N): the index of the largest value (the first
    /// on ties, as numpy's argmax), or, when each row holds a single sigmoid output, 1 when p >= 0.5 and 0 otherwise.
    public static int[] ArgMax(Tensor probabilities)
    {
        ArgumentNullException.ThrowIfNull(probabilities);
        if (probabilities.Rank is not (1 or 2))
            throw new ArgumentException($"Expected probabilities of shape (N, classes) or (N); got {probabilities.Shape}.", nameof(probabilities));
        int n = probabilities.Batch;
        int k = probabilities.Rank == 1 ? 1 : probabilities.Shape[1];
        var p = probabilities.Data;
        var classes = new int[n];
        for (int i = 0; i < n; i++)
        {
            if (k == 1)
            {
                classes[i] = p[i] >= 0.5f ? 1 : 0;
                continue;
            }
            int best = 0;
            float bestValue = p[i * k];
            for (int j = 1; j < k; j++)
            {
                if (p[i * k + j] > bestValue)
                {
                    best = j;
                    bestValue = p[i * k + j];
                }
            }
            classes[i] = best;
        }
        return classes;
    }
}
