using System.Diagnostics;
using Forewarn.Core.Store;
using Forewarn.Storage.Postgres;

namespace Forewarn.Server.Tests;

/// <summary>
/// Three `forewarn serve` processes on one real PostgreSQL (no peer list, no shared files but the sealing
/// key), each on an address of its own: they find each other in the database and name each other as
/// alternates; a user added with the command line authenticates on every server within a second, with PAP and
/// with CHAP (whose sealed password needs the shared key); one accounting record sent to all three is
/// stored once; a password on the command line is refused.
/// </summary>
[Collection(nameof(Serial))]
public sealed class PostgresClusterTests(Xunit.Abstractions.ITestOutputHelper output) : IDisposable
{
    private static readonly string Forewarn = Path.Combine(AppContext.BaseDirectory, "forewarn.dll");
    private readonly string _root = Path.Combine(Path.GetTempPath(), "forewarn-cluster-" + Guid.NewGuid().ToString("N")[..12]);

    public void Dispose()
    {
        try
        {
            Directory.Delete(_root, recursive: true);
        }
        catch (IOException)
        {
        }
    }

    private static Task<Peer.Result> Login(ServerProcess server, string password, bool chap = false) =>
        Peer.RunAsync("radclient", ["-r", "1", "-t", "2", $"{server.Address}:{server.AuthPort}", "auth", "testing123"],
            $"User-Name = \"carol\", {(chap ? "CHAP-Password" : "User-Password")} = \"{password}\"\n");

