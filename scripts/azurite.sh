#!/usr/bin/env bash
# Azurite (the Azure Storage emulator) as a local component of the durable profile.
#
#   scripts/azurite.sh install                 npm-install azurite (version pinned in scripts/azurite/package*.json)
#                                              into .tools/azurite, once
#   scripts/azurite.sh start [--in-memory SVC] install if needed, start blob, queue and table on loopback and print
#                                              the connection string; SVC is a comma list of services to keep in
#                                              memory only (e.g. blob,table), the others keep their data on disk
#   scripts/azurite.sh stop                    stop the services this script started (PID files), nothing else
#   scripts/azurite.sh stop-service SVC        stop one service (blob, queue or table): a storage outage on purpose
#   scripts/azurite.sh start-service SVC       start it again, with the same data folder and port
#   scripts/azurite.sh status | connection-string
#
# Environment:
#   AZURITE_INSTANCE   name of this Azurite (default "dev"); its PIDs, logs and data live in .azurite/<instance>/
#   AZURITE_PORT_BASE  blob port; queue is +1, table +2 (default 10100, away from a developer's own Azurite on 10000)
#
# Each service runs as its own `node` process (not npx, which adds a wrapper), so its PID is the real one and one
# service can be stopped alone. Telemetry is off: this machine reaches no service but the package registries.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
tools="$root/.tools/azurite"
instance="${AZURITE_INSTANCE:-dev}"
state="$root/.azurite/$instance"
port_base="${AZURITE_PORT_BASE:-10100}"
services=(blob queue table)

die() { echo "azurite: $*" >&2; exit 1; }

[[ "$instance" =~ ^[a-z0-9-]+$ ]] || die "AZURITE_INSTANCE must be lowercase letters, digits and '-', was '$instance'"
[[ "$port_base" =~ ^[0-9]+$ ]] && [ "$port_base" -ge 1024 ] && [ "$port_base" -le 65530 ] ||
  die "AZURITE_PORT_BASE must be a port between 1024 and 65530, was '$port_base'"

port_of() {
  case "$1" in
    blob) echo "$port_base" ;;
    queue) echo $((port_base + 1)) ;;
    table) echo $((port_base + 2)) ;;
    *) die "unknown service '$1' (blob, queue or table)" ;;
  esac
}

connection_string() {
  # The emulator's well-known development account (public, documented by Microsoft; not a secret).
  local account=devstoreaccount1
  local key="Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
  echo "DefaultEndpointsProtocol=http;AccountName=$account;AccountKey=$key;BlobEndpoint=http://127.0.0.1:$(port_of blob)/$account;QueueEndpoint=http://127.0.0.1:$(port_of queue)/$account;TableEndpoint=http://127.0.0.1:$(port_of table)/$account;"
}

installed() {
  [ -f "$tools/node_modules/azurite/package.json" ] &&
    cmp -s "$root/scripts/azurite/package-lock.json" "$tools/package-lock.json"
}

install() {
  if installed; then
    return
  fi

  command -v node >/dev/null || die "node is not installed (Azurite needs Node.js 20 or later)"
  command -v npm >/dev/null || die "npm is not installed"
  echo "azurite: installing into .tools/azurite (once; about a minute)" >&2
  rm -rf "$tools"
  mkdir -p "$tools"
  cp "$root/scripts/azurite/package.json" "$root/scripts/azurite/package-lock.json" "$tools/"
  # npm ci installs exactly the committed lock (its integrity hashes are checked); the lock names no registry host.
  # Azurite 3.37 declares node >= 22 but runs on the Node 20 of this machine and CI, hence no engine-strict.
  (cd "$tools" && npm ci --no-audit --no-fund --loglevel=error) >&2 ||
    { rm -rf "$tools"; die "npm ci failed"; }
}

pid_file() { echo "$state/pids/$1.pid"; }

