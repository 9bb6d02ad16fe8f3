namespace Forewarn.Storage.Sqlite;

/// <summary>
/// Versioned schema. Each entry moves the database from version i to i + 1 (PRAGMA user_version) in
/// one transaction. Append only: never edit a migration that has shipped.
/// </summary>
internal static class Migrations
{
    public static readonly string[] Steps =
    [
        // 1: users, groups, clients, accounting.
        """
        CREATE TABLE users (
            name            TEXT PRIMARY KEY,
            methods         INTEGER NOT NULL,
            password_hash   TEXT,
            nt_hash         BLOB,
            sealed_password BLOB,
            group_name      TEXT,
            reply           TEXT NOT NULL DEFAULT '',
            checks          TEXT NOT NULL DEFAULT '',
            enabled         INTEGER NOT NULL DEFAULT 1,
            updated_at      INTEGER NOT NULL
        );
        CREATE TABLE groups (
            name    TEXT PRIMARY KEY,
            reply   TEXT NOT NULL DEFAULT '',
            checks  TEXT NOT NULL DEFAULT ''
        );
        CREATE TABLE clients (
            name                  TEXT PRIMARY KEY,
            address               TEXT NOT NULL UNIQUE,
            secret                TEXT NOT NULL,
            device_group          TEXT,
            message_authenticator TEXT NOT NULL
        );
        CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
        INSERT INTO meta (key, value) VALUES ('clients_version', 0);
        CREATE TRIGGER clients_insert AFTER INSERT ON clients BEGIN UPDATE meta SET value = value + 1 WHERE key = 'clients_version'; END;
        CREATE TRIGGER clients_delete AFTER DELETE ON clients BEGIN UPDATE meta SET value = value + 1 WHERE key = 'clients_version'; END;
        CREATE TRIGGER clients_update AFTER UPDATE ON clients BEGIN UPDATE meta SET value = value + 1 WHERE key = 'clients_version'; END;
        CREATE TABLE accounting (
            id             INTEGER PRIMARY KEY,
            received_at    INTEGER NOT NULL,
            client         TEXT NOT NULL,
            client_address TEXT NOT NULL,
            user_name      TEXT,
            session_id     TEXT,
            status_type    INTEGER NOT NULL,
            attributes     TEXT NOT NULL,
            dedup_key      TEXT NOT NULL UNIQUE
        );
        CREATE INDEX accounting_time ON accounting (received_at);
        CREATE INDEX accounting_user ON accounting (user_name, received_at);
        CREATE INDEX accounting_client ON accounting (client, received_at);
        """,
        // 2: a row the accounting-sink health check rewrites, proving the store still accepts durable writes.
        """
        INSERT INTO meta (key, value) VALUES ('heartbeat', 0);
        """,
        // 3: a client's class (its thresholds) and the UDP port it takes advisories on (0: the server's default).
        """
        ALTER TABLE clients ADD COLUMN class TEXT;
        ALTER TABLE clients ADD COLUMN advisory_port INTEGER NOT NULL DEFAULT 0;
        """,
        // 4: the relay's accounting spool: requests no upstream server acknowledged, replayed in order.
        """
        CREATE TABLE spool (
            id          INTEGER PRIMARY KEY,
            spooled_at  INTEGER NOT NULL,
            client      TEXT NOT NULL,
            attributes  BLOB NOT NULL
        );
        """,
        // 5: a version the server's user cache watches, raised by any change to users or groups.
        """
        INSERT INTO meta (key, value) VALUES ('users_version', 0);
        CREATE TRIGGER users_insert AFTER INSERT ON users BEGIN UPDATE meta SET value = value + 1 WHERE key = 'users_version'; END;
        CREATE TRIGGER users_delete AFTER DELETE ON users BEGIN UPDATE meta SET value = value + 1 WHERE key = 'users_version'; END;
        CREATE TRIGGER users_update AFTER UPDATE ON users BEGIN UPDATE meta SET value = value + 1 WHERE key = 'users_version'; END;
        CREATE TRIGGER groups_insert AFTER INSERT ON groups BEGIN UPDATE meta SET value = value + 1 WHERE key = 'users_version'; END;
        CREATE TRIGGER groups_delete AFTER DELETE ON groups BEGIN UPDATE meta SET value = value + 1 WHERE key = 'users_version'; END;
        CREATE TRIGGER groups_update AFTER UPDATE ON groups BEGIN UPDATE meta SET value = value + 1 WHERE key = 'users_version'; END;
        """,
        // 6: no UNIQUE index on dedup_key: a random 64-character key put every insert on a random page of an
        // index that outgrew the cache (a million-row table took twice the CPU per record of a fresh one).
        // Retransmissions are now recognised by the store's window of recent keys (SqliteStore.RecentKeys).
        """
        CREATE TABLE accounting_v6 (
            id             INTEGER PRIMARY KEY,
            received_at    INTEGER NOT NULL,
            client         TEXT NOT NULL,
            client_address TEXT NOT NULL,
            user_name      TEXT,
            session_id     TEXT,
            status_type    INTEGER NOT NULL,
            attributes     TEXT NOT NULL,
            dedup_key      TEXT NOT NULL
        );
        INSERT INTO accounting_v6 SELECT id, received_at, client, client_address, user_name, session_id, status_type, attributes, dedup_key FROM accounting;
        DROP TABLE accounting;
        ALTER TABLE accounting_v6 RENAME TO accounting;
        CREATE INDEX accounting_time ON accounting (received_at);
        CREATE INDEX accounting_user ON accounting (user_name, received_at);
        CREATE INDEX accounting_client ON accounting (client, received_at);
        """,
        // 7: a client block's advisory secret (servers only): each NAS of the block gets its own advisory key from it.
        """
        ALTER TABLE clients ADD COLUMN advisory_secret TEXT;
        """,
        // 8: TACACS+ — enable secrets, service arguments and command sets for users and groups; a client's own
        // TACACS+ key and whether it may send unobfuscated packets; the protocol of each accounting record.
        """
        ALTER TABLE users ADD COLUMN enable_hash TEXT;
        ALTER TABLE users ADD COLUMN tacacs_arguments TEXT NOT NULL DEFAULT '';
        ALTER TABLE groups ADD COLUMN enable_hash TEXT;
        ALTER TABLE groups ADD COLUMN tacacs_arguments TEXT NOT NULL DEFAULT '';
        ALTER TABLE groups ADD COLUMN command_sets TEXT NOT NULL DEFAULT '';
        CREATE TABLE command_sets (
            name   TEXT PRIMARY KEY,
            rules  TEXT NOT NULL
        );
        CREATE TRIGGER command_sets_insert AFTER INSERT ON command_sets BEGIN UPDATE meta SET value = value + 1 WHERE key = 'users_version'; END;
        CREATE TRIGGER command_sets_delete AFTER DELETE ON command_sets BEGIN UPDATE meta SET value = value + 1 WHERE key = 'users_version'; END;
        CREATE TRIGGER command_sets_update AFTER UPDATE ON command_sets BEGIN UPDATE meta SET value = value + 1 WHERE key = 'users_version'; END;
        ALTER TABLE clients ADD COLUMN tacacs_key TEXT;
        ALTER TABLE clients ADD COLUMN tacacs_unencrypted INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE accounting ADD COLUMN protocol TEXT NOT NULL DEFAULT 'radius';
        """,
        // 9: EAP — users made before EAP may use the tunnels and EAP-TLS, and the EAP methods their stored
        // credential can verify: EAP-GTC always, EAP-MD5 with a sealed cleartext (CHAP), EAP-MSCHAPv2 with an NT hash or cleartext.
        """
        UPDATE users SET methods = methods | 928
            | (CASE WHEN (methods & 2) != 0 THEN 16 ELSE 0 END)
            | (CASE WHEN (methods & 14) != 0 THEN 64 ELSE 0 END);
        """,
        // 10: no index on the user name. Its keys arrive in random order, so every group commit dirtied index
        // pages all over the file: measured on this machine, accounting at 64 in flight ran at 15,059–18,528/s
        // with it and 25,836–27,743/s without (server CPU 63–83 against 51–56 µs per record). A query by user
        // now scans (docs/operations.md); the time and client indexes, appended in order, stay.
        """
        DROP INDEX IF EXISTS accounting_user;
        """,
    ];
}
