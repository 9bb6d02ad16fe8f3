using System.Globalization;
using Forewarn.Core.Store;

namespace Forewarn.Server.Tests;

/// <summary>Independent implementations against a running server: FreeRADIUS's radtest and radclient, and pyrad.</summary>
public sealed class RealPeerTests : IAsyncLifetime
{
    private TestServer _server = null!;

    public async Task InitializeAsync()
    {
        _server = await TestServer.StartAsync();
        await _server.AddUserAsync("alice", "s3cret-Pass", AuthMethods.All,
            [new ReplyItem("Session-Timeout", "3600"), new ReplyItem("Framed-IP-Address", "10.9.8.7"), new ReplyItem("Class", "0x6f7073"),
             new ReplyItem("Filter-Id", "staff"), new ReplyItem("MS-Primary-DNS-Server", "10.0.0.53")]);
        await _server.AddUserAsync("papuser", "only-pap", AuthMethods.Pap);
        await _server.AddUserAsync("john", "secret", AuthMethods.MsChapV2);
    }

    public async Task DisposeAsync() => await _server.DisposeAsync();

    private string AuthAddress => $"127.0.0.1:{_server.Auth.Port}";
    private string AcctAddress => $"127.0.0.1:{_server.Acct.Port}";

    private Task<Peer.Result> RadTest(string method, string user, string password) =>
        // radtest user password server[:port] nas-port-number secret
        Peer.RunAsync("radtest", ["-t", method, user, password, AuthAddress, "0", "testing123"]);

    [SkippableTheory]
    [InlineData("pap")]
    [InlineData("chap")]
    [InlineData("mschap")]
    public async Task RadTest_Accepts_WithReplyAttributes(string method)
    {
        var result = await RadTest(method, "alice", "s3cret-Pass");
        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Contains("Received Access-Accept", result.Output, StringComparison.Ordinal);
        Assert.Contains("Session-Timeout = 3600", result.Output, StringComparison.Ordinal);
        Assert.Contains("Framed-IP-Address = 10.9.8.7", result.Output, StringComparison.Ordinal);
        Assert.Contains("Filter-Id = \"staff\"", result.Output, StringComparison.Ordinal);
        Assert.Contains("MS-Primary-DNS-Server = 10.0.0.53", result.Output, StringComparison.Ordinal);
        if (method == "mschap")
            Assert.Contains("MS-CHAP-MPPE-Keys", result.Output, StringComparison.Ordinal);
    }

    [SkippableTheory]
    [InlineData("pap")]
    [InlineData("chap")]
    [InlineData("mschap")]
    public async Task RadTest_WrongPassword_IsRejectedWithReplyMessage(string method)
    {
        var result = await RadTest(method, "alice", "wrong");
        Assert.Contains("Received Access-Reject", result.Output, StringComparison.Ordinal);
        Assert.Contains("Reply-Message = \"Authentication failed\"", result.Output, StringComparison.Ordinal);
    }

    [SkippableFact]
    public async Task PapOnlyUser_AcceptsPap_RefusesChap()
    {
        Assert.Contains("Received Access-Accept", (await RadTest("pap", "papuser", "only-pap")).Output, StringComparison.Ordinal);
        Assert.Contains("Received Access-Reject", (await RadTest("chap", "papuser", "only-pap")).Output, StringComparison.Ordinal);
    }

    /// <summary>The MS-CHAPv2 exchange from FreeRADIUS's mschap tests (auth-crypto.json), sent by radclient; the NT domain is stripped.</summary>
    [SkippableFact]
    public async Task RadClient_MsChapV2_GetsTheExactAuthenticatorResponse()
    {
        var vector = System.Text.Json.JsonDocument.Parse(File.ReadAllText(Paths.ConformanceFile("freeradius", "auth-crypto.json")))
            .RootElement.GetProperty("mschapv2")[0];
        var request = $"User-Name = \"{vector.GetProperty("user_name_attribute").GetString()!.Replace("\\", "\\\\", StringComparison.Ordinal)}\", " +
            $"MS-CHAP-Challenge = 0x{vector.GetProperty("ms_chap_challenge").GetString()}, MS-CHAP2-Response = 0x{vector.GetProperty("ms_chap2_response").GetString()}\n";
        var result = await Peer.RunAsync("radclient", ["-x", AuthAddress, "auth", "testing123"], request);
        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Contains($"MS-CHAP2-Success = 0x{vector.GetProperty("expect_ms_chap2_success").GetString()}", result.Output, StringComparison.Ordinal);
        Assert.Contains("MS-MPPE-Recv-Key = 0x", result.Output, StringComparison.Ordinal);
        Assert.Contains("MS-MPPE-Send-Key = 0x", result.Output, StringComparison.Ordinal);
    }

