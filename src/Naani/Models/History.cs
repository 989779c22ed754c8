namespace Naani.Models;

/// Per-epoch values returned by Fit: History["loss"][epoch], History["val_accuracy"][epoch], ...
public sealed class History
{
    readonly Dictionary<string, List<double>> values = [];

    public IReadOnlyDictionary<string, List<double>> Values => values;
    public int Epochs => values.Count == 0 ? 0 : values.Values.Max(v => v.Count);
    public IReadOnlyList<double> this[string key] => values.TryGetValue(key, out var v) ? v : throw new KeyNotFoundException($"History has no '{key}'; it has: {string.Join(", ", values.Keys)}.");

    /// Replaces one key's values (a checkpoint's history, restored).
    internal void Set(string key, List<double> series) => values[key] = series;

    internal void Add(IReadOnlyDictionary<string, double> logs)
    {
        foreach (var (key, value) in logs)
        {
            if (!values.TryGetValue(key, out var list)) values[key] = list = [];
            list.Add(value);
        }
    }
}
