#!/usr/bin/env bash
# Installs what the VM test lab (tests/vm/*.sh) needs on a Debian 12 host:
# qemu-system-x86, busybox-static, kmod, iproute2, nftables, libnl-utils, and
# for the kernel tests haproxy, nginx, python3, procps, util-linux, from apt
# (only the missing ones; `apt-get update` runs only if something is missing)
# and virtme-ng (command `vng`) from PyPI when `vng` is not on PATH.
# Extra apt package names given as arguments are installed too.
# Idempotent and non-interactive; must run as root (as CI does).
set -euo pipefail

export DEBIAN_FRONTEND=noninteractive

# kmod: vng runs depmod on the unpacked kernel, and the guest (which shares the
# host root fs) needs modprobe for module auto-loading.
# virtme-ng version the guest/ stand-ins were tested with (its init finds
# udevd, udevadm and systemd-tmpfiles on PATH; see tests/vm/README.md).
VIRTME_NG_VERSION=${VIRTME_NG_VERSION:-1.42}

APT_PKGS=(qemu-system-x86 busybox-static kmod iproute2 nftables libnl-utils haproxy nginx python3 procps util-linux)
# Callers may name more (the benchmarks add iptables for Yelp's method and
# the SYN-drop trick): install-deps.sh [EXTRA-APT-PACKAGE...]
APT_PKGS+=("$@")

# A Debian package counts as present when dpkg says "install ok installed".
pkg_installed() {
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q '^install ok installed$'
}

if [[ $(id -u) -ne 0 ]]; then
    SUDO=(sudo)
else
    SUDO=()
fi

missing=()
for p in "${APT_PKGS[@]}"; do
    pkg_installed "$p" || missing+=("$p")
done

if ((${#missing[@]})); then
    echo "install-deps: installing ${missing[*]}" >&2
    # The kernel tests run haproxy and nginx from a temp dir in the VM; the
    # packages must not start (or enable) a service on this host: deny
    # service starts for the install (Debian's policy-rc.d protocol, exit
    # 101) unless a policy is already in place, and disable the units after.
    policy=/usr/sbin/policy-rc.d
    own_policy=0
    if [[ ! -e $policy ]]; then
        printf '#!/bin/sh\n# plugctl install-deps: no service starts during the install\nexit 101\n' |
            "${SUDO[@]}" tee "$policy" >/dev/null
        "${SUDO[@]}" chmod 755 "$policy"
        own_policy=1
    fi
    rc=0
    "${SUDO[@]}" apt-get update -qq || rc=$?
    ((rc)) || "${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" || rc=$?
    ((own_policy)) && "${SUDO[@]}" rm -f "$policy"
    # Only units this run installed: a service the host already had stays.
    if [[ -d /run/systemd/system ]]; then
        for unit in haproxy nginx; do
            [[ " ${missing[*]} " == *" $unit "* ]] || continue
            "${SUDO[@]}" systemctl disable --now "$unit" >/dev/null 2>&1 || true
        done
    fi
    ((rc == 0)) || exit "$rc"
else
    echo "install-deps: apt packages already present" >&2
fi

# vng may live in a pyenv shim dir that is not on a non-login PATH.
find_vng() {
    if command -v vng >/dev/null 2>&1; then
        command -v vng
        return 0
    fi
    local c
    for c in "${PYENV_ROOT:-$HOME/.pyenv}/shims/vng" "$HOME/.local/bin/vng" /usr/local/bin/vng; do
        if [[ -x $c ]]; then
            echo "$c"
            return 0
        fi
    done
    return 1
}

if vng_path=$(find_vng); then
    have=$("$vng_path" --version 2>/dev/null | awk '{print $NF}') || true
    echo "install-deps: vng ${have:-?} present at $vng_path" >&2
    if [[ $have != "$VIRTME_NG_VERSION" ]]; then
        echo "install-deps: warning: tests/vm was tested with virtme-ng $VIRTME_NG_VERSION" >&2
    fi
else
    echo "install-deps: installing virtme-ng from PyPI" >&2
    py=python3
    pip_flags=(--quiet --disable-pip-version-check)
    if [[ -x "${PYENV_ROOT:-$HOME/.pyenv}/shims/python3" ]]; then
        py="${PYENV_ROOT:-$HOME/.pyenv}/shims/python3"
    elif [[ $(command -v python3 || true) == /usr/bin/python3 ]]; then
        # Debian's own python: needs python3-pip and PEP 668's override.
        "$py" -m pip --version >/dev/null 2>&1 || {
            "${SUDO[@]}" apt-get update -qq
            "${SUDO[@]}" apt-get install -y -qq --no-install-recommends python3-pip
        }
        pip_flags+=(--break-system-packages)
    fi
    "${SUDO[@]}" "$py" -m pip install "${pip_flags[@]}" "virtme-ng==$VIRTME_NG_VERSION"
    # pyenv needs a rehash to create the new shim.
    if command -v pyenv >/dev/null 2>&1; then
        pyenv rehash || true
    elif [[ -x "${PYENV_ROOT:-$HOME/.pyenv}/bin/pyenv" ]]; then
        "${PYENV_ROOT:-$HOME/.pyenv}/bin/pyenv" rehash || true
    fi
    vng_path=$(find_vng) || {
        echo "install-deps: virtme-ng installed but vng not found on PATH" >&2
        exit 1
    }
    echo "install-deps: vng installed at $vng_path" >&2
fi
