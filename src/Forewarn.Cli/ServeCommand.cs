using System.CommandLine;
using System.Globalization;
using Forewarn.Relay;
using Forewarn.Server;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;

namespace Forewarn.Cli;

/// <summary>`forewarn serve` and `forewarn relay`: the same host, the relay with the forwarding handler.</summary>
internal static class ServeCommand
{
    private sealed record HostOptions(
        Option<string[]> Listen, Option<int?> AuthPort, Option<int?> AcctPort, Option<int?> AdvisoryPort, Option<string?> Config, Option<string[]> Set);

    private static HostOptions CommonHostOptions(string advisoryDescription) => new(
        new Option<string[]>("--listen") { Description = "Address to listen on (repeatable; default 127.0.0.1)" },
        CommonOptions.Port("--auth-port", "Authentication port (default 1812; 0 picks a free port)"),
        CommonOptions.Port("--acct-port", "Accounting port (default 1813; 0 picks a free port)"),
        CommonOptions.Port("--advisory-port", advisoryDescription),
        new Option<string?>("--config") { Description = "Configuration file (JSON); forewarn.json in the data directory is read too" },
        new Option<string[]>("--set") { Description = "Override a setting: KEY=VALUE, e.g. Forewarn:Workers=32 (repeatable)" });

    public static Command Create()
    {
        var options = CommonHostOptions("Advisory port: ACKs, Probes and peer health (default 1814; 0 picks a free port)");
        var tacacsPort = CommonOptions.Port("--tacacs-port", "TACACS+ port (default 49, which needs root; 0 picks a free port)");
        var command = new Command("serve", "Run the RADIUS and TACACS+ server") { options.Listen, options.AuthPort, options.AcctPort, options.AdvisoryPort, tacacsPort, options.Config, options.Set };
        command.SetAction((result, cancellationToken) =>
        {
            var overrides = new Dictionary<string, string?>();
            SetTacacsPort(result, tacacsPort, overrides);
            return RunAsync(result, options, "Forewarn:Advisory:Port", overrides, null, cancellationToken);
        });
        return command;
    }

    public static Command CreateRelay()
    {
        var options = CommonHostOptions("Port the relay takes advisories on from its upstream servers (default 1815)");
        var upstream = new Option<string[]>("--upstream")
        {
            Description = "Upstream server ADDRESS:AUTHPORT:ACCTPORT:SECRET[:PRIORITY[:ADVISORYPORT[:TACACSPORT]]] (repeatable; or Forewarn:Relay:Upstream in the configuration)",
        };
        var tacacsPort = CommonOptions.Port("--tacacs-port", "TACACS+ port the relay listens on when an upstream serves TACACS+ (default 49)");
        var command = new Command("relay", "Run a RADIUS and TACACS+ relay for devices that cannot run the client library: it obeys advisories on their behalf")
        {
            options.Listen, options.AuthPort, options.AcctPort, options.AdvisoryPort, tacacsPort, options.Config, options.Set, upstream,
        };
        command.SetAction((result, cancellationToken) =>
        {
            // The relay sends no advisories of its own: its devices could not read them.
            var overrides = new Dictionary<string, string?> { ["Forewarn:Advisory:Enabled"] = "false" };
            SetTacacsPort(result, tacacsPort, overrides);
            var servers = result.GetValue(upstream) ?? [];
            for (int i = 0; i < servers.Length; i++)
            {
                var parts = servers[i].Split(':');
                if (parts.Length < 4)
                    return Task.FromResult(CommonOptions.Fail($"--upstream expects ADDRESS:AUTHPORT:ACCTPORT:SECRET[:PRIORITY[:ADVISORYPORT[:TACACSPORT]]], got '{servers[i]}'."));
                overrides[$"Forewarn:Relay:Upstream:{i}:Address"] = parts[0];
                overrides[$"Forewarn:Relay:Upstream:{i}:AuthPort"] = parts[1];
                overrides[$"Forewarn:Relay:Upstream:{i}:AcctPort"] = parts[2];
                overrides[$"Forewarn:Relay:Upstream:{i}:Secret"] = parts[3];
                if (parts.Length > 4)
                    overrides[$"Forewarn:Relay:Upstream:{i}:Priority"] = parts[4];
                if (parts.Length > 5)
                    overrides[$"Forewarn:Relay:Upstream:{i}:AdvisoryPort"] = parts[5];
                if (parts.Length > 6)
                    overrides[$"Forewarn:Relay:Upstream:{i}:TacacsPort"] = parts[6];
            }
            return RunAsync(result, options, "Forewarn:Relay:AdvisoryPort", overrides, (services, configuration) => services.AddForewarnRelay(configuration), cancellationToken);
        });
        var status = new Command("status", "Show the running relay's upstream servers, moves and accounting spool") { };
        foreach (var option in HealthCommands.ClientOptions())
            status.Options.Add(option);
        status.SetAction((result, cancellationToken) => HealthCommands.CallAsync(result, HttpMethod.Get, "/api/v1/status", cancellationToken));
        command.Subcommands.Add(status);
        return command;
    }

    /// <summary>--tacacs-port: the port, marked as the operator's choice (a port chosen that cannot be opened stops the start).</summary>
    private static void SetTacacsPort(ParseResult result, Option<int?> option, Dictionary<string, string?> overrides)
    {
        if (result.GetValue(option) is not { } port)
            return;
        overrides["Forewarn:Tacacs:Port"] = port.ToString(CultureInfo.InvariantCulture);
        overrides["Forewarn:Tacacs:PortConfigured"] = "true";
    }

