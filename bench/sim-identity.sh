#!/usr/bin/env bash
# Prints the simulator's output, trace hash included, for the matrix that
# proves a refactor changed no behaviour: 16, 64 and 256 nodes; no loss
# and 10% loss; 512- and 1400-byte messages; the reference wire; three
# seeds each. Two builds that behave alike print the same, except the CPU
# line (dropped here).
#   bench/sim-identity.sh BUILD_DIR > out.txt; diff before.txt out.txt
set -euo pipefail
sim=${1:-build}/sb-sim
trials=${TRIALS:-3}
for seed in 1 2 3; do
    for n in 16 64 256; do
        for loss in 0 0.1; do
            for mms in 512 1400; do
                echo "== --nodes $n --loss $loss --max-message-size $mms --seed $seed"
                "$sim" --nodes "$n" --loss "$loss" --max-message-size "$mms" \
                       --seed "$seed" --trials "$trials" --trace | grep -v 'of CPU'
            done
        done
    done
    for n in 16 64; do
        echo "== --wire reference --nodes $n --max-message-size 512 --seed $seed"
        "$sim" --wire reference --nodes "$n" --max-message-size 512 \
               --seed "$seed" --trials "$trials" --trace | grep -v 'of CPU'
    done
done
