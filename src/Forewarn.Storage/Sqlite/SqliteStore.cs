using System.Collections.Concurrent;
using System.Globalization;
using Forewarn.Core.Store;
using Microsoft.Data.Sqlite;

namespace Forewarn.Storage.Sqlite;

/// <summary>
/// The embedded store: one SQLite file in WAL mode with synchronous=FULL, so a committed transaction
/// survives a crash or power loss. Several processes (the server, the command line) share the file.
/// Connections are kept open in a small pool; each is set up once.
/// </summary>
public sealed class SqliteStore : IForewarnStore
{
    private readonly string _connectionString;
    private readonly ConcurrentBag<SqliteConnection> _idle = [];

    public string Path { get; }

    public string Location => Path;

    /// <summary>SQLite tells no one of a change: the caller polls the versions.</summary>
    public Task WaitForChangeAsync(TimeSpan timeout, CancellationToken cancellationToken) => Task.Delay(timeout, cancellationToken);

    private SqliteStore(string path)
    {
        Path = path;
        _connectionString = new SqliteConnectionStringBuilder
        {
            DataSource = path,
            Mode = SqliteOpenMode.ReadWriteCreate,
            Pooling = false,
            DefaultTimeout = 30,
        }.ToString();
    }

    /// <summary>Opens (creating if needed) the database and brings its schema up to date.</summary>
    public static SqliteStore Open(string path)
    {
        var store = new SqliteStore(path);
        store.Migrate();
        return store;
    }

    public int SchemaVersion
    {
        get
        {
            using var lease = Lease();
            return Convert.ToInt32(Scalar(lease.Connection, "PRAGMA user_version"), CultureInfo.InvariantCulture);
        }
    }

    private void Migrate()
    {
        using var lease = Lease();
        var connection = lease.Connection;
        Execute(connection, "PRAGMA journal_mode = WAL");
        int version = Convert.ToInt32(Scalar(connection, "PRAGMA user_version"), CultureInfo.InvariantCulture);
        if (version > Migrations.Steps.Length)
            throw new InvalidDataException($"the database {Path} has schema version {version}, newer than this Forewarn knows ({Migrations.Steps.Length}): a newer Forewarn has used it; run that version, or restore a backup of the data directory made before the upgrade.");
        for (int step = version; step < Migrations.Steps.Length; step++)
        {
            using var transaction = connection.BeginTransaction();
            Execute(connection, Migrations.Steps[step], transaction);
            Execute(connection, $"PRAGMA user_version = {step + 1}", transaction);
            transaction.Commit();
        }
    }

    private readonly struct ConnectionLease(SqliteStore store, SqliteConnection connection) : IDisposable
    {
        public SqliteConnection Connection { get; } = connection;
        public void Dispose() => store.Return(Connection);
    }

    private ConnectionLease Lease()
    {
        if (!_idle.TryTake(out var connection))
        {
            connection = new SqliteConnection(_connectionString);
            connection.Open();
            Execute(connection, "PRAGMA synchronous = FULL; PRAGMA busy_timeout = 10000; PRAGMA foreign_keys = ON;");
        }
        return new ConnectionLease(this, connection);
    }

    private void Return(SqliteConnection connection)
    {
        if (_idle.Count < 16 && connection.State == System.Data.ConnectionState.Open)
            _idle.Add(connection);
        else
            connection.Dispose();
    }

    private static void Execute(SqliteConnection connection, string sql, SqliteTransaction? transaction = null)
    {
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        command.Transaction = transaction;
        command.ExecuteNonQuery();
    }

    private static object? Scalar(SqliteConnection connection, string sql)
    {
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        return command.ExecuteScalar();
    }

    private static SqliteCommand Command(SqliteConnection connection, string sql, params (string Name, object? Value)[] parameters)
    {
        var command = connection.CreateCommand();
        command.CommandText = sql;
        foreach (var (name, value) in parameters)
            command.Parameters.AddWithValue(name, value ?? DBNull.Value);
        return command;
    }

    // ---- users and groups -------------------------------------------------------------------

