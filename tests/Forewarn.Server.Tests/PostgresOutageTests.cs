using System.Text;
using Forewarn.Core.Store;
using Forewarn.Storage.Postgres;

namespace Forewarn.Server.Tests;

/// <summary>
/// Accounting that survives its database: with PostgreSQL stopped, radclient's accounting is still
/// answered (from the local spill), and lands in the database once, in order, when it returns, also
/// after the server was killed with -9 during the outage.
/// </summary>
[Collection(nameof(Serial))]
public sealed class PostgresOutageTests(Xunit.Abstractions.ITestOutputHelper output) : IDisposable
{
    private readonly string _data = Path.Combine(Path.GetTempPath(), "forewarn-pgout-" + Guid.NewGuid().ToString("N")[..12]);

    public void Dispose()
    {
        try
        {
            Directory.Delete(_data, recursive: true);
        }
        catch (IOException)
        {
        }
    }

    private Task<int> SendAsync(ServerProcess server, IEnumerable<string> sessions) => new AccountingSender(_data, server).SendAsync(sessions);

    private static async Task<List<string>> StoredSessionsAsync(string postgres, int expected)
    {
        using var store = await PostgresStore.OpenAsync(postgres);
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
        while (true)
        {
            var stored = (await store.QueryAsync(new AccountingQuery(UserName: "dave", Limit: 10_000))).Select(r => r.SessionId!).ToList();
            if (stored.Count >= expected || DateTime.UtcNow > deadline)
                return stored;
            await Task.Delay(200);
        }
    }

    [SkippableFact]
    public async Task DatabaseDown_AccountingIsAcknowledgedFromTheSpill_AndLandsOnceInOrder_EvenAcrossKill9()
    {
        Requires.Program("radclient");
        var cluster = await PostgresCluster.PrivateAsync();
        try
        {
            var postgres = cluster.ConnectionString(await cluster.CreateDatabaseAsync());
            Directory.CreateDirectory(_data);
            string[] settings = ["--postgres", postgres, "--set", "Forewarn:AccountingSpillAfterMs=500"];
            var server = await ServerProcess.StartAsync(_data, settings);
            try
            {
                Assert.Equal(1, await SendAsync(server, ["s-000"]));
                Assert.Equal(["s-000"], await StoredSessionsAsync(postgres, 1));

                // Outage 1, the server running throughout: 20 records and a retransmission, all answered.
                await cluster.StopServerAsync();
                var first = Enumerable.Range(1, 20).Select(i => $"s-{i:000}").ToList();
                Assert.Equal(20, await SendAsync(server, first));
                Assert.Equal(1, await SendAsync(server, ["s-005"]));
                // Meanwhile the zone shows it: the accounting sink (and the user store) failing their checks.
                var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
                while (!(await server.StatusAsync()).Health.Probes.Any(p => p.Name == "accounting-sink" && !p.Healthy))
                {
                    Assert.True(DateTime.UtcNow < deadline, "the accounting sink still reads healthy with its database stopped");
                    await Task.Delay(250);
                }
                await cluster.StartServerAsync();
                var stored = await StoredSessionsAsync(postgres, 21);
                Assert.Equal(["s-000", .. first], stored);

                // Outage 2: acknowledged, then the server killed before it could replay; started again after the database.
                await cluster.StopServerAsync();
                var second = Enumerable.Range(21, 10).Select(i => $"s-{i:000}").ToList();
                Assert.Equal(10, await SendAsync(server, second));
                await server.KillAsync();
            }
            finally
            {
                await server.DisposeAsync();
            }
            await cluster.StartServerAsync();
            await using var restarted = await ServerProcess.StartAsync(_data, settings);
            var all = await StoredSessionsAsync(postgres, 31);
            output.WriteLine($"stored {all.Count}: {string.Join(" ", all)}");
            Assert.Equal(Enumerable.Range(0, 31).Select(i => $"s-{i:000}"), all);
            // Later records go straight to the database again.
            Assert.Equal(1, await SendAsync(restarted, ["s-031"]));
            Assert.Equal(32, (await StoredSessionsAsync(postgres, 32)).Count);
        }
        finally
        {
            await cluster.StopServerAsync();
        }
    }
    [SkippableFact]
    public async Task ARecordTheDatabaseRefuses_IsSetAsideAndAlerted_AndTheRecordsBehindItAreStoredInOrder()
    {
        Requires.Program("radclient");
        var cluster = await PostgresCluster.SharedAsync();
        var postgres = cluster.ConnectionString(await cluster.CreateDatabaseAsync());
        Directory.CreateDirectory(_data);
        await using var server = await ServerProcess.StartAsync(_data, "--postgres", postgres, "--set", "Forewarn:AccountingSpillAfterMs=500");
        // A rule a DBA added that one session's records break: the database refuses them for what they hold.
        await using (var connection = new Npgsql.NpgsqlConnection(postgres))
        {
            await connection.OpenAsync();
            await using var constraint = new Npgsql.NpgsqlCommand("ALTER TABLE accounting ADD CONSTRAINT no_poison CHECK (session_id IS DISTINCT FROM 's-poison')", connection);
            await constraint.ExecuteNonQueryAsync();
        }
        Assert.Equal(4, await SendAsync(server, ["s-001", "s-poison", "s-002", "s-003"]));
        Assert.Equal(["s-001", "s-002", "s-003"], await StoredSessionsAsync(postgres, 3));
        var setAside = Path.Combine(_data, SpillingAccountingStore.SetAsideFile);
        var line = Assert.Single(await File.ReadAllLinesAsync(setAside));
        output.WriteLine(line);
        Assert.Contains("s-poison", line, StringComparison.Ordinal);
        Assert.Contains("no_poison", line, StringComparison.Ordinal);
        var status = await server.StatusAsync();
        Assert.Contains(status.Health.RecentAlerts, a => a.Source == "accounting-spill" && a.Message.Contains("s-poison", StringComparison.Ordinal));
        // Nothing is left spilled: the next record goes straight to the database.
        Assert.Equal(1, await SendAsync(server, ["s-004"]));
        Assert.Equal(["s-001", "s-002", "s-003", "s-004"], await StoredSessionsAsync(postgres, 4));
        Assert.Single(await File.ReadAllLinesAsync(setAside));
    }
}

