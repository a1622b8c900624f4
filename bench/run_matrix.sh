#!/usr/bin/env bash
# The figures in docs/performance.md: each channel layer at 100 and 500 conversations, at the
# realistic rate (one message every five seconds from each side) and at saturation.
# Needs PostgreSQL and Redis on 127.0.0.1. Prints to the terminal and to bench/results/.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p bench/results
out="bench/results/matrix-$(date -u +%Y%m%dT%H%M%SZ).txt"
for layer in memory core pubsub; do
  for conversations in 100 500; do
    for mode in realistic saturation; do
      if [ "$mode" = realistic ]; then
        args=(--rate 0.2 --duration 30)
      else
        args=(--saturate --start-total 100 --step 1.5 --max-total 3000 --duration 10)
      fi
      echo "### $layer $conversations $mode: bench/chat_load.py --layer $layer --conversations $conversations ${args[*]}" | tee -a "$out"
      .venv/bin/python bench/chat_load.py --layer "$layer" --conversations "$conversations" "${args[@]}" 2>/dev/null | tee -a "$out"
    done
  done
done
echo "written to $out"