    [SkippableFact]
    public async Task RadClient_StatusServer_IsAnsweredOnBothPorts()
    {
        foreach (var (address, type) in new[] { (AuthAddress, "Access-Accept"), (AcctAddress, "Accounting-Response") })
        {
            var result = await Peer.RunAsync("radclient", ["-x", address, "status", "testing123"], "Message-Authenticator = 0x00\n");
            Assert.True(result.ExitCode == 0, result.ToString());
            Assert.Contains($"Received {type}", result.Output, StringComparison.Ordinal);
        }
    }

    [SkippableFact]
    public async Task RadClient_AccountingStartInterimStop_StoredOnce_EvenWhenSentTwice()
    {
        string session = "sess-" + Guid.NewGuid().ToString("N")[..8];
        var requests = string.Join("\n",
            $"User-Name = \"alice\", Acct-Status-Type = Start, Acct-Session-Id = \"{session}\", NAS-IP-Address = 127.0.0.1, Framed-IP-Address = 10.9.8.7\n",
            $"User-Name = \"alice\", Acct-Status-Type = Interim-Update, Acct-Session-Id = \"{session}\", Acct-Session-Time = 60, Acct-Input-Octets = 1234\n",
            $"User-Name = \"alice\", Acct-Status-Type = Stop, Acct-Session-Id = \"{session}\", Acct-Session-Time = 120, Acct-Terminate-Cause = User-Request\n");
        var file = Path.Combine(_server.DataDirectory, "acct.txt");
        await File.WriteAllTextAsync(file, requests);
        for (int round = 0; round < 2; round++)
        {
            // The second round is what a NAS sends after losing the responses: new Identifiers, same content.
            var result = await Peer.RunAsync("radclient", ["-f", file, AcctAddress, "acct", "testing123"]);
            Assert.True(result.ExitCode == 0, result.ToString());
        }
        var records = await _server.Store.QueryAsync(new AccountingQuery(UserName: "alice"));
        var mine = records.Where(r => r.SessionId == session).ToList();
        Assert.Equal([1u, 3u, 2u], mine.Select(r => r.StatusType));
        Assert.Contains("Acct-Input-Octets = 1234", mine[1].Attributes, StringComparison.Ordinal);
        Assert.Equal(6, _server.Counters.AccountingResponses);
    }

    [SkippableFact]
    public async Task Pyrad_AuthenticatesAndAccounts_VerifyingOurAuthenticators()
    {
        var script = Path.Combine(AppContext.BaseDirectory, "peers", "pyrad_client.py");
        // Debian's interpreter: python3-pyrad installs into its dist-packages, not into another python3 on PATH.
        var result = await Peer.RunAsync("/usr/bin/python3", [script, "127.0.0.1", _server.Auth.Port.ToString(CultureInfo.InvariantCulture),
            _server.Acct.Port.ToString(CultureInfo.InvariantCulture), "testing123", "alice", "s3cret-Pass"]);
        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Contains("auth: Access-Accept", result.Output, StringComparison.Ordinal);
        Assert.Contains("wrong: Access-Reject", result.Output, StringComparison.Ordinal);
        Assert.Contains("acct: Accounting-Response verified", result.Output, StringComparison.Ordinal);
        var records = await _server.Store.QueryAsync(new AccountingQuery(UserName: "alice"));
        Assert.Contains(records, r => r.SessionId == "pyrad-1");
    }
}
