using System.Globalization;

namespace Forewarn.Server.Tests;

/// <summary>The real `forewarn` program in its own process: the command line, start-up errors, and a kill -9.</summary>
[Collection(nameof(Serial))]
public sealed class ProcessTests : IDisposable
{
    private readonly string _data = Path.Combine(Path.GetTempPath(), "forewarn-proc-" + Guid.NewGuid().ToString("N")[..12]);
    private static readonly string Program = Path.Combine(AppContext.BaseDirectory, "forewarn.dll");

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

    private Task<Peer.Result> Forewarn(params string[] arguments) =>
        Peer.RunAsync("/usr/bin/env", ["dotnet", Program, .. arguments, "--data", _data]);

    [SkippableFact]
    public async Task PasswordIterations_FromForewarnJson_SetTheCostOfNewHashes()
    {
        Directory.CreateDirectory(_data);
        await File.WriteAllTextAsync(Path.Combine(_data, "forewarn.json"), "{ \"Forewarn\": { \"PasswordIterations\": 1500 } }");
        Assert.Equal(0, (await Forewarn("users", "add", "fromconfig", "--password", "pw", "--methods", "pap")).ExitCode);
        Assert.Equal(0, (await Forewarn("users", "add", "fromflag", "--password", "pw", "--methods", "pap", "--iterations", "2500")).ExitCode);
        using (var store = Storage.Sqlite.SqliteStore.Open(Path.Combine(_data, "forewarn.db")))
        {
            Assert.StartsWith("pbkdf2-sha256$1500$", (await store.FindUserAsync("fromconfig"))!.Credential.PasswordHash, StringComparison.Ordinal);
            Assert.StartsWith("pbkdf2-sha256$2500$", (await store.FindUserAsync("fromflag"))!.Credential.PasswordHash, StringComparison.Ordinal);
        }
        var tooFew = await Forewarn("users", "add", "weak", "--password", "pw", "--methods", "pap", "--iterations", "10");
        Assert.Equal(2, tooFew.ExitCode);
        Assert.Contains("at least 1000", tooFew.Error, StringComparison.Ordinal);
    }

    [SkippableFact]
    public async Task ClientsAdd_TakesTheSecretFromAFileStandardInputOrTheEnvironment_AndTheFirstSeedsLocalhost()
    {
        Directory.CreateDirectory(_data);
        var file = Path.Combine(_data, "switch.secret");
        await File.WriteAllTextAsync(file, "from-a-file\n");
        var first = await Forewarn("clients", "add", "switch-1", "--address", "10.1.0.0/24", "--secret-file", file);
        Assert.True(first.ExitCode == 0, first.ToString());
        Assert.Contains("localhost (127.0.0.1 and ::1, secret testing123) was added too", first.Output, StringComparison.Ordinal);
        var piped = await Peer.RunAsync("/usr/bin/env", ["dotnet", Program, "clients", "add", "switch-2", "--address", "10.2.0.1", "--secret", "-", "--data", _data], input: "from-stdin\n");
        Assert.True(piped.ExitCode == 0, piped.ToString());
        Assert.DoesNotContain("was added too", piped.Output, StringComparison.Ordinal);
        var environment = await Peer.RunAsync("/usr/bin/env", ["FOREWARN_SECRET=from-the-environment", "dotnet", Program, "clients", "add", "switch-3", "--address", "10.3.0.1", "--data", _data]);
        Assert.True(environment.ExitCode == 0, environment.ToString());
        var none = await Peer.RunAsync("/usr/bin/env", ["-u", "FOREWARN_SECRET", "dotnet", Program, "clients", "add", "switch-4", "--address", "10.4.0.1", "--data", _data]);
        Assert.Equal(2, none.ExitCode);
        Assert.Contains("--secret-file", none.Error, StringComparison.Ordinal);

        using var store = Storage.Sqlite.SqliteStore.Open(Path.Combine(_data, "forewarn.db"));
        var clients = (await store.ListClientsAsync()).ToDictionary(c => c.Name, c => c.Secret);
        Assert.Equal("from-a-file", clients["switch-1"]);
        Assert.Equal("from-stdin", clients["switch-2"]);
        Assert.Equal("from-the-environment", clients["switch-3"]);
        Assert.Equal("testing123", clients["localhost"]);
        Assert.False(clients.ContainsKey("switch-4"));
    }