    private const string UserColumns = "name, methods, password_hash, nt_hash, sealed_password, group_name, reply, checks, enabled, enable_hash, tacacs_arguments";
    private const string UserValues = "$name, $methods, $hash, $nt, $sealed, $group, $reply, $checks, $enabled, $enable, $arguments";
    private const string UserUpdate = "UPDATE users SET methods = $methods, password_hash = $hash, nt_hash = $nt, sealed_password = $sealed, group_name = $group, " +
        "reply = $reply, checks = $checks, enabled = $enabled, enable_hash = $enable, tacacs_arguments = $arguments, updated_at = $now WHERE name = $name";
    private const string GroupColumns = "name, reply, checks, enable_hash, tacacs_arguments, command_sets";

    public ValueTask<UserRecord?> FindUserAsync(string name, CancellationToken cancellationToken = default)
    {
        using var lease = Lease();
        using var command = Command(lease.Connection, $"SELECT {UserColumns} FROM users WHERE name = $name", ("$name", name));
        using var reader = command.ExecuteReader();
        return ValueTask.FromResult(reader.Read() ? ReadUser(reader) : null);
    }

    private static UserRecord ReadUser(SqliteDataReader r) => new(
        r.GetString(0),
        (AuthMethods)r.GetInt32(1),
        new Credential(r.IsDBNull(2) ? null : r.GetString(2), r.IsDBNull(3) ? null : (byte[])r[3], r.IsDBNull(4) ? null : (byte[])r[4]),
        r.IsDBNull(5) ? null : r.GetString(5),
        ItemText.ParseReply(r.GetString(6)),
        ItemText.ParseChecks(r.GetString(7)),
        r.GetInt64(8) != 0,
        r.IsDBNull(9) ? null : r.GetString(9),
        ItemText.ParseArguments(r.GetString(10)));

    private static GroupRecord ReadGroup(SqliteDataReader r) => new(
        r.GetString(0), ItemText.ParseReply(r.GetString(1)), ItemText.ParseChecks(r.GetString(2)),
        r.IsDBNull(3) ? null : r.GetString(3), ItemText.ParseArguments(r.GetString(4)), ItemText.ParseBindings(r.GetString(5)));

    public ValueTask<GroupRecord?> FindGroupAsync(string name, CancellationToken cancellationToken = default)
    {
        using var lease = Lease();
        using var command = Command(lease.Connection, $"SELECT {GroupColumns} FROM groups WHERE name = $name", ("$name", name));
        using var reader = command.ExecuteReader();
        return ValueTask.FromResult(reader.Read() ? ReadGroup(reader) : null);
    }

    private static (string, object?)[] UserParameters(UserRecord user) =>
    [
        ("$name", user.Name), ("$methods", (int)user.Methods), ("$hash", user.Credential.PasswordHash),
        ("$nt", user.Credential.NtHash), ("$sealed", user.Credential.SealedPassword), ("$group", user.Group),
        ("$reply", ItemText.Format(user.Reply)), ("$checks", ItemText.Format(user.Checks)), ("$enabled", user.Enabled ? 1 : 0),
        ("$enable", user.EnableHash), ("$arguments", ItemText.Format(user.Arguments)),
        ("$now", DateTimeOffset.UtcNow.ToUnixTimeMilliseconds()),
    ];

    public Task<bool> AddUserAsync(UserRecord user, CancellationToken cancellationToken = default)
    {
        using var lease = Lease();
        using var command = Command(lease.Connection,
            $"INSERT OR IGNORE INTO users ({UserColumns}, updated_at) VALUES ({UserValues}, $now)",
            UserParameters(user));
        return Task.FromResult(command.ExecuteNonQuery() == 1);
    }

    public Task<bool> UpdateUserAsync(UserRecord user, CancellationToken cancellationToken = default)
    {
        using var lease = Lease();
        using var command = Command(lease.Connection,
            UserUpdate,
            UserParameters(user));
        return Task.FromResult(command.ExecuteNonQuery() == 1);
    }

    public Task<(int Added, int Replaced)> ImportUsersAsync(IReadOnlyList<UserRecord> users, CancellationToken cancellationToken = default)
    {
        using var lease = Lease();
        using var transaction = lease.Connection.BeginTransaction();
        int added = 0, replaced = 0;
        foreach (var user in users)
        {
            using var insert = Command(lease.Connection,
                $"INSERT OR IGNORE INTO users ({UserColumns}, updated_at) VALUES ({UserValues}, $now)",
                UserParameters(user));
            insert.Transaction = transaction;
            if (insert.ExecuteNonQuery() == 1)
            {
                added++;
                continue;
            }
            using var update = Command(lease.Connection,
                UserUpdate,
                UserParameters(user));
            update.Transaction = transaction;
            replaced += update.ExecuteNonQuery();
        }
        transaction.Commit();
        return Task.FromResult((added, replaced));
    }

