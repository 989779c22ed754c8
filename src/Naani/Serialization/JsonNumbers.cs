using System.Globalization;
using System.Text.Json.Nodes;

namespace Naani.Serialization;

/// Doubles in JSON state (checkpoints, callbacks' state): a number when finite (written so that it reads back
/// to the same bits), else the string "NaN", "Infinity" or "-Infinity", which JSON numbers cannot hold.
public static class JsonNumbers
{
    public static JsonNode ToJson(double value) =>
        double.IsFinite(value) ? JsonValue.Create(value) : JsonValue.Create(value.ToString(CultureInfo.InvariantCulture));

    /// The double ToJson wrote; FormatException when node is neither a number nor one of those strings.
    public static double FromJson(JsonNode? node)
    {
        if (node is JsonValue v && v.TryGetValue<string>(out var text))
            return double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var special) && !double.IsFinite(special)
                ? special
                : throw new FormatException($"'{text}' is not a number.");
        try
        {
            return node?.GetValue<double>() ?? throw new FormatException("A number is missing.");
        }
        catch (InvalidOperationException)
        {
            throw new FormatException($"'{node?.ToJsonString()}' is not a number.");
        }
    }
}
