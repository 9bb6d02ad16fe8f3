using System.Net;
using Npgsql;

namespace Forewarn.Server.Tests;

/// <summary>
/// A private PostgreSQL cluster for the tests, made with Debian's own initdb and pg_ctl in a temporary
/// directory on a free loopback port (run as the postgres user when the tests run as root: PostgreSQL
/// refuses to). Password authentication over TCP, as a deployment would have it. One cluster serves the
/// whole test run; each test takes a database of its own. Stopped when the test process exits.
/// </summary>
public sealed class PostgresCluster
{
    public const string User = "forewarn";
    public const string Password = "pg-test-secret";

    private static readonly Lazy<Task<PostgresCluster>> SharedCluster = new(StartNewAsync);

    private readonly string _bin;
    private readonly string? _runAs;

    public string Directory { get; }
    public int Port { get; }
    /// <summary>A password file (the libpq format Npgsql reads) holding the password, so that no command line carries it.</summary>
    public string PasswordFile { get; }

    private PostgresCluster(string bin, string? runAs, string directory, int port, string passwordFile)
    {
        _bin = bin;
        _runAs = runAs;
        Directory = directory;
        Port = port;
        PasswordFile = passwordFile;
    }

    /// <summary>The installed server's programs, newest major version first; null when PostgreSQL is not installed.</summary>
    private static string? FindBin() =>
        System.IO.Directory.Exists("/usr/lib/postgresql")
            ? System.IO.Directory.GetDirectories("/usr/lib/postgresql").Select(d => Path.Combine(d, "bin"))
                .Where(b => File.Exists(Path.Combine(b, "initdb")) && File.Exists(Path.Combine(b, "pg_ctl")))
                .OrderByDescending(b => b, StringComparer.Ordinal).FirstOrDefault()
            : null;

    /// <summary>The shared cluster, started on first use; the test is skipped (locally) or fails (CI=true) when PostgreSQL is not installed.</summary>
    public static Task<PostgresCluster> SharedAsync()
    {
        Requires.That(FindBin() is not null, "PostgreSQL's server is not installed (/usr/lib/postgresql/*/bin/initdb; .ci/run installs postgresql)");
        return SharedCluster.Value;
    }

    /// <summary>A cluster of the test's own, for a test that stops and starts PostgreSQL (the shared one serves tests running beside it).</summary>
    public static Task<PostgresCluster> PrivateAsync()
    {
        Requires.That(FindBin() is not null, "PostgreSQL's server is not installed (/usr/lib/postgresql/*/bin/initdb; .ci/run installs postgresql)");
        return StartNewAsync();
    }

