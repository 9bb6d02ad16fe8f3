#!/usr/bin/env bash
# Forewarn and FreeRADIUS side by side on this machine: same users, same client and secret, same load
# from the same generator (forewarn bench), one server at a time. Prints a table with the ratio
# Forewarn / FreeRADIUS and writes the raw JSON beside it.
#
#   bench/vs-freeradius.sh [--quick] [--only radius|eap] [--users N] [--duration S] [--out DIR]
#
# EAP rows (PEAP-MSCHAPv2 and EAP-TLS, TLS 1.2 and 1.3) are driven by `forewarn bench eap`, a
# supplicant of our own, for both servers: each server keeps its RSA-2048 certificate (FreeRADIUS
# Debian's snakeoil, Forewarn the one its data directory's CA made), both accept client certificates
# from that CA, and both allow TLS 1.3 (FreeRADIUS's tls_max_version is raised from "1.2").
#
# Installs Debian's freeradius if it is missing (needs root or sudo). Both servers listen on
# 127.0.0.1 ports 21812/21813, with debug logging off. Accounting: Forewarn commits each record to
# SQLite (WAL, synchronous=FULL: fsync before the answer, group commit); FreeRADIUS writes its default
# detail file, which it does not fsync (answered before the data is on disk), so its figure is the
# non-durable one. Only processes this script started are stopped.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
users=1000; duration=10; warmup=2; quick=0; out=""; only=""
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) quick=1; duration=3; warmup=1 ;;
    --users) users="$2"; shift ;;
    --duration) duration="$2"; shift ;;
    --out) out="$2"; shift ;;
    --only) only="$2"; shift ;;
    *) echo "usage: $0 [--quick] [--only radius|eap] [--users N] [--duration S] [--out DIR]" >&2; exit 2 ;;
  esac
  shift
done

