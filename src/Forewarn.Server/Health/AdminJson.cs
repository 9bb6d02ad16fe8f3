using System.Text.Json;
using System.Text.Json.Serialization;

namespace Forewarn.Server.Health;

/// <summary>JSON as the admin API and the webhook write it: camelCase, enums as names, NaN allowed.</summary>
public static class AdminJson
{
    public static JsonSerializerOptions Options { get; } = Create(indented: true);

    /// <summary>The same on one line: the audit log's entries, the console's frequent reads.</summary>
    public static JsonSerializerOptions Compact { get; } = Create(indented: false);

    private static JsonSerializerOptions Create(bool indented)
    {
        var options = new JsonSerializerOptions(JsonSerializerDefaults.Web)
        {
            NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
            WriteIndented = indented,
        };
        options.Converters.Add(new JsonStringEnumConverter());
        options.MakeReadOnly(populateMissingResolver: true);
        return options;
    }
}