    public Task<bool> RemoveUserAsync(string name, CancellationToken cancellationToken = default)
    {
        using var lease = Lease();
        using var command = Command(lease.Connection, "DELETE FROM users WHERE name = $name", ("$name", name));
        return Task.FromResult(command.ExecuteNonQuery() == 1);
    }

    public Task<IReadOnlyList<UserRecord>> ListUsersAsync(CancellationToken cancellationToken = default)
    {
        using var lease = Lease();
        using var command = Command(lease.Connection, $"SELECT {UserColumns} FROM users ORDER BY name");
        using var reader = command.ExecuteReader();
        var users = new List<UserRecord>();
        while (reader.Read())
            users.Add(ReadUser(reader));
        return Task.FromResult<IReadOnlyList<UserRecord>>(users);
    }

    public Task SetGroupAsync(GroupRecord group, CancellationToken cancellationToken = default)
    {
        using var lease = Lease();
        using var command = Command(lease.Connection,
            $"INSERT INTO groups ({GroupColumns}) VALUES ($name, $reply, $checks, $enable, $arguments, $sets) ON CONFLICT (name) DO UPDATE " +
            "SET reply = $reply, checks = $checks, enable_hash = $enable, tacacs_arguments = $arguments, command_sets = $sets",
            ("$name", group.Name), ("$reply", ItemText.Format(group.Reply)), ("$checks", ItemText.Format(group.Checks)),
            ("$enable", group.EnableHash), ("$arguments", ItemText.Format(group.Arguments)), ("$sets", ItemText.Format(group.CommandSets)));
        command.ExecuteNonQuery();
        return Task.CompletedTask;
    }

    public Task<bool> RemoveGroupAsync(string name, CancellationToken cancellationToken = default)
    {
        using var lease = Lease();
        using var command = Command(lease.Connection, "DELETE FROM groups WHERE name = $name", ("$name", name));
        return Task.FromResult(command.ExecuteNonQuery() == 1);
    }

    public Task<IReadOnlyList<GroupRecord>> ListGroupsAsync(CancellationToken cancellationToken = default)
    {
        using var lease = Lease();
        using var command = Command(lease.Connection, $"SELECT {GroupColumns} FROM groups ORDER BY name");
        using var reader = command.ExecuteReader();
        var groups = new List<GroupRecord>();
        while (reader.Read())
            groups.Add(ReadGroup(reader));
        return Task.FromResult<IReadOnlyList<GroupRecord>>(groups);
    }

    // ---- TACACS+ command sets ---------------------------------------------------------------

    public ValueTask<CommandSet?> FindCommandSetAsync(string name, CancellationToken cancellationToken = default)
    {
        using var lease = Lease();
        using var command = Command(lease.Connection, "SELECT name, rules FROM command_sets WHERE name = $name", ("$name", name));
        using var reader = command.ExecuteReader();
        return ValueTask.FromResult(reader.Read() ? new CommandSet(reader.GetString(0), ItemText.ParseRules(reader.GetString(1))) : null);
    }

    public Task SetCommandSetAsync(CommandSet commandSet, CancellationToken cancellationToken = default)
    {
        using var lease = Lease();
        using var command = Command(lease.Connection,
            "INSERT INTO command_sets (name, rules) VALUES ($name, $rules) ON CONFLICT (name) DO UPDATE SET rules = $rules",
            ("$name", commandSet.Name), ("$rules", ItemText.Format(commandSet.Rules)));
        command.ExecuteNonQuery();
        return Task.CompletedTask;
    }

    public Task<bool> RemoveCommandSetAsync(string name, CancellationToken cancellationToken = default)
    {
        using var lease = Lease();
        using var command = Command(lease.Connection, "DELETE FROM command_sets WHERE name = $name", ("$name", name));
        return Task.FromResult(command.ExecuteNonQuery() == 1);
    }

