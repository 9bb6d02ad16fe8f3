using Forewarn.Core.Store;
using Forewarn.Storage.Sqlite;
using Npgsql;
using NpgsqlTypes;

namespace Forewarn.Storage.Postgres;

/// <summary>
/// A store in PostgreSQL, shared by several servers and the command line. Every answer to an accounting
/// request waits for a commit PostgreSQL has made durable (synchronous_commit is never off for these
/// sessions); retransmissions are recognised by a unique key, whichever server stored the first copy;
/// changes to users, groups, command sets and clients raise versions and are announced with NOTIFY, so
/// every server's caches follow within milliseconds (and by polling the versions after a reconnect).
/// </summary>
public sealed class PostgresStore : IForewarnStore, IClusterMembership
{
    private readonly NpgsqlDataSource _source;
    private readonly string _listenConnectionString;
    private readonly SemaphoreSlim _changed = new(0, 1);
    private readonly CancellationTokenSource _stopping = new();
    private readonly Lock _listenGate = new();
    private Task? _listener;
    private readonly FreeRadiusSchema? _freeRadius;

    public string Location { get; }

    private PostgresStore(NpgsqlConnectionStringBuilder builder, FreeRadiusSchema? freeRadius)
    {
        Location = Describe(builder);
        _freeRadius = freeRadius;
        // The durable-commit setting below is a session setting: a pooled connection's reset (DISCARD ALL)
        // would undo it, so pooled connections are not reset (this store sets no other session state).
        // A cancelled command (the spill's time limit) gives up on PostgreSQL's answer to the cancel soon.
        var tuned = new NpgsqlConnectionStringBuilder(builder.ConnectionString) { NoResetOnClose = true };
        if (!builder.ContainsKey("Cancellation Timeout"))
            tuned.CancellationTimeout = 500;
        var sourceBuilder = new NpgsqlDataSourceBuilder(tuned.ConnectionString);
        // An acknowledged record must be on PostgreSQL's disk: a database set to synchronous_commit = off
        // (fast, and a lost commit after its crash) is overridden for this server's sessions; stronger
        // settings (remote_write, on, remote_apply with standbys) are left as the DBA chose them.
        sourceBuilder.UsePhysicalConnectionInitializer(
            connection =>
            {
                using var command = new NpgsqlCommand(DurableCommits, connection);
                command.ExecuteNonQuery();
            },
            async connection =>
            {
                await using var command = new NpgsqlCommand(DurableCommits, connection);
                await command.ExecuteNonQueryAsync().ConfigureAwait(false);
            });
        _source = sourceBuilder.Build();
        // The listener holds one connection of its own for as long as the server runs (not from the pool).
        _listenConnectionString = new NpgsqlConnectionStringBuilder(builder.ConnectionString) { Pooling = false, KeepAlive = 10 }.ConnectionString;
    }

    private const string DurableCommits = "SELECT set_config('synchronous_commit', 'on', false) WHERE current_setting('synchronous_commit') = 'off'";

    /// <summary>
    /// Connects, checks the server, and brings the schema up to date (once, however many servers start together).
    /// With <paramref name="freeRadius"/>, a FreeRADIUS site's tables are read and written beside Forewarn's own.
    /// </summary>
    public static async Task<PostgresStore> OpenAsync(string connectionString, FreeRadiusSchema? freeRadius = null, CancellationToken cancellationToken = default)
    {
        var builder = Parse(connectionString);
        var store = new PostgresStore(builder, freeRadius);
        try
        {
            await store.MigrateAsync(cancellationToken).ConfigureAwait(false);
            return store;
        }
        catch
        {
            store.Dispose();
            throw;
        }
    }

    /// <summary>The connection string, parsed; a clear message when it is not one.</summary>
    public static NpgsqlConnectionStringBuilder Parse(string connectionString)
    {
        try
        {
            return new NpgsqlConnectionStringBuilder(connectionString);
        }
        catch (ArgumentException e)
        {
            throw new FormatException($"the PostgreSQL connection string is not valid ({e.Message}); expected e.g. \"Host=127.0.0.1;Port=5432;Database=forewarn;Username=forewarn\"", e);
        }
    }

