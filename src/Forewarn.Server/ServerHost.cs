using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Console;
using Microsoft.Extensions.Options;

namespace Forewarn.Server;

/// <summary>
/// Builds the Generic Host that <c>forewarn serve</c> runs (and tests start in-process): configuration
/// from forewarn.json in the data directory, an optional extra file, environment variables
/// (FOREWARN__AUTHPORT), then the command line's overrides; console logs; systemd notify.
/// </summary>
public static class ServerHost
{
    public static IHost Build(string dataDirectory, string? configFile, IReadOnlyDictionary<string, string?> overrides, LogLevel minimumLevel = LogLevel.Information,
        Action<IServiceCollection, IConfiguration>? configure = null)
    {
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true, ContentRootPath = dataDirectory });
        builder.Configuration.AddJsonFile(Path.Combine(dataDirectory, DataDirectory.ConfigFile), optional: true);
        if (configFile is not null)
            builder.Configuration.AddJsonFile(Path.GetFullPath(configFile), optional: false);
        builder.Configuration.AddEnvironmentVariables();
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>(overrides) { ["Forewarn:DataDirectory"] = dataDirectory });
        AddLogging(builder.Logging, builder.Configuration, minimumLevel);
        builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromSeconds(30));
        builder.Services.AddSystemd();
        builder.Services.AddForewarnServer(builder.Configuration);
        configure?.Invoke(builder.Services, builder.Configuration);
        CheckLogging(builder.Configuration);
        return builder.Build();
    }

    /// <summary>
    /// Reads the Logging section as the logger factory will when the host is built: a level that is none
    /// (Verbose) or a console setting out of range is then one sentence, not a stack trace from the host.
    /// </summary>
    public static void CheckLogging(IConfiguration configuration)
    {
        var services = new ServiceCollection();
        services.AddLogging(logging => AddLogging(logging, configuration, LogLevel.Information));
        using var provider = services.BuildServiceProvider();
        try
        {
            _ = provider.GetRequiredService<IOptionsMonitor<LoggerFilterOptions>>().CurrentValue;
            _ = provider.GetRequiredService<IOptionsMonitor<ConsoleLoggerOptions>>().CurrentValue;
            _ = provider.GetServices<ConsoleFormatter>().Count();
        }
        catch (Exception e) when (e is InvalidOperationException or ArgumentException)
        {
            // The options' own messages: "Configuration value 'Verbose' is not supported.", "... (Parameter 'value must be larger than zero.')".
            throw new StartupException($"invalid configuration in the Logging section: {e.Message}");
        }
    }

    /// <summary>Console logs, single lines in UTC, levels from the configuration's <c>Logging</c> section.</summary>
    private static void AddLogging(ILoggingBuilder logging, IConfiguration configuration, LogLevel minimumLevel)
    {
        logging.AddConfiguration(configuration.GetSection("Logging"));
        logging.AddSimpleConsole(o =>
        {
            o.SingleLine = true;
            o.TimestampFormat = "yyyy-MM-ddTHH:mm:ss.fffZ ";
            o.UseUtcTimestamp = true;
        });
        logging.SetMinimumLevel(minimumLevel);
        // A start that fails (a port in use, a bad setting) is reported by the command in one sentence; the
        // host's own line would repeat it with a stack trace. A service that dies while running still logs (Critical).
        logging.AddFilter("Microsoft.Extensions.Hosting.Internal.Host", LogLevel.Critical);
    }
}
