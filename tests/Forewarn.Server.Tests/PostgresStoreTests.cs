using System.Diagnostics;
using Forewarn.Core.Store;
using Forewarn.Storage.Postgres;

namespace Forewarn.Server.Tests;

/// <summary>The PostgreSQL store against a real PostgreSQL: the same behaviour as SQLite's, shared by several processes.</summary>
public sealed class PostgresStoreTests
{
    private static AccountingRecord Record(string key, string user = "alice") =>
        new(0, DateTimeOffset.UtcNow, "nas1", "127.0.0.1", user, "s-" + key, 1, "User-Name = " + user + "\n", key.PadLeft(64, '0'));

    [SkippableFact]
    public async Task ServersStartingTogether_MigrateOnce_AndShareUsersClientsAndVersions()
    {
        var cluster = await PostgresCluster.SharedAsync();
        var connection = cluster.ConnectionString(await cluster.CreateDatabaseAsync());
        var opened = await Task.WhenAll(Enumerable.Range(0, 3).Select(_ => PostgresStore.OpenAsync(connection)));
        try
        {
            var (a, b) = (opened[0], opened[1]);
            Assert.All(opened, s => Assert.Equal(3, s.SchemaVersion));
            Assert.True(await a.PingAsync());
            long users = await b.UsersVersionAsync(), clients = await b.ClientsVersionAsync();

            var user = new UserRecord("alice", AuthMethods.Pap, new Credential("hash", [1, 2, 3], null), "staff",
                [new ReplyItem("Session-Timeout", "3600")], [new CheckItem("NAS-IP-Address", CheckOperator.Equal, "10.0.0.1")]);
            Assert.True(await a.AddUserAsync(user));
            Assert.False(await a.AddUserAsync(user));
            var seen = await b.FindUserAsync("alice");
            Assert.NotNull(seen);
            Assert.Equal(user.Credential.PasswordHash, seen!.Credential.PasswordHash);
            Assert.Equal([1, 2, 3], seen.Credential.NtHash);
            Assert.Equal("3600", Assert.Single(seen.Reply).Value);
            Assert.Equal(CheckOperator.Equal, Assert.Single(seen.Checks).Operator);
            Assert.Null(await b.FindUserAsync("Alice"));
            Assert.True(await b.UsersVersionAsync() > users);

            await a.SetGroupAsync(new GroupRecord("staff", [new ReplyItem("Class", "staff")], []));
            Assert.Equal("staff", (await b.FindGroupAsync("staff"))!.Reply[0].Value);
            await a.SetCommandSetAsync(new CommandSet("read-only", [new CommandRule(true, "show *")]));
            Assert.True((await b.FindCommandSetAsync("read-only"))!.Rules[0].Permit);

            var (added, replaced) = await b.ImportUsersAsync([user with { Enabled = false }, user with { Name = "bob" }]);
            Assert.Equal((1, 1), (added, replaced));
            Assert.False((await a.FindUserAsync("alice"))!.Enabled);
            Assert.True(await a.RemoveUserAsync("bob"));
            Assert.Equal(["alice"], (await b.ListUsersAsync()).Select(u => u.Name));

            Assert.True(await a.AddClientAsync(new ClientRecord("nas1", "10.0.0.1", "s3cret", "branch", MessageAuthenticatorPolicy.Require, TacacsUnencrypted: true)));
            Assert.False(await b.AddClientAsync(new ClientRecord("nas1-again", "10.0.0.1", "other")));
            var client = Assert.Single(await b.ListClientsAsync());
            Assert.Equal(("nas1", "branch", MessageAuthenticatorPolicy.Require, true), (client.Name, client.DeviceGroup, client.MessageAuthenticator, client.TacacsUnencrypted));
            Assert.True(await b.ClientsVersionAsync() > clients);
        }
        finally
        {
            foreach (var store in opened)
                store.Dispose();
        }
    }

