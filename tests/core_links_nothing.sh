#!/usr/bin/env bash
# The engine is sans-I/O: its archive must not call sockets, threads,
# clocks or the C library's random numbers. Lists the undefined symbols of
# the core's objects and fails on any of those.
set -euo pipefail
archive=$1
forbidden='^(socket|bind|connect|sendto|sendmsg|recvfrom|recvmsg|send|recv|poll|select|epoll_.*|getaddrinfo|pthread_.*|clock_gettime|clock|time|gettimeofday|nanosleep|sleep|usleep|rand|srand|random|srandom|rand_r|drand48|getrandom|arc4random)$'
bad=$(nm -u "$archive" | awk '{print $NF}' | sed 's/@.*//' | sort -u | grep -E "$forbidden" || true)
if [ -n "$bad" ]; then
    echo "the core calls what it must not:"; echo "$bad"; exit 1
fi
echo "core: $(nm -u "$archive" | awk '{print $NF}' | sed 's/@.*//' | sort -u | tr '\n' ' ')"
echo "1 passed, 0 failed"
