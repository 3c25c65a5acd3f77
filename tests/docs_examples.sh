#!/usr/bin/env bash
# Compiles every complete C program (a ```c block with a main) of the
# given Markdown files against the built library, warnings as errors.
# Usage: docs_examples.sh SOURCE_DIR BUILD_DIR FILE.md...
set -euo pipefail
src=$1 build=$2; shift 2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
count=0
for md in "$@"; do
    awk -v dir="$tmp" -v base="$(basename "$md" .md)" '
        /^```c$/ { inside = 1; n++; file = dir "/" base "-" n ".c"; next }
        /^```$/  { inside = 0; next }
        inside   { print > file }' "$md"
done
for f in "$tmp"/*.c; do
    grep -q "int main" "$f" || continue
    cc -std=c11 -D_DEFAULT_SOURCE -Wall -Wextra -Werror -I"$src/include" \
       -o "${f%.c}" "$f" "$build/libscuttlebutt.a" -lsodium -lpthread -lm
    count=$((count + 1))
done
echo "$count programs compiled"
[ "$count" -gt 0 ]
