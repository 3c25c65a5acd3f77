#!/usr/bin/env bash
# The pkg-config files name the directories the library is installed in,
# whatever the spelling of CMAKE_INSTALL_LIBDIR and _INCLUDEDIR: relative
# ones (the default, found from where the .pc file lies, so that
# `cmake --install --prefix` anywhere works) and absolute ones (as
# packagers give them: -DCMAKE_INSTALL_INCLUDEDIR=/usr/include, a libdir
# outside the prefix). Only configures: the .pc files are written then.
# Usage: pc_paths.sh SOURCE_DIR
set -euo pipefail
src=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fails=0

# configure with the given options, put the .pc files where install
# would, and compare what pkg-config reads with what is expected
check() {
    local name=$1 pcdir=$2 want_inc=$3 want_lib=$4
    shift 4
    cmake -S "$src" -B "$tmp/$name" -G Ninja -DSB_CLI=OFF -DSB_TESTS=OFF \
          "$@" >"$tmp/$name.log" || { cat "$tmp/$name.log"; exit 1; }
    mkdir -p "$pcdir"
    cp "$tmp/$name/scuttlebutt.pc" "$tmp/$name/scuttlebutt-static.pc" "$pcdir/"
    mkdir -p "$want_inc" "$want_lib"
    for module in scuttlebutt scuttlebutt-static; do
        local inc lib
        inc=$(PKG_CONFIG_PATH=$pcdir pkg-config --variable=includedir "$module")
        lib=$(PKG_CONFIG_PATH=$pcdir pkg-config --variable=libdir "$module")
        inc=$(realpath -m "$inc")
        lib=$(realpath -m "$lib")
        if [ "$inc" != "$(realpath -m "$want_inc")" ] ||
           [ "$lib" != "$(realpath -m "$want_lib")" ]; then
            echo "FAIL $name $module: includedir $inc (want $want_inc)," \
                 "libdir $lib (want $want_lib)"
            fails=$((fails + 1))
        else
            echo "ok   $name $module: $inc $lib"
        fi
    done
}

# relative: found from the .pc file's place, even after a move
check relative "$tmp/moved/lib/pkgconfig" "$tmp/moved/include" \
      "$tmp/moved/lib" -DCMAKE_INSTALL_PREFIX="$tmp/prefix"
# an absolute includedir elsewhere (a -dev output), a relative libdir
check abs_include "$tmp/out/lib/pkgconfig" "$tmp/dev/include" \
      "$tmp/out/lib" -DCMAKE_INSTALL_PREFIX="$tmp/out" \
      -DCMAKE_INSTALL_INCLUDEDIR="$tmp/dev/include"
# an absolute libdir, a relative includedir
check abs_lib "$tmp/sys/lib64/pkgconfig" "$tmp/usr/include" \
      "$tmp/sys/lib64" -DCMAKE_INSTALL_PREFIX="$tmp/usr" \
      -DCMAKE_INSTALL_LIBDIR="$tmp/sys/lib64"
[ "$fails" -eq 0 ] || { echo "$fails failed"; exit 1; }
echo "6 passed, 0 failed"
