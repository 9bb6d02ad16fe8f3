using System.Diagnostics;

namespace Forewarn.Server.Tests;

/// <summary>
/// A real FreeRADIUS (Debian's freeradius package) on its own loopback address, configured by the test:
/// a copy of /etc/freeradius/3.0 with the listeners moved, one client and one user added.
/// </summary>
public sealed class FreeRadiusPeer : IAsyncDisposable
{
    private const string Installed = "/etc/freeradius/3.0";
    private readonly string _directory;
    private Process? _process;

    public string Address { get; }

    private FreeRadiusPeer(string directory, string address)
    {
        _directory = directory;
        Address = address;
    }

    public static async Task<FreeRadiusPeer> StartAsync(string address, string clientAddress, string clientSecret, string user, string password,
        Func<string, Task>? configure = null)
    {
        Assert.True(Directory.Exists(Installed), $"{Installed} is missing: .ci/run installs Debian's freeradius package");
        var directory = Path.Combine(Path.GetTempPath(), "forewarn-freeradius-" + Guid.NewGuid().ToString("N")[..8]);
        await Peer.RunAsync("/bin/cp", ["-a", Installed, directory]);
        string Site(string name) => Path.Combine(directory, "sites-enabled", name);
        // Listen on our own address; the inner tunnel on a port of its own so that nothing else collides.
        var site = await File.ReadAllTextAsync(Site("default"));
        site = site.Replace("ipaddr = *", $"ipaddr = {address}", StringComparison.Ordinal)
                   .Replace("ipv6addr = ::", "ipv6addr = ::1", StringComparison.Ordinal);
        site = System.Text.RegularExpressions.Regex.Replace(site, @"listen \{\s*type = (auth|acct)\s*ipv6addr = ::1[\s\S]*?\n\}", "");
        await File.WriteAllTextAsync(Site("default"), site);
        var inner = await File.ReadAllTextAsync(Site("inner-tunnel"));
        await File.WriteAllTextAsync(Site("inner-tunnel"), inner.Replace("port = 18120", $"port = {18200 + Random.Shared.Next(700)}", StringComparison.Ordinal));
        await File.AppendAllTextAsync(Path.Combine(directory, "clients.conf"), $"\nclient forewarn-relay {{\n\tipaddr = {clientAddress}\n\tsecret = {clientSecret}\n}}\n");
        var users = Path.Combine(directory, "mods-config", "files", "authorize");
        await File.WriteAllTextAsync(users, $"{user}\tCleartext-Password := \"{password}\"\n\n" + await File.ReadAllTextAsync(users));
        if (configure is not null)
            await configure(directory);
        await Peer.RunAsync("/bin/chmod", ["-R", "a+rX", directory]);
        var peer = new FreeRadiusPeer(directory, address);
        await peer.StartProcessAsync();
        return peer;
    }

    public async Task StartProcessAsync()
    {
        var info = new ProcessStartInfo(Peer.Require("freeradius"), ["-f", "-d", _directory, "-l", "stdout"])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        _process = Process.Start(info)!;
        var ready = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var log = new System.Text.StringBuilder();
        _process.OutputDataReceived += (_, e) =>
        {
            lock (log)
                log.AppendLine(e.Data);
            if (e.Data?.Contains("Ready to process requests", StringComparison.Ordinal) == true)
                ready.TrySetResult();
        };
        _process.ErrorDataReceived += (_, e) =>
        {
            lock (log)
                log.AppendLine(e.Data);
        };
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
        var finished = await Task.WhenAny(ready.Task, _process.WaitForExitAsync(), Task.Delay(TimeSpan.FromSeconds(30)));
        if (finished != ready.Task)
        {
            string text;
            lock (log)
                text = log.ToString();
            throw new InvalidOperationException("FreeRADIUS did not start:\n" + text);
        }
    }

    /// <summary>
    /// rlm_sql on PostgreSQL (Debian's freeradius-postgresql) for a configuration: users from its radcheck
    /// tables as well as the users file, accounting into its radacct, as a FreeRADIUS+SQL site runs it.
    /// </summary>
    public static Func<string, Task> WithSql(int port, string database, string login, string password) => async directory =>
    {
        Assert.True(File.Exists("/usr/lib/freeradius/rlm_sql_postgresql.so"), "rlm_sql_postgresql is missing: .ci/run installs Debian's freeradius-postgresql");
        var module = Path.Combine(directory, "mods-available", "sql");
        var sql = await File.ReadAllTextAsync(module);
        string Set(string text, string pattern, string replacement) =>
            System.Text.RegularExpressions.Regex.Replace(text, pattern, replacement, System.Text.RegularExpressions.RegexOptions.Multiline);
        sql = Set(sql, @"^(\s*)dialect = ""sqlite""", "$1dialect = \"postgresql\"");
        sql = Set(sql, @"^(\s*)driver = ""rlm_sql_null""", "$1driver = \"rlm_sql_postgresql\"");
        sql = Set(sql, @"^(\s*)#?\s*server = ""localhost""", "$1server = \"127.0.0.1\"");
        sql = Set(sql, @"^(\s*)#?\s*port = 3306", $"$1port = {port}");
        sql = Set(sql, @"^(\s*)#?\s*login = ""radius""", $"$1login = \"{login}\"");
        sql = Set(sql, @"^(\s*)#?\s*password = ""radpass""", $"$1password = \"{password}\"");
        sql = Set(sql, @"^(\s*)radius_db = ""radius""", $"$1radius_db = \"{database}\"");
        await File.WriteAllTextAsync(module, sql);
        var link = Path.Combine(directory, "mods-enabled", "sql");
        if (!File.Exists(link))
            File.CreateSymbolicLink(link, "../mods-available/sql");
    };

    public async Task StopProcessAsync()
    {
        if (_process is { HasExited: false })
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync();
        }
        _process?.Dispose();
        _process = null;
    }

    public async ValueTask DisposeAsync()
    {
        await StopProcessAsync();
        try
        {
            Directory.Delete(_directory, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
