#!/usr/bin/env bash
# What telemetry and the Orleans Dashboard cost the pipeline (issue 13): the embedded bench under four settings,
# A B C D then D C B A, so a drift in the machine's load hits every setting alike, and a table of the medians.
#   scripts/bench-onoff.sh                 2 rounds, 2,000 orders per pipeline phase (about 15 minutes)
#   ROUNDS=3 ORDERS=4000 scripts/bench-onoff.sh
# Settings: off (Telemetry:Enabled=false: no OpenTelemetry, no activity propagation), metrics (the default without a
# collector), dashboard (metrics + Dashboard:Enabled, as ./run.sh ships), tracing (metrics + every span built, no exporter).
# Run it on an otherwise idle machine (load average below 1): the figures are ratios of runs minutes apart.
# Output: one line per run, then the table; the JSON of every run in artifacts/onoff/.
set -euo pipefail
cd "$(dirname "$0")/.."

rounds="${ROUNDS:-2}"
orders="${ORDERS:-2000}"
out=artifacts/onoff
mkdir -p "$out"
rm -f "$out"/*.json

settings=(off metrics dashboard tracing)
run() {
  local setting="$1" round="$2"
  local env=(Telemetry__Enabled=true Telemetry__Tracing=false) dashboard=off
  case "$setting" in
    off) env=(Telemetry__Enabled=false) ;;
    dashboard) dashboard=on ;;
    tracing) env=(Telemetry__Enabled=true Telemetry__Tracing=true) ;;
  esac
  echo "== round $round: $setting (load average $(cut -d' ' -f1-3 /proc/loadavg))"
  env "${env[@]}" ./bench.sh --dashboard "$dashboard" -- --orders "$orders" --scale-orders 0 --idle-seconds 0 \
    --latency-seconds 10 --baseline-seconds 3 --out "$out/tmp" | grep '^RESULT' || { echo "error: the $setting run failed" >&2; exit 1; }
  mv "$(ls -t "$out"/tmp/bench-*.json | grep -v latest | head -1)" "$out/$setting-$round.json"
}

for round in $(seq 1 "$rounds"); do
  if [ $((round % 2)) = 1 ]; then order=("${settings[@]}"); else order=(tracing dashboard metrics off); fi
  for setting in "${order[@]}"; do run "$setting" "$round"; done
done
rm -rf "$out/tmp"

# Medians per setting, and each against "off" (node is here for Azurite anyway).
node - "$out" <<'EOF'
const fs = require('fs'), path = require('path');
const dir = process.argv[2];
const runs = {};
for (const file of fs.readdirSync(dir).filter(f => f.endsWith('.json'))) {
  const setting = file.replace(/-\d+\.json$/, '');
  (runs[setting] ??= []).push(JSON.parse(fs.readFileSync(path.join(dir, file), 'utf8')));
}
const median = xs => { const s = [...xs].sort((a, b) => a - b); const m = s.length >> 1; return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2; };
const figures = r => ({
  deliveries: r.Pipeline.DeliveriesPerSecond, cpu: r.Pipeline.CpuMicrosPerDelivery, alloc: r.Pipeline.AllocatedBytesPerDelivery,
  p99: r.Latency.FromIntended.P99, baseline: r.StreamBaseline.DeliveriesPerSecond, lost: r.LostEvents,
});
const rows = {};
for (const [setting, list] of Object.entries(runs)) {
  const f = list.map(figures);
  rows[setting] = Object.fromEntries(Object.keys(f[0]).map(k => [k, k === 'lost' ? Math.max(...f.map(x => x[k])) : median(f.map(x => x[k]))]));
  rows[setting].n = list.length;
}
const off = rows.off;
const pct = (v, base) => base ? `${v >= base ? '+' : ''}${((v / base - 1) * 100).toFixed(0)} %` : 'n/a';
console.log('| setting | runs | pipeline deliveries/s | vs off | CPU µs / delivery | vs off | allocated B / delivery | vs off | p99 at 50 % (ms) | stream baseline deliveries/s | lost |');
console.log('|---|---|---|---|---|---|---|---|---|---|---|');
for (const s of ['off', 'metrics', 'dashboard', 'tracing'].filter(s => rows[s])) {
  const r = rows[s];
  console.log(`| ${s} | ${r.n} | ${r.deliveries.toFixed(0)} | ${pct(r.deliveries, off?.deliveries)} | ${r.cpu.toFixed(0)} | ${pct(r.cpu, off?.cpu)} | ` +
    `${r.alloc.toFixed(0)} | ${pct(r.alloc, off?.alloc)} | ${r.p99.toFixed(1)} | ${r.baseline.toFixed(0)} | ${r.lost} |`);
}
EOF
