#!/usr/bin/env bash
# The figures in docs/performance.md: each channel layer with 100 and with 500 conversations,
# at the realistic rate (one message every five seconds from each side) and at saturation
# (offered totals rising by a quarter a step until p99 passes 100 ms or anything is lost).
# Needs PostgreSQL and Redis on 127.0.0.1. Prints to the terminal and to bench/results/. At
# 500 conversations each helper holds five (as on a real floor), which keeps the set-up to
# about a minute.
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
  run --layer "$layer" --conversations 100 --saturate --start-total 100 --step 1.25 --max-total 1500 --duration 10
done
for layer in ${LAYERS_500:-$layers}; do
  run --layer "$layer" --conversations 500 --rate 0.2 --duration 30 --per-helper 5
  run --layer "$layer" --conversations 500 --per-helper 5 --saturate --start-total 200 --step 1.25 --max-total 1500 --duration 10
done
echo "written to $out"