    [SkippableFact]
    public async Task ClientsAdvisoryKey_PrintsEachNasItsOwnKey()
    {
        Assert.Equal(0, (await Peer.RunAsync("/usr/bin/env", ["FOREWARN_SECRET=shared", "dotnet", Program, "clients", "add", "block", "--address", "10.9.0.0/24", "--per-nas-advisory-keys", "--data", _data])).ExitCode);
        Assert.Equal(0, (await Peer.RunAsync("/usr/bin/env", ["FOREWARN_SECRET=shared", "dotnet", Program, "clients", "add", "single", "--address", "10.8.0.1", "--data", _data])).ExitCode);
        var first = await Forewarn("clients", "advisory-key", "block", "10.9.0.5");
        var second = await Forewarn("clients", "advisory-key", "block", "10.9.0.6");
        Assert.True(first.ExitCode == 0, first.ToString());
        Assert.Matches("^[0-9a-f]{64}$", first.Output.Trim());
        Assert.NotEqual(first.Output.Trim(), second.Output.Trim());
        using (var store = Storage.Sqlite.SqliteStore.Open(Path.Combine(_data, "forewarn.db")))
        {
            var block = (await store.ListClientsAsync()).Single(c => c.Name == "block");
            Assert.NotNull(block.AdvisorySecret);
            Assert.Equal(Convert.ToHexStringLower(Protocol.Advisory.AdvisoryKeys.DeriveForNas(System.Text.Encoding.UTF8.GetBytes(block.AdvisorySecret!), System.Net.IPAddress.Parse("10.9.0.5"))), first.Output.Trim());
        }
        var outside = await Forewarn("clients", "advisory-key", "block", "10.7.0.1");
        Assert.Equal(2, outside.ExitCode);
        Assert.Contains("not an address inside 10.9.0.0/24", outside.Error, StringComparison.Ordinal);
        var shared = await Forewarn("clients", "advisory-key", "single", "10.8.0.1");
        Assert.Equal(2, shared.ExitCode);
        Assert.Contains("--per-nas-advisory-keys", shared.Error, StringComparison.Ordinal);
    }

    [SkippableFact]
    public async Task Users_AddListPasswdRemove()
    {
        var add = await Forewarn("users", "add", "carol", "--password", "pw1", "--methods", "pap", "--reply", "Session-Timeout=60");
        Assert.True(add.ExitCode == 0, add.ToString());
        Assert.Contains("stored as salted PBKDF2", add.Output, StringComparison.Ordinal);
        var again = await Forewarn("users", "add", "carol", "--password", "pw1");
        Assert.Equal(2, again.ExitCode);
        Assert.Contains("already exists", again.Error, StringComparison.Ordinal);

        var bad = await Forewarn("users", "add", "dave", "--password", "pw", "--reply", "Session-Timeout=soon");
        Assert.Equal(2, bad.ExitCode);
        Assert.Contains("Session-Timeout", bad.Error, StringComparison.Ordinal);

        var passwd = await Forewarn("users", "passwd", "carol", "--password", "pw2", "--methods", "pap,mschapv2");
        Assert.True(passwd.ExitCode == 0, passwd.ToString());
        Assert.Contains("stored as NT hash", passwd.Output, StringComparison.Ordinal);

        var list = await Forewarn("users", "list");
        Assert.Contains("carol\tmethods=pap,mschapv2\tstored=NT hash\treply=[Session-Timeout = 60]", list.Output, StringComparison.Ordinal);
        Assert.Equal(0, (await Forewarn("users", "remove", "carol")).ExitCode);
        Assert.DoesNotContain("carol", (await Forewarn("users", "list")).Output, StringComparison.Ordinal);
    }

