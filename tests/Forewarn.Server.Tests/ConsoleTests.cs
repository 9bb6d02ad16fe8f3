using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using Forewarn.Server.Health;

namespace Forewarn.Server.Tests;

/// <summary>
/// The console's API through a real `forewarn serve` process: accounts made with `forewarn admins`, a
/// login's cookie, the CSRF token every change must carry, roles, lock-out, the audit log, the
/// authentication log fed by radtest, and the OpenAPI document.
/// </summary>
[Collection(nameof(Serial))]
public sealed class ConsoleTests : IDisposable
{
    private static readonly string Forewarn = Path.Combine(AppContext.BaseDirectory, "forewarn.dll");
    private const string AlicePassword = "correct horse battery";
    private const string OlgaPassword = "operator reads only";
    private readonly string _data = Path.Combine(Path.GetTempPath(), "forewarn-console-" + Guid.NewGuid().ToString("N")[..12]);

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

    internal static async Task AddAdminAsync(string data, string name, string password, string role = "admin")
    {
        var r = await Peer.RunAsync("/usr/bin/env", ["dotnet", Forewarn, "admins", "add", name, "--role", role, "--password-file", "-", "--data", data], password + "\n");
        Assert.True(r.ExitCode == 0, r.ToString());
    }

    /// <summary>A browser's view of the console: a cookie jar, and the CSRF token the login returned.</summary>
    internal sealed class Browser : IDisposable
    {
        private readonly HttpClient _http;
        public string? Csrf { get; private set; }
        public CookieContainer Cookies { get; } = new();

        public Browser(Uri admin)
        {
            _http = new HttpClient(new HttpClientHandler { CookieContainer = Cookies }) { BaseAddress = admin, Timeout = TimeSpan.FromSeconds(30) };
        }

        public async Task<HttpResponseMessage> LoginAsync(string name, string password)
        {
            var response = await _http.PostAsJsonAsync("/api/v1/login", new { name, password });
            if (response.IsSuccessStatusCode)
                Csrf = (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("csrf").GetString();
            return response;
        }

        public Task<HttpResponseMessage> GetAsync(string path) => _http.GetAsync(path);

        public Task<HttpResponseMessage> SendAsync(HttpMethod method, string path, object? body = null, bool withCsrf = true)
        {
            var request = new HttpRequestMessage(method, path) { Content = body is null ? null : JsonContent.Create(body) };
            if (withCsrf && Csrf is not null)
                request.Headers.Add("X-CSRF-Token", Csrf);
            return _http.SendAsync(request);
        }

        public void Dispose() => _http.Dispose();
    }

    [SkippableFact]
    public async Task Console_LoginCsrfRolesAuditAndTheAuthenticationLog()
    {
        Requires.Program("radtest");
        // A password too short for an administrator is refused in one sentence.
        var weak = await Peer.RunAsync("/usr/bin/env", ["dotnet", Forewarn, "admins", "add", "weak", "--password-file", "-", "--data", _data], "short\n");
        Assert.Equal(2, weak.ExitCode);
        Assert.Contains("at least 12 characters", weak.Error, StringComparison.Ordinal);
        await AddAdminAsync(_data, "alice", AlicePassword);
        await AddAdminAsync(_data, "olga", OlgaPassword, "operator");
        var stored = await File.ReadAllTextAsync(Path.Combine(_data, "admins.json"));
        Assert.DoesNotContain(AlicePassword, stored, StringComparison.Ordinal);
        if (OperatingSystem.IsLinux())
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(Path.Combine(_data, "admins.json")));

        await using var server = await ServerProcess.StartAsync(_data);
        using var alice = new Browser(server.Admin);

