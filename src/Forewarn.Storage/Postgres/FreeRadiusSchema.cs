using System.Globalization;
using System.Net;
using System.Security.Cryptography;
using System.Text;
using Forewarn.Core.Store;
using Npgsql;

namespace Forewarn.Storage.Postgres;

/// <summary>
/// A FreeRADIUS site's own SQL tables, read and written beside Forewarn's: users from <c>radcheck</c>,
/// <c>radreply</c>, <c>radusergroup</c>, <c>radgroupcheck</c> and <c>radgroupreply</c>; clients from <c>nas</c>;
/// sessions written into <c>radacct</c> as rlm_sql's queries would (FreeRADIUS 3.2's PostgreSQL
/// <c>schema.sql</c>), so a site keeps its database, its tools (daloRADIUS) and its reports.
///
/// What is understood, and nothing more: a password as <c>Cleartext-Password</c> (or the legacy
/// <c>User-Password</c>) or <c>NT-Password</c>; <c>Auth-Type := Reject</c>; a user's <c>==</c>
/// conditions on request attributes; replies with <c>=</c>, <c>:=</c> and <c>+=</c> merged user first, then
/// the groups by priority as rlm_sql does (the first group; the next only after a group's Fall-Through = Yes). Any other check item (<c>Simultaneous-Use</c>, <c>Expiration</c>,
/// <c>!=</c>, <c>=~</c>, another password form, a group's condition) fails closed: the user is refused, and the reason is reported once per
/// load through <see cref="Unsupported"/>, rather than accepted without a condition the site relies on.
/// </summary>
public sealed class FreeRadiusSchema(Func<string, byte[]> seal, Action<string>? unsupported = null)
{
    /// <summary>The tables read (a change to any raises the users' or the clients' version, by trigger).</summary>
    public static readonly (string Table, string Version)[] Watched =
    [
        ("radcheck", "users_version"), ("radreply", "users_version"), ("radusergroup", "users_version"),
        ("radgroupcheck", "users_version"), ("radgroupreply", "users_version"), ("nas", "clients_version"),
    ];

    public Action<string>? Unsupported { get; } = unsupported;

    /// <summary>This process's secret behind the nas clients' TACACS+ keys: stable across reloads, known to no one.</summary>
    private static readonly byte[] NoTacacs = RandomNumberGenerator.GetBytes(32);