    [SkippableFact]
    public async Task Clients_RefuseBadAddresses()
    {
        var bad = await Forewarn("clients", "add", "sw1", "--address", "999.1.1.1", "--secret", "x");
        Assert.Equal(2, bad.ExitCode);
        Assert.Contains("neither an IP address nor a CIDR block", bad.Error, StringComparison.Ordinal);
        Assert.Equal(0, (await Forewarn("clients", "add", "sw1", "--address", "10.0.0.0/8", "--secret", "x", "--group", "core")).ExitCode);
        Assert.Contains("sw1\t10.0.0.0/8\tgroup=core\tmessage-authenticator=auto", (await Forewarn("clients", "list")).Output, StringComparison.Ordinal);
    }

    [SkippableFact]
    public async Task Serve_RefusesInvalidConfiguration_WithAClearError()
    {
        var result = await Forewarn("serve", "--auth-port", "1900", "--acct-port", "1900");
        Assert.Equal(2, result.ExitCode);
        Assert.Contains("AuthPort and Forewarn:AcctPort are both 1900", result.Error, StringComparison.Ordinal);
        var listen = await Forewarn("serve", "--listen", "not-an-ip");
        Assert.Equal(2, listen.ExitCode);
        Assert.Contains("'not-an-ip' is not an IP address", listen.Error, StringComparison.Ordinal);
    }

    /// <summary>Every Accounting-Response radclient received stands for a record that survives kill -9.</summary>
    [SkippableFact]
    public async Task AccountingRecords_SurviveKillNine()
    {
        Assert.Equal(0, (await Forewarn("users", "add", "erin", "--password", "pw")).ExitCode);
        var server = await ServerProcess.StartAsync(_data);
        int acctPort = server.AcctPort;
        try
        {
            const int count = 300;
            var lines = Enumerable.Range(0, count).Select(i =>
                $"User-Name = \"erin\", Acct-Status-Type = Interim-Update, Acct-Session-Id = \"k9-{i}\", Acct-Session-Time = {i}\n");
            var file = Path.Combine(_data, "acct.txt");
            await File.WriteAllTextAsync(file, string.Join("\n", lines));
            var result = await Peer.RunAsync("radclient", ["-q", "-p", "64", "-f", file, $"127.0.0.1:{acctPort}", "acct", "testing123"]);
            Assert.True(result.ExitCode == 0, result.ToString());
            await server.KillAsync(); // SIGKILL: no shutdown, no flush
        }
        finally
        {
            await server.DisposeAsync();
        }
        var list = await Forewarn("accounting", "list", "--user", "erin", "--limit", "1000");
        Assert.True(list.ExitCode == 0, list.ToString());
        var sessions = list.Output.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l.Split('\t')[5]).ToHashSet();
        Assert.Equal(300, sessions.Count);

        // The database is intact: the server starts again and answers.
        await using var again = await ServerProcess.StartAsync(_data);
        var radtest = await Peer.RunAsync("radtest", ["erin", "pw", $"127.0.0.1:{again.AuthPort}", "0", "testing123"]);
        Assert.Contains("Received Access-Accept", radtest.Output, StringComparison.Ordinal);
    }

    [SkippableFact]
    public async Task Sigterm_StopsGracefully()
    {
        await using var server = await ServerProcess.StartAsync(_data);
        var radtest = await Peer.RunAsync("radtest", ["nobody", "pw", $"127.0.0.1:{server.AuthPort}", "0", "testing123"]);
        Assert.Contains("Received Access-Reject", radtest.Output, StringComparison.Ordinal);
        Assert.Equal(0, await server.TerminateAsync());
    }
}