        // The page is served with a policy that allows this origin only; the API wants a caller.
        using (var page = await alice.GetAsync("/"))
        {
            Assert.Equal(HttpStatusCode.OK, page.StatusCode);
            Assert.Contains("default-src 'self'", page.Headers.GetValues("Content-Security-Policy").Single(), StringComparison.Ordinal);
            Assert.Contains("<title>Forewarn console</title>", await page.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        }
        using (var anonymous = await alice.GetAsync("/api/v1/users"))
            Assert.Equal(HttpStatusCode.Unauthorized, anonymous.StatusCode);

        using (var wrong = await alice.LoginAsync("alice", "not the password"))
            Assert.Equal(HttpStatusCode.Unauthorized, wrong.StatusCode);
        using (var login = await alice.LoginAsync("alice", AlicePassword))
        {
            Assert.Equal(HttpStatusCode.OK, login.StatusCode);
            var cookie = login.Headers.GetValues("Set-Cookie").Single(c => c.StartsWith("forewarn_session=", StringComparison.Ordinal));
            Assert.Contains("httponly", cookie, StringComparison.OrdinalIgnoreCase);
            Assert.Contains("samesite=strict", cookie, StringComparison.OrdinalIgnoreCase);
        }

        // A change without the CSRF token is refused, with it accepted; the new user logs in through radtest.
        var bob = new { name = "bob", password = "bob's secret", methods = "pap,mschapv2", reply = new[] { "Session-Timeout=60" } };
        using (var forged = await alice.SendAsync(HttpMethod.Post, "/api/v1/users", bob, withCsrf: false))
            Assert.Equal(HttpStatusCode.Forbidden, forged.StatusCode);
        using (var created = await alice.SendAsync(HttpMethod.Post, "/api/v1/users", bob))
            Assert.True(created.StatusCode == HttpStatusCode.Created, await created.Content.ReadAsStringAsync());
        using (var mistake = await alice.SendAsync(HttpMethod.Post, "/api/v1/users", new { name = "carol", password = "x", reply = new[] { "No-Such-Attribute=1" } }))
        {
            Assert.Equal(HttpStatusCode.BadRequest, mistake.StatusCode);
            Assert.Contains("No-Such-Attribute", await mistake.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        }
        var accepted = await UntilAsync(async () =>
        {
            var r = await Peer.RunAsync("radtest", ["bob", "bob's secret", $"127.0.0.1:{server.AuthPort}", "0", "testing123"]);
            return r.Output.Contains("Access-Accept", StringComparison.Ordinal) ? r : null;
        });
        Assert.Contains("Session-Timeout = 60", accepted.Output, StringComparison.Ordinal);
        var rejected = await Peer.RunAsync("radtest", ["bob", "wrong", $"127.0.0.1:{server.AuthPort}", "0", "testing123"]);
        Assert.Contains("Access-Reject", rejected.Output, StringComparison.Ordinal);

        // The authentication log has both, with the reason for the reject, and the summary groups it.
        var log = await alice.GetAsync("/api/v1/log?user=bob");
        var events = (await log.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("events").EnumerateArray().ToList();
        Assert.Contains(events, e => e.GetProperty("result").GetString() == "Accept" && e.GetProperty("method").GetString() == "PAP");
        Assert.Contains(events, e => e.GetProperty("result").GetString() == "Reject" && e.GetProperty("reason").GetString() == "wrong credentials"
            && e.GetProperty("client").GetString() == "localhost");
        var summary = await (await alice.GetAsync("/api/v1/log/summary")).Content.ReadFromJsonAsync<JsonElement>();
        Assert.Contains(summary.GetProperty("failures").EnumerateArray(), f => f.GetProperty("reason").GetString() == "wrong credentials" && f.GetProperty("count").GetInt32() >= 1);

        // Clients: added, changed (device group), listed without their secret, removed.
        using (var client = await alice.SendAsync(HttpMethod.Post, "/api/v1/clients", new { name = "sw-1", address = "192.0.2.10", secret = "sw1 secret", deviceGroup = "access" }))
            Assert.Equal(HttpStatusCode.Created, client.StatusCode);
        using (var moved = await alice.SendAsync(HttpMethod.Put, "/api/v1/clients/sw-1", new { deviceGroup = "core" }))
            Assert.Equal(HttpStatusCode.OK, moved.StatusCode);
        var clients = await (await alice.GetAsync("/api/v1/clients")).Content.ReadAsStringAsync();
        Assert.Contains("\"deviceGroup\":\"core\"", clients, StringComparison.Ordinal);
        Assert.DoesNotContain("sw1 secret", clients, StringComparison.Ordinal);
        var listed = await Peer.RunAsync("/usr/bin/env", ["dotnet", Forewarn, "clients", "list", "--data", _data]);
        Assert.Contains("sw-1\t192.0.2.10\tgroup=core", listed.Output, StringComparison.Ordinal);

        // TACACS+ command sets: a pattern that cannot run in linear time is refused; a group applies a set per device group.
        using (var bad = await alice.SendAsync(HttpMethod.Put, "/api/v1/command-sets/readonly", new { rules = new[] { "permit (a+)+\\1" } }))
            Assert.Equal(HttpStatusCode.BadRequest, bad.StatusCode);
        using (var set = await alice.SendAsync(HttpMethod.Put, "/api/v1/command-sets/readonly", new { rules = new[] { "permit ^show ", "deny .*" } }))
            Assert.Equal(HttpStatusCode.OK, set.StatusCode);
        using (var group = await alice.SendAsync(HttpMethod.Put, "/api/v1/groups/netops", new { reply = new[] { "Idle-Timeout=600" }, commandSets = new[] { "readonly@core" } }))
            Assert.Equal(HttpStatusCode.OK, group.StatusCode);
        var groups = await (await alice.GetAsync("/api/v1/groups")).Content.ReadAsStringAsync();
        Assert.Contains("\"commandSets\":[\"readonly@core\"]", groups, StringComparison.Ordinal);
        var sets = await Peer.RunAsync("/usr/bin/env", ["dotnet", Forewarn, "command-sets", "list", "--data", _data]);
        Assert.Contains("permit ^show", sets.Output, StringComparison.Ordinal);

        // An operator reads and may not change.
        using var olga = new Browser(server.Admin);
        using (var login = await olga.LoginAsync("olga", OlgaPassword))
            Assert.Equal(HttpStatusCode.OK, login.StatusCode);
        using (var read = await olga.GetAsync("/api/v1/users"))
            Assert.Equal(HttpStatusCode.OK, read.StatusCode);
        using (var change = await olga.SendAsync(HttpMethod.Delete, "/api/v1/users/bob"))
            Assert.Equal(HttpStatusCode.Forbidden, change.StatusCode);

        // A script with the admin token needs no cookie and no CSRF token.
        using (var script = new HttpClient { BaseAddress = server.Admin })
        {
            script.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", (await File.ReadAllTextAsync(Path.Combine(_data, "admin.token"))).Trim());
            using var removed = await script.DeleteAsync("/api/v1/clients/sw-1");
            Assert.Equal(HttpStatusCode.NoContent, removed.StatusCode);
            var openApi = await script.GetStringAsync(ConsoleApiPath);
            Assert.Contains("\"/api/v1/users\"", openApi, StringComparison.Ordinal);
            Assert.Contains("\"/api/v1/log\"", openApi, StringComparison.Ordinal);
        }
        // The command line's live commands use the same API.
        var status = await Peer.RunAsync("/usr/bin/env", ["dotnet", Forewarn, "status", "--data", _data]);
        Assert.True(status.ExitCode == 0, status.ToString());

        // The audit log: who, what, from where, how it ended; never a password.
        var audit = await (await alice.GetAsync("/api/v1/audit")).Content.ReadFromJsonAsync<JsonElement>();
        var entries = audit.EnumerateArray().ToList();
        Assert.Contains(entries, e => e.GetProperty("who").GetString() == "alice" && e.GetProperty("action").GetString() == "POST /api/v1/users"
            && e.GetProperty("target").GetString() == "bob" && e.GetProperty("status").GetInt32() == 201 && e.GetProperty("from").GetString() == "127.0.0.1");
        Assert.Contains(entries, e => e.GetProperty("who").GetString() == "alice" && e.GetProperty("status").GetInt32() == 403 && e.GetProperty("detail").GetString() == "no valid CSRF token");
        Assert.Contains(entries, e => e.GetProperty("who").GetString() == "olga" && e.GetProperty("action").GetString() == "DELETE /api/v1/users/bob" && e.GetProperty("status").GetInt32() == 403);
        Assert.Contains(entries, e => e.GetProperty("who").GetString() == "(token)" && e.GetProperty("action").GetString() == "DELETE /api/v1/clients/sw-1" && e.GetProperty("status").GetInt32() == 204);
        Assert.Contains(entries, e => e.GetProperty("action").GetString() == "login" && e.GetProperty("status").GetInt32() == 401);
        var file = await File.ReadAllTextAsync(Path.Combine(_data, "audit.log"));
        Assert.Contains("\"target\":\"bob\"", file, StringComparison.Ordinal);
        Assert.DoesNotContain(AlicePassword, file, StringComparison.Ordinal);
        Assert.DoesNotContain("bob's secret", file, StringComparison.Ordinal);
        if (OperatingSystem.IsLinux())
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(Path.Combine(_data, "audit.log")));

        // Odd input is a clear answer, never a 500: a null in a list is skipped, a number that is not one is the default.
        using (var nulls = await alice.SendAsync(HttpMethod.Post, "/api/v1/users", new { name = "erin", password = "erin's secret", reply = new string?[] { null, "Session-Timeout=30" } }))
            Assert.Equal(HttpStatusCode.Created, nulls.StatusCode);
        using (var nan = await alice.GetAsync("/api/v1/health/history?seconds=NaN"))
            Assert.Equal(HttpStatusCode.OK, nan.StatusCode);
        using (var noName = await new Browser(server.Admin).LoginAsync("no such\nname", "whatever"))
            Assert.Equal(HttpStatusCode.BadRequest, noName.StatusCode);

        // A password changed on the command line ends the account's open sessions; passwd keeps the role.
        var passwd = await Peer.RunAsync("/usr/bin/env", ["dotnet", Forewarn, "admins", "passwd", "olga", "--password-file", "-", "--data", _data], "a new operator password\n");
        Assert.True(passwd.ExitCode == 0, passwd.ToString());
        using (var ended = await olga.GetAsync("/api/v1/users"))
            Assert.Equal(HttpStatusCode.Unauthorized, ended.StatusCode);
        var admins = await Peer.RunAsync("/usr/bin/env", ["dotnet", Forewarn, "admins", "list", "--data", _data]);
        Assert.Contains("olga\toperator", admins.Output, StringComparison.Ordinal);

        // Logged out, the cookie opens nothing.
        using (var logout = await alice.SendAsync(HttpMethod.Post, "/api/v1/logout"))
            Assert.Equal(HttpStatusCode.NoContent, logout.StatusCode);
        using (var after = await alice.GetAsync("/api/v1/users"))
            Assert.Equal(HttpStatusCode.Unauthorized, after.StatusCode);
    }

    private const string ConsoleApiPath = "/api/v1/openapi.json";

    /// <summary>Five wrong passwords in a row lock the account: the right one is then refused too, for a while; another account still logs in.</summary>
    [Fact]
    public async Task Console_LocksAnAccount_AfterFiveFailedLogins()
    {
        await AddAdminAsync(_data, "alice", AlicePassword);
        await AddAdminAsync(_data, "olga", OlgaPassword, "operator");
        await using var server = await ServerProcess.StartAsync(_data);
        using var guesser = new Browser(server.Admin);
        // Concurrent guesses: each answer waits out its back-off, the guesses do not wait for one another.
        var guesses = await Task.WhenAll(Enumerable.Range(0, 5).Select(i => guesser.LoginAsync("alice", "guess " + i)));
        Assert.All(guesses, g => Assert.Equal(HttpStatusCode.Unauthorized, g.StatusCode));
        using (var locked = await guesser.LoginAsync("alice", AlicePassword))
        {
            Assert.Equal(HttpStatusCode.TooManyRequests, locked.StatusCode);
            Assert.Contains("locked", await locked.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        }
        using var other = new Browser(server.Admin);
        using (var login = await other.LoginAsync("olga", OlgaPassword))
            Assert.Equal(HttpStatusCode.OK, login.StatusCode);
        var audit = await (await other.GetAsync("/api/v1/audit")).Content.ReadAsStringAsync();
        Assert.Contains("locked after 5 failed logins", audit, StringComparison.Ordinal);
    }

    /// <summary>Beyond loopback the console needs TLS: Forewarn:Admin:Https makes a self-signed certificate of its own for the address, and the cookie is Secure.</summary>
    [Fact]
    public async Task Console_OverHttps_WithItsOwnCertificate_SetsASecureCookie()
    {
        await AddAdminAsync(_data, "alice", AlicePassword);
        await using var server = await ServerProcess.StartAsync(_data, "--set", "Forewarn:Admin:Https=true", "--set", "Forewarn:Admin:Listen=127.0.0.1:0");
        Assert.Equal("https", server.Admin.Scheme);
        using var expected = System.Security.Cryptography.X509Certificates.X509Certificate2.CreateFromPem(File.ReadAllText(Path.Combine(_data, "tls", "admin.pem")));
        System.Security.Cryptography.X509Certificates.X509Certificate2? presented = null;
        using var handler = new HttpClientHandler
        {
            // Trust exactly the certificate the server made (as a browser that imported it would).
            ServerCertificateCustomValidationCallback = (_, certificate, _, _) =>
            {
                presented = certificate is null ? null : new System.Security.Cryptography.X509Certificates.X509Certificate2(certificate);
                return certificate is not null && certificate.Thumbprint == expected.Thumbprint;
            },
            CookieContainer = new CookieContainer(),
        };
        using var http = new HttpClient(handler) { BaseAddress = server.Admin };
        using var login = await http.PostAsJsonAsync("/api/v1/login", new { name = "alice", password = AlicePassword });
        Assert.Equal(HttpStatusCode.OK, login.StatusCode);
        Assert.Contains("secure", login.Headers.GetValues("Set-Cookie").Single(), StringComparison.OrdinalIgnoreCase);
        var names = presented!.Extensions.OfType<System.Security.Cryptography.X509Certificates.X509SubjectAlternativeNameExtension>().Single();
        Assert.Contains(IPAddress.Loopback, names.EnumerateIPAddresses());
        Assert.NotEqual(System.Security.Cryptography.X509Certificates.X509Certificate2.CreateFromPem(File.ReadAllText(Path.Combine(_data, "tls", "ca.pem"))).Subject, presented.Issuer);
        using var users = await http.GetAsync("/api/v1/users");
        Assert.Equal(HttpStatusCode.OK, users.StatusCode);
    }

    private static async Task<T> UntilAsync<T>(Func<Task<T?>> attempt) where T : class
    {
        var deadline = DateTime.UtcNow.AddSeconds(15);
        while (true)
        {
            if (await attempt() is { } result)
                return result;
            if (DateTime.UtcNow > deadline)
                throw new TimeoutException("the condition did not hold within 15 s");
            await Task.Delay(200);
        }
    }
}