    private static async Task<PostgresCluster> StartNewAsync()
    {
        var bin = FindBin()!;
        bool root = Environment.UserName == "root";
        var directory = Path.Combine(Path.GetTempPath(), "forewarn-pg-" + Guid.NewGuid().ToString("N")[..10]);
        System.IO.Directory.CreateDirectory(directory);
        var data = Path.Combine(directory, "data");
        var passwordFile = Path.Combine(directory, "superuser.pw");
        await File.WriteAllTextAsync(passwordFile, Password + "\n");
        if (root)
        {
            var chown = await Peer.RunAsync("chown", ["-R", "postgres:postgres", directory]);
            if (chown.ExitCode != 0)
                throw new InvalidOperationException("chown for PostgreSQL failed: " + chown);
        }
        var cluster = new PostgresCluster(bin, root ? "postgres" : null, directory, FreePorts.Tcp(IPAddress.Loopback), Path.Combine(directory, "pgpass"));
        var init = await cluster.RunAsync("initdb", ["-D", data, "-U", User, "--pwfile", passwordFile, "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8", "--locale=C.UTF-8"]);
        if (init.ExitCode != 0)
            throw new InvalidOperationException("initdb failed: " + init);
        await cluster.StartServerAsync();
        // The libpq password file: host:port:database:user:password (any port: a replica of this cluster shares it).
        await File.WriteAllTextAsync(cluster.PasswordFile, $"127.0.0.1:*:*:{User}:{Password}\n");
        if (!OperatingSystem.IsWindows())
            File.SetUnixFileMode(cluster.PasswordFile, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        AppDomain.CurrentDomain.ProcessExit += (_, _) =>
        {
            try
            {
                cluster.RunAsync("pg_ctl", ["-D", data, "-m", "immediate", "stop"]).GetAwaiter().GetResult();
                System.IO.Directory.Delete(directory, recursive: true);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or InvalidOperationException or TimeoutException)
            {
                // best effort at exit: the directory is in /tmp
            }
        };
        return cluster;
    }

    private string DataDirectory => Path.Combine(Directory, "data");

    /// <summary>Starts (or restarts) the server and waits until it accepts connections.</summary>
    public async Task StartServerAsync()
    {
        var start = await RunAsync("pg_ctl", ["-D", DataDirectory, "-w", "-t", "60", "-l", Path.Combine(Directory, "server.log"),
            "-o", $"-c port={Port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={Directory} -c fsync=on -c max_connections=200", "start"], timeoutMs: 90_000);
        if (start.ExitCode != 0)
            throw new InvalidOperationException("pg_ctl start failed: " + start + "\n" + await File.ReadAllTextAsync(Path.Combine(Directory, "server.log")));
    }

    /// <summary>Stops the server at once (as a crash would), so that a test can watch Forewarn ride it out.</summary>
    public async Task StopServerAsync()
    {
        var stop = await RunAsync("pg_ctl", ["-D", DataDirectory, "-m", "immediate", "-w", "stop"]);
        if (stop.ExitCode != 0)
            throw new InvalidOperationException("pg_ctl stop failed: " + stop);
    }

    /// <summary>
    /// A streaming replica of this cluster (pg_basebackup -R: a standby that follows the primary's WAL), in a
    /// directory and on a port of its own, started and caught up.
    /// </summary>
    public async Task<PostgresCluster> StartReplicaAsync()
    {
        var directory = Path.Combine(Path.GetTempPath(), "forewarn-pg-replica-" + Guid.NewGuid().ToString("N")[..10]);
        System.IO.Directory.CreateDirectory(directory);
        // The replication connection's password, readable by the user pg_basebackup runs as.
        var passFile = Path.Combine(directory, "replication.pgpass");
        await File.WriteAllTextAsync(passFile, $"127.0.0.1:{Port}:*:{User}:{Password}\n");
        if (!OperatingSystem.IsWindows())
            File.SetUnixFileMode(passFile, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        if (_runAs is not null)
        {
            var chown = await Peer.RunAsync("chown", ["-R", $"{_runAs}:{_runAs}", directory]);
            if (chown.ExitCode != 0)
                throw new InvalidOperationException("chown for the replica failed: " + chown);
        }
        var replica = new PostgresCluster(_bin, _runAs, directory, FreePorts.Tcp(IPAddress.Loopback), PasswordFile);
        var backup = await RunAsync("env", [$"PGPASSFILE={passFile}", Path.Combine(_bin, "pg_basebackup"), "-h", "127.0.0.1", "-p", $"{Port}", "-U", User,
            "-D", replica.DataDirectory, "-R", "-X", "stream", "-c", "fast"], timeoutMs: 120_000, plain: true);
        if (backup.ExitCode != 0)
            throw new InvalidOperationException("pg_basebackup failed: " + backup);
        // The standby connects to the primary with the same password file.
        await File.AppendAllTextAsync(Path.Combine(replica.DataDirectory, "postgresql.auto.conf"), $"primary_conninfo = 'host=127.0.0.1 port={Port} user={User} passfile={passFile}'\n");
        await replica.StartServerAsync();
        return replica;
    }

    /// <summary>Promotes a standby to primary (pg_ctl promote) and waits until it takes writes.</summary>
    public async Task PromoteAsync()
    {
        var promote = await RunAsync("pg_ctl", ["-D", DataDirectory, "-w", "promote"]);
        if (promote.ExitCode != 0)
            throw new InvalidOperationException("pg_ctl promote failed: " + promote);
    }

    /// <summary>One of PostgreSQL's programs (or, <paramref name="plain"/>, any program), as the cluster's owner.</summary>
    private Task<Peer.Result> RunAsync(string program, string[] arguments, int timeoutMs = 60_000, bool plain = false)
    {
        var path = plain ? program : Path.Combine(_bin, program);
        return _runAs is null
            ? Peer.RunAsync(path, arguments, timeoutMs: timeoutMs)
            : Peer.RunAsync("runuser", ["-u", _runAs, "--", path, .. arguments], timeoutMs: timeoutMs);
    }

    /// <summary>A connection string without the password (it comes from <see cref="PasswordFile"/>), as an operator would write it.</summary>
    public string ConnectionString(string database) =>
        $"Host=127.0.0.1;Port={Port};Database={database};Username={User};Passfile={PasswordFile}";

    /// <summary>A new, empty database for one test.</summary>
    public async Task<string> CreateDatabaseAsync()
    {
        var name = "forewarn_" + Guid.NewGuid().ToString("N")[..12];
        await using var connection = new NpgsqlConnection(ConnectionString("postgres"));
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand($"CREATE DATABASE {name}", connection);
        await command.ExecuteNonQueryAsync();
        return name;
    }
}