    /// <summary>The database as an operator names it, without the password.</summary>
    public static string Describe(NpgsqlConnectionStringBuilder builder) =>
        $"postgresql://{builder.Username ?? Environment.UserName}@{builder.Host ?? "localhost"}:{builder.Port}/{builder.Database ?? builder.Username ?? Environment.UserName}";

    public int SchemaVersion
    {
        get
        {
            using var command = _source.CreateCommand("SELECT version FROM forewarn_schema");
            return Convert.ToInt32(command.ExecuteScalar(), System.Globalization.CultureInfo.InvariantCulture);
        }
    }

    private async Task MigrateAsync(CancellationToken cancellationToken)
    {
        await using var connection = await _source.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
        // A transaction-scoped advisory lock: the second server to start waits here, then finds the schema current.
        await ExecuteAsync(connection, transaction, "SELECT pg_advisory_xact_lock(7467377) ; CREATE TABLE IF NOT EXISTS forewarn_schema (version integer NOT NULL); " +
            "INSERT INTO forewarn_schema (version) SELECT 0 WHERE NOT EXISTS (SELECT 1 FROM forewarn_schema)", cancellationToken).ConfigureAwait(false);
        int version;
        await using (var command = new NpgsqlCommand("SELECT version FROM forewarn_schema", connection, transaction))
            version = Convert.ToInt32(await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false), System.Globalization.CultureInfo.InvariantCulture);
        if (version > PostgresMigrations.Steps.Length)
            throw new InvalidDataException($"the database {Location} has schema version {version}, newer than this Forewarn knows ({PostgresMigrations.Steps.Length}): a newer Forewarn has used it; run that version.");
        for (int step = version; step < PostgresMigrations.Steps.Length; step++)
        {
            await ExecuteAsync(connection, transaction, PostgresMigrations.Steps[step], cancellationToken).ConfigureAwait(false);
            await ExecuteAsync(connection, transaction, $"UPDATE forewarn_schema SET version = {step + 1}", cancellationToken).ConfigureAwait(false);
        }
        if (_freeRadius is not null)
            await FreeRadiusSchema.EnsureAsync(connection, transaction, Location, cancellationToken).ConfigureAwait(false);
        await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
    }

    private static async Task ExecuteAsync(NpgsqlConnection connection, NpgsqlTransaction? transaction, string sql, CancellationToken cancellationToken)
    {
        await using var command = new NpgsqlCommand(sql, connection, transaction);
        await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }

    private NpgsqlCommand Command(string sql, params (string Name, object? Value)[] parameters)
    {
        var command = _source.CreateCommand(sql);
        foreach (var (name, value) in parameters)
            command.Parameters.AddWithValue(name, value ?? DBNull.Value);
        return command;
    }

    private async Task<int> NonQueryAsync(string sql, CancellationToken cancellationToken, params (string Name, object? Value)[] parameters)
    {
        await using var command = Command(sql, parameters);
        return await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }

    private async Task<List<T>> ListAsync<T>(string sql, Func<NpgsqlDataReader, T> read, CancellationToken cancellationToken, params (string Name, object? Value)[] parameters)
    {
        await using var command = Command(sql, parameters);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        var rows = new List<T>();
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            rows.Add(read(reader));
        return rows;
    }

    private async Task<long> ScalarAsync(string sql, CancellationToken cancellationToken, params (string Name, object? Value)[] parameters)
    {
        await using var command = Command(sql, parameters);
        return Convert.ToInt64(await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false), System.Globalization.CultureInfo.InvariantCulture);
    }

    // ---- users and groups -------------------------------------------------------------------

    private const string UserColumns = "name, methods, password_hash, nt_hash, sealed_password, group_name, reply, checks, enabled, enable_hash, tacacs_arguments";
    private const string UserValues = "@name, @methods, @hash, @nt, @sealed, @group, @reply, @checks, @enabled, @enable, @arguments";
    private const string UserUpdate = "UPDATE users SET methods = @methods, password_hash = @hash, nt_hash = @nt, sealed_password = @sealed, group_name = @group, " +
        "reply = @reply, checks = @checks, enabled = @enabled, enable_hash = @enable, tacacs_arguments = @arguments, updated_at = @now WHERE name = @name";
    private const string UserInsert = $"INSERT INTO users ({UserColumns}, updated_at) VALUES ({UserValues}, @now) ON CONFLICT (name) DO NOTHING";
    private const string GroupColumns = "name, reply, checks, enable_hash, tacacs_arguments, command_sets";

    private static UserRecord ReadUser(NpgsqlDataReader r) => new(
        r.GetString(0),
        (AuthMethods)r.GetInt32(1),
        new Credential(r.IsDBNull(2) ? null : r.GetString(2), r.IsDBNull(3) ? null : (byte[])r[3], r.IsDBNull(4) ? null : (byte[])r[4]),
        r.IsDBNull(5) ? null : r.GetString(5),
        ItemText.ParseReply(r.GetString(6)),
        ItemText.ParseChecks(r.GetString(7)),
        r.GetBoolean(8),
        r.IsDBNull(9) ? null : r.GetString(9),
        ItemText.ParseArguments(r.GetString(10)));

    private static GroupRecord ReadGroup(NpgsqlDataReader r) => new(
        r.GetString(0), ItemText.ParseReply(r.GetString(1)), ItemText.ParseChecks(r.GetString(2)),
        r.IsDBNull(3) ? null : r.GetString(3), ItemText.ParseArguments(r.GetString(4)), ItemText.ParseBindings(r.GetString(5)));

    private static (string, object?)[] UserParameters(UserRecord user) =>
    [
        ("name", user.Name), ("methods", (int)user.Methods), ("hash", user.Credential.PasswordHash),
        ("nt", user.Credential.NtHash), ("sealed", user.Credential.SealedPassword), ("group", user.Group),
        ("reply", ItemText.Format(user.Reply)), ("checks", ItemText.Format(user.Checks)), ("enabled", user.Enabled),
        ("enable", user.EnableHash), ("arguments", ItemText.Format(user.Arguments)),
        ("now", DateTimeOffset.UtcNow.ToUnixTimeMilliseconds()),
    ];

    /// <summary>
    /// PostgreSQL's text cannot hold U+0000, which a NAS may send (a NUL-terminated User-Name): a name with one
    /// names no stored user, and stored text shows it as "\0" rather than failing the whole batch.
    /// </summary>
    private static string? Text(string? value) => value is not null && value.Contains('\0', StringComparison.Ordinal) ? value.Replace("\0", "\\0", StringComparison.Ordinal) : value;

    /// <summary>Forewarn's own user of this name, else (with the FreeRADIUS schema) the one FreeRADIUS's tables make.</summary>
    public async ValueTask<UserRecord?> FindUserAsync(string name, CancellationToken cancellationToken = default)
    {
        if (name.Contains('\0', StringComparison.Ordinal))
            return null;
        var own = (await ListAsync($"SELECT {UserColumns} FROM users WHERE name = @name", ReadUser, cancellationToken, ("name", name)).ConfigureAwait(false)).FirstOrDefault();
        return own ?? (_freeRadius is null ? null : await _freeRadius.FindUserAsync(_source, name, cancellationToken).ConfigureAwait(false));
    }

    public async ValueTask<GroupRecord?> FindGroupAsync(string name, CancellationToken cancellationToken = default) =>
        (await ListAsync($"SELECT {GroupColumns} FROM groups WHERE name = @name", ReadGroup, cancellationToken, ("name", name)).ConfigureAwait(false)).FirstOrDefault();

    public async Task<bool> AddUserAsync(UserRecord user, CancellationToken cancellationToken = default) =>
        await NonQueryAsync(UserInsert, cancellationToken, UserParameters(user)).ConfigureAwait(false) == 1;

    public async Task<bool> UpdateUserAsync(UserRecord user, CancellationToken cancellationToken = default) =>
        await NonQueryAsync(UserUpdate, cancellationToken, UserParameters(user)).ConfigureAwait(false) == 1;

    public async Task<(int Added, int Replaced)> ImportUsersAsync(IReadOnlyList<UserRecord> users, CancellationToken cancellationToken = default)
    {
        await using var connection = await _source.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
        // The users' version row first: every change to users takes it (the trigger), so taking it before any
        // user's row orders this import with a concurrent `users add` instead of deadlocking with it.
        await ExecuteAsync(connection, transaction, "SELECT value FROM meta WHERE key = 'users_version' FOR UPDATE", cancellationToken).ConfigureAwait(false);
        int added = 0, replaced = 0;
        foreach (var user in users)
        {
            await using var insert = new NpgsqlCommand(UserInsert, connection, transaction);
            foreach (var (name, value) in UserParameters(user))
                insert.Parameters.AddWithValue(name, value ?? DBNull.Value);
            if (await insert.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false) == 1)
            {
                added++;
                continue;
            }
            await using var update = new NpgsqlCommand(UserUpdate, connection, transaction);
            foreach (var (name, value) in UserParameters(user))
                update.Parameters.AddWithValue(name, value ?? DBNull.Value);
            replaced += await update.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }
        await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
        return (added, replaced);
    }

    public async Task<bool> RemoveUserAsync(string name, CancellationToken cancellationToken = default) =>
        await NonQueryAsync("DELETE FROM users WHERE name = @name", cancellationToken, ("name", name)).ConfigureAwait(false) == 1;

    public async Task<IReadOnlyList<UserRecord>> ListUsersAsync(CancellationToken cancellationToken = default)
    {
        var users = await ListAsync($"SELECT {UserColumns} FROM users ORDER BY name", ReadUser, cancellationToken).ConfigureAwait(false);
        if (_freeRadius is null)
            return users;
        var own = users.Select(u => u.Name).ToHashSet(StringComparer.Ordinal);
        foreach (var name in await FreeRadiusSchema.UserNamesAsync(_source, cancellationToken).ConfigureAwait(false))
        {
            if (!own.Contains(name) && await _freeRadius.FindUserAsync(_source, name, cancellationToken).ConfigureAwait(false) is { } user)
                users.Add(user);
        }
        return [.. users.OrderBy(u => u.Name, StringComparer.Ordinal)];
    }

    public Task SetGroupAsync(GroupRecord group, CancellationToken cancellationToken = default) =>
        NonQueryAsync($"INSERT INTO groups ({GroupColumns}) VALUES (@name, @reply, @checks, @enable, @arguments, @sets) ON CONFLICT (name) DO UPDATE " +
            "SET reply = @reply, checks = @checks, enable_hash = @enable, tacacs_arguments = @arguments, command_sets = @sets", cancellationToken,
            ("name", group.Name), ("reply", ItemText.Format(group.Reply)), ("checks", ItemText.Format(group.Checks)),
            ("enable", group.EnableHash), ("arguments", ItemText.Format(group.Arguments)), ("sets", ItemText.Format(group.CommandSets)));

    public async Task<bool> RemoveGroupAsync(string name, CancellationToken cancellationToken = default) =>
        await NonQueryAsync("DELETE FROM groups WHERE name = @name", cancellationToken, ("name", name)).ConfigureAwait(false) == 1;

    public async Task<IReadOnlyList<GroupRecord>> ListGroupsAsync(CancellationToken cancellationToken = default) =>
        await ListAsync($"SELECT {GroupColumns} FROM groups ORDER BY name", ReadGroup, cancellationToken).ConfigureAwait(false);

    public async Task<bool> PingAsync(CancellationToken cancellationToken = default) =>
        await ScalarAsync("SELECT 1", cancellationToken).ConfigureAwait(false) == 1;

    public Task<long> UsersVersionAsync(CancellationToken cancellationToken = default) =>
        ScalarAsync("SELECT value FROM meta WHERE key = 'users_version'", cancellationToken);

    // ---- TACACS+ command sets ---------------------------------------------------------------

    private static CommandSet ReadCommandSet(NpgsqlDataReader r) => new(r.GetString(0), ItemText.ParseRules(r.GetString(1)));

    public async ValueTask<CommandSet?> FindCommandSetAsync(string name, CancellationToken cancellationToken = default) =>
        (await ListAsync("SELECT name, rules FROM command_sets WHERE name = @name", ReadCommandSet, cancellationToken, ("name", name)).ConfigureAwait(false)).FirstOrDefault();

    public Task SetCommandSetAsync(CommandSet commandSet, CancellationToken cancellationToken = default) =>
        NonQueryAsync("INSERT INTO command_sets (name, rules) VALUES (@name, @rules) ON CONFLICT (name) DO UPDATE SET rules = @rules", cancellationToken,
            ("name", commandSet.Name), ("rules", ItemText.Format(commandSet.Rules)));

    public async Task<bool> RemoveCommandSetAsync(string name, CancellationToken cancellationToken = default) =>
        await NonQueryAsync("DELETE FROM command_sets WHERE name = @name", cancellationToken, ("name", name)).ConfigureAwait(false) == 1;

    public async Task<IReadOnlyList<CommandSet>> ListCommandSetsAsync(CancellationToken cancellationToken = default) =>
        await ListAsync("SELECT name, rules FROM command_sets ORDER BY name", ReadCommandSet, cancellationToken).ConfigureAwait(false);

    // ---- clients ----------------------------------------------------------------------------

    /// <summary>Forewarn's own clients, then (with the FreeRADIUS schema) the <c>nas</c> table's that they do not already name or cover.</summary>
    public async Task<IReadOnlyList<ClientRecord>> ListClientsAsync(CancellationToken cancellationToken = default)
    {
        var own = await OwnClientsAsync(cancellationToken).ConfigureAwait(false);
        return _freeRadius is null ? own : [.. own, .. await _freeRadius.ClientsAsync(_source, own, cancellationToken).ConfigureAwait(false)];
    }

    private async Task<IReadOnlyList<ClientRecord>> OwnClientsAsync(CancellationToken cancellationToken) =>
        await ListAsync("SELECT name, address, secret, device_group, message_authenticator, class, advisory_port, advisory_secret, tacacs_key, tacacs_unencrypted FROM clients ORDER BY name",
            r => new ClientRecord(r.GetString(0), r.GetString(1), r.GetString(2), r.IsDBNull(3) ? null : r.GetString(3),
                Enum.Parse<MessageAuthenticatorPolicy>(r.GetString(4), ignoreCase: true),
                r.IsDBNull(5) ? null : r.GetString(5), r.GetInt32(6), r.IsDBNull(7) ? null : r.GetString(7),
                r.IsDBNull(8) ? null : r.GetString(8), r.GetBoolean(9)), cancellationToken).ConfigureAwait(false);

    public async Task<bool> AddClientAsync(ClientRecord client, CancellationToken cancellationToken = default) =>
        await NonQueryAsync("INSERT INTO clients (name, address, secret, device_group, message_authenticator, class, advisory_port, advisory_secret, tacacs_key, tacacs_unencrypted) " +
            "VALUES (@name, @address, @secret, @group, @ma, @class, @port, @advisory, @tacacs, @unencrypted) ON CONFLICT DO NOTHING", cancellationToken,
            ClientParameters(client)).ConfigureAwait(false) == 1;

    /// <summary>A client's columns as the insert and the update name them.</summary>
    private static (string, object?)[] ClientParameters(ClientRecord client) =>
    [
        ("name", client.Name), ("address", client.Address), ("secret", client.Secret), ("group", client.DeviceGroup),
        ("ma", client.MessageAuthenticator.ToString()), ("class", client.Class), ("port", client.AdvisoryPort), ("advisory", client.AdvisorySecret),
        ("tacacs", client.TacacsKey), ("unencrypted", client.TacacsUnencrypted),
    ];

    public async Task<bool> UpdateClientAsync(ClientRecord client, CancellationToken cancellationToken = default) =>
        await NonQueryAsync("UPDATE clients SET address = @address, secret = @secret, device_group = @group, message_authenticator = @ma, class = @class, advisory_port = @port, " +
            "advisory_secret = @advisory, tacacs_key = @tacacs, tacacs_unencrypted = @unencrypted WHERE name = @name", cancellationToken,
            ClientParameters(client)).ConfigureAwait(false) == 1;

    public async Task<bool> RemoveClientAsync(string name, CancellationToken cancellationToken = default) =>
        await NonQueryAsync("DELETE FROM clients WHERE name = @name", cancellationToken, ("name", name)).ConfigureAwait(false) == 1;

    public Task<long> ClientsVersionAsync(CancellationToken cancellationToken = default) =>
        ScalarAsync("SELECT value FROM meta WHERE key = 'clients_version'", cancellationToken);

    // ---- accounting -------------------------------------------------------------------------

    // The dedup window is five minutes (300,000 ms), SQLite's RecentKeys.Window.
    private const string AccountingInsert =
        "INSERT INTO accounting (received_at, client, client_address, user_name, session_id, status_type, attributes, dedup_key, protocol, dedup_bucket) " +
        "SELECT u.*, u.at / 300000 FROM unnest(@at, @client, @address, @user, @session, @status, @attributes, @key, @protocol) " +
        "AS u(at, client, address, user_name, session_id, status, attributes, key, protocol) " +
        "WHERE NOT EXISTS (SELECT 1 FROM accounting a WHERE a.dedup_key = u.key AND a.dedup_bucket = u.at / 300000 - 1 AND a.received_at > u.at - 300000) " +
        "ON CONFLICT (dedup_key, dedup_bucket) DO NOTHING";

    /// <summary>
    /// Stores the batch in one statement and one durable commit; a record whose dedup key any server has
    /// already stored within the dedup window (five minutes, as SQLite's) is skipped: the key is unique per
    /// five-minute bucket (ON CONFLICT DO NOTHING, race-free between servers) and the bucket before is
    /// looked at too. Returns how many were new.
    /// </summary>
    public async Task<int> AppendBatchAsync(IReadOnlyList<AccountingRecord> records, CancellationToken cancellationToken = default)
    {
        if (records.Count == 0)
            return 0;
        int n = records.Count;
        var at = new long[n];
        var client = new string[n];
        var address = new string[n];
        var user = new string?[n];
        var session = new string?[n];
        var status = new long[n];
        var attributes = new string[n];
        var key = new string[n];
        var protocol = new string[n];
        for (int i = 0; i < n; i++)
        {
            var r = records[i];
            (at[i], client[i], address[i], user[i], session[i], status[i], attributes[i], key[i], protocol[i]) =
                (r.ReceivedAt.ToUnixTimeMilliseconds(), Text(r.ClientName)!, r.ClientAddress, Text(r.UserName), Text(r.SessionId), r.StatusType, Text(r.Attributes)!, r.DedupKey, r.Protocol);
        }
        if (_freeRadius is not null)
            return await AppendWithSessionsAsync(records, at, client, address, user, session, status, attributes, key, protocol, cancellationToken).ConfigureAwait(false);
        await using var command = _source.CreateCommand(AccountingInsert);
        AddBatchParameters(command.Parameters, at, client, address, user, session, status, attributes, key, protocol);
        // One statement outside an explicit transaction is its own transaction: it returns after the commit.
        return await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }

    private static void AddBatchParameters(NpgsqlParameterCollection parameters, long[] at, string[] client, string[] address, string?[] user,
        string?[] session, long[] status, string[] attributes, string[] key, string[] protocol)
    {
        parameters.Add(new NpgsqlParameter<long[]>("at", NpgsqlDbType.Array | NpgsqlDbType.Bigint) { TypedValue = at });
        parameters.Add(new NpgsqlParameter<string[]>("client", NpgsqlDbType.Array | NpgsqlDbType.Text) { TypedValue = client });
        parameters.Add(new NpgsqlParameter<string[]>("address", NpgsqlDbType.Array | NpgsqlDbType.Text) { TypedValue = address });
        parameters.Add(new NpgsqlParameter<string?[]>("user", NpgsqlDbType.Array | NpgsqlDbType.Text) { TypedValue = user });
        parameters.Add(new NpgsqlParameter<string?[]>("session", NpgsqlDbType.Array | NpgsqlDbType.Text) { TypedValue = session });
        parameters.Add(new NpgsqlParameter<long[]>("status", NpgsqlDbType.Array | NpgsqlDbType.Bigint) { TypedValue = status });
        parameters.Add(new NpgsqlParameter<string[]>("attributes", NpgsqlDbType.Array | NpgsqlDbType.Text) { TypedValue = attributes });
        parameters.Add(new NpgsqlParameter<string[]>("key", NpgsqlDbType.Array | NpgsqlDbType.Text) { TypedValue = key });
        parameters.Add(new NpgsqlParameter<string[]>("protocol", NpgsqlDbType.Array | NpgsqlDbType.Text) { TypedValue = protocol });
    }

    /// <summary>
    /// With the FreeRADIUS schema: the records and their sessions in <c>radacct</c> in one transaction (one
    /// commit, one round trip for the sessions), so that a session row moves only with a record stored once.
    /// </summary>
    private async Task<int> AppendWithSessionsAsync(IReadOnlyList<AccountingRecord> records, long[] at, string[] client, string[] address, string?[] user,
        string?[] session, long[] status, string[] attributes, string[] key, string[] protocol, CancellationToken cancellationToken)
    {
        await using var connection = await _source.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
        var stored = new HashSet<string>(StringComparer.Ordinal);
        await using (var insert = new NpgsqlCommand(AccountingInsert + " RETURNING dedup_key", connection, transaction))
        {
            AddBatchParameters(insert.Parameters, at, client, address, user, session, status, attributes, key, protocol);
            await using var reader = await insert.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
                stored.Add(reader.GetString(0));
        }
        // The first record of each stored key (a batch may carry one twice: the insert kept one).
        var fresh = records.Where(r => stored.Remove(r.DedupKey)).ToList();
        await using (var batch = new NpgsqlBatch(connection, transaction))
        {
            FreeRadiusSchema.AddSessionCommands(batch, fresh);
            if (batch.BatchCommands.Count > 0)
                await batch.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }
        await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
        return fresh.Count;
    }

    public async Task ProbeWriteAsync(CancellationToken cancellationToken = default)
    {
        if (await NonQueryAsync("UPDATE meta SET value = @now WHERE key = 'heartbeat'", cancellationToken, ("now", DateTimeOffset.UtcNow.ToUnixTimeMilliseconds())).ConfigureAwait(false) != 1)
            throw new InvalidOperationException("The heartbeat row is missing.");
    }

    public async Task<IReadOnlyList<AccountingRecord>> QueryAsync(AccountingQuery query, CancellationToken cancellationToken = default)
    {
        var (sql, parameters) = AccountingSql.Select(query);
        return await ListAsync(sql, AccountingSql.Read, cancellationToken, parameters).ConfigureAwait(false);
    }

    // ---- relay spool ------------------------------------------------------------------------

    public long Spool(string client, ReadOnlySpan<byte> attributes)
    {
        using var command = Command("INSERT INTO spool (spooled_at, client, attributes) VALUES (@at, @client, @attributes) RETURNING id",
            ("at", DateTimeOffset.UtcNow.ToUnixTimeMilliseconds()), ("client", client), ("attributes", attributes.ToArray()));
        return Convert.ToInt64(command.ExecuteScalar(), System.Globalization.CultureInfo.InvariantCulture);
    }

    public IReadOnlyList<SpooledRequest> PeekSpool(int limit)
    {
        using var command = Command("SELECT id, spooled_at, client, attributes FROM spool ORDER BY id LIMIT @limit", ("limit", limit));
        using var reader = command.ExecuteReader();
        var spooled = new List<SpooledRequest>();
        while (reader.Read())
            spooled.Add(new SpooledRequest(reader.GetInt64(0), DateTimeOffset.FromUnixTimeMilliseconds(reader.GetInt64(1)), reader.GetString(2), (byte[])reader[3]));
        return spooled;
    }

    public void Unspool(long id)
    {
        using var command = Command("DELETE FROM spool WHERE id = @id", ("id", id));
        command.ExecuteNonQuery();
    }

    public long SpoolDepth()
    {
        using var command = Command("SELECT count(*) FROM spool");
        return Convert.ToInt64(command.ExecuteScalar(), System.Globalization.CultureInfo.InvariantCulture);
    }

    // ---- cluster membership -----------------------------------------------------------------

    public Task HeartbeatAsync(ClusterMember self, CancellationToken cancellationToken = default) =>
        NonQueryAsync("INSERT INTO servers (name, address, auth_port, advisory_port, tacacs_port) VALUES (@name, @address, @auth, @advisory, @tacacs) " +
            "ON CONFLICT (name) DO UPDATE SET address = @address, auth_port = @auth, advisory_port = @advisory, tacacs_port = @tacacs, heartbeat_at = now()", cancellationToken,
            ("name", self.Name), ("address", self.Address), ("auth", self.AuthPort), ("advisory", self.AdvisoryPort), ("tacacs", self.TacacsPort));

    public async Task<IReadOnlyList<ClusterMember>> MembersAsync(TimeSpan heartbeatWithin, CancellationToken cancellationToken = default) =>
        await ListAsync("SELECT name, address, auth_port, advisory_port, tacacs_port FROM servers WHERE heartbeat_at > now() - @within ORDER BY name",
            r => new ClusterMember(r.GetString(0), r.GetString(1), r.GetInt32(2), r.GetInt32(3), r.GetInt32(4)), cancellationToken, ("within", heartbeatWithin)).ConfigureAwait(false);

    public Task LeaveAsync(string name, CancellationToken cancellationToken = default) =>
        NonQueryAsync("DELETE FROM servers WHERE name = @name", cancellationToken, ("name", name));

    public async Task<string> SharedSecretAsync(string name, Func<string> create, CancellationToken cancellationToken = default)
    {
        await NonQueryAsync("INSERT INTO cluster_secrets (name, value) VALUES (@name, @value) ON CONFLICT (name) DO NOTHING", cancellationToken,
            ("name", name), ("value", create())).ConfigureAwait(false);
        return (await ListAsync("SELECT value FROM cluster_secrets WHERE name = @name", r => r.GetString(0), cancellationToken, ("name", name)).ConfigureAwait(false))[0];
    }

    // ---- change notifications ---------------------------------------------------------------

    /// <summary>
    /// Returns when a change was announced (NOTIFY) since the last call, or after <paramref name="timeout"/>.
    /// The first call starts the listener: one connection that LISTENs, reconnecting with a back-off when it
    /// is lost; a reconnect counts as a change, because announcements made meanwhile were missed.
    /// </summary>
    public async Task WaitForChangeAsync(TimeSpan timeout, CancellationToken cancellationToken)
    {
        lock (_listenGate)
            _listener ??= Task.Run(() => ListenAsync(_stopping.Token), CancellationToken.None);
        await _changed.WaitAsync(timeout, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>How many times the listener has (re)connected: a test and the status can see it work.</summary>
    public int ListenerConnects => Volatile.Read(ref _listenerConnects);
    private int _listenerConnects;

    private void Signal()
    {
        try
        {
            _changed.Release();
        }
        catch (SemaphoreFullException)
        {
            // a change is already pending: one reload covers both
        }
    }

    private async Task ListenAsync(CancellationToken stopping)
    {
        var backoff = TimeSpan.FromMilliseconds(200);
        while (!stopping.IsCancellationRequested)
        {
            try
            {
                await using var connection = new NpgsqlConnection(_listenConnectionString);
                await connection.OpenAsync(stopping).ConfigureAwait(false);
                connection.Notification += (_, _) => Signal();
                await using (var listen = new NpgsqlCommand($"LISTEN {PostgresMigrations.Channel}", connection))
                    await listen.ExecuteNonQueryAsync(stopping).ConfigureAwait(false);
                Interlocked.Increment(ref _listenerConnects);
                Signal();
                backoff = TimeSpan.FromMilliseconds(200);
                while (!stopping.IsCancellationRequested)
                    await connection.WaitAsync(stopping).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (stopping.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e) when (e is NpgsqlException or System.Net.Sockets.SocketException or IOException or TimeoutException or InvalidOperationException)
            {
                // Lost or refused: the caller keeps polling the versions meanwhile; try again.
                try
                {
                    await Task.Delay(backoff, stopping).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    return;
                }
                backoff = TimeSpan.FromMilliseconds(Math.Min(backoff.TotalMilliseconds * 2, 5000));
            }
        }
    }

    private int _disposed;

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
            return;
        _stopping.Cancel();
        try
        {
            _listener?.Wait(TimeSpan.FromSeconds(2));
        }
        catch (AggregateException)
        {
            // the listener ends on cancellation; nothing to report at shutdown
        }
        _source.Dispose();
        _stopping.Dispose();
    }
}