    public Task<IReadOnlyList<CommandSet>> ListCommandSetsAsync(CancellationToken cancellationToken = default)
    {
        using var lease = Lease();
        using var command = Command(lease.Connection, "SELECT name, rules FROM command_sets ORDER BY name");
        using var reader = command.ExecuteReader();
        var sets = new List<CommandSet>();
        while (reader.Read())
            sets.Add(new CommandSet(reader.GetString(0), ItemText.ParseRules(reader.GetString(1))));
        return Task.FromResult<IReadOnlyList<CommandSet>>(sets);
    }

    public Task<bool> PingAsync(CancellationToken cancellationToken = default)
    {
        using var lease = Lease();
        return Task.FromResult(Convert.ToInt64(Scalar(lease.Connection, "SELECT 1"), CultureInfo.InvariantCulture) == 1);
    }

    // ---- clients ----------------------------------------------------------------------------

    public Task<IReadOnlyList<ClientRecord>> ListClientsAsync(CancellationToken cancellationToken = default)
    {
        using var lease = Lease();
        using var command = Command(lease.Connection, "SELECT name, address, secret, device_group, message_authenticator, class, advisory_port, advisory_secret, tacacs_key, tacacs_unencrypted FROM clients ORDER BY name");
        using var reader = command.ExecuteReader();
        var clients = new List<ClientRecord>();
        while (reader.Read())
        {
            clients.Add(new ClientRecord(reader.GetString(0), reader.GetString(1), reader.GetString(2),
                reader.IsDBNull(3) ? null : reader.GetString(3),
                Enum.Parse<MessageAuthenticatorPolicy>(reader.GetString(4), ignoreCase: true),
                reader.IsDBNull(5) ? null : reader.GetString(5), reader.GetInt32(6), reader.IsDBNull(7) ? null : reader.GetString(7),
                reader.IsDBNull(8) ? null : reader.GetString(8), reader.GetInt64(9) != 0));
        }
        return Task.FromResult<IReadOnlyList<ClientRecord>>(clients);
    }

    public Task<bool> AddClientAsync(ClientRecord client, CancellationToken cancellationToken = default)
    {
        using var lease = Lease();
        using var command = Command(lease.Connection,
            "INSERT OR IGNORE INTO clients (name, address, secret, device_group, message_authenticator, class, advisory_port, advisory_secret, tacacs_key, tacacs_unencrypted) " +
            "VALUES ($name, $address, $secret, $group, $ma, $class, $port, $advisory, $tacacs, $unencrypted)",
            ClientParameters(client));
        return Task.FromResult(command.ExecuteNonQuery() == 1);
    }

    /// <summary>A client's columns as the insert and the update name them.</summary>
    private static (string, object?)[] ClientParameters(ClientRecord client) =>
    [
        ("$name", client.Name), ("$address", client.Address), ("$secret", client.Secret), ("$group", client.DeviceGroup),
        ("$ma", client.MessageAuthenticator.ToString()), ("$class", client.Class), ("$port", client.AdvisoryPort), ("$advisory", client.AdvisorySecret),
        ("$tacacs", client.TacacsKey), ("$unencrypted", client.TacacsUnencrypted ? 1 : 0),
    ];

    public Task<bool> UpdateClientAsync(ClientRecord client, CancellationToken cancellationToken = default)
    {
        using var lease = Lease();
        using var command = Command(lease.Connection,
            "UPDATE clients SET address = $address, secret = $secret, device_group = $group, message_authenticator = $ma, class = $class, advisory_port = $port, " +
            "advisory_secret = $advisory, tacacs_key = $tacacs, tacacs_unencrypted = $unencrypted WHERE name = $name",
            ClientParameters(client));
        return Task.FromResult(command.ExecuteNonQuery() == 1);
    }

    public Task<bool> RemoveClientAsync(string name, CancellationToken cancellationToken = default)
    {
        using var lease = Lease();
        using var command = Command(lease.Connection, "DELETE FROM clients WHERE name = $name", ("$name", name));
        return Task.FromResult(command.ExecuteNonQuery() == 1);
    }

    public Task<long> ClientsVersionAsync(CancellationToken cancellationToken = default)
    {
        using var lease = Lease();
        return Task.FromResult(Convert.ToInt64(Scalar(lease.Connection, "SELECT value FROM meta WHERE key = 'clients_version'"), CultureInfo.InvariantCulture));
    }

