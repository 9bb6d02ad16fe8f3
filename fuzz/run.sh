#!/usr/bin/env bash
# Coverage-guided fuzzing of Forewarn's parsers of untrusted input with AFL++ (Debian's afl++) and SharpFuzz:
#
#   fuzz/run.sh TARGET|all [--seconds S] [--out DIR]
#
# Targets: radius, tacacs, advisory, eap, dictionary, config (fuzz/Forewarn.Fuzz/Targets.cs lists them and
# says what each checks). Builds the harness into a directory of its own, instruments there with sharpfuzz (the repository's
# tool manifest) Forewarn.Protocol.dll, Forewarn.Core.dll and Forewarn.Server.dll, and the configuration's
# JSON provider and binder, seeds each target from ../shared/conformance and Debian's FreeRADIUS
# dictionaries (read in place) and from Forewarn's own encoders, gives the config target AFL's dictionary
# of setting names, and runs afl-fuzz for S seconds per target (default 60). Prints, per target,
# executions, paths found, crashes and hangs; a crash or a hang is replayed to show what broke and
# fails the run. Installs afl++ if missing (needs root or sudo).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
seconds=60; out=""; target="${1:-}"
[ -n "$target" ] && shift
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) seconds="$2"; shift ;;
    --out) out="$2"; shift ;;
    *) echo "usage: $0 TARGET|all [--seconds S] [--out DIR]" >&2; exit 2 ;;
  esac
  shift
done
targets=(radius tacacs advisory eap dictionary config)
case "$target" in
  all) ;;
  radius|tacacs|advisory|eap|dictionary|config) targets=("$target") ;;
  *) echo "usage: $0 radius|tacacs|advisory|eap|dictionary|config|all [--seconds S] [--out DIR]" >&2; exit 2 ;;
esac

if ! command -v afl-fuzz >/dev/null 2>&1; then
  sudo_cmd=""; [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  echo "Installing afl++ from Debian..." >&2
  $sudo_cmd env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends afl++ >/dev/null
fi
conformance="${FOREWARN_CONFORMANCE:-$here/../shared/conformance}"
[ -d "$conformance" ] || { echo "no conformance vectors at $conformance: seeding from Forewarn's own encoders only" >&2; conformance=""; }

work="${out:-$(mktemp -d /tmp/forewarn-fuzz.XXXXXX)}"; mkdir -p "$work"
bin="$work/bin"
echo "Building the harness into $bin" >&2
dotnet build "$here/fuzz/Forewarn.Fuzz/Forewarn.Fuzz.csproj" -c Release -o "$bin" -p:UseAppHost=false >/dev/null
rm -rf "$work/replay"; cp -a "$bin" "$work/replay"   # uninstrumented: replays a finding outside afl-fuzz
harness=(dotnet "$bin/forewarn-fuzz.dll")
# Seeds first: once instrumented, the assembly writes into AFL's shared memory and runs only under afl-fuzz.
for t in "${targets[@]}"; do
  rm -rf "$work/$t/seeds" "$work/$t/tokens"
  "${harness[@]}" seeds "$t" "$work/$t/seeds" ${conformance:+"$conformance"} >/dev/null
  "${harness[@]}" tokens "$t" "$work/$t/tokens"
done
# The packages' copies in $bin are newer than the shared framework's, so they are the ones loaded.
(cd "$here" && dotnet tool restore >/dev/null &&
  for assembly in Forewarn.Protocol Forewarn.Core Forewarn.Server Microsoft.Extensions.Configuration.Json Microsoft.Extensions.Configuration.Binder; do
    dotnet tool run sharpfuzz "$bin/$assembly.dll" >/dev/null
  done)

export AFL_SKIP_BIN_CHECK=1 AFL_NO_UI=1 AFL_SKIP_CPUFREQ=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 AFL_NO_AFFINITY=1
failed=0
printf '%-10s %8s %12s %9s %7s %8s %6s\n' target seconds executions "exec/s" paths crashes hangs
for t in "${targets[@]}"; do
  rm -rf "$work/$t/findings"
  tokens=(); [ -f "$work/$t/tokens" ] && tokens=(-x "$work/$t/tokens")
  afl-fuzz -i "$work/$t/seeds" -o "$work/$t/findings" "${tokens[@]}" -t 10000 -m none -V "$seconds" -- "${harness[@]}" run "$t" > "$work/$t/afl.log" 2>&1 || {
    echo "afl-fuzz failed for $t:" >&2; tail -30 "$work/$t/afl.log" >&2; failed=1; continue; }
  stats="$work/$t/findings/default/fuzzer_stats"
  get() { awk -F' *: *' -v k="$1" '$1 == k { print $2 }' "$stats"; }
  printf '%-10s %8s %12s %9s %7s %8s %6s\n' "$t" "$(get run_time)" "$(get execs_done)" "$(get execs_per_sec)" "$(get corpus_count)" "$(get saved_crashes)" "$(get saved_hangs)"
  for kind in crashes hangs; do
    dir="$work/$t/findings/default/$kind"
    if [ -n "$(ls -A "$dir" 2>/dev/null | grep -v README)" ]; then
      failed=1
      echo "$t: $kind found, replayed:" >&2
      timeout 60 dotnet "$work/replay/forewarn-fuzz.dll" replay "$t" "$dir" >&2 || true
    fi
  done
done
echo "findings and corpora: $work" >&2
exit $failed
