#!/usr/bin/env bash
# Runs the system: builds, starts the silo(s), drives the demo through the gateway(s), prints the summary, then keeps
# serving until Ctrl+C.
#   ./run.sh                      embedded profile: one in-memory silo, gateway 127.0.0.1:30000, HTTP API 127.0.0.1:8080
#   ./run.sh --profile azure      durable profile: Azurite (scripts/azurite.sh, data in .azurite/dev) and two silos
#                                 (silo ports 11111/11112, gateways 30010/30011, HTTP APIs 8080/8081); the demo goes
#                                 through both gateways
#   --once                        demo, then stop everything this script started; exit 0 only if lost=0,
#                                 out_of_order_applied=0 and the audit found discrepancies=0
#   extra arguments after -- go to the demo, e.g. ./run.sh --once -- --orders 200
#                                 (the azure profile runs 200 orders unless told otherwise: the emulator is one
#                                 Node.js thread, ~800 table writes/s)
#   Silo logs go to a new folder under $TMPDIR (printed at the start); --once deletes it when the demo passed.
#   Stop a serving run with Ctrl+C, or SIGTERM from a script (a background job of a script ignores SIGINT).
set -euo pipefail
cd "$(dirname "$0")"

once=0
profile=embedded
demo_args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --once) once=1 ;;
    --profile)
      [ $# -ge 2 ] || { echo "error: --profile needs a value: embedded or azure" >&2; exit 2; }
      profile="$2"
      shift
      ;;
    --) shift; demo_args=("$@"); break ;;
    *) echo "error: unknown argument '$1' (use --once, --profile embedded|azure, or -- followed by demo arguments)" >&2; exit 2 ;;
  esac
  shift
done

case "$profile" in
  embedded | Embedded) profile=embedded ;;
  azure | Azure) profile=azure ;;
  *) echo "error: --profile must be embedded or azure, was '$profile'" >&2; exit 2 ;;
esac

log_dir="$(mktemp -d)"
silo_pids=()
http_urls=()
azurite_started=0
export AZURITE_INSTANCE="${AZURITE_INSTANCE:-dev}"
cleanup() {
  for pid in "${silo_pids[@]}"; do
    if kill -0 "$pid" 2>/dev/null; then
      kill -TERM "$pid" 2>/dev/null || true
    fi
  done
  for pid in "${silo_pids[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  if [ "$azurite_started" = 1 ]; then
    scripts/azurite.sh stop || true
  fi
  rmdir "$log_dir" 2>/dev/null || true # only if nothing was logged
}
trap cleanup EXIT
trap 'exit 130' INT TERM

port_taken() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# start_silo NAME SILO_PORT GATEWAY_PORT HTTP_PORT [ENV=VALUE ...]
start_silo() {
  local name="$1" silo_port="$2" gateway_port="$3" http_port="$4"
  shift 4
  for port in "$silo_port" "$gateway_port" "$http_port"; do
    if port_taken "$port"; then
      echo "error: something already listens on 127.0.0.1:$port (another silo?); stop it first" >&2
      exit 1
    fi
  done

  echo "== starting $name (silo 127.0.0.1:$silo_port, gateway 127.0.0.1:$gateway_port, HTTP 127.0.0.1:$http_port, log $log_dir/$name.log)"
  (cd Silo && exec env "$@" Silo__SiloPort="$silo_port" Silo__GatewayPort="$gateway_port" Http__Urls="http://127.0.0.1:$http_port" \
    dotnet bin/Release/net10.0/OrderFlow.Silo.dll) >"$log_dir/$name.log" 2>&1 &
  silo_pids+=($!)
  http_urls+=("http://127.0.0.1:$http_port")
}

print_urls() {
  for url in "${http_urls[@]}"; do
    echo "== HTTP API $url  (OpenAPI $url/openapi/v1.json, UI $url/scalar, health $url/health/ready, metrics $url/metrics)"
    echo "==   live page $url/  dashboard $url/dashboard (Dashboard__Enabled=false turns it off)"
  done
}

