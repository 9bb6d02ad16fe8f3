using System.Diagnostics;
using Npgsql;

namespace Forewarn.Server.Tests;

/// <summary>
/// A FreeRADIUS+SQL site's own tables (FreeRADIUS 3.2's PostgreSQL schema.sql, as Debian ships it), the same
/// rows given to Forewarn (Forewarn:FreeRadiusSchema) and to FreeRADIUS itself with rlm_sql: both answer the
/// same logins the same way, with the same replies, and write the same radacct rows for the same accounting.
/// </summary>
[Collection(nameof(Serial))]
public sealed class FreeRadiusSchemaTests(Xunit.Abstractions.ITestOutputHelper output) : IDisposable
{
    private const string Schema = "/etc/freeradius/3.0/mods-config/sql/main/postgresql/schema.sql";
    private static readonly string Forewarn = Path.Combine(AppContext.BaseDirectory, "forewarn.dll");
    private readonly string _root = Path.Combine(Path.GetTempPath(), "forewarn-frschema-" + Guid.NewGuid().ToString("N")[..12]);

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

    private static async Task SqlAsync(string connectionString, string sql)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        await command.ExecuteNonQueryAsync();
    }

    private static async Task<List<string>> RowsAsync(string connectionString, string sql)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        await using var reader = await command.ExecuteReaderAsync();
        var rows = new List<string>();
        while (await reader.ReadAsync())
            rows.Add(string.Join(" | ", Enumerable.Range(0, reader.FieldCount).Select(i => reader.IsDBNull(i) ? "NULL" : Convert.ToString(reader.GetValue(i), System.Globalization.CultureInfo.InvariantCulture))));
        return rows;
    }

    private static string SiteRows()
    {
        Span<byte> nt = stackalloc byte[16];
        Protocol.Auth.MsChap.NtPasswordHash("bob-pw", nt);
        return $"""
            INSERT INTO radcheck (username, attribute, op, value) VALUES
              ('alice', 'Cleartext-Password', ':=', 'alice-pw'),
              ('bob', 'NT-Password', ':=', '{Convert.ToHexString(nt)}'),
              ('carol', 'Cleartext-Password', ':=', 'carol-pw'),
              ('erin', 'Cleartext-Password', ':=', 'erin-pw'),
              ('erin', 'NAS-Port-Type', '==', 'Ethernet'),
              ('dave', 'Cleartext-Password', ':=', 'dave-pw'),
              ('dave', 'Simultaneous-Use', ':=', '1');
            INSERT INTO radreply (username, attribute, op, value) VALUES ('alice', 'Session-Timeout', '=', '3600');
            INSERT INTO radusergroup (username, groupname, priority) VALUES ('alice', 'staff', 1), ('alice', 'vpn', 2), ('carol', 'disabled', 0);
            INSERT INTO radgroupreply (groupname, attribute, op, value) VALUES
              ('staff', 'Reply-Message', '+=', 'hello staff'), ('staff', 'Session-Timeout', '=', '60'), ('vpn', 'Idle-Timeout', '=', '300'),
              ('vpn', 'Fall-Through', '=', 'Yes'), ('vpn', 'Reply-Message', '+=', 'hello vpn');
            INSERT INTO radusergroup (username, groupname, priority) VALUES ('erin', 'vpn', 1), ('erin', 'staff', 2);
            INSERT INTO radgroupcheck (groupname, attribute, op, value) VALUES ('disabled', 'Auth-Type', ':=', 'Reject');
            INSERT INTO nas (nasname, shortname, secret) VALUES ('127.0.0.0/8', 'lab', 'testing123');
            """;
    }

    /// <summary>The answer's code and the reply attributes both servers are asked for, as radclient prints them.</summary>
    private static async Task<string> AskAsync(string server, string request)
    {
        var result = await Peer.RunAsync("radclient", ["-x", "-r", "2", "-t", "2", server, "auth", "testing123"], request + "\n");
        var lines = result.Output.Split('\n').SkipWhile(l => !l.StartsWith("Received", StringComparison.Ordinal)).Select(l => l.Trim());
        string code = result.Output.Contains("Access-Accept", StringComparison.Ordinal) ? "Accept"
            : result.Output.Contains("Access-Reject", StringComparison.Ordinal) ? "Reject" : "no answer";
        var reply = lines.Where(l => l.StartsWith("Session-Timeout", StringComparison.Ordinal) || l.StartsWith("Idle-Timeout", StringComparison.Ordinal)
            || (code == "Accept" && l.StartsWith("Reply-Message", StringComparison.Ordinal))).Order(StringComparer.Ordinal);
        return string.Join("; ", reply.Prepend(code));
    }

    private const string Sessions =
        "SELECT acctsessionid, acctuniqueid, username, host(nasipaddress), nasportid, nasporttype, " +
        "CASE WHEN acctterminatecause = 'NAS-Reboot' THEN -1 ELSE acctsessiontime END, acctinputoctets, acctoutputoctets, " +
        "calledstationid, callingstationid, acctterminatecause, servicetype, framedprotocol, host(framedipaddress), acctauthentic, " +
        "connectinfo_start, connectinfo_stop, acctstoptime IS NULL FROM radacct ORDER BY acctsessionid";

    [SkippableFact]
    public async Task FreeRadiusTables_AnsweredAndWrittenAsFreeRadiusDoes()
    {
        Requires.Program("radclient");
        Requires.Program("freeradius");
        Requires.That(File.Exists(Schema), $"{Schema} is missing (Debian's freeradius package)");
        var cluster = await PostgresCluster.SharedAsync();
        var forewarnDatabase = cluster.ConnectionString(await cluster.CreateDatabaseAsync());
        string freeRadiusName = await cluster.CreateDatabaseAsync();
        var freeRadiusDatabase = cluster.ConnectionString(freeRadiusName);
        foreach (var database in new[] { forewarnDatabase, freeRadiusDatabase })
        {
            await SqlAsync(database, await File.ReadAllTextAsync(Schema));
            await SqlAsync(database, SiteRows());
        }

        var data = Path.Combine(_root, "forewarn");
        Directory.CreateDirectory(data);
        // No client of Forewarn's own: the NAS comes from the nas table.
        await using var forewarn = await ServerProcess.StartAsync(data, "--postgres", forewarnDatabase, "--set", "Forewarn:FreeRadiusSchema=true");
        await using var freeRadius = await FreeRadiusPeer.StartAsync("127.0.0.31", "127.0.0.0/8", "testing123", "nobody-in-files", "unused",
            FreeRadiusPeer.WithSql(cluster.Port, freeRadiusName, PostgresCluster.User, PostgresCluster.Password));
        string fw = $"{forewarn.Address}:{forewarn.AuthPort}", fr = $"{freeRadius.Address}:1812";

        string[] logins =
        [
            "User-Name = alice, User-Password = alice-pw",
            "User-Name = alice, CHAP-Password = alice-pw",
            "User-Name = alice, User-Password = wrong",
            "User-Name = bob, User-Password = bob-pw",
            "User-Name = bob, User-Password = alice-pw",
            "User-Name = carol, User-Password = carol-pw",
            "User-Name = erin, User-Password = erin-pw, NAS-Port-Type = Ethernet",
            "User-Name = erin, User-Password = erin-pw, NAS-Port-Type = Wireless-802.11",
            "User-Name = nobody, User-Password = x",
        ];
        foreach (var login in logins)
        {
            string mine = await AskAsync(fw, login), peer = await AskAsync(fr, login);
            output.WriteLine($"{login}: Forewarn {mine}; FreeRADIUS {peer}");
            Assert.True(mine == peer, $"{login}: Forewarn answered {mine}, FreeRADIUS {peer}");
        }
        // rlm_sql's group order: the first group only, unless its reply says Fall-Through = Yes.
        Assert.Equal("Accept; Reply-Message = \"hello staff\"; Session-Timeout = 3600", await AskAsync(fw, logins[0]));
        Assert.Equal("Accept; Idle-Timeout = 300; Reply-Message = \"hello staff\"; Reply-Message = \"hello vpn\"; Session-Timeout = 60", await AskAsync(fw, logins[6]));
        // A condition Forewarn does not enforce fails closed (FreeRADIUS would check it in its session section).
        Assert.Equal("Reject", await AskAsync(fw, "User-Name = dave, User-Password = dave-pw"));

        // A change made in FreeRADIUS's tables (by daloRADIUS, by hand) reaches the cache at once (a trigger, NOTIFY).
        await SqlAsync(forewarnDatabase, "UPDATE radcheck SET value = 'alice-new' WHERE username = 'alice' AND attribute = 'Cleartext-Password'");
        var clock = Stopwatch.StartNew();
        while (!(await AskAsync(fw, "User-Name = alice, User-Password = alice-new")).StartsWith("Accept", StringComparison.Ordinal))
        {
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(5), "the changed password is still refused after 5 s");
            await Task.Delay(20);
        }
        output.WriteLine($"changed password accepted after {clock.ElapsedMilliseconds} ms");
        Assert.True(clock.ElapsedMilliseconds < 1000, $"accepted after {clock.ElapsedMilliseconds} ms");

        // The same accounting to both: a session started, updated (past 4 GiB: Gigawords) and stopped; another
        // started and closed by the NAS's Accounting-On.
        string[] accounting =
        [
            "Acct-Status-Type = Start, Acct-Session-Id = s-1, User-Name = alice, NAS-IP-Address = 127.0.0.1, NAS-Port = 7, NAS-Port-Type = Ethernet, " +
                "Called-Station-Id = \"00-11-22-33-44-55\", Calling-Station-Id = \"66-77-88-99-aa-bb\", Acct-Authentic = RADIUS, Service-Type = Framed-User, " +
                "Framed-Protocol = PPP, Framed-IP-Address = 10.1.2.3, Connect-Info = \"1000BASE-T\"",
            "Acct-Status-Type = Interim-Update, Acct-Session-Id = s-1, User-Name = alice, NAS-IP-Address = 127.0.0.1, NAS-Port = 7, NAS-Port-Type = Ethernet, " +
                "Acct-Session-Time = 60, Acct-Input-Octets = 1000, Acct-Output-Octets = 2000, Acct-Input-Gigawords = 1, Framed-IP-Address = 10.1.2.3",
            "Acct-Status-Type = Stop, Acct-Session-Id = s-1, User-Name = alice, NAS-IP-Address = 127.0.0.1, NAS-Port = 7, NAS-Port-Type = Ethernet, " +
                "Acct-Session-Time = 120, Acct-Input-Octets = 5000, Acct-Output-Octets = 7000, Acct-Input-Gigawords = 1, Acct-Terminate-Cause = User-Request, " +
                "Framed-IP-Address = 10.1.2.3, Connect-Info = \"1000BASE-T\"",
            "Acct-Status-Type = Start, Acct-Session-Id = s-2, User-Name = bob, NAS-IP-Address = 127.0.0.1, NAS-Port = 8",
            "Acct-Status-Type = Accounting-On, NAS-IP-Address = 127.0.0.1",
        ];
        foreach (var request in accounting)
        {
            foreach (var server in new[] { $"{forewarn.Address}:{forewarn.AcctPort}", $"{freeRadius.Address}:1813" })
            {
                var sent = await Peer.RunAsync("radclient", ["-r", "2", "-t", "3", server, "acct", "testing123"], request + "\n");
                Assert.True(sent.Output.Contains("Accounting-Response", StringComparison.Ordinal), $"{server}: {sent}");
            }
        }
        var ours = await RowsAsync(forewarnDatabase, Sessions);
        var theirs = await RowsAsync(freeRadiusDatabase, Sessions);
        foreach (var row in ours.Zip(theirs))
            output.WriteLine($"Forewarn   {row.First}\nFreeRADIUS {row.Second}");
        Assert.Equal(2, ours.Count);
        Assert.Equal(theirs, ours);
        Assert.Contains("| 4294972296 | 7000 |", ours[0], StringComparison.Ordinal);
        // Start times agree to the second (both from the request's arrival less Acct-Delay-Time).
        var starts = new[] { forewarnDatabase, freeRadiusDatabase }.Select(d => RowsAsync(d, "SELECT extract(epoch FROM acctstarttime)::bigint FROM radacct ORDER BY acctsessionid"));
        var times = await Task.WhenAll(starts);
        foreach (var (a, b) in times[0].Zip(times[1]))
            Assert.InRange(long.Parse(a, System.Globalization.CultureInfo.InvariantCulture) - long.Parse(b, System.Globalization.CultureInfo.InvariantCulture), -3, 3);

        // The command line sees the same users and clients (Forewarn:FreeRadiusSchema in forewarn.json).
        await File.WriteAllTextAsync(Path.Combine(data, DataDirectory.ConfigFile), $$"""{ "Forewarn": { "Postgres": "{{forewarnDatabase}}", "FreeRadiusSchema": true } }""");
        var users = await Peer.RunAsync("/usr/bin/env", ["dotnet", Forewarn, "users", "list", "--data", data]);
        Assert.True(users.ExitCode == 0, users.ToString());
        foreach (var name in new[] { "alice", "bob", "carol", "erin", "dave" })
            Assert.Contains(name, users.Output, StringComparison.Ordinal);
        Assert.Contains("Simultaneous-Use", users.Error, StringComparison.Ordinal);
        var clients = await Peer.RunAsync("/usr/bin/env", ["dotnet", Forewarn, "clients", "list", "--data", data]);
        Assert.True(clients.ExitCode == 0, clients.ToString());
        Assert.Contains("lab", clients.Output, StringComparison.Ordinal);
        Assert.DoesNotContain("testing123", clients.Output, StringComparison.Ordinal);
    }

    /// <summary>
    /// A session's records in one batch (a group commit under load) and in the wrong order (a Stop replayed
    /// before its Start): radacct ends the same as when each came alone and in order.
    /// </summary>
    [SkippableFact]
    public async Task SessionRecords_InOneBatch_OrOutOfOrder_MakeTheSameRow()
    {
        Requires.That(File.Exists(Schema), $"{Schema} is missing (Debian's freeradius package)");
        var cluster = await PostgresCluster.SharedAsync();
        var database = cluster.ConnectionString(await cluster.CreateDatabaseAsync());
        await SqlAsync(database, await File.ReadAllTextAsync(Schema));
        using var store = await Storage.Postgres.PostgresStore.OpenAsync(database, new Storage.Postgres.FreeRadiusSchema(p => System.Text.Encoding.UTF8.GetBytes(p)));
        var t0 = DateTimeOffset.UtcNow.AddMinutes(-10);
        Core.Store.AccountingRecord Record(string session, uint status, int second, string extra) =>
            new(0, t0.AddSeconds(second), "lab", "127.0.0.1", "alice", session, status,
                $"Acct-Status-Type = {status}\nAcct-Session-Id = {session}\nUser-Name = alice\nNAS-IP-Address = 127.0.0.1\n{extra}", $"{session}-{status}-{second}");
        string[] extras = ["Connect-Info = fast\n", "Acct-Session-Time = 30\nAcct-Input-Octets = 10\n", "Acct-Session-Time = 60\nAcct-Input-Octets = 20\nAcct-Terminate-Cause = Idle-Timeout\n"];
        uint[] statuses = [1, 3, 2];
        int[] seconds = [0, 30, 60];
        // In order, one at a time; all three in one batch; and reversed, one at a time.
        foreach (var i in new[] { 0, 1, 2 })
            await store.AppendBatchAsync([Record("alone", statuses[i], seconds[i], extras[i])]);
        await store.AppendBatchAsync([.. new[] { 0, 1, 2 }.Select(i => Record("batch", statuses[i], seconds[i], extras[i]))]);
        foreach (var i in new[] { 2, 1, 0 })
            await store.AppendBatchAsync([Record("reversed", statuses[i], seconds[i], extras[i])]);
        var rows = await RowsAsync(database, ("SELECT acctsessionid, extract(epoch FROM acctstarttime - @t0::timestamptz)::int, extract(epoch FROM acctstoptime - @t0::timestamptz)::int, " +
            "acctsessiontime, acctinputoctets, acctterminatecause, connectinfo_start, connectinfo_stop FROM radacct ORDER BY acctsessionid").Replace("@t0", $"'{t0.UtcDateTime:O}'", StringComparison.Ordinal));
        foreach (var row in rows)
            output.WriteLine(row);
        // Started at 0 s, stopped at 60 s, 60 s long, 20 octets in, the Stop's cause, the Start's Connect-Info.
        const string session = " | 0 | 60 | 60 | 20 | Idle-Timeout | fast | ";
        Assert.Equal(["alone" + session, "batch" + session, "reversed" + session], rows);
    }
}
