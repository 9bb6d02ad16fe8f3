#!/usr/bin/env bash
# Durable accounting into PostgreSQL, side by side: FreeRADIUS 3.2's rlm_sql (Debian's
# freeradius-postgresql, its own schema.sql and queries.conf) against Forewarn's PostgreSQL store, on the
# same PostgreSQL cluster and machine, with the same load generator (forewarn bench), one server at a
# time. Forewarn on its embedded SQLite store runs beside them, and PAP with a warm cache on each store.
#
#   bench/vs-freeradius-sql.sh [--duration S] [--users N] [--out DIR]
#
# The cluster is made here (initdb in a temporary directory, loopback port 25432, fsync on,
# synchronous_commit on: a commit is on disk before the server answers), run as the postgres user when
# this runs as root. FreeRADIUS writes accounting with rlm_sql only (its detail file is taken out of the
# accounting section) and authenticates from its users file (rlm_sql's authorize and post-auth queries
# are taken out), so its PAP figure is the same as without SQL. Installs freeradius and
# freeradius-postgresql if missing (needs root or sudo). Only processes this script started are stopped.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
users=1000; duration=10; warmup=2; out=""
while [ $# -gt 0 ]; do
  case "$1" in
    --users) users="$2"; shift ;;
    --duration) duration="$2"; shift ;;
    --out) out="$2"; shift ;;
    *) echo "usage: $0 [--duration S] [--users N] [--out DIR]" >&2; exit 2 ;;
  esac
  shift
done