    private static async Task WaitForAsync(Func<Task<bool>> condition, string what)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
        while (!await condition())
        {
            Assert.True(DateTime.UtcNow < deadline, "timed out waiting until " + what);
            await Task.Delay(200);
        }
    }

    [SkippableFact]
    public async Task ThreeServers_OneDatabase_UsersEverywhereWithinASecond_AccountingStoredOnce()
    {
        Requires.Program("radclient");
        var cluster = await PostgresCluster.SharedAsync();
        var postgres = cluster.ConnectionString(await cluster.CreateDatabaseAsync());

        // The operator refuses to type the password where the process list shows it.
        var refused = await Peer.RunAsync("/usr/bin/env", ["dotnet", Forewarn, "users", "list", "--postgres", postgres + ";Password=" + PostgresCluster.Password]);
        Assert.NotEqual(0, refused.ExitCode);
        Assert.Contains("must not carry the password", refused.Error, StringComparison.Ordinal);
        Assert.DoesNotContain(PostgresCluster.Password, refused.Error + refused.Output, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", refused.Error, StringComparison.Ordinal);

        // One sealing key for the cluster (CHAP needs the cleartext back): made once, copied to each server.
        var data = Enumerable.Range(1, 3).Select(i => Path.Combine(_root, "server" + i)).ToArray();
        foreach (var directory in data)
            Directory.CreateDirectory(directory);
        _ = Core.Aaa.PasswordSealer.FromKeyFile(Path.Combine(data[0], DataDirectory.KeyFile));
        foreach (var directory in data.Skip(1))
            File.Copy(Path.Combine(data[0], DataDirectory.KeyFile), Path.Combine(directory, DataDirectory.KeyFile));

        // Each server on an address of its own (peers are known by address), with no peer list: membership comes from the database.
        using (var setup = await PostgresStore.OpenAsync(postgres))
            await setup.AddClientAsync(new ClientRecord("loopback", "127.0.0.0/8", "testing123"));
        var servers = await Task.WhenAll(data.Select((d, i) => ServerProcess.StartAsync(d, "--postgres", postgres, "--listen", $"127.0.0.{11 + i}")));
        try
        {
            // Each names the other two as alternates (their PEERHEALTH arrives, signed with the cluster's key).
            await WaitForAsync(async () => (await Task.WhenAll(servers.Select(s => s.StatusAsync()))).All(st => st.Advisory!.Alternates.Count == 2), "every server names two alternates");
            var alternates = (await servers[0].StatusAsync()).Advisory!.Alternates;
            Assert.Contains(alternates, a => a.StartsWith($"127.0.0.12:{servers[1].AuthPort} ", StringComparison.Ordinal));
            Assert.Contains(alternates, a => a.StartsWith($"127.0.0.13:{servers[2].AuthPort} ", StringComparison.Ordinal));

            // Unknown everywhere first: each server caches the "no such user" answer.
            foreach (var server in servers)
                Assert.Contains("Access-Reject", (await Login(server, "pw")).Output, StringComparison.Ordinal);

            var add = await Peer.RunAsync("/usr/bin/env", ["dotnet", Forewarn, "users", "add", "carol", "--password", "-", "--methods", "pap,chap", "--data", data[0], "--postgres", postgres], "pw\n");
            Assert.True(add.ExitCode == 0, add.ToString());
            var clock = Stopwatch.StartNew();
            var acceptedAt = new double[servers.Length];
            await Task.WhenAll(servers.Select(async (server, i) =>
            {
                while (!(await Login(server, "pw")).Output.Contains("Access-Accept", StringComparison.Ordinal))
                {
                    Assert.True(clock.Elapsed < TimeSpan.FromSeconds(5), $"server {i + 1} still rejects the new user after 5 s");
                    await Task.Delay(20);
                }
                acceptedAt[i] = clock.Elapsed.TotalMilliseconds;
            }));
            output.WriteLine("accepted after " + string.Join(", ", acceptedAt.Select(t => $"{t:0} ms")));
            Assert.True(acceptedAt.Max() < 1000, "accepted after " + string.Join(", ", acceptedAt.Select(t => $"{t:0} ms")));
            foreach (var server in servers)
            {
                Assert.Contains("Access-Accept", (await Login(server, "pw", chap: true)).Output, StringComparison.Ordinal);
                Assert.Contains("Access-Reject", (await Login(server, "wrong")).Output, StringComparison.Ordinal);
            }

            // The same accounting request to every server (a NAS failing over, retransmitting): stored once.
            var request = Path.Combine(_root, "acct.txt");
            await File.WriteAllTextAsync(request, "Acct-Status-Type = Start, Acct-Session-Id = \"c-1\", User-Name = \"carol\", NAS-IP-Address = 127.0.0.1\n");
            foreach (var server in servers)
            {
                var sent = await Peer.RunAsync("radclient", ["-r", "1", "-t", "3", "-f", request, $"{server.Address}:{server.AcctPort}", "acct", "testing123"]);
                Assert.True(sent.Output.Contains("Accounting-Response", StringComparison.Ordinal), sent.ToString());
            }
            await File.WriteAllTextAsync(request, "Acct-Status-Type = Stop, Acct-Session-Id = \"c-1\", User-Name = \"carol\", NAS-IP-Address = 127.0.0.1\n");
            Assert.Contains("Accounting-Response", (await Peer.RunAsync("radclient", ["-r", "1", "-t", "3", "-f", request, $"{servers[2].Address}:{servers[2].AcctPort}", "acct", "testing123"])).Output, StringComparison.Ordinal);
            using var store = await PostgresStore.OpenAsync(postgres);
            var stored = await store.QueryAsync(new AccountingQuery(UserName: "carol"));
            Assert.Equal([1u, 2u], stored.Select(r => r.StatusType));

            // The command line reads the same database (from the data directory's forewarn.json this time).
            await File.WriteAllTextAsync(Path.Combine(data[1], DataDirectory.ConfigFile), $$"""{ "Forewarn": { "Postgres": "{{postgres}}" } }""");
            var listed = await Peer.RunAsync("/usr/bin/env", ["dotnet", Forewarn, "accounting", "list", "--user", "carol", "--data", data[1]]);
            Assert.True(listed.ExitCode == 0, listed.ToString());
            Assert.Contains("c-1", listed.Output, StringComparison.Ordinal);

            // A server that stops leaves the others' alternates.
            Assert.Equal(0, await servers[2].TerminateAsync());
            await WaitForAsync(async () => (await servers[0].StatusAsync()).Advisory!.Alternates.Count == 1, "the stopped server leaves the alternates");
        }
        finally
        {
            foreach (var server in servers)
                await server.DisposeAsync();
        }
    }
}
