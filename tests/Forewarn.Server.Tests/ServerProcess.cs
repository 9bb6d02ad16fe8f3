using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;
using Forewarn.Server.Health;

namespace Forewarn.Server.Tests;

/// <summary>`forewarn serve` in its own process on free ports, with its admin API.</summary>
public sealed partial class ServerProcess : IAsyncDisposable
{
    private static readonly string Program = Path.Combine(AppContext.BaseDirectory, "forewarn.dll");
    private readonly Process _process;
    private readonly HttpClient _http = new() { Timeout = TimeSpan.FromSeconds(10) };

    public int AuthPort { get; }
    public int AcctPort { get; }
    public string DataDirectory { get; }
    public Uri Admin { get; }
    public int Id => _process.Id;
    /// <summary>Standard output after the ready lines; complete once the process has exited.</summary>
    public Task<string> RestOfOutput { get; private init; } = Task.FromResult("");

    private ServerProcess(Process process, string data, int auth, int acct, Uri admin)
    {
        _process = process;
        DataDirectory = data;
        AuthPort = auth;
        AcctPort = acct;
        Admin = admin;
    }

    /// <summary>The loopback address it listens on.</summary>
    public string Address { get; private init; } = "127.0.0.1";

    /// <summary>The TACACS+ port, when TACACS+ is on.</summary>
    public int TacacsPort { get; private init; }

    [GeneratedRegex(@"Ready: (auth|acct|tacacs|advisory) (127\.\d+\.\d+\.\d+):(\d+)")]
    private static partial Regex ReadyLine();

    public static Task<ServerProcess> StartAsync(string data, params string[] extra) => StartAsync(data, environment: null, extra);

    /// <summary>As <see cref="StartAsync(string, string[])"/>, with variables added to the server's environment (e.g. LD_PRELOAD).</summary>
    public static async Task<ServerProcess> StartAsync(string data, IReadOnlyDictionary<string, string>? environment, params string[] extra)
    {
        var info = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var (name, value) in environment ?? new Dictionary<string, string>())
            info.Environment[name] = value;
        info.ArgumentList.Add(Program);
        info.ArgumentList.Add("serve");
        info.ArgumentList.Add("--data");
        info.ArgumentList.Add(data);
        // Free ports, unless the caller names one (a server restarted on the port its NASes know).
        foreach (var port in new[] { "--auth-port", "--acct-port", "--advisory-port", "--tacacs-port" }.Where(p => !extra.Contains(p)))
        {
            info.ArgumentList.Add(port);
            info.ArgumentList.Add("0");
        }
        foreach (var argument in extra)
            info.ArgumentList.Add(argument);
        var process = Process.Start(info)!;
        var log = new System.Text.StringBuilder();
        process.ErrorDataReceived += (_, e) =>
        {
            lock (log)
                log.AppendLine(e.Data);
        };
        process.BeginErrorReadLine();
        int auth = 0, acct = 0, tacacs = 0;
        string address = "127.0.0.1";
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        // The advisory line comes after the others; a server with advisories off prints none, so TACACS+ ends the wait too.
        while ((auth == 0 || acct == 0 || tacacs == 0) && await process.StandardOutput.ReadLineAsync(cts.Token) is { } line)
        {
            var match = ReadyLine().Match(line);
            if (!match.Success)
                continue;
            int port = int.Parse(match.Groups[3].Value, CultureInfo.InvariantCulture);
            address = match.Groups[2].Value;
            switch (match.Groups[1].Value)
            {
                case "auth": auth = port; break;
                case "acct": acct = port; break;
                case "tacacs": tacacs = port; break;
                default: tacacs = tacacs == 0 ? -1 : tacacs; break;
            }
        }
        tacacs = Math.Max(0, tacacs);
        if (auth == 0 || acct == 0)
        {
            process.Kill(entireProcessTree: true);
            throw new InvalidOperationException("the server did not report its ports");
        }
        // The rest of the output, kept as it comes, so that a failing request can show what the server logged.
        var rest = Task.Run(async () =>
        {
            while (await process.StandardOutput.ReadLineAsync() is { } line)
            {
                lock (log)
                    log.AppendLine(line);
            }
            lock (log)
                return log.ToString();
        });
        var admin = new Uri((await File.ReadAllTextAsync(Path.Combine(data, "admin.url"), cts.Token)).Trim());
        var server = new ServerProcess(process, data, auth, acct, admin) { RestOfOutput = rest, TacacsPort = tacacs, Address = address, _log = log };
        // As the operator: the token the server wrote to its data directory (0600).
        server._http.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer",
            (await File.ReadAllTextAsync(Path.Combine(data, "admin.token"), cts.Token)).Trim());
        return server;
    }

    private System.Text.StringBuilder _log = new();

    /// <summary>The server's output so far (standard output after the ready lines, and standard error).</summary>
    public string OutputSoFar()
    {
        lock (_log)
            return _log.ToString();
    }

    public async Task<ServerStatus> StatusAsync()
    {
        using var response = await _http.GetAsync(new Uri(Admin, "/api/status"));
        var body = await response.Content.ReadAsStringAsync();
        if (!response.IsSuccessStatusCode)
        {
            var output = OutputSoFar();
            throw new HttpRequestException($"GET /api/status: {(int)response.StatusCode} {response.StatusCode} {body}\nthe server's output, last 6000 characters:\n{output[Math.Max(0, output.Length - 6000)..]}");
        }
        return JsonSerializer.Deserialize<ServerStatus>(body, AdminJson.Options)!;
    }

    public async Task PostAsync(string pathAndQuery)
    {
        using var response = await _http.PostAsync(new Uri(Admin, pathAndQuery), null);
        response.EnsureSuccessStatusCode();
    }

    /// <summary>Polls the status until <paramref name="condition"/> holds or the time is up; returns the last status.</summary>
    public async Task<ServerStatus> WaitForAsync(Func<ServerStatus, bool> condition, TimeSpan limit)
    {
        var deadline = DateTime.UtcNow + limit;
        var status = await StatusAsync();
        while (!condition(status) && DateTime.UtcNow < deadline)
        {
            await Task.Delay(100);
            status = await StatusAsync();
        }
        return status;
    }

    public async Task KillAsync()
    {
        _process.Kill(entireProcessTree: true);
        await _process.WaitForExitAsync();
    }

    /// <summary>SIGTERM, then the exit code.</summary>
    public async Task<int> TerminateAsync()
    {
        await Peer.RunAsync("kill", ["-TERM", _process.Id.ToString(CultureInfo.InvariantCulture)]);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await _process.WaitForExitAsync(cts.Token);
        return _process.ExitCode;
    }

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync();
        }
        _process.Dispose();
        _http.Dispose();
    }
}
