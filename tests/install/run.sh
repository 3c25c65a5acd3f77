#!/usr/bin/env bash
# Installs the build into a temporary prefix, then builds and runs a small
# program outside the tree against it: with pkg-config, then with CMake's
# find_package. Usage: run.sh BUILD_DIR
set -euo pipefail
build=$1
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

cmake --install "$build" --prefix "$tmp/prefix" >/dev/null
libdir=$(find "$tmp/prefix" -name scuttlebutt.pc -printf '%h\n' | head -1)
export PKG_CONFIG_PATH=$libdir
export LD_LIBRARY_PATH=$libdir/..

echo "== pkg-config: $(pkg-config --cflags --libs scuttlebutt)"
cc -std=c11 -Wall -Werror -o "$tmp/hello-pc" "$here/hello.c" \
   $(pkg-config --cflags --libs scuttlebutt)
"$tmp/hello-pc"

echo "== static: pkg-config scuttlebutt-static, the .so beside the archive"
cc -std=c11 -Wall -Werror -o "$tmp/hello-static" "$here/hello.c" \
   $(pkg-config --cflags --libs scuttlebutt-static)
if ldd "$tmp/hello-static" | grep -q libscuttlebutt; then
    echo "the static build links the shared library:"; ldd "$tmp/hello-static"
    exit 1
fi
LD_LIBRARY_PATH= "$tmp/hello-static"

echo "== the header compiles as C++ (98 and 11) and as C89 and C99 too, pedantic"
for std in c++98 c++11; do
    echo '#include <scuttlebutt.h>
int main() { sb_config c; sb_config_init(&c); return (int)c.size == 0; }' |
        c++ -std=$std -Wall -Wextra -pedantic -Werror -x c++ -fsyntax-only \
            $(pkg-config --cflags scuttlebutt) -
done
# gnu89 and gnu99, not c89 and c99: glibc's headers turn _Static_assert
# into a macro for strict c99 only, which would hide a C11 construct in
# the header
for std in gnu89 gnu99 c11; do
    echo '#include <scuttlebutt.h>
int main(void) { sb_config c; sb_config_init(&c); return c.size == 0; }' |
        cc -std=$std -Wall -Wextra -pedantic -Werror -x c -fsyntax-only \
           $(pkg-config --cflags scuttlebutt) -
done

# the version docs/api.md's find_package() asks for: the package takes
# only its own minor version, so a stale one there fails every user
want=$(sed -n 's/^find_package(scuttlebutt \([0-9.]*\) REQUIRED)$/\1/p' \
       "$here/../../docs/api.md")
echo "== find_package(scuttlebutt $want), as docs/api.md asks"
if [ -z "$want" ]; then
    echo "docs/api.md has no find_package(scuttlebutt VERSION REQUIRED)"
    exit 1
fi
# libsodium as if installed outside the linker's default paths, where
# only its pkg-config file tells where it is (-lsodium would find the
# system's instead)
mkdir -p "$tmp/sodium/lib/pkgconfig"
cp -L "$(pkg-config --variable=libdir libsodium)/libsodium.a" "$tmp/sodium/lib/"
printf 'libdir=%s\nName: libsodium\nDescription: copy\nVersion: %s\nLibs: -L${libdir} -lsodium\nLibs.private: -pthread\n' \
    "$tmp/sodium/lib" "$(pkg-config --modversion libsodium)" \
    > "$tmp/sodium/lib/pkgconfig/libsodium.pc"
PKG_CONFIG_PATH=$tmp/sodium/lib/pkgconfig:$PKG_CONFIG_PATH \
cmake -S "$here" -B "$tmp/cmake" -G Ninja -DSB_WANT="$want" \
      -DCMAKE_PREFIX_PATH="$tmp/prefix" >/dev/null
cmake --build "$tmp/cmake" >/dev/null
"$tmp/cmake/hello"
echo "== find_package: scuttlebutt::scuttlebutt-static, libsodium found by pkg-config"
if ! ninja -C "$tmp/cmake" -t commands hello-static |
        grep -q "$tmp/sodium/lib/libsodium.a"; then
    echo "hello-static is not linked with the libsodium pkg-config named:"
    ninja -C "$tmp/cmake" -t commands hello-static | tail -1
    exit 1
fi
if ldd "$tmp/cmake/hello-static" | grep -q libscuttlebutt; then
    echo "the static target links the shared library:"
    ldd "$tmp/cmake/hello-static"
    exit 1
fi
LD_LIBRARY_PATH= "$tmp/cmake/hello-static"

echo "== find_package where pkg-config knows no libsodium: the shared target"
# a user of the shared library needs neither pkg-config nor libsodium's
# .pc file (the archive's users then link -lsodium, as before 0.10.6)
mkdir -p "$tmp/nopc"
PKG_CONFIG_LIBDIR=$tmp/nopc PKG_CONFIG_PATH= \
cmake -S "$here" -B "$tmp/cmake-nopc" -G Ninja -DSB_WANT="$want" \
      -DCMAKE_PREFIX_PATH="$tmp/prefix" >"$tmp/nopc.log" 2>&1 ||
    { cat "$tmp/nopc.log"; exit 1; }
cmake --build "$tmp/cmake-nopc" >/dev/null
"$tmp/cmake-nopc/hello"
LD_LIBRARY_PATH= "$tmp/cmake-nopc/hello-static"

echo "== the shared library exports exactly the SB_API functions"
header=$(grep -o '^SB_API [^(]*(' "$here/../../include/scuttlebutt.h" |
         grep -o 'sb_[a-z_0-9]*($' | tr -d '(' | sort)
exported=$(nm -D --defined-only "$libdir/../libscuttlebutt.so" |
           awk '$2 ~ /[TDBR]/ {print $3}' | sort)
if [ "$header" != "$exported" ]; then
    diff <(echo "$header") <(echo "$exported") || true
    exit 1
fi
echo "$(echo "$exported" | wc -l) functions"
