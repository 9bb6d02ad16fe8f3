using System.Net;
using System.Net.Http.Headers;
using Forewarn.Core.Health;

namespace Forewarn.Server.Tests;

/// <summary>
/// The admin API controls the server (drain, drills): only its operator may use it. Seen through a real
/// server process, a real unprivileged user (setpriv to nobody) and the real command line.
/// </summary>
[Collection(nameof(Serial))]
public sealed class AdminAccessTests : IDisposable
{
    private static readonly string Forewarn = Path.Combine(AppContext.BaseDirectory, "forewarn.dll");
    private readonly string _data = Path.Combine(Path.GetTempPath(), "forewarn-admin-" + Guid.NewGuid().ToString("N")[..12]);

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
    public async Task AdminApi_RefusesAnUnprivilegedUser_ARebindingHost_AndDrillsByDefault_TheOperatorNeedsNoExtraStep()
    {
        Requires.That(OperatingSystem.IsLinux() && Environment.UserName == "root", "needs root on Linux: runs a request as the unprivileged user nobody (setpriv)");
        await using var server = await ServerProcess.StartAsync(_data);
        var tokenFile = Path.Combine(_data, "admin.token");
        if (OperatingSystem.IsLinux())
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(tokenFile));

        // As nobody: no token to read, and nothing works without one.
        const string script = """
            import sys, urllib.request, urllib.error
            url, token_file = sys.argv[1], sys.argv[2]
            def call(method, path, token=None):
                request = urllib.request.Request(url + path, method=method, data=b"" if method == "POST" else None)
                if token:
                    request.add_header("Authorization", "Bearer " + token)
                try:
                    return urllib.request.urlopen(request, timeout=5).status
                except urllib.error.HTTPError as e:
                    return e.code
            try:
                open(token_file).read()
                readable = "readable"
            except PermissionError:
                readable = "denied"
            print(readable, call("GET", "/api/status"), call("POST", "/api/drain"), call("POST", "/api/drain", "guessed-token-0123456789"),
                  call("POST", "/api/drill?kind=fail-accounting&seconds=30", "guessed-token-0123456789"))
            """;
        var nobody = await Peer.RunAsync("setpriv", ["--reuid=65534", "--regid=65534", "--clear-groups", "/usr/bin/python3", "-c", script, server.Admin.ToString().TrimEnd('/'), tokenFile]);
        Assert.True(nobody.ExitCode == 0, nobody.ToString());
        Assert.Equal("denied 401 401 401 401", nobody.Output.Trim());
        Assert.Equal(Zone.Accept, (await server.StatusAsync()).Health.Zone);

        // With the right token but another Host (DNS rebinding: a page whose name now points at 127.0.0.1): refused.
        using (var http = new HttpClient())
        {
            var token = (await File.ReadAllTextAsync(tokenFile)).Trim();
            using var request = new HttpRequestMessage(HttpMethod.Post, new Uri(server.Admin, "/api/drain"));
            request.Headers.Host = $"attacker.example:{server.Admin.Port}";
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
            using var response = await http.SendAsync(request);
            Assert.Equal(HttpStatusCode.MisdirectedRequest, response.StatusCode);
        }
        Assert.False((await server.StatusAsync()).Health.Draining);

        // The operator (the server's own user) needs no extra step: the command line reads the token file.
        var drain = await Peer.RunAsync("/usr/bin/env", ["dotnet", Forewarn, "drain", "--data", _data]);
        Assert.True(drain.ExitCode == 0, drain.ToString());
        Assert.True((await server.StatusAsync()).Health.Draining);
        var resume = await Peer.RunAsync("/usr/bin/env", ["dotnet", Forewarn, "resume", "--data", _data]);
        Assert.True(resume.ExitCode == 0, resume.ToString());
        var status = await Peer.RunAsync("/usr/bin/env", ["dotnet", Forewarn, "status", "--data", _data]);
        Assert.True(status.ExitCode == 0, status.ToString());

        // Drills degrade real work: off unless configured, with a message that says how to turn them on.
        var drill = await Peer.RunAsync("/usr/bin/env", ["dotnet", Forewarn, "drill", "--kind", "fail-accounting", "--seconds", "5", "--data", _data]);
        Assert.NotEqual(0, drill.ExitCode);
        Assert.Contains("Forewarn:Admin:Drills=true", drill.Output + drill.Error, StringComparison.Ordinal);
        Assert.Null((await server.StatusAsync()).Health.Drill);
    }

    [SkippableFact]
    public async Task AdminApi_BeyondLoopback_WithoutTlsAndToken_RefusesToStart_WithAClearMessage()
    {
        var run = await Peer.RunAsync("/usr/bin/env", ["dotnet", Forewarn, "serve", "--data", _data, "--auth-port", "0", "--acct-port", "0", "--advisory-port", "0", "--tacacs-port", "0",
            "--set", "Forewarn:Admin:Listen=0.0.0.0:0"], timeoutMs: 60_000);
        Assert.NotEqual(0, run.ExitCode);
        Assert.Contains("beyond loopback, only with TLS", run.Output + run.Error, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", run.Output + run.Error, StringComparison.Ordinal);
    }
}
