#!/usr/bin/env bash
# The engine is sans-I/O: its archive must not call sockets, threads,
# clocks or the C library's random numbers. Lists the undefined symbols of
# the core's objects and fails on any of those; fails too if the archive
# cannot be read, or names no symbol at all.
set -euo pipefail
archive=$1
forbidden='^(socket|bind|connect|sendto|sendmsg|recvfrom|recvmsg|send|recv|poll|select|epoll_.*|getaddrinfo|pthread_.*|clock_gettime|clock|time|gettimeofday|nanosleep|sleep|usleep|rand|srand|random|srandom|rand_r|drand48|getrandom|arc4random)$'
if ! undefined=$(nm -u "$archive"); then
    echo "cannot list the symbols of $archive"; exit 1
fi
symbols=$(echo "$undefined" | awk 'NF {print $NF}' | sed 's/@.*//' | sort -u)
# the core allocates and copies: an archive that needs neither was not read
for needed in malloc memcpy; do
    if ! grep -qx "$needed" <<<"$symbols"; then
        echo "$archive does not call $needed: not the core's archive?"; exit 1
    fi
done
bad=$(grep -E "$forbidden" <<<"$symbols" || true)
if [ -n "$bad" ]; then
    echo "the core calls what it must not:"; echo "$bad"; exit 1
fi
echo "core: $(tr '\n' ' ' <<<"$symbols")"
echo "1 passed, 0 failed"