    public Task<long> UsersVersionAsync(CancellationToken cancellationToken = default)
    {
        using var lease = Lease();
        return Task.FromResult(Convert.ToInt64(Scalar(lease.Connection, "SELECT value FROM meta WHERE key = 'users_version'"), CultureInfo.InvariantCulture));
    }

    // ---- accounting -------------------------------------------------------------------------

    // The accounting writer's own connection and prepared insert: one loop commits every batch, so its
    // page cache stays warm (a pooled connection would drop its cache whenever another had written).
    private readonly Lock _accountingGate = new();
    private SqliteConnection? _accountingConnection;
    private SqliteCommand? _insert;

    /// <summary>
    /// Stores the batch in one durable transaction, skipping records whose dedup key is among the recent
    /// ones (retransmissions that escaped the server's duplicate cache). Returns how many were new.
    /// </summary>
    public Task<int> AppendBatchAsync(IReadOnlyList<AccountingRecord> records, CancellationToken cancellationToken = default)
    {
        lock (_accountingGate)
        {
            var insert = _insert ?? PrepareInsert();
            _recent ??= LoadRecentKeys();
            var fresh = new HashSet<ulong>(records.Count);
            using var transaction = _accountingConnection!.BeginTransaction();
            insert.Transaction = transaction;
            var p = insert.Parameters;
            foreach (var record in records)
            {
                ulong key = RecentKeys.Of(record.DedupKey);
                if (_recent.Contains(key) || !fresh.Add(key))
                    continue;
                p[0].Value = record.ReceivedAt.ToUnixTimeMilliseconds();
                p[1].Value = record.ClientName;
                p[2].Value = record.ClientAddress;
                p[3].Value = (object?)record.UserName ?? DBNull.Value;
                p[4].Value = (object?)record.SessionId ?? DBNull.Value;
                p[5].Value = (long)record.StatusType;
                p[6].Value = record.Attributes;
                p[7].Value = record.DedupKey;
                p[8].Value = record.Protocol;
                insert.ExecuteNonQuery();
            }
            transaction.Commit();
            // Only what is on disk joins the window: a failed commit leaves the keys free for the retransmission.
            // Aged by the monotonic clock: a step of the wall clock must neither expire the window at once
            // (a retransmission stored twice) nor keep it for ever.
            long now = Environment.TickCount64;
            foreach (var key in fresh)
                _recent.Add(key, now);
            return Task.FromResult(fresh.Count);
        }
    }

    private RecentKeys? _recent;

    /// <summary>
    /// The window starts with the keys of what was stored in its span before a restart, so a retransmission
    /// after a crash is still recognised. The span is a window before now or before the newest record,
    /// whichever is earlier, up to the newest (so a step of the wall clock between the crash and the
    /// restart, either way, still finds what was stored last), in insertion order; every key loaded counts
    /// as just stored, since the wall-clock times of a stepped clock cannot say how old they are. Keeping
    /// a few minutes too many is harmless; forgetting the last ones is not.
    /// </summary>
    private RecentKeys LoadRecentKeys()
    {
        var recent = new RecentKeys();
        long now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        long newest = Convert.ToInt64(Scalar(_accountingConnection!, "SELECT coalesce(max(received_at), 0) FROM accounting"), CultureInfo.InvariantCulture);
        long tick = Environment.TickCount64;
        using var command = Command(_accountingConnection!, "SELECT dedup_key FROM accounting WHERE received_at >= $since ORDER BY id",
            ("$since", Math.Min(now, newest) - (long)RecentKeys.Window.TotalMilliseconds));
        using var reader = command.ExecuteReader();
        while (reader.Read())
            recent.Add(RecentKeys.Of(reader.GetString(0)), tick);
        return recent;
    }

    private SqliteCommand PrepareInsert()
    {
        var connection = new SqliteConnection(_connectionString);
        connection.Open();
        Execute(connection, "PRAGMA synchronous = FULL; PRAGMA busy_timeout = 10000; PRAGMA cache_size = -32768;");
        var command = connection.CreateCommand();
        command.CommandText =
            "INSERT OR IGNORE INTO accounting (received_at, client, client_address, user_name, session_id, status_type, attributes, dedup_key, protocol) " +
            "VALUES ($at, $client, $address, $user, $session, $status, $attributes, $key, $protocol)";
        command.Parameters.Add("$at", SqliteType.Integer);
        command.Parameters.Add("$client", SqliteType.Text);
        command.Parameters.Add("$address", SqliteType.Text);
        command.Parameters.Add("$user", SqliteType.Text);
        command.Parameters.Add("$session", SqliteType.Text);
        command.Parameters.Add("$status", SqliteType.Integer);
        command.Parameters.Add("$attributes", SqliteType.Text);
        command.Parameters.Add("$key", SqliteType.Text);
        command.Parameters.Add("$protocol", SqliteType.Text);
        _accountingConnection = connection;
        _insert = command;
        return command;
    }

