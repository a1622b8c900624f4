#!/usr/bin/env bash
# The figures in docs/performance.md: each channel layer at 100 and 500 conversations at the
# realistic rate (one message every five seconds from each side), and at saturation for 100
# conversations. Needs PostgreSQL and Redis on 127.0.0.1. Prints to the terminal and to
# bench/results/. About 25 minutes on the project's 2-core machines.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p bench/results
out="bench/results/matrix-$(date -u +%Y%m%dT%H%M%SZ).txt"
run() {
  echo "### bench/chat_load.py $*" | tee -a "$out"
  .venv/bin/python bench/chat_load.py "$@" 2>/dev/null | tee -a "$out"
}
for layer in memory core pubsub; do
  for conversations in 100 500; do
    run --layer "$layer" --conversations "$conversations" --rate 0.2 --duration 30
  done
  run --layer "$layer" --conversations 100 --saturate --start-total 20 --step 2 --max-total 1280 --duration 10
done
echo "written to $out"
