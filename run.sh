#!/usr/bin/env bash
# Runs the system on the embedded default: builds, starts one silo, drives the demo through its gateway,
# prints the summary, then keeps the silo serving until Ctrl+C.
#   ./run.sh          demo, then keep serving
#   ./run.sh --once   demo, then stop; exit 0 only if lost=0 and out_of_order_applied=0
#   extra arguments after -- go to the demo, e.g. ./run.sh --once -- --orders 200
set -euo pipefail
cd "$(dirname "$0")"

once=0
demo_args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --once) once=1 ;;
    --) shift; demo_args=("$@"); break ;;
    *) echo "error: unknown argument '$1' (use --once, or -- followed by demo arguments)" >&2; exit 2 ;;
  esac
  shift
done

gateway_port="${Silo__GatewayPort:-30000}"
log_dir="$(mktemp -d)"
silo_pid=""
cleanup() {
  if [ -n "$silo_pid" ] && kill -0 "$silo_pid" 2>/dev/null; then
    kill -TERM "$silo_pid" 2>/dev/null || true
    wait "$silo_pid" 2>/dev/null || true
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "== building"
dotnet build Orleans.sln -c Release --nologo -v quiet -clp:ErrorsOnly

if (exec 3<>"/dev/tcp/127.0.0.1/$gateway_port") 2>/dev/null; then
  echo "error: something already listens on 127.0.0.1:$gateway_port (another silo?); stop it or set Silo__GatewayPort" >&2
  exit 1
fi

echo "== starting the embedded silo (gateway 127.0.0.1:$gateway_port, log $log_dir/silo.log)"
(cd Silo && exec dotnet bin/Release/net10.0/OrderFlow.Silo.dll) >"$log_dir/silo.log" 2>&1 &
silo_pid=$!
for _ in $(seq 1 120); do
  if grep -q "Application started" "$log_dir/silo.log" 2>/dev/null; then break; fi
  if ! kill -0 "$silo_pid" 2>/dev/null; then echo "error: the silo exited during start:" >&2; tail -n 30 "$log_dir/silo.log" >&2; exit 1; fi
  sleep 0.5
done

echo "== demo"
client=(dotnet Client/bin/Release/net10.0/OrderFlow.Client.dll --gateway "127.0.0.1:$gateway_port")
set +e
"${client[@]}" demo "${demo_args[@]}" | tee "$log_dir/demo.txt"
demo_status=${PIPESTATUS[0]}
set -e
result=$(grep '^RESULT ' "$log_dir/demo.txt" | tail -n 1 || true)

if [ "$once" = 1 ]; then
  if [ "$demo_status" -eq 0 ] && [[ "$result" == *" lost=0 "* ]] && [[ "$result" == *" out_of_order_applied=0 "* ]]; then
    exit 0
  fi
  echo "error: the demo did not end with lost=0 and out_of_order_applied=0 (silo log: $log_dir/silo.log)" >&2
  exit 1
fi

echo "== the silo keeps serving on 127.0.0.1:$gateway_port; try: dotnet Client/bin/Release/net10.0/OrderFlow.Client.dll order show <order id>"
echo "== Ctrl+C to stop"
wait "$silo_pid"