sudo_cmd=""; [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
need=()
command -v freeradius >/dev/null 2>&1 || [ -x /usr/sbin/freeradius ] || need+=(freeradius)
[ -f /usr/lib/freeradius/rlm_sql_postgresql.so ] || need+=(freeradius-postgresql)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
if [ ${#need[@]} -gt 0 ]; then
  echo "Installing ${need[*]} from Debian..." >&2
  $sudo_cmd env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need[@]}" >/dev/null
fi
freeradius_bin="$(command -v freeradius || echo /usr/sbin/freeradius)"
pgbin="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)"

work="$(mktemp -d /tmp/forewarn-vs-freeradius-sql.XXXXXX)"
chmod 755 "$work"
out="${out:-$work/results}"; mkdir -p "$out"
auth_port=21812; acct_port=21813; secret=testing123; pg_port=25432; pg_password="bench-$(date +%s%N)"
pids=()
as_postgres() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
cleanup() {
  for p in "${pids[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true
  [ -d "$work/pg" ] && as_postgres "$pgbin/pg_ctl" -D "$work/pg/data" -m fast stop >/dev/null 2>&1 || true
}
trap cleanup EXIT

# ---- PostgreSQL: one cluster for both servers, each with its own database
mkdir -p "$work/pg"; echo "$pg_password" > "$work/pg/pw"
[ "$(id -u)" -eq 0 ] && chown -R postgres:postgres "$work/pg"
as_postgres "$pgbin/initdb" -D "$work/pg/data" -U bench --pwfile "$work/pg/pw" --auth-local=trust --auth-host=scram-sha-256 -E UTF8 --locale=C.UTF-8 >/dev/null
as_postgres "$pgbin/pg_ctl" -D "$work/pg/data" -w -l "$work/pg/server.log" \
  -o "-c port=$pg_port -c listen_addresses=127.0.0.1 -c unix_socket_directories=$work/pg -c fsync=on -c synchronous_commit=on -c max_connections=300 -c shared_buffers=256MB" start >/dev/null
psql_bench() { as_postgres "$pgbin/psql" -h "$work/pg" -p "$pg_port" -U bench -v ON_ERROR_STOP=1 -q "$@"; }
psql_bench -d postgres -c "CREATE DATABASE radius" -c "CREATE DATABASE forewarn" -c "CREATE DATABASE radius_fw"
psql_bench -d radius < /etc/freeradius/3.0/mods-config/sql/main/postgresql/schema.sql >/dev/null
psql_bench -d radius_fw < /etc/freeradius/3.0/mods-config/sql/main/postgresql/schema.sql >/dev/null
printf '127.0.0.1:%s:*:bench:%s\n' "$pg_port" "$pg_password" > "$work/pgpass"; chmod 600 "$work/pgpass"
postgres="Host=127.0.0.1;Port=$pg_port;Database=forewarn;Username=bench;Passfile=$work/pgpass"
postgres_fr="Host=127.0.0.1;Port=$pg_port;Database=radius_fw;Username=bench;Passfile=$work/pgpass"

"$here/forewarn" --help >/dev/null   # builds Release on first use
forewarn_dll="$here/artifacts/cli/forewarn.dll"
bench() { dotnet "$forewarn_dll" bench "$@"; }

# ---- the same N users and client for every server
for i in $(seq 1 "$users"); do echo "user$i password"; done > "$work/users.txt"
for store in sqlite postgres frschema; do
  args=(--data "$work/forewarn-$store"); [ "$store" = postgres ] && args+=(--postgres "$postgres")
  [ "$store" = frschema ] && args+=(--postgres "$postgres_fr")
  dotnet "$forewarn_dll" "${args[@]}" users import "$work/users.txt" --methods pap,chap >/dev/null
  dotnet "$forewarn_dll" "${args[@]}" clients add bench --address 127.0.0.0/8 --secret "$secret" >/dev/null
done
forewarn_sqlite=(dotnet "$forewarn_dll" --data "$work/forewarn-sqlite" serve --auth-port "$auth_port" --acct-port "$acct_port" --advisory-port 21814)
forewarn_postgres=(dotnet "$forewarn_dll" --data "$work/forewarn-postgres" --postgres "$postgres" serve --auth-port "$auth_port" --acct-port "$acct_port" --advisory-port 21814)
# The same, writing each session into FreeRADIUS's radacct as well (Forewarn:FreeRadiusSchema), in the same commit.
forewarn_frschema=(dotnet "$forewarn_dll" --data "$work/forewarn-frschema" --postgres "$postgres_fr" serve --auth-port "$auth_port" --acct-port "$acct_port" --advisory-port 21814 --set Forewarn:FreeRadiusSchema=true)

# ---- FreeRADIUS: Debian's configuration on our ports, accounting through rlm_sql into PostgreSQL
fr="$work/freeradius"; mkdir -p "$fr/log/radacct" "$fr/run"
cp -a /etc/freeradius/3.0 "$fr/raddb"
python3 - "$fr" "$auth_port" "$acct_port" "$work/users.txt" "$pg_port" "$pg_password" <<'PY'
import re, sys, pathlib, os
fr, auth, acct, users, pg_port, pg_password = sys.argv[1:7]
raddb = pathlib.Path(fr) / "raddb"
conf = (raddb / "radiusd.conf").read_text()
conf = re.sub(r"^logdir = .*$", f"logdir = {fr}/log", conf, flags=re.M)
conf = re.sub(r"^run_dir = .*$", f"run_dir = {fr}/run", conf, flags=re.M)
conf = re.sub(r"^(\s*)(user|group) = freerad", r"\1#\2 = freerad", conf, flags=re.M)
(raddb / "radiusd.conf").write_text(conf)
site = (raddb / "sites-enabled" / "default").read_text()
blocks = list(re.finditer(r"^listen \{.*?^\}", site, flags=re.S | re.M))
for b in reversed(blocks):
    text = b.group(0)
    if "ipv6addr = ::" in text and not re.search(r"^\s*ipaddr", text, flags=re.M):
        site = site[:b.start()] + site[b.end():]
        continue
    port = auth if re.search(r"type = auth\b", text) else acct
    text = text.replace("ipaddr = *", "ipaddr = 127.0.0.1")
    text = re.sub(r"^(\s*)port = 0", rf"\g<1>port = {port}", text, flags=re.M)
    site = site[:b.start()] + text + site[b.end():]
# Accounting into SQL only; no SQL on the authentication path (users come from the files module).
def section(name, body):
    m = re.search(rf"^{name} \{{.*?^\}}", body, flags=re.S | re.M)
    return m.start(), m.end()
s, e = section("accounting", site)
acc = site[s:e]
acc = re.sub(r"^(\s*)detail\s*$", r"\1#detail", acc, flags=re.M)
acc = re.sub(r"^(\s*)-sql\s*$", r"\1sql", acc, flags=re.M)
site = site[:s] + acc + site[e:]
for name in ("authorize", "post-auth", "session"):
    s, e = section(name, site)
    site = site[:s] + re.sub(r"^(\s*)-sql\s*$", r"\1#-sql", site[s:e], flags=re.M) + site[e:]
(raddb / "sites-enabled" / "default").write_text(site)
inner = (raddb / "sites-enabled" / "inner-tunnel").read_text()
(raddb / "sites-enabled" / "inner-tunnel").write_text(inner.replace("port = 18120", "port = 21899"))
lines = [l.split() for l in pathlib.Path(users).read_text().splitlines() if l.strip()]
authorize = raddb / "mods-config" / "files" / "authorize"
authorize.write_text("".join(f'{u}\tCleartext-Password := "{p}"\n' for u, p in lines) + "\n" + authorize.read_text())
sql = (raddb / "mods-available" / "sql").read_text()
sql = re.sub(r'^(\s*)dialect = "sqlite"', r'\1dialect = "postgresql"', sql, flags=re.M)
sql = re.sub(r'^(\s*)driver = "rlm_sql_null"', r'\1driver = "rlm_sql_postgresql"', sql, flags=re.M)
sql = re.sub(r'^(\s*)#?\s*server = "localhost"', rf'\1server = "127.0.0.1"', sql, flags=re.M)
sql = re.sub(r'^(\s*)#?\s*port = 3306', rf'\1port = {pg_port}', sql, flags=re.M)
sql = re.sub(r'^(\s*)#?\s*login = "radius"', r'\1login = "bench"', sql, flags=re.M)
sql = re.sub(r'^(\s*)#?\s*password = "radpass"', rf'\1password = "{pg_password}"', sql, flags=re.M)
(raddb / "mods-available" / "sql").write_text(sql)
link = raddb / "mods-enabled" / "sql"
if not link.exists():
    os.symlink("../mods-available/sql", link)
with open(raddb / "clients.conf", "a") as f:
    f.write("\nclient bench {\n\tipaddr = 127.0.0.0/8\n\tsecret = testing123\n}\n")
PY
freeradius_cmd=("$freeradius_bin" -f -d "$fr/raddb" -l "$fr/log/radius.log")
"$freeradius_bin" -C -d "$fr/raddb" >/dev/null 2>&1 || { echo "FreeRADIUS rejects the configuration:" >&2; "$freeradius_bin" -XC -d "$fr/raddb" | tail -20 >&2; exit 1; }

start_server() {  # name command... -> sets server_pid, waits for the first Status-Server answer
  local name="$1"; shift
  "$@" >"$work/$name.log" 2>&1 &
  server_pid=$!; pids+=("$server_pid")
  for _ in $(seq 1 600); do
    if bench status --server "127.0.0.1:$auth_port" -c 1 -d 0.05 --warmup 0 --timeout 0.2 -q --json >/dev/null 2>&1; then return 0; fi
    sleep 0.1
  done
  echo "$name did not start; its log:" >&2; cat "$work/$name.log" >&2; exit 1
}
stop_server() { kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; }
run() {  # name label generator-arguments...
  local name="$1" label="$2"; shift 2
  echo "  $name: $label" >&2
  bench "$@" --duration "$duration" --warmup "$warmup" --server-pid "$server_pid" --json -q > "$out/$name-$label.json" || true
}
loads() {
  local name="$1"
  # The same unmeasured warm-up for every server: a fresh .NET process runs its first seconds on code the
  # tiered JIT has not yet optimised (measured: PAP at 16 in flight costs twice the CPU per request of the
  # same load ten seconds later), so the first measured load would pay for it.
  bench auth --server "127.0.0.1:$auth_port" --users "$users" -c 64 --duration 5 --warmup 0 -q >/dev/null 2>&1 || true
  bench acct --server "127.0.0.1:$acct_port" --users "$users" -c 64 --duration 5 --warmup 0 -q >/dev/null 2>&1 || true
  run "$name" pap-c64 auth --server "127.0.0.1:$auth_port" --users "$users" -c 64
  run "$name" acct-c64 acct --server "127.0.0.1:$acct_port" --users "$users" -c 64
  run "$name" acct-c256 acct --server "127.0.0.1:$acct_port" --users "$users" -c 256 --sockets 4
}
count() { psql_bench -d "$1" -At -c "SELECT count(*) FROM $2"; }

echo "Working in $work" >&2
echo "FreeRADIUS 3.2 + rlm_sql (PostgreSQL):" >&2
start_server freeradius-sql "${freeradius_cmd[@]}"; loads freeradius-sql; stop_server
echo "  radacct rows: $(count radius radacct)" >&2
echo "Forewarn + PostgreSQL:" >&2
start_server forewarn-postgres "${forewarn_postgres[@]}"; loads forewarn-postgres; stop_server
echo "  accounting rows: $(count forewarn accounting)" >&2
echo "Forewarn + PostgreSQL, FreeRADIUS's radacct written too:" >&2
start_server forewarn-frschema "${forewarn_frschema[@]}"; loads forewarn-frschema; stop_server
echo "  radacct rows: $(count radius_fw radacct)" >&2
echo "Forewarn + SQLite:" >&2
start_server forewarn-sqlite "${forewarn_sqlite[@]}"; loads forewarn-sqlite; stop_server
{ count radius radacct; count forewarn accounting; count radius_fw radacct; } > "$out/rows.txt"

python3 - "$out" <<'PY'
import json, sys, os
out = sys.argv[1]
def load(name):
    path = os.path.join(out, name + ".json")
    return json.load(open(path)) if os.path.exists(path) else None
rows = open(os.path.join(out, "rows.txt")).read().split()
print(f"{'load':10} {'FR+rlm_sql/s':>13} {'FW+PG/s':>9} {'FW+PG+radacct/s':>16} {'FW+SQLite/s':>12} {'PG ratio':>9} {'radacct ratio':>14} {'p99 ms FR/PG/SQLite':>22} {'lost FR/PG/SQLite':>18} {'srv CPU µs FR/PG/SQLite':>24}")
for label in ("pap-c64", "acct-c64", "acct-c256"):
    f, p, r, s = (load(n + "-" + label) for n in ("freeradius-sql", "forewarn-postgres", "forewarn-frschema", "forewarn-sqlite"))
    if not (f and p and r and s):
        continue
    ratio = p["throughput"] / f["throughput"] if f["throughput"] else float("nan")
    rratio = r["throughput"] / f["throughput"] if f["throughput"] else float("nan")
    cpu = lambda r: f"{r['serverCpuMicrosecondsPerRequest']:.0f}" if r.get("serverCpuMicrosecondsPerRequest") else "-"
    lost = lambda r: r["timeouts"] + r["invalid"]
    print(f"{label:10} {f['throughput']:13,.0f} {p['throughput']:9,.0f} {r['throughput']:16,.0f} {s['throughput']:12,.0f} {ratio:9.2f} {rratio:14.2f} "
          f"{f['latencyP99Ms']:7.1f}/{p['latencyP99Ms']:.1f}/{s['latencyP99Ms']:.1f}{'':4} {lost(f):6}/{lost(p)}/{lost(s)}{'':6} {cpu(f):>8}/{cpu(p)}/{cpu(s)}")
print(f"\nrows stored: FreeRADIUS radacct {rows[0]}, Forewarn accounting {rows[1]}, Forewarn's radacct {rows[2]}")
print(f"raw results: {out}")
PY
