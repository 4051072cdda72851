#!/usr/bin/env bash
# Benchmarks the pipeline against Orleans' own limits (issue 5): builds, starts a silo of its own on other ports than
# run.sh (gateway 30100, silo 11200), runs `Client bench`, stops what it started.
#   ./bench.sh                          embedded profile, full run (about 7 minutes on a 2-core machine, build included)
#   ./bench.sh --profile azure          durable profile: a fresh Azurite of its own (instance "bench", ports
#                                       10120-10122, data deleted at the end) and one Azure-profile silo; storage
#                                       requests per event and durable throughput (about 2 minutes); add
#                                       -- --memory-orders 2000 for the silo's memory per deactivated order (+3 minutes)
#   ./bench.sh --profile azure --azurite-in-memory table
#                                       the bench's Azurite keeps these services (comma list of blob,queue,table) in
#                                       memory instead of on disk, as ./test.sh does: long runs measure our requests,
#                                       not the emulator's on-disk persistence slowing as its tables grow
#   ./bench.sh --dashboard on           the silo with the Orleans Dashboard (Dashboard:Enabled; its grain-call filter on every
#                                       call); default off, so runs compare with the records in docs/BENCHMARKS.md
#   ./bench.sh -- --scale-orders 10000  arguments after -- go to `bench` (see: Client --help)
#   ./bench.sh -- --scale-lifecycle full  the scale phase's orders placed, paid, shipped and received (the memory goal's unit)
#   ./bench.sh -- flashsale --requests 100000 --users 50000 --stock 3000 --rate 500
#                                       issue 12: `flashsale bench` (arguments after `flashsale` go to it) against
#                                       this silo; with --profile azure too (docs/BENCHMARKS.md, "Flash sale (issue 12)")
#   ./bench.sh -- --workload consistency  issue 11: placements with vs without reservations, a flash-sale SKU, racing
#                                       buyers, hot stock and GMV ledgers (docs/BENCHMARKS.md, "Consistency (issue 11)")
#   ./bench.sh -- --workload brokers    issue 14: the brokers' workload (20,000 orders x 4 events, 128 flows) beside Orleans'
#                                       trivial baselines, command and publish->apply latency, silo and client CPU, checks
#                                       from stored state (docs/BENCHMARKS.md, "The brokers' workload (issue 14)")
#   Telemetry__Enabled=false ./bench.sh   telemetry off (issue 13's on/off comparison; on is the default, metrics only
#                                       unless OTEL_EXPORTER_OTLP_ENDPOINT is set); Telemetry__Tracing=true ./bench.sh
#                                       also records every span without a collector (docs/BENCHMARKS.md, "Telemetry")
# Output: a table, artifacts/bench[-azure]-<time>.json (+ -latest.json), the silo log in artifacts/, and a last line
# starting with RESULT. Silo settings can be overridden with environment variables, e.g. OrderStreams__Partitioning__TotalQueueCount=4.
set -euo pipefail
cd "$(dirname "$0")"

bench_args=()
profile=embedded
dashboard=off
azurite_in_memory=""
while [ $# -gt 0 ]; do
  case "$1" in
    --dashboard)
      shift
      case "${1:-}" in
        on|off) dashboard="$1" ;;
        *) echo "error: --dashboard must be on or off, was '${1:-}'" >&2; exit 2 ;;
      esac ;;
    --azurite-in-memory)
      shift
      [[ "${1:-}" =~ ^(blob|queue|table)(,(blob|queue|table))*$ ]] \
        || { echo "error: --azurite-in-memory takes a comma list of blob, queue, table; was '${1:-}'" >&2; exit 2; }
      azurite_in_memory="$1" ;;
    --profile)
      shift
      case "${1:-}" in
        embedded|Embedded) profile=embedded ;;
        azure|Azure) profile=azure ;;
        *) echo "error: --profile must be embedded or azure, was '${1:-}'" >&2; exit 2 ;;
      esac ;;
    --) shift; bench_args=("$@"); break ;;
    *) echo "error: unknown argument '$1' (use --profile embedded|azure, --azurite-in-memory SVC, --dashboard on|off, or -- followed by bench arguments)" >&2; exit 2 ;;
  esac
  shift
done