# The PID in the file is ours only if that process is still an Azurite started from this repository's .tools.
running_pid() {
  local file pid
  file="$(pid_file "$1")"
  [ -f "$file" ] || return 1
  pid="$(cat "$file")"
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  [ -r "/proc/$pid/cmdline" ] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q "$tools/node_modules/azurite/dist/src/$1/main.js" || return 1
  echo "$pid"
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

start_service() {
  local svc="$1" port pid mode
  port="$(port_of "$svc")"
  if pid="$(running_pid "$svc")"; then
    echo "azurite: $svc already running (pid $pid, port $port)" >&2
    return
  fi

  if port_open "$port"; then
    die "127.0.0.1:$port ($svc) is taken by a process this script did not start; stop it or set AZURITE_PORT_BASE"
  fi

  mkdir -p "$state/pids" "$state/logs" "$state/data/$svc"
  mode=(--location "$state/data/$svc")
  if [ -f "$state/in-memory" ] && grep -qx "$svc" "$state/in-memory"; then
    mode=(--inMemoryPersistence)
  fi

  # setsid: the service does not share the caller's process group, so Ctrl+C in a terminal running the demo
  # leaves it to the EXIT trap that calls `stop`, in order.
  setsid node "$tools/node_modules/azurite/dist/src/$svc/main.js" \
    --"${svc}Host" 127.0.0.1 --"${svc}Port" "$port" \
    --silent --disableTelemetry --skipApiVersionCheck --loose "${mode[@]}" \
    </dev/null >>"$state/logs/$svc.log" 2>&1 &
  pid=$!
  echo "$pid" >"$(pid_file "$svc")"
  for _ in $(seq 1 150); do
    if port_open "$port"; then
      return
    fi

    kill -0 "$pid" 2>/dev/null || { tail -n 20 "$state/logs/$svc.log" >&2; die "$svc exited during start (log: $state/logs/$svc.log)"; }
    sleep 0.2
  done

  die "$svc did not listen on 127.0.0.1:$port within 30 s (log: $state/logs/$svc.log)"
}

stop_service() {
  local svc="$1" pid
  if ! pid="$(running_pid "$svc")"; then
    rm -f "$(pid_file "$svc")"
    return
  fi

  # SIGTERM: Azurite closes its stores cleanly, as a storage service that goes away does not lose what it acknowledged.
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 100); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done

  if kill -0 "$pid" 2>/dev/null; then
    kill -KILL "$pid" 2>/dev/null || true
  fi

  rm -f "$(pid_file "$svc")"
}

case "${1:-}" in
  install)
    install
    ;;
  start)
    shift
    in_memory=""
    while [ $# -gt 0 ]; do
      case "$1" in
        --in-memory) in_memory="${2:-}"; shift ;;
        *) die "unknown start option '$1' (use --in-memory blob,queue,table)" ;;
      esac
      shift
    done

    install
    mkdir -p "$state"
    tr ',' '\n' <<<"$in_memory" | grep -v '^$' >"$state/in-memory" || true
    for svc in "${services[@]}"; do
      start_service "$svc"
    done
    connection_string
    ;;
  stop)
    for svc in "${services[@]}"; do
      stop_service "$svc"
    done
    ;;
  start-service)
    [ -n "${2:-}" ] || die "start-service needs blob, queue or table"
    port_of "$2" >/dev/null
    installed || die "not installed; run: scripts/azurite.sh start"
    start_service "$2"
    ;;
  stop-service)
    [ -n "${2:-}" ] || die "stop-service needs blob, queue or table"
    port_of "$2" >/dev/null
    stop_service "$2"
    ;;
  status)
    for svc in "${services[@]}"; do
      if pid="$(running_pid "$svc")"; then
        echo "$svc: running, pid $pid, 127.0.0.1:$(port_of "$svc")"
      else
        echo "$svc: stopped"
      fi
    done
    ;;
  connection-string)
    connection_string
    ;;
  *)
    sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
    ;;
esac