    /// <summary>
    /// A retransmission stored by another server is recognised by the database's unique key, within a batch
    /// as across servers; the count returned is what was new.
    /// </summary>
    [SkippableFact]
    public async Task AccountingFromSeveralServers_IsStoredOnceEach()
    {
        var cluster = await PostgresCluster.SharedAsync();
        var connection = cluster.ConnectionString(await cluster.CreateDatabaseAsync());
        using var a = await PostgresStore.OpenAsync(connection);
        using var b = await PostgresStore.OpenAsync(connection);
        Assert.Equal(3, await a.AppendBatchAsync([Record("1"), Record("2"), Record("3"), Record("2")]));
        Assert.Equal(1, await b.AppendBatchAsync([Record("3"), Record("4"), Record("1")]));
        var appends = await Task.WhenAll(Enumerable.Range(0, 4).Select(i => (i % 2 == 0 ? a : b).AppendBatchAsync([Record("5"), Record("6")])));
        Assert.Equal(2, appends.Sum());
        var stored = await a.QueryAsync(new AccountingQuery(Limit: 100));
        Assert.Equal(["1", "2", "3", "4", "5", "6"], stored.Select(r => r.DedupKey.TrimStart('0')).Order());
        Assert.Equal(6, (await b.QueryAsync(new AccountingQuery(UserName: "alice", Client: "nas1"))).Count);
        // A NUL-terminated User-Name (some NASes send one) is stored, not a failed batch.
        Assert.Equal(1, await a.AppendBatchAsync([Record("8", user: "nul\0")]));
        Assert.Null(await a.FindUserAsync("alice\0"));
        await a.ProbeWriteAsync();

        // The window is five minutes, as SQLite's: the same event four minutes on is a retransmission (even
        // across a bucket's edge), seven minutes on a new one (a NAS's identical Accounting-On after a reboot).
        var at = DateTimeOffset.UtcNow;
        Assert.Equal(1, await a.AppendBatchAsync([Record("7") with { ReceivedAt = at }]));
        Assert.Equal(0, await b.AppendBatchAsync([Record("7") with { ReceivedAt = at.AddMinutes(4) }]));
        Assert.Equal(1, await b.AppendBatchAsync([Record("7") with { ReceivedAt = at.AddMinutes(7) }]));

        // The relay's spool, in order.
        long first = a.Spool("nas1", [1, 2]);
        b.Spool("nas1", [3]);
        Assert.Equal(2, a.SpoolDepth());
        Assert.Equal([first], a.PeekSpool(1).Select(s => s.Id));
        b.Unspool(first);
        Assert.Equal([3], Assert.Single(a.PeekSpool(10)).Attributes);
    }

    /// <summary>A change committed by one process wakes another's listener within a second (LISTEN/NOTIFY), not at the next poll.</summary>
    [SkippableFact]
    public async Task AChangeIsAnnounced_ToTheOtherServers_WithinASecond()
    {
        var cluster = await PostgresCluster.SharedAsync();
        var connection = cluster.ConnectionString(await cluster.CreateDatabaseAsync());
        using var listener = await PostgresStore.OpenAsync(connection);
        using var writer = await PostgresStore.OpenAsync(connection);
        // The first wait connects the listener (which counts as a change: nothing announced before it was heard).
        await listener.WaitForChangeAsync(TimeSpan.FromSeconds(10), CancellationToken.None);
        Assert.Equal(1, listener.ListenerConnects);
        for (int i = 0; i < 3; i++)
        {
            var wait = listener.WaitForChangeAsync(TimeSpan.FromSeconds(30), CancellationToken.None);
            await Task.Delay(100);
            Assert.False(wait.IsCompleted, "woken with no change");
            var clock = Stopwatch.StartNew();
            await writer.AddClientAsync(new ClientRecord("nas" + i, "10.0.1." + i, "s"));
            await wait;
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(1), $"the change took {clock.ElapsedMilliseconds} ms to be announced");
        }
    }
}