    public Task ProbeWriteAsync(CancellationToken cancellationToken = default)
    {
        using var lease = Lease();
        using var command = Command(lease.Connection, "UPDATE meta SET value = $now WHERE key = 'heartbeat'", ("$now", DateTimeOffset.UtcNow.ToUnixTimeMilliseconds()));
        if (command.ExecuteNonQuery() != 1)
            throw new InvalidOperationException("The heartbeat row is missing.");
        return Task.CompletedTask;
    }

    public Task<IReadOnlyList<AccountingRecord>> QueryAsync(AccountingQuery query, CancellationToken cancellationToken = default)
    {
        var (sql, parameters) = AccountingSql.Select(query);
        using var lease = Lease();
        using var command = Command(lease.Connection, sql, parameters);
        using var reader = command.ExecuteReader();
        var records = new List<AccountingRecord>();
        while (reader.Read())
            records.Add(AccountingSql.Read(reader));
        return Task.FromResult<IReadOnlyList<AccountingRecord>>(records);
    }

    /// <summary>Removes the accounting records up to and including <paramref name="throughId"/> (a spill, once replayed elsewhere).</summary>
    public Task RemoveAccountingThroughAsync(long throughId, CancellationToken cancellationToken = default)
    {
        lock (_accountingGate)
        {
            using var lease = Lease();
            using var command = Command(lease.Connection, "DELETE FROM accounting WHERE id <= $id", ("$id", throughId));
            command.ExecuteNonQuery();
        }
        return Task.CompletedTask;
    }

    /// <summary>How many accounting records are stored.</summary>
    public long AccountingCount()
    {
        using var lease = Lease();
        return Convert.ToInt64(Scalar(lease.Connection, "SELECT count(*) FROM accounting"), CultureInfo.InvariantCulture);
    }

    // ---- relay spool ------------------------------------------------------------------------

    public long Spool(string client, ReadOnlySpan<byte> attributes)
    {
        using var lease = Lease();
        using var command = Command(lease.Connection, "INSERT INTO spool (spooled_at, client, attributes) VALUES ($at, $client, $attributes); SELECT last_insert_rowid();",
            ("$at", DateTimeOffset.UtcNow.ToUnixTimeMilliseconds()), ("$client", client), ("$attributes", attributes.ToArray()));
        return Convert.ToInt64(command.ExecuteScalar(), CultureInfo.InvariantCulture);
    }

    public IReadOnlyList<SpooledRequest> PeekSpool(int limit)
    {
        using var lease = Lease();
        using var command = Command(lease.Connection, "SELECT id, spooled_at, client, attributes FROM spool ORDER BY id LIMIT $limit", ("$limit", limit));
        using var reader = command.ExecuteReader();
        var spooled = new List<SpooledRequest>();
        while (reader.Read())
            spooled.Add(new SpooledRequest(reader.GetInt64(0), DateTimeOffset.FromUnixTimeMilliseconds(reader.GetInt64(1)), reader.GetString(2), (byte[])reader[3]));
        return spooled;
    }

    public void Unspool(long id)
    {
        using var lease = Lease();
        using var command = Command(lease.Connection, "DELETE FROM spool WHERE id = $id", ("$id", id));
        command.ExecuteNonQuery();
    }

    public long SpoolDepth()
    {
        using var lease = Lease();
        return Convert.ToInt64(Scalar(lease.Connection, "SELECT count(*) FROM spool"), CultureInfo.InvariantCulture);
    }

    public void Dispose()
    {
        while (_idle.TryTake(out var connection))
            connection.Dispose();
        lock (_accountingGate)
        {
            _insert?.Dispose();
            _accountingConnection?.Dispose();
            _insert = null;
            _accountingConnection = null;
        }
    }
}