    private static async Task<int> RunAsync(ParseResult result, HostOptions options, string advisoryKey, Dictionary<string, string?> overrides,
        Action<IServiceCollection, IConfiguration>? configure, CancellationToken cancellationToken)
    {
        var dataDirectory = DataDirectory.Ensure(CommonOptions.DataDirectoryOf(result));
        var addresses = result.GetValue(options.Listen) ?? [];
        for (int i = 0; i < addresses.Length; i++)
            overrides[$"Forewarn:Listen:{i}"] = addresses[i];
        if (result.GetValue(options.AuthPort) is { } auth)
            overrides["Forewarn:AuthPort"] = auth.ToString(CultureInfo.InvariantCulture);
        if (result.GetValue(options.AcctPort) is { } acct)
            overrides["Forewarn:AcctPort"] = acct.ToString(CultureInfo.InvariantCulture);
        if (result.GetValue(options.AdvisoryPort) is { } advisoryPort)
            overrides[advisoryKey] = advisoryPort.ToString(CultureInfo.InvariantCulture);
        foreach (var pair in result.GetValue(options.Set) ?? [])
        {
            int eq = pair.IndexOf('=', StringComparison.Ordinal);
            if (eq <= 0)
                return CommonOptions.Fail($"--set expects KEY=VALUE, got '{pair}'.");
            if (string.Equals(pair[..eq], "Forewarn:Postgres", StringComparison.OrdinalIgnoreCase) && Storage.Postgres.PostgresStore.Parse(pair[(eq + 1)..]).Password is not null)
                return CommonOptions.Fail("--set Forewarn:Postgres must not carry the password (the process list shows it to every user of this machine): put it in PGPASSWORD, a password file, or forewarn.json.");
            overrides[pair[..eq]] = pair[(eq + 1)..];
        }
        if (CommonOptions.PostgresOf(result) is { } postgres && result.GetValue(CommonOptions.Postgres) is not null)
            overrides["Forewarn:Postgres"] = postgres;
        var configFile = result.GetValue(options.Config);
        if (configFile is not null && !File.Exists(configFile))
            return CommonOptions.Fail($"configuration file '{configFile}' does not exist.");

        using var host = ServerHost.Build(dataDirectory, configFile, overrides, configure: configure);
        string location;
        try
        {
            var store = host.Services.GetRequiredService<Forewarn.Core.Store.IForewarnStore>();
            location = store.Location;
            await ServerServices.SeedDefaultsAsync(store).ConfigureAwait(false);
            _ = host.Services.GetRequiredService<IOptions<ForewarnOptions>>().Value;
            _ = host.Services.GetRequiredService<IOptions<Forewarn.Core.Health.HealthOptions>>().Value;
            _ = host.Services.GetRequiredService<IOptions<Forewarn.Server.Advisories.AdvisoryOptions>>().Value;
            _ = host.Services.GetRequiredService<IOptions<Forewarn.Server.Health.AdminOptions>>().Value;
            _ = host.Services.GetRequiredService<IOptions<Forewarn.Server.Alerts.AlertOptions>>().Value;
            if (configure is not null)
                _ = host.Services.GetRequiredService<IOptions<RelayOptions>>().Value;
        }
        catch (OptionsValidationException e)
        {
            return CommonOptions.Fail("invalid configuration: " + string.Join(" ", e.Failures));
        }
        Console.WriteLine($"Forewarn data directory: {dataDirectory}");
        if (location != Path.Combine(dataDirectory, DataDirectory.DatabaseFile))
            Console.WriteLine($"Forewarn store: {location}");
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
        catch (StartupException e)
        {
            return CommonOptions.Fail(e.Message);
        }
        var server = host.Services.GetRequiredService<RadiusServer>();
        foreach (var (endpoint, port) in server.Endpoints)
            Console.WriteLine($"Ready: {(port == PortKind.Authentication ? "auth" : "acct")} {endpoint}");
        foreach (var (endpoint, tls) in host.Services.GetService<Forewarn.Server.Tacacs.TacacsServer>()?.Endpoints ?? [])
            Console.WriteLine($"Ready: {(tls ? "tacacs-tls" : "tacacs")} {endpoint}");
        if (host.Services.GetRequiredService<Forewarn.Server.Advisories.AdvisoryService>().Endpoint is { } advisory)
            Console.WriteLine($"Ready: advisory {advisory}");
        if (host.Services.GetService<Forewarn.Server.Health.AdminServer>()?.Url is { } console)
        {
            bool noAdmins = new Forewarn.Server.AdminConsole.AdminAccounts(dataDirectory).All().Count == 0;
            Console.WriteLine($"Ready: console {console}/" + (noAdmins ? $" (no administrator yet: forewarn admins add NAME --data {dataDirectory})" : ""));
        }
        if (configure is not null && host.Services.GetService<Forewarn.Client.ForewarnClient>()?.AdvisoryEndpoint is { } upstreamAdvisories)
            Console.WriteLine($"Ready: advisories from upstream servers on {upstreamAdvisories}");
        await host.WaitForShutdownAsync(CancellationToken.None).ConfigureAwait(false);
        return 0;
    }
}
