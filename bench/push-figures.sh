#!/usr/bin/env bash
# Eager push: time until an update reaches all nodes and push packets per
# update, for cluster sizes x loss x fanout (1400-byte messages, 100 ms
# interval, 1 ms a hop, 20 trials each; no crashes).
# Usage: bench/push-figures.sh [BUILD_DIR] [SIZES...]
set -euo pipefail
build=${1:-build}
shift || true
sizes=${*:-64 256 1024}
for n in $sizes; do
    for loss in 0 0.1; do
        for fanout in 0 2 3 4; do
            "$build/sb-sim" --nodes "$n" --loss "$loss" --fanout "$fanout" \
                --max-message-size 1400 --trials 20 --no-crash --quiet
        done
    done
done
