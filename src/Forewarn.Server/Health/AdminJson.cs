using System.Text.Json;
using System.Text.Json.Serialization;

namespace Forewarn.Server.Health;

/// <summary>JSON as the admin API and the webhook write it: camelCase, enums as names, NaN allowed.</summary>
public static class AdminJson
{
    public static JsonSerializerOptions Options { get; } = Create();

    private static JsonSerializerOptions Create()
    {
        var options = new JsonSerializerOptions(JsonSerializerDefaults.Web)
        {
            NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
            WriteIndented = true,
        };
        options.Converters.Add(new JsonStringEnumConverter());
        options.MakeReadOnly(populateMissingResolver: true);
        return options;
    }
}
