#!/usr/bin/env bash
# Restores, builds and runs every test. CI (.ci/run) calls this script.
set -euo pipefail
cd "$(dirname "$0")"
dotnet build Orleans.sln -c Release --nologo -v quiet -clp:ErrorsOnly
dotnet test Tests/OrderFlow.Tests.csproj -c Release --no-build --nologo --logger "console;verbosity=normal" "$@"
