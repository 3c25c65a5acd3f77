#!/usr/bin/env bash
# sb-sim's options: a value its option cannot take (not a whole number
# where one is counted, past what the option's type holds, nan or inf, an
# empty string) is refused with status 2 before anything runs, not
# truncated or wrapped into another run; a stray word is named as such;
# an option of the other mode (the trials', or --load's) is refused, not
# ignored; a cluster that did not converge exits 1, not 0; and the same
# options print the same bytes (but the CPU line).
#   tests/sim/sb_sim_cli.sh BUILD/sb-sim
set -uo pipefail
sim=$1
fail=0
refuse() {
    out=$(timeout 20 "$sim" "$@" 2>&1 >/dev/null)
    rc=$?
    if [ "$rc" -ne 2 ]; then
        echo "FAIL: sb-sim $* exited $rc, not 2 (${out%%$'\n'*})"
        fail=1
    fi
}
refuse --nodes 1e10 --trials 1 --quiet
refuse --nodes 2.5 --trials 1 --quiet
refuse --trials 1.5 --nodes 4 --quiet
refuse --latency nan --nodes 4 --trials 1 --quiet
refuse --latency 1e300 --nodes 4 --trials 1 --quiet
refuse --jitter inf --nodes 4 --trials 1 --quiet
refuse --latency '' --nodes 4 --trials 1 --quiet
refuse --partition 1e30 --nodes 4 --trials 1 --quiet
refuse --window 1e30 --nodes 4 --trials 1 --quiet
refuse --seed 1.9 --nodes 4 --trials 1 --quiet
refuse --seed 99999999999999999999 --nodes 4 --trials 1 --quiet
refuse --interval 2.5 --nodes 4 --trials 1 --quiet
# SB_SEED, which sets the seed too, as strictly as --seed
SB_SEED=1.9 refuse --nodes 4 --trials 1 --quiet
SB_SEED=junk refuse --nodes 4 --trials 1 --quiet
SB_SEED=-1 refuse --nodes 4 --trials 1 --quiet
# from 512 nodes the trials crash nodes of one cluster: not all of them
refuse --nodes 512 --trials 257 --quiet
# an option only the other mode reads
refuse --nodes 4 --load 5 --rack 5
refuse --nodes 4 --load 5 --trials 3
refuse --nodes 4 --load 5 --trace
refuse --nodes 4 --trials 1 --keys 5 --quiet
refuse --nodes 4 --trials 1 --load-seconds 5 --quiet
# nothing arrives: the cluster never converges, and the status says so
for mode in "--trials 1 --no-crash --quiet" "--load 5 --load-seconds 1"; do
    # shellcheck disable=SC2086
    out=$(timeout 60 "$sim" --nodes 4 --loss 0.999999 $mode 2>&1 >/dev/null)
    rc=$?
    case "$rc:$out" in
    1:*"did not converge"*) ;;
    *) echo "FAIL: sb-sim $mode, never converged, exited $rc: $out"
       fail=1 ;;
    esac
done
out=$("$sim" --quiet extra 2>&1 >/dev/null)
case $out in
*"unexpected argument: extra"*) ;;
*) echo "FAIL: a stray word: $out"; fail=1 ;;
esac
# values it takes still run
a=$("$sim" --nodes 8 --trials 2 --seed 0x10 --latency 0.5 --jitter 0.5 \
        --trace --quiet | grep -v 'of CPU') || { echo "FAIL: a good run"; fail=1; }
b=$("$sim" --nodes 8 --trials 2 --seed 16 --latency 0.5 --jitter 0.5 \
        --trace --quiet | grep -v 'of CPU')
if [ "$a" != "$b" ] || [ -z "$a" ]; then
    echo "FAIL: the same options printed different output"
    fail=1
fi
[ "$fail" -eq 0 ] && echo ok
exit "$fail"
