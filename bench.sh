#!/usr/bin/env bash
# Benchmarks the pipeline against Orleans' own limits on one embedded silo (issue 5): builds, starts a silo of its
# own on other ports than run.sh (gateway 30100, silo 11200), runs `Client bench`, stops the silo.
#   ./bench.sh                          full run (about 5-6 minutes on a quiet 2-core machine, build included)
#   ./bench.sh -- --scale-orders 10000  arguments after -- go to `bench` (see: Client --help)
#   ./bench.sh --profile azure          not built yet: the durable bench is open work (docs/BENCHMARKS.md, "Not done")
# Output: a table, artifacts/bench-<time>.json (+ bench-latest.json), the silo log in artifacts/, and a last line
# starting with RESULT. Silo settings can be overridden with environment variables, e.g. OrderStreams__Partitioning__TotalQueueCount=4.
set -euo pipefail
cd "$(dirname "$0")"

bench_args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --profile)
      shift
      case "${1:-}" in
        embedded|Embedded) ;;
        *) echo "error: profile '${1:-}' is not available here; only 'embedded' is benchmarked so far; the durable (azure) bench is not built yet (docs/BENCHMARKS.md, Not done)" >&2; exit 2 ;;
      esac ;;
    --) shift; bench_args=("$@"); break ;;
    *) echo "error: unknown argument '$1' (use --profile embedded, or -- followed by bench arguments)" >&2; exit 2 ;;
  esac
  shift
done

export Silo__GatewayPort="${Silo__GatewayPort:-30100}"
export Silo__SiloPort="${Silo__SiloPort:-11200}"
# The bench control grain (counters, forced GCs, slow-subscriber drills) answers only on a silo that allows it.
export Benchmarks__Enabled=true
# Shortened for the bench only (appsettings.json: 2 min), so that "memory after idle deactivation" can be measured
# within the run: the stream agents drop a quiet stream's state after this period (the bench idles 15 s).
export OrderStreams__PullingAgent__StreamInactivityPeriod="${OrderStreams__PullingAgent__StreamInactivityPeriod:-00:00:10}"

mkdir -p artifacts
silo_log="artifacts/bench-silo.log"
silo_pid=""
cleanup() {
  if [ -n "$silo_pid" ] && kill -0 "$silo_pid" 2>/dev/null; then
    kill -TERM "$silo_pid" 2>/dev/null || true
    for _ in $(seq 1 40); do kill -0 "$silo_pid" 2>/dev/null || break; sleep 0.25; done
    kill -KILL "$silo_pid" 2>/dev/null || true
    wait "$silo_pid" 2>/dev/null || true
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "== building"
dotnet build Orleans.sln -c Release --nologo -v quiet -clp:ErrorsOnly

for port in "$Silo__GatewayPort" "$Silo__SiloPort"; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    echo "error: something already listens on 127.0.0.1:$port; stop it or set Silo__GatewayPort / Silo__SiloPort" >&2
    exit 1
  fi
done

echo "== starting the embedded silo (gateway 127.0.0.1:$Silo__GatewayPort, silo port $Silo__SiloPort, log $silo_log)"
(cd Silo && exec dotnet bin/Release/net10.0/OrderFlow.Silo.dll) >"$silo_log" 2>&1 &
silo_pid=$!
for _ in $(seq 1 120); do
  if grep -q "Application started" "$silo_log" 2>/dev/null; then break; fi
  if ! kill -0 "$silo_pid" 2>/dev/null; then echo "error: the silo exited during start:" >&2; tail -n 30 "$silo_log" >&2; exit 1; fi
  sleep 0.5
done

echo "== bench (load average $(cut -d' ' -f1-3 /proc/loadavg))"
dotnet Client/bin/Release/net10.0/OrderFlow.Client.dll --gateway "127.0.0.1:$Silo__GatewayPort" bench "${bench_args[@]}"
