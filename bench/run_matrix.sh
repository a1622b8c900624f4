#!/usr/bin/env bash
# The figures in docs/performance.md: each channel layer with 100 and with 500 conversations,
# at the realistic rate (one message every five seconds from each side) and at saturation
# (offered totals rising by a quarter a step until p99 passes 100 ms or anything is lost).
# Needs PostgreSQL and Redis on 127.0.0.1. Prints to the terminal and to bench/results/. At
# 500 conversations each helper holds five (as on a real floor), which keeps the set-up to
# about a minute.
#
# At the realistic rate the chat and the relay take turns, three rounds each, pooled: at 100
# conversations 40 s a round gives 2 400 timed messages a kind (one 30 s run gave 600, whose
# p99 was its sixth-slowest message); at 500, 20 s a round gives 6 000.
#
# LAYERS (memory core pubsub), LAYERS_500 (the same) and ROWS (realistic saturation) choose
# a part, e.g. `LAYERS=core ROWS=saturation bench/run_matrix.sh`.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p bench/results
out="bench/results/matrix-$(date -u +%Y%m%dT%H%M%SZ).txt"
run() {
  echo "### bench/chat_load.py $*" | tee -a "$out"
  .venv/bin/python bench/chat_load.py "$@" 2>/dev/null | tee -a "$out"
}
layers=${LAYERS:-memory core pubsub}
rows=" ${ROWS:-realistic saturation} "
wanted() { [[ $rows == *" $1 "* ]]; }
for layer in $layers; do
  if wanted realistic; then
    run --layer "$layer" --conversations 100 --rate 0.2 --duration 40 --rounds 3
  fi
  if wanted saturation; then
    run --layer "$layer" --conversations 100 --saturate --start-total 100 --step 1.25 --max-total 1500 --duration 10
  fi
done
for layer in ${LAYERS_500:-$layers}; do
  if wanted realistic; then
    run --layer "$layer" --conversations 500 --rate 0.2 --duration 20 --rounds 3 --per-helper 5
  fi
  if wanted saturation; then
    run --layer "$layer" --conversations 500 --per-helper 5 --saturate --start-total 200 --step 1.25 --max-total 1500 \
      --duration 10
  fi
done
echo "written to $out"