/// <summary>
/// High availability of the database itself: a primary and a streaming replica behind one multi-host
/// connection string (Target Session Attributes=read-write). The primary is stopped and the replica
/// promoted under radclient's accounting: the server finds the new primary, and every acknowledged record
/// is in it once (those acknowledged in between from the local spill).
/// </summary>
[Collection(nameof(Serial))]
public sealed class PostgresFailoverTests : IDisposable
{
    private readonly string _data = Path.Combine(Path.GetTempPath(), "forewarn-pgha-" + Guid.NewGuid().ToString("N")[..12]);

    public void Dispose()
    {
        try
        {
            Directory.Delete(_data, recursive: true);
        }
        catch (IOException)
        {
        }
    }

    [SkippableFact]
    public async Task PrimaryStopped_ReplicaPromoted_NoAcknowledgedRecordLost()
    {
        Requires.Program("radclient");
        var primary = await PostgresCluster.PrivateAsync();
        PostgresCluster? replica = null;
        try
        {
            var database = await primary.CreateDatabaseAsync();
            replica = await primary.StartReplicaAsync();
            var postgres = $"Host=127.0.0.1:{primary.Port},127.0.0.1:{replica.Port};Database={database};Username={PostgresCluster.User};Passfile={primary.PasswordFile};Target Session Attributes=read-write";
            Directory.CreateDirectory(_data);
            await using var server = await ServerProcess.StartAsync(_data, "--postgres", postgres, "--set", "Forewarn:AccountingSpillAfterMs=500");
            var sender = new AccountingSender(_data, server);
            Assert.Equal(10, await sender.SendAsync(Enumerable.Range(0, 10).Select(i => $"s-{i:000}")));

            await primary.StopServerAsync();
            Assert.Equal(10, await sender.SendAsync(Enumerable.Range(10, 10).Select(i => $"s-{i:000}")));
            await replica.PromoteAsync();
            Assert.Equal(10, await sender.SendAsync(Enumerable.Range(20, 10).Select(i => $"s-{i:000}")));

            using var store = await PostgresStore.OpenAsync(postgres);
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
            List<string> stored;
            while ((stored = [.. (await store.QueryAsync(new AccountingQuery(UserName: "dave", Limit: 1000))).Select(r => r.SessionId!)]).Count < 30 && DateTime.UtcNow < deadline)
                await Task.Delay(250);
            Assert.Equal(Enumerable.Range(0, 30).Select(i => $"s-{i:000}"), stored);
        }
        finally
        {
            if (replica is not null)
                await replica.StopServerAsync();
        }
    }
}

/// <summary>Accounting Starts from radclient, one at a time (each acknowledged before the next).</summary>
internal sealed class AccountingSender(string directory, ServerProcess server)
{
    public async Task<int> SendAsync(IEnumerable<string> sessions)
    {
        var file = Path.Combine(directory, "acct-" + Guid.NewGuid().ToString("N")[..6] + ".txt");
        var text = new StringBuilder();
        foreach (var session in sessions)
            text.Append($"Acct-Status-Type = Start, Acct-Session-Id = \"{session}\", User-Name = \"dave\", NAS-IP-Address = 127.0.0.1\n\n");
        await File.WriteAllTextAsync(file, text.ToString());
        var r = await Peer.RunAsync("radclient", ["-x", "-r", "1", "-t", "5", "-p", "1", "-f", file, $"127.0.0.1:{server.AcctPort}", "acct", "testing123"], timeoutMs: 120_000);
        return r.Output.Split('\n').Count(l => l.StartsWith("Received Accounting-Response", StringComparison.Ordinal));
    }
}
