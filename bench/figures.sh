#!/usr/bin/env bash
# Runs the simulator over the matrix the README reports: cluster sizes,
# loss, message sizes; 20 trials each, interval 100 ms. Prints everything;
# takes about an hour on one core (the 1024-node runs dominate).
# FANOUT (default 0: pure anti-entropy) sets the eager-push fanout.
# Usage: [FANOUT=F] bench/figures.sh [BUILD_DIR] [SIZES...]
set -euo pipefail
build=${1:-build}
shift || true
sizes=${*:-16 64 256 1024}
for n in $sizes; do
    for loss in 0 0.1; do
        for msg in 512 1400; do
            "$build/sb-sim" --nodes "$n" --loss "$loss" \
                --max-message-size "$msg" --fanout "${FANOUT:-0}" \
                --trials 20 --quiet
        done
    done
done
