#!/usr/bin/env bash
# Restores, builds and runs every test. CI (.ci/run) calls this script.
# The durable tests (Tests/Durable) need Azurite: this script installs it if absent (scripts/azurite.sh, npm), starts a
# fresh one for this run on its own ports (10110-10112, away from ./run.sh's 10100 and a developer's 10000), points
# the tests at it (ORDERFLOW_AZURITE) and stops it afterwards, whatever the outcome.
# The live page's browser test (Tests/Live) needs headless Chromium: Debian's chromium package, installed here with
# apt-get when absent (CI machines run as root). If that fails the run goes on, and that test fails saying why.
set -euo pipefail
cd "$(dirname "$0")"

if [ -z "${ORDERFLOW_CHROMIUM:-}" ] && ! command -v chromium >/dev/null 2>&1; then
  echo "== installing chromium for the browser test (apt-get)"
  if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }; then
    echo "warning: could not install chromium; the live page's browser test will fail" >&2
  fi
fi

dotnet build Orleans.sln -c Release --nologo -v quiet -clp:ErrorsOnly

export AZURITE_INSTANCE="test-$$"
export AZURITE_PORT_BASE="${AZURITE_PORT_BASE:-10110}"
cleanup() {
  scripts/azurite.sh stop || true
  rm -rf ".azurite/$AZURITE_INSTANCE"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Tables and blobs in memory (fast, gone with the process); the queue service keeps its data on disk, because the
# outage test stops and restarts it and real Azure keeps queued messages across an outage.
ORDERFLOW_AZURITE="$(scripts/azurite.sh start --in-memory blob,table)"
export ORDERFLOW_AZURITE
export ORDERFLOW_AZURITE_SCRIPT="$PWD/scripts/azurite.sh"

# The detailed log is long and a CI page shows its tail: the failures are repeated there, each with its message.
log="$(mktemp)"
trap 'cleanup; rm -f "$log"' EXIT
status=0
dotnet test Tests/OrderFlow.Tests.csproj -c Release --no-build --nologo --logger "console;verbosity=detailed" "$@" \
  2>&1 | tee "$log" || status=$?
if [ "$status" -ne 0 ]; then
  echo "== failed tests (repeated from above)"
  awk '/^  Failed OrderFlow\./ { show = 1; lines = 0 }
       /^  Passed OrderFlow\./ { show = 0 }
       show && lines < 40 { print; lines++ }' "$log"
fi
exit "$status"
