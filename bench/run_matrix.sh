#!/usr/bin/env bash
# The figures in docs/performance.md: each channel layer with 100 conversations at the
# realistic rate (one message every five seconds from each side) and at saturation, then
# 500 conversations at the realistic rate. Needs PostgreSQL and Redis on 127.0.0.1. Prints to
# the terminal and to bench/results/. At 500 conversations each helper holds five (as on a
# real floor), which keeps the set-up to about a minute and a quarter.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p bench/results
out="bench/results/matrix-$(date -u +%Y%m%dT%H%M%SZ).txt"
run() {
  echo "### bench/chat_load.py $*" | tee -a "$out"
  .venv/bin/python bench/chat_load.py "$@" 2>/dev/null | tee -a "$out"
}
layers=${LAYERS:-memory core pubsub}
for layer in $layers; do
  run --layer "$layer" --conversations 100 --rate 0.2 --duration 30
  run --layer "$layer" --conversations 100 --saturate --start-total 20 --step 2 --max-total 1280 --duration 10
done
for layer in ${LAYERS_500:-$layers}; do
  run --layer "$layer" --conversations 500 --rate 0.2 --duration 30 --per-helper 5
done
echo "written to $out"