wait_started() {
  local name="$1" pid="$2"
  for _ in $(seq 1 240); do
    if grep -q "Application started" "$log_dir/$name.log" 2>/dev/null; then return; fi
    if ! kill -0 "$pid" 2>/dev/null; then echo "error: $name exited during start:" >&2; tail -n 30 "$log_dir/$name.log" >&2; exit 1; fi
    sleep 0.5
  done
  echo "error: $name did not start within 120 s (log: $log_dir/$name.log)" >&2
  exit 1
}

echo "== building"
dotnet build Orleans.sln -c Release --nologo -v quiet -clp:ErrorsOnly

client=(dotnet Client/bin/Release/net10.0/OrderFlow.Client.dll)
if [ "$profile" = embedded ]; then
  gateway_port="${Silo__GatewayPort:-30000}"
  start_silo silo "${Silo__SiloPort:-11111}" "$gateway_port" "${HTTP_PORT:-8080}" Silo__Profile=Embedded
  wait_started silo "${silo_pids[0]}"
  client+=(--gateway "127.0.0.1:$gateway_port")
  gateways="127.0.0.1:$gateway_port"
else
  if scripts/azurite.sh status | grep -q running; then
    echo "== Azurite ($AZURITE_INSTANCE) is already running; it is left running at the end"
  else
    azurite_started=1
  fi
  echo "== starting Azurite (instance $AZURITE_INSTANCE, data in .azurite/$AZURITE_INSTANCE/data)"
  connection="$(scripts/azurite.sh start)"
  cluster_id="${Silo__ClusterId:-orderflow}"
  azure_env=(Silo__Profile=Azure "Silo__AzureStorage=$connection" "Silo__ClusterId=$cluster_id" "Silo__ServiceId=${Silo__ServiceId:-orderflow}")
  # One after the other: two silos joining at once contend on the membership table, and on two cores a slow join
  # was seen to leave a grain-directory registration hanging for the demo's first minute.
  start_silo silo1 11111 30010 8080 "${azure_env[@]}"
  wait_started silo1 "${silo_pids[0]}"
  start_silo silo2 11112 30011 8081 "${azure_env[@]}"
  wait_started silo2 "${silo_pids[1]}"
  client+=(--gateway 127.0.0.1:30010 --gateway 127.0.0.1:30011 --cluster-id "$cluster_id")
  gateways="127.0.0.1:30010 and 127.0.0.1:30011"
  if [ ${#demo_args[@]} -eq 0 ]; then
    demo_args=(--orders 200 --concurrency 32)
  fi
fi

print_urls
echo "== demo"
set +e
"${client[@]}" demo "${demo_args[@]}" | tee "$log_dir/demo.txt"
demo_status=${PIPESTATUS[0]}
set -e
# Two RESULT lines: the demo's own, then the audit's (RESULT checked=N discrepancies=D).
result=$(grep '^RESULT orders=' "$log_dir/demo.txt" | tail -n 1 || true)
audit=$(grep '^RESULT checked=' "$log_dir/demo.txt" | tail -n 1 || true)

if [ "$once" = 1 ]; then
  if [ "$demo_status" -eq 0 ] && [[ "$result" == *" lost=0 "* ]] && [[ "$result" == *" out_of_order_applied=0 "* ]] && [[ "$audit" == *" discrepancies=0" ]]; then
    rm -rf "$log_dir"
    exit 0
  fi
  echo "error: the demo did not end with lost=0, out_of_order_applied=0 and an audit with discrepancies=0 (silo logs: $log_dir)" >&2
  exit 1
fi

echo "== serving on $gateways; try: ${client[*]} order show <order id>"
print_urls
echo "== e.g. curl -s ${http_urls[0]}/orders/<order id>/progress"
echo "== Ctrl+C to stop"
wait "${silo_pids[@]}"
