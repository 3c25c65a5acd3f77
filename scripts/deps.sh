#!/usr/bin/env bash
# Installs what building and testing scuttlebutt needs, if it is missing.
# Sourced by scripts/demo and scripts/test; safe to run again.
set -euo pipefail

SB_PACKAGES=(build-essential cmake ninja-build pkg-config libsodium-dev libcmocka-dev libuv1-dev python3
             clang libclang-rt-dev iproute2 nftables
             libjansson-dev libmicrohttpd-dev
             python3-prometheus-client chromium chromium-driver python3-selenium
             strace systemd)

# sb_install_deps [EXTRA_PACKAGE...]
sb_install_deps() {
    local missing=()
    for p in "${SB_PACKAGES[@]}" "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
            missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    echo "installing: ${missing[*]}"
    local sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
}
