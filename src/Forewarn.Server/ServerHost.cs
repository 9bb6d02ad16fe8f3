using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

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
        builder.Logging.AddConfiguration(builder.Configuration.GetSection("Logging"));
        builder.Logging.AddSimpleConsole(o =>
        {
            o.SingleLine = true;
            o.TimestampFormat = "yyyy-MM-ddTHH:mm:ss.fffZ ";
            o.UseUtcTimestamp = true;
        });
        builder.Logging.SetMinimumLevel(minimumLevel);
        // A start that fails (a port in use, a bad setting) is reported by the command in one sentence; the
        // host's own line would repeat it with a stack trace. A service that dies while running still logs (Critical).
        builder.Logging.AddFilter("Microsoft.Extensions.Hosting.Internal.Host", LogLevel.Critical);
        builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromSeconds(30));
        builder.Services.AddSystemd();
        builder.Services.AddForewarnServer(builder.Configuration);
        configure?.Invoke(builder.Services, builder.Configuration);
        return builder.Build();
    }
}