    /// <summary>Checks that the tables exist and puts Forewarn's change trigger on each (once: under the migration's lock).</summary>
    public static async Task EnsureAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, string location, CancellationToken cancellationToken)
    {
        foreach (var table in Watched.Select(w => w.Table).Append("radacct"))
        {
            await using var exists = new NpgsqlCommand("SELECT to_regclass(@table) IS NOT NULL", connection, transaction);
            exists.Parameters.AddWithValue("table", table);
            if (!(bool)(await exists.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false))!)
                throw new InvalidDataException($"Forewarn:FreeRadiusSchema is on, but the database {location} has no {table} table: load FreeRADIUS's " +
                    "schema (raddb/mods-config/sql/main/postgresql/schema.sql) into it, or point Forewarn at the database that has it.");
        }
        foreach (var (table, version) in Watched)
        {
            string trigger = $"forewarn_{table}_changed";
            await using var command = new NpgsqlCommand(
                $"DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgname = '{trigger}' AND tgrelid = '{table}'::regclass) THEN " +
                $"CREATE TRIGGER {trigger} AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON {table} FOR EACH STATEMENT EXECUTE FUNCTION forewarn_changed('{version}'); " +
                "END IF; END $$", connection, transaction);
            await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    // ---- users ------------------------------------------------------------------------------

    /// <summary>Every row that makes a user, in rlm_sql's order: the user's checks and replies, then each group's by priority.</summary>
    private const string UserRows =
        "SELECT 0 AS kind, 0 AS priority, '' AS groupname, attribute, op, value, id FROM radcheck WHERE username = @name " +
        "UNION ALL SELECT 1, 0, '', attribute, op, value, id FROM radreply WHERE username = @name " +
        "UNION ALL SELECT 2, ug.priority, ug.groupname, gc.attribute, gc.op, gc.value, gc.id FROM radusergroup ug " +
        "LEFT JOIN radgroupcheck gc ON gc.groupname = ug.groupname WHERE ug.username = @name " +
        "UNION ALL SELECT 3, ug.priority, ug.groupname, gr.attribute, gr.op, gr.value, gr.id FROM radusergroup ug " +
        "JOIN radgroupreply gr ON gr.groupname = ug.groupname WHERE ug.username = @name " +
        "ORDER BY kind, priority, groupname, id";

    private sealed record Row(int Kind, string Group, string? Attribute, string? Op, string? Value);

    public async Task<UserRecord?> FindUserAsync(NpgsqlDataSource source, string name, CancellationToken cancellationToken)
    {
        await using var command = source.CreateCommand(UserRows);
        command.Parameters.AddWithValue("name", name);
        var rows = new List<Row>();
        await using (var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false))
        {
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
                rows.Add(new Row(reader.GetInt32(0), reader.GetString(2), reader.IsDBNull(3) ? null : reader.GetString(3),
                    reader.IsDBNull(4) ? null : reader.GetString(4), reader.IsDBNull(5) ? null : reader.GetString(5)));
        }
        return rows.Count == 0 ? null : Build(name, rows);
    }

    /// <summary>The names of every user the tables know (a radcheck row or a group membership).</summary>
    public static async Task<IReadOnlyList<string>> UserNamesAsync(NpgsqlDataSource source, CancellationToken cancellationToken)
    {
        await using var command = source.CreateCommand("SELECT username FROM radcheck UNION SELECT username FROM radusergroup ORDER BY 1");
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        var names = new List<string>();
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            names.Add(reader.GetString(0));
        return names;
    }

    private UserRecord Build(string name, List<Row> rows)
    {
        string? cleartext = null;
        byte[]? ntHash = null;
        string? refused = null;
        bool rejected = false;
        var checks = new List<CheckItem>();
        var reply = new List<ReplyItem>();
        var (applied, _) = Applied(rows);
        foreach (var row in applied)
        {
            if (row.Attribute is not { } attribute || row.Op is not { } op || row.Value is not { } value)
                continue;
            string where = row.Kind < 2 ? $"user {name}" : $"group {row.Group} (of user {name})";
            if (row.Kind is 1 or 3)
            {
                if (!IsFallThrough(row))
                    Merge(reply, attribute, op.Trim(), value);
                continue;
            }
            switch (attribute.ToLowerInvariant(), op.Trim())
            {
                case ("cleartext-password" or "user-password", ":=" or "==" or "="):
                    cleartext ??= value;
                    break;
                case ("nt-password", ":=" or "==" or "="):
                    ntHash ??= ParseNtHash(value) ?? Refuse(ref refused, $"{where}: NT-Password is not 32 hexadecimal digits");
                    break;
                case ("auth-type", ":=" or "=") when value.Equals("Reject", StringComparison.OrdinalIgnoreCase):
                    rejected = true;
                    break;
                case ("fall-through", _):
                    break;
                // A user's conditions must hold for the user to be found (rlm_sql); a group's decide only whether
                // that group's replies apply, which Forewarn's groups cannot express: refused, not approximated.
                case (_, "==") when row.Kind == 0:
                    checks.Add(new CheckItem(attribute, CheckOperator.Equal, value));
                    break;
                // != is not taken: rlm_sql fails it when the request lacks the attribute, Forewarn's check would
                // pass; refused (below) rather than opened.
                default:
                    // The value is never shown: refused items include password hashes (Crypt-Password, SSHA-Password).
                    refused ??= $"{where}: '{attribute} {op} …' is not enforced by Forewarn, so the user is refused";
                    break;
            }
        }
        if (refused is not null)
            Unsupported?.Invoke(refused);
        var credential = new Credential(null, cleartext is null ? ntHash : null, cleartext is null ? null : seal(cleartext));
        var methods = cleartext is not null ? AuthMethods.All
            : ntHash is not null ? AuthMethods.Pap | AuthMethods.MsChap | AuthMethods.MsChapV2 | AuthMethods.EapGtc | AuthMethods.EapMsChapV2 | AuthMethods.Peap | AuthMethods.Ttls | AuthMethods.EapTls
            : AuthMethods.EapTls;
        // No group name on the record: FreeRADIUS's groups are folded in above, and a Forewarn group that happens
        // to share the name (its replies, TACACS+ privileges, command sets) must not apply to a FreeRADIUS user.
        return new UserRecord(name, methods, credential, null, reply, checks, Enabled: refused is null && !rejected);
    }

    /// <summary>
    /// The rows rlm_sql would apply: the user's own; then, unless the user's reply says Fall-Through = No, the
    /// groups by priority, each one's checks and replies, going on to the next group only when this one's
    /// reply says Fall-Through = Yes. Returns the groups reached, in order.
    /// </summary>
    private static (List<Row> Rows, List<string> Groups) Applied(List<Row> rows)
    {
        var applied = rows.Where(r => r.Kind < 2).ToList();
        var groups = new List<string>();
        bool next = !applied.Exists(r => r.Kind == 1 && IsFallThrough(r) && !IsYes(r.Value));
        foreach (var group in rows.Where(r => r.Kind == 2).Select(r => r.Group).Distinct())
        {
            if (!next)
                break;
            groups.Add(group);
            var replies = rows.Where(r => r.Kind == 3 && r.Group == group).ToList();
            applied.AddRange(rows.Where(r => r.Kind == 2 && r.Group == group));
            applied.AddRange(replies);
            next = replies.Exists(r => IsFallThrough(r) && IsYes(r.Value));
        }
        return (applied, groups);
    }

    private static bool IsFallThrough(Row row) => string.Equals(row.Attribute, "Fall-Through", StringComparison.OrdinalIgnoreCase);

    private static bool IsYes(string? value) => value?.Trim() is { } v && (v.Equals("Yes", StringComparison.OrdinalIgnoreCase) || v == "1");

    private static byte[]? Refuse(ref string? refused, string reason)
    {
        refused ??= reason;
        return null;
    }

    /// <summary>
    /// rlm_sql's reply merge, the user's items first, then each group's: <c>=</c> adds an attribute the reply
    /// lacks, <c>:=</c> replaces it, <c>+=</c> adds another; other operators (removals) are not replies.
    /// </summary>
    private static void Merge(List<ReplyItem> reply, string attribute, string op, string value)
    {
        bool present = reply.Exists(r => r.Attribute.Equals(attribute, StringComparison.OrdinalIgnoreCase));
        switch (op)
        {
            case "=" when !present:
            case "+=":
                reply.Add(new ReplyItem(attribute, value));
                break;
            case ":=":
                reply.RemoveAll(r => r.Attribute.Equals(attribute, StringComparison.OrdinalIgnoreCase));
                reply.Add(new ReplyItem(attribute, value));
                break;
        }
    }

    private static byte[]? ParseNtHash(string value)
    {
        var hex = value.StartsWith("0x", StringComparison.OrdinalIgnoreCase) ? value[2..] : value;
        if (hex.Length != 32)
            return null;
        try
        {
            return Convert.FromHexString(hex);
        }
        catch (FormatException)
        {
            return null;
        }
    }

    // ---- clients ----------------------------------------------------------------------------

    /// <summary>
    /// The <c>nas</c> table's clients that Forewarn's own list does not already name or cover: <c>nasname</c>
    /// an address or a CIDR block (a host name is reported and skipped: a RADIUS client is known by its
    /// source address), <c>shortname</c> its name.
    /// </summary>
    public async Task<IReadOnlyList<ClientRecord>> ClientsAsync(NpgsqlDataSource source, IReadOnlyList<ClientRecord> own, CancellationToken cancellationToken)
    {
        var names = own.Select(c => c.Name).ToHashSet(StringComparer.Ordinal);
        var addresses = own.Select(c => c.Address).ToHashSet(StringComparer.OrdinalIgnoreCase);
        var clients = new List<ClientRecord>();
        await using var command = source.CreateCommand("SELECT id, nasname, shortname, secret FROM nas ORDER BY id");
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            string nasname = reader.GetString(1).Trim(), shortname = reader.GetString(2).Trim();
            if (!IPAddress.TryParse(nasname, out _) && !IPNetwork.TryParse(nasname, out _))
            {
                Unsupported?.Invoke($"nas {reader.GetInt32(0)} ({nasname}): not an address or a CIDR block, skipped (name the client by its address)");
                continue;
            }
            if (addresses.Contains(nasname))
                continue;
            string name = shortname.Length > 0 ? shortname : nasname;
            if (!names.Add(name))
                name = $"{name}#{reader.GetInt32(0).ToString(CultureInfo.InvariantCulture)}";
            names.Add(name);
            addresses.Add(nasname);
            // RADIUS only: a TACACS+ key nobody knows (FreeRADIUS serves no TACACS+, and TACACS+ logins do not
            // evaluate the users' radcheck conditions), so the nas table opens no TACACS+ door.
            clients.Add(new ClientRecord(name, nasname, reader.GetString(3), TacacsKey: Convert.ToHexString(HMACSHA256.HashData(NoTacacs, Encoding.UTF8.GetBytes(nasname)))));
        }
        return clients;
    }

    // ---- radacct ----------------------------------------------------------------------------

    /// <summary>The columns of a session row, in the order of <see cref="SessionUpsert"/>'s unnest.</summary>
    private static readonly (string Name, NpgsqlTypes.NpgsqlDbType Type)[] SessionColumns =
    [
        ("sid", NpgsqlTypes.NpgsqlDbType.Text), ("uid", NpgsqlTypes.NpgsqlDbType.Text), ("username", NpgsqlTypes.NpgsqlDbType.Text),
        ("nas", NpgsqlTypes.NpgsqlDbType.Text), ("port", NpgsqlTypes.NpgsqlDbType.Text), ("porttype", NpgsqlTypes.NpgsqlDbType.Text),
        ("started", NpgsqlTypes.NpgsqlDbType.TimestampTz), ("at", NpgsqlTypes.NpgsqlDbType.TimestampTz), ("stopped", NpgsqlTypes.NpgsqlDbType.TimestampTz),
        ("seconds", NpgsqlTypes.NpgsqlDbType.Bigint), ("authentic", NpgsqlTypes.NpgsqlDbType.Text), ("connect_start", NpgsqlTypes.NpgsqlDbType.Text),
        ("connect_stop", NpgsqlTypes.NpgsqlDbType.Text), ("octets_in", NpgsqlTypes.NpgsqlDbType.Bigint), ("octets_out", NpgsqlTypes.NpgsqlDbType.Bigint),
        ("called", NpgsqlTypes.NpgsqlDbType.Text), ("calling", NpgsqlTypes.NpgsqlDbType.Text), ("cause", NpgsqlTypes.NpgsqlDbType.Text),
        ("service", NpgsqlTypes.NpgsqlDbType.Text), ("framed", NpgsqlTypes.NpgsqlDbType.Text), ("ip", NpgsqlTypes.NpgsqlDbType.Text),
        ("ip6", NpgsqlTypes.NpgsqlDbType.Text), ("prefix6", NpgsqlTypes.NpgsqlDbType.Text), ("ifid", NpgsqlTypes.NpgsqlDbType.Text),
        ("delegated", NpgsqlTypes.NpgsqlDbType.Text), ("class", NpgsqlTypes.NpgsqlDbType.Text),
    ];

    /// <summary>
    /// Every session of a batch in one statement. The merge does not depend on the order records arrive in
    /// (a Stop before its Start, a replay): only a Start sets the start time over an estimate, counters and
    /// times only grow, a stop time once set stays. A row's kind shows in what it carries: only a Start has
    /// a connect_start, only a Stop a connect_stop (both '' when the NAS sent no Connect-Info).
    /// </summary>
    private static readonly string SessionUpsert =
        "INSERT INTO radacct (acctsessionid, acctuniqueid, username, nasipaddress, nasportid, nasporttype, acctstarttime, acctupdatetime, acctstoptime, " +
        "acctinterval, acctsessiontime, acctauthentic, connectinfo_start, connectinfo_stop, acctinputoctets, acctoutputoctets, calledstationid, callingstationid, " +
        "acctterminatecause, servicetype, framedprotocol, framedipaddress, framedipv6address, framedipv6prefix, framedinterfaceid, delegatedipv6prefix, class) " +
        "SELECT sid, uid, username, nas::inet, port, porttype, started, at, stopped, NULL, seconds, authentic, connect_start, connect_stop, octets_in, octets_out, " +
        "called, calling, cause, service, framed, ip::inet, ip6::inet, prefix6::inet, ifid, delegated::inet, class " +
        $"FROM unnest({string.Join(", ", SessionColumns.Select(c => "@" + c.Name))}) AS u({string.Join(", ", SessionColumns.Select(c => c.Name))}) " +
        "ON CONFLICT (acctuniqueid) DO UPDATE SET " +
        "acctstarttime = CASE WHEN EXCLUDED.connectinfo_start IS NOT NULL THEN EXCLUDED.acctstarttime ELSE COALESCE(radacct.acctstarttime, EXCLUDED.acctstarttime) END, " +
        "acctupdatetime = GREATEST(radacct.acctupdatetime, EXCLUDED.acctupdatetime), " +
        "acctinterval = CASE WHEN EXCLUDED.connectinfo_start IS NULL AND EXCLUDED.connectinfo_stop IS NULL " +
        "THEN EXTRACT(EPOCH FROM EXCLUDED.acctupdatetime - COALESCE(radacct.acctupdatetime, radacct.acctstarttime))::bigint ELSE radacct.acctinterval END, " +
        "acctstoptime = COALESCE(radacct.acctstoptime, EXCLUDED.acctstoptime), " +
        "acctsessiontime = GREATEST(radacct.acctsessiontime, EXCLUDED.acctsessiontime), " +
        "acctinputoctets = GREATEST(radacct.acctinputoctets, EXCLUDED.acctinputoctets), " +
        "acctoutputoctets = GREATEST(radacct.acctoutputoctets, EXCLUDED.acctoutputoctets), " +
        "connectinfo_start = COALESCE(radacct.connectinfo_start, EXCLUDED.connectinfo_start), " +
        "connectinfo_stop = COALESCE(EXCLUDED.connectinfo_stop, radacct.connectinfo_stop), " +
        "acctterminatecause = COALESCE(EXCLUDED.acctterminatecause, radacct.acctterminatecause), " +
        "framedipaddress = COALESCE(EXCLUDED.framedipaddress, radacct.framedipaddress), " +
        "framedipv6address = COALESCE(EXCLUDED.framedipv6address, radacct.framedipv6address), " +
        "framedipv6prefix = COALESCE(EXCLUDED.framedipv6prefix, radacct.framedipv6prefix), " +
        "delegatedipv6prefix = COALESCE(EXCLUDED.delegatedipv6prefix, radacct.delegatedipv6prefix)";

    /// <summary>
    /// One statement's rows, at most one per session: PostgreSQL refuses to update a row twice in one
    /// statement, so a session's second record in a batch goes into the next statement.
    /// </summary>
    private sealed class SessionRound
    {
        private readonly List<object?[]> _rows = [];
        public readonly HashSet<string> Sessions = new(StringComparer.Ordinal);

        public void Add(object?[] row) => _rows.Add(row);

        public NpgsqlBatchCommand ToCommand()
        {
            var command = new NpgsqlBatchCommand(SessionUpsert);
            for (int c = 0; c < SessionColumns.Length; c++)
            {
                var (name, type) = SessionColumns[c];
                int column = c;
                object values = type switch
                {
                    NpgsqlTypes.NpgsqlDbType.Bigint => _rows.Select(r => (long)r[column]!).ToArray(),
                    NpgsqlTypes.NpgsqlDbType.TimestampTz => _rows.Select(r => (DateTime?)r[column]).ToArray(),
                    _ => _rows.Select(r => (string?)r[column]).ToArray(),
                };
                command.Parameters.Add(new NpgsqlParameter(name, NpgsqlTypes.NpgsqlDbType.Array | type) { Value = values });
            }
            return command;
        }
    }

    private const string NasReboot =
        "UPDATE radacct SET acctstoptime = @at, acctupdatetime = @at, acctsessiontime = EXTRACT(EPOCH FROM @at - acctstarttime)::bigint, " +
        "acctterminatecause = @cause WHERE acctstoptime IS NULL AND nasipaddress = @nas::inet AND acctstarttime <= @at";

    /// <summary>
    /// The commands that bring <c>radacct</c> up to date with these (newly stored) records, in their order:
    /// Start, Interim-Update and Stop upsert the session by rlm_sql's Acct-Unique-Session-Id; Accounting-On and
    /// -Off close the NAS's open sessions. TACACS+ records and other status types are not FreeRADIUS sessions.
    /// </summary>
    public static void AddSessionCommands(NpgsqlBatch batch, IEnumerable<AccountingRecord> records)
    {
        var rounds = new List<SessionRound>();
        void Flush()
        {
            foreach (var round in rounds)
                batch.BatchCommands.Add(round.ToCommand());
            rounds.Clear();
        }
        foreach (var record in records)
        {
            if (record.Protocol != "radius")
                continue;
            var a = Attributes(record.Attributes);
            string nas = Address(Get(a, "NAS-IPv6-Address") ?? Get(a, "NAS-IP-Address")) ?? Address(record.ClientAddress) ?? "0.0.0.0";
            long delay = Number(Get(a, "Acct-Delay-Time")) ?? 0;
            var at = record.ReceivedAt.AddSeconds(-delay).UtcDateTime;
            if (record.StatusType is 7 or 8)
            {
                // The sessions before it first: a reboot closes what was open when it came.
                Flush();
                var reboot = new NpgsqlBatchCommand(NasReboot);
                reboot.Parameters.AddWithValue("at", at);
                reboot.Parameters.AddWithValue("nas", nas);
                reboot.Parameters.AddWithValue("cause", Get(a, "Acct-Terminate-Cause") ?? "NAS-Reboot");
                batch.BatchCommands.Add(reboot);
                continue;
            }
            if (record.StatusType is not (1 or 2 or 3))
                continue;
            long sessionTime = Number(Get(a, "Acct-Session-Time")) ?? 0;
            bool start = record.StatusType == 1, stop = record.StatusType == 2;
            string uid = UniqueId(a, nas);
            var round = rounds.Find(r => !r.Sessions.Contains(uid));
            if (round is null)
                rounds.Add(round = new SessionRound());
            round.Sessions.Add(uid);
            // rlm_sql's queries write an absent attribute as '' (not NULL) in the text columns; reports filter on it.
            round.Add(
            [
                Get(a, "Acct-Session-Id") ?? "", uid, Clean(record.UserName), nas, Get(a, "NAS-Port-Id") ?? Get(a, "NAS-Port"), Get(a, "NAS-Port-Type") ?? "",
                start ? at : at.AddSeconds(-sessionTime), at, stop ? at : null,
                sessionTime, Get(a, "Acct-Authentic") ?? "", start ? Get(a, "Connect-Info") ?? "" : null,
                stop ? Get(a, "Connect-Info") ?? "" : null, Octets(a, "Input"), Octets(a, "Output"),
                Get(a, "Called-Station-Id") ?? "", Get(a, "Calling-Station-Id") ?? "", stop ? Get(a, "Acct-Terminate-Cause") ?? "" : null,
                Get(a, "Service-Type") ?? "", Get(a, "Framed-Protocol") ?? "", Address(Get(a, "Framed-IP-Address")),
                Address(Get(a, "Framed-IPv6-Address")), Prefix(Get(a, "Framed-IPv6-Prefix")), Get(a, "Framed-Interface-Id"),
                Prefix(Get(a, "Delegated-IPv6-Prefix")), Get(a, "Class"),
            ]);
        }
        Flush();
    }

    /// <summary>FreeRADIUS's acct_unique policy (without a Class of its own): MD5 of User-Name, Acct-Session-Id, the NAS's address, NAS-Identifier, NAS-Port-Id and NAS-Port.</summary>
    public static string UniqueId(IReadOnlyDictionary<string, string> a, string nas)
    {
        string text = $"{Get(a, "User-Name")},{Get(a, "Acct-Session-Id")},{Get(a, "NAS-IPv6-Address") ?? Get(a, "NAS-IP-Address") ?? nas},{Get(a, "NAS-Identifier")},{Get(a, "NAS-Port-Id")},{Get(a, "NAS-Port")}";
        return Convert.ToHexStringLower(MD5.HashData(Encoding.UTF8.GetBytes(text)));
    }

    /// <summary>The record's attribute lines ("Name = value"), the first of each name.</summary>
    public static Dictionary<string, string> Attributes(string text)
    {
        var attributes = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        foreach (var line in text.Split('\n'))
        {
            int eq = line.IndexOf(" = ", StringComparison.Ordinal);
            if (eq > 0)
                attributes.TryAdd(line[..eq], line[(eq + 3)..]);
        }
        return attributes;
    }

    private static string? Get(IReadOnlyDictionary<string, string> a, string name) => a.TryGetValue(name, out var value) ? Clean(value) : null;

    /// <summary>PostgreSQL's text cannot hold U+0000 (a NAS's NUL-terminated name): shown as "\0" rather than failing the batch.</summary>
    private static string? Clean(string? value) => value?.Replace("\0", "\\0", StringComparison.Ordinal);

    private static long? Number(string? text) => long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out long n) ? n : null;

    private static long Octets(IReadOnlyDictionary<string, string> a, string direction) =>
        ((Number(Get(a, $"Acct-{direction}-Gigawords")) ?? 0) << 32) + (Number(Get(a, $"Acct-{direction}-Octets")) ?? 0);

    private static string? Address(string? text) => text is not null && IPAddress.TryParse(text, out var address) ? address.ToString() : null;

    private static string? Prefix(string? text) => text is not null && IPNetwork.TryParse(text, out var network) ? network.ToString() : null;
}
