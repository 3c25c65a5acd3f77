#!/usr/bin/env bash
# The library built with -DSB_CLI=OFF -DSB_TESTS=OFF where pkg-config
# knows libsodium only: an embedder needs nothing else (no jansson,
# libmicrohttpd or cmocka). Usage: library_alone.sh SOURCE_DIR
set -euo pipefail
src=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

mkdir "$tmp/pc"
cp "$(pkg-config --variable=pcfiledir libsodium)/libsodium.pc" "$tmp/pc/"
export PKG_CONFIG_LIBDIR=$tmp/pc PKG_CONFIG_PATH=
if pkg-config --exists jansson || pkg-config --exists cmocka; then
    echo "pkg-config still sees jansson or cmocka"; exit 1
fi
cmake -S "$src" -B "$tmp/build" -G Ninja -DSB_CLI=OFF -DSB_TESTS=OFF \
      >"$tmp/configure.log" || { cat "$tmp/configure.log"; exit 1; }
ninja -C "$tmp/build" >"$tmp/build.log" || { tail -30 "$tmp/build.log"; exit 1; }
for f in libscuttlebutt.so libscuttlebutt.a; do
    [ -e "$tmp/build/$f" ] || { echo "no $f"; exit 1; }
done
if [ -e "$tmp/build/scuttlebutt" ]; then
    echo "the command was built with SB_CLI=OFF"; exit 1
fi
echo "libscuttlebutt built with libsodium alone"
