using System.Net;
using Forewarn.Core.Store;
using Forewarn.Relay;
using Forewarn.Server.Health;
using Forewarn.Storage.Sqlite;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Forewarn.Server.Tests;

/// <summary>A real FreeRADIUS as a classic member of the relay's pool: it sends no advisories, so the relay leaves it by timeout and finds it again with Status-Server.</summary>
[Collection(nameof(Serial))]
public sealed class RelayFreeRadiusTests
{
    [SkippableFact]
    public async Task FreeRadius_ServesThroughTheRelay_IsLeftWhenStopped_AndFoundAgainByStatusServer()
    {
        await using var freeradius = await FreeRadiusPeer.StartAsync("127.0.90.5", "127.0.90.19", "classic-secret", "carol", "c4rol");
        var data = Path.Combine(Path.GetTempPath(), "forewarn-relay-fr-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(data);
        using var relay = ServerHost.Build(data, null, new Dictionary<string, string?>
        {
            ["Forewarn:Listen:0"] = "127.0.90.19",
            ["Forewarn:Advisory:Enabled"] = "false",
            ["Forewarn:Relay:AdvisoryPort"] = "1815",
            ["Forewarn:Relay:TimeoutSeconds"] = "1",
            ["Forewarn:Relay:Retries"] = "0",
            ["Forewarn:Relay:StatusServerSeconds"] = "0.5",
            ["Forewarn:Relay:Upstream:0:Address"] = "127.0.90.5",
            ["Forewarn:Relay:Upstream:0:Secret"] = "classic-secret",
        }, LogLevel.Warning, (services, configuration) => services.AddForewarnRelay(configuration));
        await relay.Services.GetRequiredService<IForewarnStore>().AddClientAsync(new ClientRecord("radtest", "127.0.0.1", "testing123", MessageAuthenticator: MessageAuthenticatorPolicy.Optional));
        await relay.StartAsync();
        try
        {
            var status = relay.Services.GetRequiredService<IRelayStatusSource>();
            Task<Peer.Result> RadTest() => Peer.RunAsync("radtest", ["carol", "c4rol", "127.0.90.19:1812", "0", "testing123"]);
            Assert.Contains("Received Access-Accept", (await RadTest()).Output, StringComparison.Ordinal);

            await freeradius.StopProcessAsync();
            Assert.DoesNotContain("Received Access-Accept", (await RadTest()).Output, StringComparison.Ordinal);
            Assert.True(status.Status().Upstreams[0].Dead);

            await freeradius.StartProcessAsync();
            for (int i = 0; i < 50 && status.Status().Upstreams[0].Dead; i++)
                await Task.Delay(100);
            Assert.False(status.Status().Upstreams[0].Dead); // revived by a Status-Server answer, before any request tried it
            Assert.Contains("Received Access-Accept", (await RadTest()).Output, StringComparison.Ordinal);
        }
        finally
        {
            await relay.StopAsync();
            Directory.Delete(data, recursive: true);
        }
    }
}
