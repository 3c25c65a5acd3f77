#!/usr/bin/env bash
# Rounds per interval and digest share: time until a crash is seen by all
# and steady-state traffic, 64 nodes, 512-byte messages, 100 ms interval,
# 20 trials, 0% and 10% loss (docs/protocol.md, section 5). Builds the
# simulator once per variant ROUNDS:SHARE, with EXCHANGES and DIGEST_SHARE
# overridden.
# Usage: bench/exchange-figures.sh [NODES] [VARIANTS...]
set -euo pipefail
cd "$(dirname "$0")/.."
nodes=${1:-64}
shift || true
variants=${*:-1:100 2:40 2:45 2:50 3:30}
for variant in $variants; do
    rounds=${variant%:*} share=${variant#*:}
    dir=build-exchanges-$rounds-$share
    cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
          -DSB_TESTS=OFF \
          -DCMAKE_C_FLAGS="-DEXCHANGES=$rounds -DDIGEST_SHARE=$share" \
          >/dev/null
    ninja -C "$dir" sb-sim >/dev/null
    for loss in 0 0.1; do
        echo "== $rounds rounds per interval, digest share $share %, loss $loss"
        "$dir/sb-sim" --nodes "$nodes" --max-message-size 512 --trials 20 \
            --loss "$loss" --quiet | grep -E "crash|steady|false"
    done
done
