namespace Forewarn.Storage.Postgres;

/// <summary>
/// Versioned schema for PostgreSQL. Each entry moves the database from version i to i + 1 (the row in
/// forewarn_schema) in one transaction, under an advisory lock so that servers starting together migrate
/// once. Append only: never edit a migration that has shipped.
/// </summary>
internal static class PostgresMigrations
{
    /// <summary>The channel every change to users, groups, command sets or clients is announced on (LISTEN/NOTIFY).</summary>
    public const string Channel = "forewarn_changes";

    public static readonly string[] Steps =
    [
        // 1: the same tables as SQLite's ninth version, with what PostgreSQL adds: booleans and bytea, an
        // identity id, a unique dedup key (several servers write one table, so retransmissions are recognised
        // by the database, not by one process's memory), and statement triggers that raise a version and NOTIFY.
        $$"""
        CREATE TABLE meta (key text PRIMARY KEY, value bigint NOT NULL);
        INSERT INTO meta (key, value) VALUES ('users_version', 0), ('clients_version', 0), ('heartbeat', 0);
        CREATE TABLE users (
            name             text PRIMARY KEY,
            methods          integer NOT NULL,
            password_hash    text,
            nt_hash          bytea,
            sealed_password  bytea,
            group_name       text,
            reply            text NOT NULL DEFAULT '',
            checks           text NOT NULL DEFAULT '',
            enabled          boolean NOT NULL DEFAULT true,
            enable_hash      text,
            tacacs_arguments text NOT NULL DEFAULT '',
            updated_at       bigint NOT NULL
        );
        CREATE TABLE groups (
            name             text PRIMARY KEY,
            reply            text NOT NULL DEFAULT '',
            checks           text NOT NULL DEFAULT '',
            enable_hash      text,
            tacacs_arguments text NOT NULL DEFAULT '',
            command_sets     text NOT NULL DEFAULT ''
        );
        CREATE TABLE command_sets (name text PRIMARY KEY, rules text NOT NULL);
        CREATE TABLE clients (
            name                  text PRIMARY KEY,
            address               text NOT NULL UNIQUE,
            secret                text NOT NULL,
            device_group          text,
            message_authenticator text NOT NULL,
            class                 text,
            advisory_port         integer NOT NULL DEFAULT 0,
            advisory_secret       text,
            tacacs_key            text,
            tacacs_unencrypted    boolean NOT NULL DEFAULT false
        );
        CREATE TABLE accounting (
            id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            received_at    bigint NOT NULL,
            client         text NOT NULL,
            client_address text NOT NULL,
            user_name      text,
            session_id     text,
            status_type    bigint NOT NULL,
            attributes     text NOT NULL,
            dedup_key      text NOT NULL,
            protocol       text NOT NULL DEFAULT 'radius',
            CONSTRAINT accounting_dedup UNIQUE (dedup_key)
        );
        CREATE INDEX accounting_time ON accounting (received_at);
        CREATE INDEX accounting_user ON accounting (user_name, received_at);
        CREATE INDEX accounting_client ON accounting (client, received_at);
        CREATE TABLE spool (
            id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            spooled_at bigint NOT NULL,
            client     text NOT NULL,
            attributes bytea NOT NULL
        );
        CREATE FUNCTION forewarn_changed() RETURNS trigger LANGUAGE plpgsql AS $f$
        BEGIN
            UPDATE meta SET value = value + 1 WHERE key = TG_ARGV[0];
            PERFORM pg_notify('{{Channel}}', TG_ARGV[0]);
            RETURN NULL;
        END
        $f$;
        CREATE TRIGGER users_changed AFTER INSERT OR UPDATE OR DELETE ON users FOR EACH STATEMENT EXECUTE FUNCTION forewarn_changed('users_version');
        CREATE TRIGGER groups_changed AFTER INSERT OR UPDATE OR DELETE ON groups FOR EACH STATEMENT EXECUTE FUNCTION forewarn_changed('users_version');
        CREATE TRIGGER command_sets_changed AFTER INSERT OR UPDATE OR DELETE ON command_sets FOR EACH STATEMENT EXECUTE FUNCTION forewarn_changed('users_version');
        CREATE TRIGGER clients_changed AFTER INSERT OR UPDATE OR DELETE ON clients FOR EACH STATEMENT EXECUTE FUNCTION forewarn_changed('clients_version');
        """,
        // 2: cluster membership: each server's heartbeat row, and the secrets the members share (peer health).
        """
        CREATE TABLE servers (
            name          text PRIMARY KEY,
            address       text NOT NULL,
            auth_port     integer NOT NULL,
            advisory_port integer NOT NULL,
            tacacs_port   integer NOT NULL DEFAULT 0,
            started_at    timestamptz NOT NULL DEFAULT now(),
            heartbeat_at  timestamptz NOT NULL DEFAULT now()
        );
        CREATE TABLE cluster_secrets (name text PRIMARY KEY, value text NOT NULL);
        """,
        // 3: dedup within five minutes, as SQLite's window (a retransmission arrives within seconds or minutes),
        // not forever: a NAS's identical Accounting-On after each reboot is a new event. The key is unique per
        // five-minute bucket (race-free between servers), and an insert also looks at the bucket before.
        """
        ALTER TABLE accounting DROP CONSTRAINT accounting_dedup;
        ALTER TABLE accounting ADD COLUMN dedup_bucket bigint;
        UPDATE accounting SET dedup_bucket = received_at / 300000;
        ALTER TABLE accounting ALTER COLUMN dedup_bucket SET NOT NULL;
        ALTER TABLE accounting ADD CONSTRAINT accounting_dedup UNIQUE (dedup_key, dedup_bucket);
        """,
    ];
}
