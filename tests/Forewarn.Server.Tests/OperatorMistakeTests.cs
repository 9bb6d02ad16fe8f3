namespace Forewarn.Server.Tests;

/// <summary>An operator's mistakes, through the real command: one clear sentence and exit code 2, never a stack trace.</summary>
[Collection(nameof(Serial))]
public sealed class OperatorMistakeTests : IDisposable
{
    private static readonly string Program = Path.Combine(AppContext.BaseDirectory, "forewarn.dll");
    private readonly string _data = Path.Combine(Path.GetTempPath(), "forewarn-mistake-" + Guid.NewGuid().ToString("N")[..12]);

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

    private static Task<Peer.Result> Run(params string[] arguments) => Peer.RunAsync("/usr/bin/env", ["dotnet", Program, .. arguments]);

    private static void Refused(Peer.Result result, string expected)
    {
        Assert.True(result.ExitCode == 2, result.ToString());
        Assert.Contains(expected, result.Error, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", result.Error + result.Output, StringComparison.Ordinal);
        Assert.DoesNotContain("Exception", result.Error + result.Output, StringComparison.Ordinal);
    }

    [SkippableFact]
    public async Task InvalidForewarnJson_NamesTheFileOrTheSetting()
    {
        Directory.CreateDirectory(_data);
        var file = Path.Combine(_data, "forewarn.json");
        await File.WriteAllTextAsync(file, "{ \"Forewarn\": { \"AuthPort\": 1812 ");
        Refused(await Run("serve", "--data", _data), "forewarn.json");
        await File.WriteAllTextAsync(file, "{ \"Forewarn\": { \"AuthPort\": \"abc\" } }");
        Refused(await Run("serve", "--data", _data), "Forewarn:AuthPort");
    }

    /// <summary>
    /// Found by the config fuzz target. The first five stopped `forewarn serve` with a stack trace (exit 134): a log
    /// level that is none, a console setting out of range, a section where one value belongs (the binder's message names
    /// no setting), NaN for a number (it passed every range check, then stopped the health loop). The last was ignored
    /// without a word, and the server listened on 127.0.0.1.
    /// </summary>
    [SkippableTheory]
    [InlineData("""{ "Logging": { "LogLevel": { "Default": "Verbose" } } }""", "invalid configuration in the Logging section: Configuration value 'Verbose' is not supported.")]
    [InlineData("""{ "Logging": { "Console": { "MaxQueueLength": 0 } } }""", "invalid configuration in the Logging section: ")]
    [InlineData("""{ "Forewarn": { "Postgres": { "Host": "db" } } }""", "invalid configuration: Forewarn:Postgres takes one value, not a section or a list.")]
    [InlineData("""{ "Forewarn": { "Health": { "SampleHz": "NaN" } } }""", "invalid configuration: Forewarn:Health:SampleHz must be a number (is NaN).")]
    [InlineData("""{ "Forewarn": { "Advisory": { "BudgetBackoff": "NaN" } } }""", "invalid configuration: Forewarn:Advisory: BudgetBackoff is above 0")]
    [InlineData("""{ "Forewarn": { "Listen": "0.0.0.0" } }""", "invalid configuration: Forewarn:Listen takes a list, [ ... ], not one value.")]
    public async Task ForewarnJsonTheHostOrTheBinderChokedOn_IsOneSentence(string json, string expected)
    {
        Directory.CreateDirectory(_data);
        await File.WriteAllTextAsync(Path.Combine(_data, "forewarn.json"), json);
        Refused(await Run("serve", "--data", _data, "--auth-port", "0", "--acct-port", "0", "--advisory-port", "0", "--tacacs-port", "0"), expected);
    }

    /// <summary>EAP's server certificate: a missing file, a key that is not the certificate's, an expired certificate — each one sentence.</summary>
    [SkippableFact]
    public async Task EapCertificateProblems_AreOneSentenceEach()
    {
        Directory.CreateDirectory(_data);
        string[] Serve(params string[] settings) =>
            ["serve", "--data", _data, "--auth-port", "0", "--acct-port", "0", "--advisory-port", "0", "--tacacs-port", "0", .. settings.SelectMany(s => new[] { "--set", s })];
        Refused(await Run(Serve($"Forewarn:Eap:CertificateFile={Path.Combine(_data, "missing.pem")}")), "does not exist");

        using var key = System.Security.Cryptography.RSA.Create(2048);
        using var otherKey = System.Security.Cryptography.RSA.Create(2048);
        var request = new System.Security.Cryptography.X509Certificates.CertificateRequest("CN=eap", key, System.Security.Cryptography.HashAlgorithmName.SHA256, System.Security.Cryptography.RSASignaturePadding.Pkcs1);
        using var current = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(30));
        using var expired = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-30), DateTimeOffset.UtcNow.AddDays(-1));
        var certificate = Path.Combine(_data, "eap.pem");
        var old = Path.Combine(_data, "old.pem");
        var keyFile = Path.Combine(_data, "eap.key");
        var wrongKey = Path.Combine(_data, "other.key");
        await File.WriteAllTextAsync(certificate, current.ExportCertificatePem());
        await File.WriteAllTextAsync(old, expired.ExportCertificatePem());
        await File.WriteAllTextAsync(keyFile, key.ExportPkcs8PrivateKeyPem());
        await File.WriteAllTextAsync(wrongKey, otherKey.ExportPkcs8PrivateKeyPem());
        Refused(await Run(Serve($"Forewarn:Eap:CertificateFile={certificate}", $"Forewarn:Eap:KeyFile={wrongKey}")), "cannot be used");
        Refused(await Run(Serve($"Forewarn:Eap:CertificateFile={old}", $"Forewarn:Eap:KeyFile={keyFile}")), "expired on");
    }

    /// <summary>A relay on every address must be told which one its upstream servers know it by.</summary>
    [SkippableFact]
    public async Task ARelayOnTheWildcardAddress_WithoutItsUpstreamAddress_IsRefusedWithTheSetting()
    {
        Refused(await Run("relay", "--data", _data, "--listen", "0.0.0.0", "--auth-port", "0", "--acct-port", "0", "--advisory-port", "0",
            "--upstream", "127.0.0.1:1812:1813:s3cret"), "set Forewarn:Relay:LocalAddress");
        Refused(await Run("relay", "--data", _data, "--auth-port", "0", "--acct-port", "0", "--advisory-port", "0",
            "--upstream", "127.0.0.1:1812:1813:s3cret", "--set", "Forewarn:Relay:LocalAddress=0.0.0.0"), "is not one address of this host");
    }

    /// <summary>A downgrade after an upgrade: the older program names the version and what to do, with no stack trace.</summary>
    [SkippableFact]
    public async Task ADatabaseFromANewerForewarn_IsOneSentence()
    {
        Assert.Equal(0, (await Run("users", "list", "--data", _data)).ExitCode);
        using (var connection = new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={Path.Combine(_data, "forewarn.db")};Pooling=false"))
        {
            connection.Open();
            using var command = connection.CreateCommand();
            command.CommandText = "PRAGMA user_version = 99";
            command.ExecuteNonQuery();
        }
        Refused(await Run("users", "list", "--data", _data), "has schema version 99, newer than this Forewarn knows");
        Refused(await Run("serve", "--data", _data, "--auth-port", "0", "--acct-port", "0", "--advisory-port", "0", "--tacacs-port", "0"), "restore a backup");
    }

    [SkippableFact]
    public async Task DataDirectoryThatIsAFileOrCannotBeCreated_IsNamed()
    {
        Directory.CreateDirectory(_data);
        var file = Path.Combine(_data, "not-a-directory");
        await File.WriteAllTextAsync(file, "");
        Refused(await Run("users", "list", "--data", file), "is a file, not a directory");
        Refused(await Run("serve", "--data", file), "is a file, not a directory");
        Refused(await Run("users", "list", "--data", "/proc/forewarn-cannot-be-here"), "cannot create the data directory '/proc/forewarn-cannot-be-here'");
    }

    [SkippableFact]
    public async Task MistypedDataDirectory_IsCreatedOutLoud()
    {
        var list = await Run("users", "list", "--data", _data);
        Assert.Equal(0, list.ExitCode);
        Assert.Contains($"created a new, empty data directory {_data}", list.Error, StringComparison.Ordinal);
        Assert.DoesNotContain("created", (await Run("users", "list", "--data", _data)).Error, StringComparison.Ordinal);
    }

    [SkippableFact]
    public async Task PortThatIsNotANumber_SaysSoInWords()
    {
        var result = await Run("serve", "--data", _data, "--auth-port", "abc");
        Assert.NotEqual(0, result.ExitCode);
        Assert.Contains("--auth-port 'abc' is not a port", result.Error + result.Output, StringComparison.Ordinal);
        Assert.DoesNotContain("System.", result.Error + result.Output, StringComparison.Ordinal);
    }

    [SkippableFact]
    public async Task EmptyUserName_IsRefused()
    {
        Refused(await Run("users", "add", "", "--password", "pw", "--data", _data), "may not be empty");
        Refused(await Run("users", "add", "   ", "--password", "pw", "--data", _data), "may not be empty");
        Assert.Equal("", (await Run("users", "list", "--data", _data)).Output.Trim());
    }

    [SkippableFact]
    public async Task ImportWithABadLine_ImportsNothing()
    {
        Directory.CreateDirectory(_data);
        var file = Path.Combine(_data, "users.txt");
        await File.WriteAllLinesAsync(file, ["ann first-pass", "bob second-pass", "carl"]);
        Refused(await Run("users", "import", file, "--data", _data), "users.txt:3");
        Assert.Equal("", (await Run("users", "list", "--data", _data)).Output.Trim());

        await File.WriteAllLinesAsync(file, ["ann first-pass", "bob second-pass"]);
        var imported = await Run("users", "import", file, "--data", _data);
        Assert.True(imported.ExitCode == 0, imported.ToString());
        Assert.Contains("Imported 2 users (2 added, 0 replaced)", imported.Output, StringComparison.Ordinal);
    }

    [SkippableFact]
    public async Task DrainAndResume_PrintTheStateAfterTheAction()
    {
        await using var server = await ServerProcess.StartAsync(_data);
        var drain = await Run("drain", "--data", _data);
        Assert.True(drain.ExitCode == 0, drain.ToString());
        Assert.Contains("DRAINING", drain.Output, StringComparison.Ordinal);
        Assert.Contains("Zone [default] Defer", drain.Output, StringComparison.Ordinal);
        var resume = await Run("resume", "--data", _data);
        Assert.True(resume.ExitCode == 0, resume.ToString());
        Assert.DoesNotContain("DRAINING", resume.Output, StringComparison.Ordinal);
    }

    [SkippableFact]
    public async Task PortsInUse_AreNamedWithTheirAddress()
    {
        using var radius = new System.Net.Sockets.Socket(System.Net.Sockets.AddressFamily.InterNetwork, System.Net.Sockets.SocketType.Dgram, System.Net.Sockets.ProtocolType.Udp);
        radius.Bind(new System.Net.IPEndPoint(System.Net.IPAddress.Loopback, 0));
        int taken = ((System.Net.IPEndPoint)radius.LocalEndPoint!).Port;
        Refused(await Run("serve", "--data", _data, "--auth-port", $"{taken}", "--acct-port", "0", "--advisory-port", "0", "--tacacs-port", "0"),
            $"cannot listen for RADIUS authentication on udp 127.0.0.1:{taken}: the port is in use");

        var admin = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        admin.Start();
        try
        {
            int adminPort = ((System.Net.IPEndPoint)admin.LocalEndpoint).Port;
            Refused(await Run("serve", "--data", _data, "--auth-port", "0", "--acct-port", "0", "--advisory-port", "0", "--tacacs-port", "0", "--set", $"Forewarn:Admin:Listen=127.0.0.1:{adminPort}"),
                $"cannot open the admin API on tcp 127.0.0.1:{adminPort}");
        }
        finally
        {
            admin.Stop();
        }
    }
}
