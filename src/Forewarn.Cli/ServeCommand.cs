using System.CommandLine;
using Forewarn.Server;
using Forewarn.Storage.Sqlite;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;

namespace Forewarn.Cli;

internal static class ServeCommand
{
    public static Command Create()
    {
        var listen = new Option<string[]>("--listen") { Description = "Address to listen on (repeatable; default 127.0.0.1)", AllowMultipleArgumentsPerToken = false };
        var authPort = new Option<int?>("--auth-port") { Description = "Authentication port (default 1812; 0 picks a free port)" };
        var acctPort = new Option<int?>("--acct-port") { Description = "Accounting port (default 1813; 0 picks a free port)" };
        var advisoryPort = new Option<int?>("--advisory-port") { Description = "Advisory port: ACKs, Probes and peer health (default 1814; 0 picks a free port)" };
        var config = new Option<string?>("--config") { Description = "Configuration file (JSON); forewarn.json in the data directory is read too" };
        var set = new Option<string[]>("--set") { Description = "Override a setting: KEY=VALUE, e.g. Forewarn:Workers=32 (repeatable)" };
        var command = new Command("serve", "Run the RADIUS server") { listen, authPort, acctPort, advisoryPort, config, set };
        command.SetAction(async (result, cancellationToken) =>
        {
            var dataDirectory = DataDirectory.Ensure(CommonOptions.DataDirectoryOf(result));
            var overrides = new Dictionary<string, string?>();
            var addresses = result.GetValue(listen) ?? [];
            for (int i = 0; i < addresses.Length; i++)
                overrides[$"Forewarn:Listen:{i}"] = addresses[i];
            if (result.GetValue(authPort) is { } auth)
                overrides["Forewarn:AuthPort"] = auth.ToString(System.Globalization.CultureInfo.InvariantCulture);
            if (result.GetValue(acctPort) is { } acct)
                overrides["Forewarn:AcctPort"] = acct.ToString(System.Globalization.CultureInfo.InvariantCulture);
            if (result.GetValue(advisoryPort) is { } advisoryPortValue)
                overrides["Forewarn:Advisory:Port"] = advisoryPortValue.ToString(System.Globalization.CultureInfo.InvariantCulture);
            foreach (var pair in result.GetValue(set) ?? [])
            {
                int eq = pair.IndexOf('=', StringComparison.Ordinal);
                if (eq <= 0)
                    return CommonOptions.Fail($"--set expects KEY=VALUE, got '{pair}'.");
                overrides[pair[..eq]] = pair[(eq + 1)..];
            }
            var configFile = result.GetValue(config);
            if (configFile is not null && !File.Exists(configFile))
                return CommonOptions.Fail($"configuration file '{configFile}' does not exist.");

            using var host = ServerHost.Build(dataDirectory, configFile, overrides);
            try
            {
                var store = host.Services.GetRequiredService<SqliteStore>();
                await ServerServices.SeedDefaultsAsync(store).ConfigureAwait(false);
                _ = host.Services.GetRequiredService<IOptions<ForewarnOptions>>().Value;
                _ = host.Services.GetRequiredService<IOptions<Forewarn.Core.Health.HealthOptions>>().Value;
                _ = host.Services.GetRequiredService<IOptions<Forewarn.Server.Advisories.AdvisoryOptions>>().Value;
            }
            catch (OptionsValidationException e)
            {
                return CommonOptions.Fail("invalid configuration: " + string.Join(" ", e.Failures));
            }
            Console.WriteLine($"Forewarn data directory: {dataDirectory}");
            try
            {
                await host.StartAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (OptionsValidationException e)
            {
                return CommonOptions.Fail("invalid configuration: " + string.Join(" ", e.Failures));
            }
            catch (System.Net.Sockets.SocketException e)
            {
                return CommonOptions.Fail($"cannot listen: {e.Message}");
            }
            var server = host.Services.GetRequiredService<RadiusServer>();
            foreach (var (endpoint, port) in server.Endpoints)
                Console.WriteLine($"Ready: {(port == PortKind.Authentication ? "auth" : "acct")} {endpoint}");
            if (host.Services.GetRequiredService<Forewarn.Server.Advisories.AdvisoryService>().Endpoint is { } advisory)
                Console.WriteLine($"Ready: advisory {advisory}");
            await host.WaitForShutdownAsync(CancellationToken.None).ConfigureAwait(false);
            return 0;
        });
        return command;
    }
}