export Silo__GatewayPort="${Silo__GatewayPort:-30100}"
export Silo__SiloPort="${Silo__SiloPort:-11200}"
# The bench calls the gateway only; its silo's HTTP API takes a free port, away from ./run.sh's 8080.
export Http__Urls="${Http__Urls:-http://127.0.0.1:0}"
# The dashboard adds a profiling filter to every grain call and exports counters every second: off unless asked for.
if [ "$dashboard" = on ]; then export Dashboard__Enabled=true; else export Dashboard__Enabled=false; fi
# The bench control grain (counters, forced GCs, slow-subscriber drills) answers only on a silo that allows it.
export Benchmarks__Enabled=true
# Shortened for the bench only (appsettings.json: 2 min), so that "memory after idle deactivation" can be measured
# within the run: the stream agents drop a quiet stream's state after this period (the bench idles 70 s, past the in-memory stream cache's one-minute window too).
export OrderStreams__PullingAgent__StreamInactivityPeriod="${OrderStreams__PullingAgent__StreamInactivityPeriod:-00:00:10}"
# Azure with --memory-orders only, for the same reason: Orleans keeps each removed reminder (~480 B; a reservation
# key's check-back) in the silo until it re-reads its reminder table (5 min by default), so the memory phase would
# measure when that re-read last ran. Other runs keep Orleans' period: each re-read is requests to the reminder table
# that would count in the storage requests per event, and the embedded bench's recorded memory figures had it too.
# The brokers' workload only: its trivial-stream baseline (480,000 deliveries, published faster than delivered) has no
# relay to bring back an event the in-memory stream's cache let go, and its cache keeps a minute (default: 1 min),
# so on a slow machine the baseline would wait for purged events until its drain timeout. Memory is not measured there.
if [ "$profile" = embedded ] && [[ " ${bench_args[*]} " == *" --workload brokers "* || " ${bench_args[*]} " == *" --workload=brokers "* ]]; then
  export OrderStreams__CacheEviction__DataMaxAgeInCache="${OrderStreams__CacheEviction__DataMaxAgeInCache:-00:10:00}"
  export OrderStreams__CacheEviction__DataMinTimeInCache="${OrderStreams__CacheEviction__DataMinTimeInCache:-00:10:00}"
fi
if [ "$profile" = azure ] && [[ " ${bench_args[*]} " == *" --memory-orders "* ]]; then
  export Reminders__RefreshReminderListPeriod="${Reminders__RefreshReminderListPeriod:-00:00:10}"
fi

mkdir -p artifacts
silo_log="artifacts/bench-silo.log"
silo_pid=""
azurite_started=0
export AZURITE_INSTANCE=bench
export AZURITE_PORT_BASE="${AZURITE_PORT_BASE:-10120}"
cleanup() {
  if [ -n "$silo_pid" ] && kill -0 "$silo_pid" 2>/dev/null; then
    kill -TERM "$silo_pid" 2>/dev/null || true
    for _ in $(seq 1 40); do kill -0 "$silo_pid" 2>/dev/null || break; sleep 0.25; done
    kill -KILL "$silo_pid" 2>/dev/null || true
    wait "$silo_pid" 2>/dev/null || true
  fi
  if [ "$azurite_started" = 1 ]; then
    scripts/azurite.sh stop || true
    rm -rf .azurite/bench
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

client_args=()
command=(bench)
if [ "${bench_args[0]:-}" = flashsale ]; then
  command=(flashsale bench)
  bench_args=("${bench_args[@]:1}")
fi
if [ "$profile" = azure ]; then
  if scripts/azurite.sh status | grep -q running; then
    echo "error: the bench's Azurite (.azurite/bench) is already running; stop it with AZURITE_INSTANCE=bench scripts/azurite.sh stop" >&2
    exit 1
  fi
  rm -rf .azurite/bench
  azurite_started=1
  echo "== starting a fresh Azurite (ports $AZURITE_PORT_BASE-$((AZURITE_PORT_BASE + 2)), data in .azurite/bench, deleted at the end${azurite_in_memory:+; in memory: $azurite_in_memory})"
  connection="$(scripts/azurite.sh start ${azurite_in_memory:+--in-memory "$azurite_in_memory"})"
  run_id="bench-$(date +%H%M%S)"
  export Silo__Profile=Azure Silo__AzureStorage="$connection" Silo__ClusterId="$run_id" Silo__ServiceId="$run_id"
  client_args=(--cluster-id "$run_id")
  [ "${command[0]}" = flashsale ] || bench_args=(--profile azure --azure-storage "$connection"
    --emulator-pid "table=$(cat .azurite/bench/pids/table.pid)" --emulator-pid "queue=$(cat .azurite/bench/pids/queue.pid)"
    "${bench_args[@]}")
else
  export Silo__Profile=Embedded
fi

echo "== starting the $profile silo (gateway 127.0.0.1:$Silo__GatewayPort, silo port $Silo__SiloPort, log $silo_log)"
(cd Silo && exec dotnet bin/Release/net10.0/OrderFlow.Silo.dll) >"$silo_log" 2>&1 &
silo_pid=$!
for _ in $(seq 1 120); do
  if grep -q "Application started" "$silo_log" 2>/dev/null; then break; fi
  if ! kill -0 "$silo_pid" 2>/dev/null; then echo "error: the silo exited during start:" >&2; tail -n 30 "$silo_log" >&2; exit 1; fi
  sleep 0.5
done

echo "== bench (dashboard $dashboard, load average $(cut -d' ' -f1-3 /proc/loadavg))"
dotnet Client/bin/Release/net10.0/OrderFlow.Client.dll --gateway "127.0.0.1:$Silo__GatewayPort" "${client_args[@]}" "${command[@]}" "${bench_args[@]}"