if ! command -v freeradius >/dev/null 2>&1 && [ ! -x /usr/sbin/freeradius ]; then
  echo "Installing freeradius from Debian..." >&2
  sudo_cmd=""; [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  $sudo_cmd env DEBIAN_FRONTEND=noninteractive apt-get install -y -q freeradius >/dev/null
fi
command -v python3 >/dev/null || { echo "python3 is needed for the table" >&2; exit 1; }
freeradius_bin="$(command -v freeradius || echo /usr/sbin/freeradius)"

work="$(mktemp -d /tmp/forewarn-vs-freeradius.XXXXXX)"
out="${out:-$work/results}"; mkdir -p "$out"
auth_port=21812; acct_port=21813; secret=testing123
pids=()
cleanup() { for p in "${pids[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

"$here/forewarn" --help >/dev/null   # builds Release on first use
forewarn_dll="$here/artifacts/cli/forewarn.dll"
bench() { dotnet "$forewarn_dll" bench "$@"; }

# ---- users: the same N users with the same password for both servers
for i in $(seq 1 "$users"); do echo "user$i password"; done > "$work/users.txt"

# ---- Forewarn configuration: a data directory with the same users and client, and its CA (for EAP)
fw="$work/forewarn"
dotnet "$forewarn_dll" --data "$fw" users import "$work/users.txt" --methods all >/dev/null
dotnet "$forewarn_dll" --data "$fw" clients add bench --address 127.0.0.0/8 --secret "$secret" >/dev/null
dotnet "$forewarn_dll" --data "$fw" certs client user1 >/dev/null 2>&1
client_cert="$fw/tls/clients/user1.pem"; client_key="$fw/tls/clients/user1.key"
forewarn_cmd=(dotnet "$forewarn_dll" --data "$fw" serve --auth-port "$auth_port" --acct-port "$acct_port" --advisory-port 21814)

# ---- FreeRADIUS configuration: a copy of Debian's, moved to our ports and directories
fr="$work/freeradius"; mkdir -p "$fr/log/radacct" "$fr/run"
cp -a /etc/freeradius/3.0 "$fr/raddb"
python3 - "$fr" "$auth_port" "$acct_port" "$work/users.txt" "$fw/tls/ca.pem" <<'PY'
import re, sys, pathlib
fr, auth, acct, users, ca = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]
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
        site = site[:b.start()] + site[b.end():]      # no IPv6 listeners
        continue
    port = auth if re.search(r"type = auth\b", text) else acct
    text = text.replace("ipaddr = *", "ipaddr = 127.0.0.1")
    text = re.sub(r"^(\s*)port = 0", rf"\g<1>port = {port}", text, flags=re.M)
    site = site[:b.start()] + text + site[b.end():]
(raddb / "sites-enabled" / "default").write_text(site)
inner = (raddb / "sites-enabled" / "inner-tunnel").read_text()
(raddb / "sites-enabled" / "inner-tunnel").write_text(inner.replace("port = 18120", "port = 21899"))
lines = [l.split() for l in pathlib.Path(users).read_text().splitlines() if l.strip()]
authorize = raddb / "mods-config" / "files" / "authorize"
authorize.write_text("".join(f'{u}\tCleartext-Password := "{p}"\n' for u, p in lines) + "\n" + authorize.read_text())
eap = (raddb / "mods-available" / "eap").read_text()
eap = eap.replace("ca_file = /etc/ssl/certs/ca-certificates.crt", f"ca_file = {ca}").replace('tls_max_version = "1.2"', 'tls_max_version = "1.3"')
(raddb / "mods-available" / "eap").write_text(eap)
with open(raddb / "clients.conf", "a") as f:
    f.write("\nclient bench {\n\tipaddr = 127.0.0.0/8\n\tsecret = testing123\n}\n")
PY
freeradius_cmd=("$freeradius_bin" -f -d "$fr/raddb" -l "$fr/log/radius.log")


start_server() {  # name -> sets server_pid, waits for the first Status-Server answer
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

eap_loads() {  # name: whole EAP authentications, the same supplicant for both servers
  local name="$1" a="127.0.0.1:$auth_port"
  # The same unmeasured warm-up for both (Forewarn's JIT settles its TLS and EAP paths here).
  bench eap --server "$a" --method peap --user user1 --password password -c 16 --duration 3 --warmup 0 >/dev/null 2>&1 || true
  bench eap --server "$a" --method tls --user user1 --certificate "$client_cert" --key "$client_key" -c 16 --duration 3 --warmup 0 >/dev/null 2>&1 || true
  for tls in 1.2 1.3; do
    echo "  $name: eap peap tls$tls" >&2
    bench eap --server "$a" --method peap --tls "$tls" --user user1 --password password -c 16 --duration "$duration" --warmup "$warmup" --server-pid "$server_pid" --json > "$out/$name-eap-peap-tls$tls.json" || true
    echo "  $name: eap tls tls$tls" >&2
    bench eap --server "$a" --method tls --tls "$tls" --user user1 --certificate "$client_cert" --key "$client_key" -c 16 --duration "$duration" --warmup "$warmup" --server-pid "$server_pid" --json > "$out/$name-eap-tls-tls$tls.json" || true
  done
}

loads() {  # name: the same loads for both servers
  local name="$1" a="127.0.0.1:$auth_port" c="127.0.0.1:$acct_port"
  if [ "$only" = eap ]; then eap_loads "$name"; return; fi
  for conc in 16 64 256; do run "$name" "pap-c$conc" auth --server "$a" --users "$users" -c "$conc"; done
  run "$name" "pap-c1024" auth --server "$a" --users "$users" -c 1024 --sockets 8 --timeout 2
  run "$name" "chap-c64" auth --server "$a" --users "$users" -c 64 --method chap
  run "$name" "mschapv2-c64" auth --server "$a" --users "$users" -c 64 --method mschapv2
  run "$name" "acct-c64" acct --server "$c" --users "$users" -c 64
  run "$name" "acct-c256" acct --server "$c" --users "$users" -c 256 --sockets 4
  run "$name" "status-c64" status --server "$a" -c 64
  [ "$only" = radius ] || eap_loads "$name"
}

echo "Working in $work" >&2
echo "FreeRADIUS:" >&2
start_server freeradius "${freeradius_cmd[@]}"; loads freeradius
if [ "$only" != eap ]; then
  # Open loop at the same offered load for both: 80 % of FreeRADIUS's best closed-loop PAP throughput.
  rate=$(python3 -c "import json,glob; print(int(0.8*max(json.load(open(f))['throughput'] for f in glob.glob('$out/freeradius-pap-c*.json'))))")
  run freeradius "pap-open" auth --server "127.0.0.1:$auth_port" --users "$users" --rate "$rate" --sockets 8
fi
stop_server
echo "Forewarn:" >&2
start_server forewarn "${forewarn_cmd[@]}"; loads forewarn
[ "$only" = eap ] || run forewarn "pap-open" auth --server "127.0.0.1:$auth_port" --users "$users" --rate "$rate" --sockets 8
stop_server

if [ "$only" != eap ]; then
  echo "Start-up (exec to first Status-Server answer):" >&2
  bench startup --server "127.0.0.1:$auth_port" --runs 5 --json -- "${freeradius_cmd[@]}" > "$out/freeradius-startup.json"
  bench startup --server "127.0.0.1:$auth_port" --runs 5 --json -- "${forewarn_cmd[@]}" > "$out/forewarn-startup.json"
fi

if [ "$quick" -eq 0 ] && [ -z "$only" ]; then
  echo "Memory across a million accounting requests:" >&2
  for name in freeradius forewarn; do
    if [ "$name" = freeradius ]; then start_server freeradius "${freeradius_cmd[@]}"; else start_server forewarn "${forewarn_cmd[@]}"; fi
    bench acct --server "127.0.0.1:$acct_port" --users "$users" -c 64 -d 1 --warmup 1 --server-pid "$server_pid" --json -q > "$out/$name-memory-before.json" || true
    # About a million requests: run until the count is reached, in slices, recording memory after each.
    total=0
    while [ "$total" -lt 1000000 ]; do
      bench acct --server "127.0.0.1:$acct_port" --users "$users" -c 64 -d 10 --warmup 0 --server-pid "$server_pid" --json -q > "$out/$name-memory-slice.json" || true
      total=$((total + $(python3 -c "import json; print(json.load(open('$out/$name-memory-slice.json'))['answered'])")))
      python3 -c "import json; r=json.load(open('$out/$name-memory-slice.json')); print($total, r['serverResidentMiB'])" >> "$out/$name-memory.tsv"
    done
    stop_server
  done
fi

python3 - "$out" "$quick" <<'PY'
import json, sys, os, glob
out, quick = sys.argv[1], sys.argv[2] == "1"
def load(name):
    path = os.path.join(out, name + ".json")
    return json.load(open(path)) if os.path.exists(path) else None
labels = ["pap-c16", "pap-c64", "pap-c256", "pap-c1024", "pap-open", "chap-c64", "mschapv2-c64", "acct-c64", "acct-c256", "status-c64"]
print(f"{'load':14} {'FreeRADIUS/s':>13} {'Forewarn/s':>11} {'ratio':>6}   {'p50 ms FR/FW':>14} {'p99 ms FR/FW':>14} {'lost FR/FW':>11} {'srv CPU µs FR/FW':>17}")
for label in labels:
    f, w = load("freeradius-" + label), load("forewarn-" + label)
    if not f or not w:
        continue
    ratio = w["throughput"] / f["throughput"] if f["throughput"] else float("nan")
    cpu = lambda r: f"{r['serverCpuMicrosecondsPerRequest']:.1f}" if r.get("serverCpuMicrosecondsPerRequest") else "-"
    lost = lambda r: r["timeouts"] + r["invalid"]
    print(f"{label:14} {f['throughput']:13,.0f} {w['throughput']:11,.0f} {ratio:6.2f}   {f['latencyP50Ms']:6.2f}/{w['latencyP50Ms']:<7.2f} {f['latencyP99Ms']:6.2f}/{w['latencyP99Ms']:<7.2f} {lost(f):5}/{lost(w):<5} {cpu(f):>8}/{cpu(w):<8}")
eap_rows = [f"eap-{m}-tls{v}" for m in ("peap", "tls") for v in ("1.2", "1.3")]
if any(load("forewarn-" + r) for r in eap_rows):
    print(f"\n{'EAP (16 in flight)':20} {'FreeRADIUS/s':>13} {'Forewarn/s':>11} {'ratio':>6}   {'p50 ms FR/FW':>14} {'srv CPU ms FR/FW':>17} {'CPU ratio':>9} {'failed FR/FW':>12}")
for label in eap_rows:
    f, w = load("freeradius-" + label), load("forewarn-" + label)
    if not f or not w:
        continue
    ratio = w["perSecond"] / f["perSecond"] if f["perSecond"] else float("nan")
    fc, wc = f.get("serverCpuMsPerAuthentication"), w.get("serverCpuMsPerAuthentication")
    cpu_ratio = f"{fc / wc:9.2f}" if fc and wc else f"{'-':>9}"
    print(f"{label:20} {f['perSecond']:13,.0f} {w['perSecond']:11,.0f} {ratio:6.2f}   {f['p50Ms']:6.2f}/{w['p50Ms']:<7.2f} {fc or 0:8.2f}/{wc or 0:<8.2f} {cpu_ratio} {f['failed'] + f['rejected']:5}/{w['failed'] + w['rejected']:<5}")
fs, ws = load("freeradius-startup"), load("forewarn-startup")
if fs and ws:
    print(f"\nstart-up to first answer (median of 5): FreeRADIUS {fs['medianMs']} ms, Forewarn {ws['medianMs']} ms")
for name in ("freeradius", "forewarn"):
    path = os.path.join(out, name + "-memory.tsv")
    if os.path.exists(path):
        rows = [l.split() for l in open(path) if l.strip()]
        before = load(name + "-memory-before")
        first = before["serverResidentMiB"] if before else float(rows[0][1])
        print(f"resident memory {name}: {first:.0f} MiB after warm-up, {float(rows[-1][1]):.0f} MiB after {int(rows[-1][0]):,} accounting requests")
print(f"\nraw results: {out}")
PY
