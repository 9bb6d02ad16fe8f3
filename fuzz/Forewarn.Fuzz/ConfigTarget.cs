using System.Text.Json;
using Forewarn.Cli;
using Forewarn.Core.Aaa;
using Forewarn.Core.Health;
using Forewarn.Server;
using Forewarn.Server.Advisories;
using Forewarn.Server.Eap;
using Forewarn.Server.Health;
using Forewarn.Server.Tacacs;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace Forewarn.Fuzz;

/// <summary>
/// forewarn.json, the data directory's configuration file, as <c>forewarn serve</c> reads it: the JSON
/// provider, the server's services registered from it (<see cref="ServerServices.AddForewarnServer"/>, which
/// first checks each setting's shape), the Logging section read as <see cref="ServerHost"/> reads it, then
/// every options class bound and validated (no socket, store or certificate opened). It validates, or is
/// refused with an error the command line states in one sentence (<see cref="OperatorErrors"/>), never
/// another exception. And what validates holds finite numbers only: NaN or Infinity passes a range check
/// and stops the server later, with a stack trace.
/// </summary>
public static class ConfigTarget
{
    private const string DataDirectory = "/nonexistent/forewarn-fuzz";

    public static void Run(ReadOnlySpan<byte> data)
    {
        IConfiguration configuration;
        try
        {
            configuration = new ConfigurationBuilder()
                .AddJsonStream(new MemoryStream(data.ToArray()))
                .AddInMemoryCollection(new Dictionary<string, string?> { ["Forewarn:DataDirectory"] = DataDirectory })
                .Build();
        }
        catch (Exception e) when (e is JsonException or FormatException)
        {
            // JSON that does not parse (or repeats a key): read from forewarn.json, the file provider wraps this in an InvalidDataException naming the file.
            return;
        }
        try
        {
            Validate(configuration);
        }
        catch (Exception e) when (OperatorErrors.Describe(e) is not null)
        {
        }
    }

    private static void Validate(IConfiguration configuration)
    {
        var services = new ServiceCollection();
        services.AddForewarnServer(configuration);
        ServerHost.CheckLogging(configuration);
        using var provider = services.BuildServiceProvider();
        T Value<T>() where T : class => provider.GetRequiredService<IOptions<T>>().Value;
        // In the order `forewarn serve` reads them; then what starting the host reads.
        _ = Value<ForewarnOptions>();
        var health = Value<HealthOptions>();
        var advisory = Value<AdvisoryOptions>();
        _ = Value<AdminOptions>();
        _ = Value<TacacsOptions>();
        _ = Value<EapOptions>();
        _ = provider.GetRequiredService<SlowWorkOptions>();
        object[] withNumbers = [health, health.Thresholds, advisory, .. health.ClassThresholds.Values];
        foreach (var settings in withNumbers)
        {
            foreach (var property in settings.GetType().GetProperties().Where(p => p.PropertyType == typeof(double)))
            {
                var value = (double)property.GetValue(settings)!;
                Targets.Require(double.IsFinite(value), $"{settings.GetType().Name}.{property.Name} validated as {value}");
            }
        }
    }
}
