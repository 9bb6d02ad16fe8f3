#!/usr/bin/env bash
# The console's API under a fleet: 1,000 NASes (127.1.x.y) send 10,000 PAP logins a minute (one in ten
# with a wrong password) to a fresh `forewarn serve`, and wrk measures each read the console makes, with
# the admin token, once the log is full. Needs wrk (Debian `wrk`) and Debian's python3.
#
#   bench/console-api.sh [SECONDS_PER_READ]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
per="${1:-8}"
command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)" >&2; exit 2; }
work="$(mktemp -d /tmp/forewarn-console-bench.XXXXXX)"
forewarn=(dotnet "$here/src/Forewarn.Cli/bin/Release/net10.0/forewarn.dll")
[ -f "$here/src/Forewarn.Cli/bin/Release/net10.0/forewarn.dll" ] || dotnet build "$here/src/Forewarn.Cli" -c Release >/dev/null
"${forewarn[@]}" users add load --password pw --methods pap --data "$work/d" >/dev/null 2>&1
echo testing123 > "$work/secret"
"${forewarn[@]}" clients add fleet --address 127.1.0.0/16 --secret-file "$work/secret" --group access --data "$work/d" >/dev/null
"${forewarn[@]}" serve --data "$work/d" --auth-port 0 --acct-port 0 --advisory-port 0 --tacacs-port 0 > "$work/serve.log" 2>&1 &
server=$!
trap 'kill $server $fleet 2>/dev/null || true' EXIT
for _ in $(seq 60); do grep -q "Ready: console" "$work/serve.log" && break; sleep 0.5; done
auth=$(grep "Ready: auth" "$work/serve.log" | sed 's/.*://')
url=$(cat "$work/d/admin.url"); token=$(cat "$work/d/admin.token")
python3 "$here/bench/console-fleet.py" "$auth" $((130 + 10 * per)) 167 > "$work/fleet.log" &
fleet=$!
echo "filling the log (two minutes of 10,000 logins a minute from 1,000 NASes)..." >&2
sleep 125
printf '%-40s %12s %10s\n' read "requests/s" "mean ms"
for path in "/api/v1/status" "/api/v1/health/history?seconds=300" "/api/v1/log?after=999999999" "/api/v1/log?limit=500" \
    "/api/v1/log?limit=500&user=nobody" "/api/v1/log/summary" "/api/v1/nases" "/api/v1/users" "/metrics"; do
  out=$(wrk -t1 -c8 -d"${per}s" -H "Authorization: Bearer $token" "$url$path")
  rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
  mean=$(echo "$out" | awk '/Latency/ {print $2}')
  printf '%-40s %12s %10s\n' "$path" "$rps" "$mean"
done
echo "single /metrics scrapes, 20 in a row (ms):"
for i in $(seq 20); do curl -s -o /dev/null -w "%{time_total}\n" -H "Authorization: Bearer $token" "$url/metrics"; done | sort -n |
  awk '{a[NR]=$1*1000} END {printf "  min %.1f median %.1f max %.1f\n", a[1], a[int(NR/2)], a[NR]}'
