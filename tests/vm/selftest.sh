#!/usr/bin/env bash
# Self-test of the VM lab: for each kernel (default: all) boots the VM via
# run.sh and checks that the exit status comes back, that stdout/stderr are
# streamed, that lost guest output fails loudly (125), that the guest can
# write only where it should, that prio + plug qdiscs, the fw classifier and
# nf_tables work (module auto-loading), inside a fresh network namespace too,
# and that a command printing nothing passes with no output. Prints one
# PASS/FAIL line per check, the boot-to-command time of `true`, and a closing
# "N passed, N failed" line.
#
#   tests/vm/selftest.sh [6.1|6.12|all]
set -euo pipefail

HERE=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
RUN="$HERE/run.sh"

case ${1:-all} in
    all) kernels=(6.1 6.12) ;;
    6.1 | 6.12) kernels=("$1") ;;
    *) echo "usage: $0 [6.1|6.12|all]" >&2; exit 2 ;;
esac

pass=0
fail=0
ok() { echo "PASS: $*"; pass=$((pass + 1)); }
bad() { echo "FAIL: $*"; fail=$((fail + 1)); }
# expect DESCRIPTION TEST...: PASS if TEST succeeds, else FAIL.
expect() {
    local desc=$1
    shift
    if "$@"; then ok "$desc"; else bad "$desc"; fi
}

work=$(mktemp -d "${TMPDIR:-/tmp}/plugctl-vm-selftest.XXXXXX")
trap 'rm -rf -- "$work"' EXIT

# Runs inside the guest: the kernel features plugctl needs.
cat >"$work/features.sh" <<'EOF'
#!/bin/bash
set -eux
for t in ip tc nft setpriv ss unshare python3; do command -v "$t"; done
ip -br link show lo | grep -q UP
features() {
    tc qdisc add dev lo root handle 1: prio bands 4
    tc qdisc add dev lo parent 1:4 handle 40: plug limit 1048576
    tc filter add dev lo parent 1: protocol ip prio 1 handle 1 fw classid 1:4
    nft add table inet plugctl_selftest
    tc -s qdisc show dev lo | grep -q 'qdisc plug 40:'
    tc filter show dev lo | grep -q 'classid 1:4'
    nft list tables | grep -q plugctl_selftest
}
features
lsmod | grep -E '^(sch_prio|sch_plug|cls_fw|nf_tables) '
# Again in a fresh network namespace (lo starts DOWN there).
unshare -n bash -c "$(declare -f features); ip link set lo up; features; python3 -S -c 'import socket; s=socket.socket(); s.bind((\"127.0.0.1\", 0)); s.listen(); socket.create_connection(s.getsockname())'"
echo FEATURES-OK
EOF
chmod +x "$work/features.sh"

cd "$work"
# The guest's port links come from guest/udevadm on a host with udev (whose
# systemd-udevd virtme-ng-init prefers) and from guest/udevd without: say which.
udevd=none
for c in /usr/lib/systemd/systemd-udevd /lib/systemd/systemd-udevd; do
    [[ -e $c ]] && { udevd=$c; break; }
done
echo "== host udevd (the guest's init would start it): $udevd"

# without_host_udevd CMD...: run CMD as on a host without udev. In a private
# mount namespace (nothing changes outside it), each folder holding a
# systemd-udevd that virtme-ng-init looks for gets a copy of itself without
# it bind-mounted over it; qemu's 9p export of / then shows the guest none.
without_host_udevd() {
    local copies
    copies=$(mktemp -d "$work/no-udevd.XXXXXX")
    # shellcheck disable=SC2016  # expanded by the inner bash
    unshare -m --propagation private -- bash -c '
        set -e
        copies=$1
        shift
        i=0
        for c in /usr/lib/systemd/systemd-udevd /lib/systemd/systemd-udevd; do
            [ -e "$c" ] || [ -L "$c" ] || continue
            d=$(cd -P -- "${c%/*}" && pwd)
            i=$((i + 1))
            mkdir "$copies/$i"
            cp -a "$d/." "$copies/$i/"
            rm -f "$copies/$i/systemd-udevd"
            mount --bind "$copies/$i" "$d"
        done
        exec "$@"' without-host-udevd "$copies" "$@"
}
for k in "${kernels[@]}"; do
    echo "== kernel $k"
    "$HERE/kernels.sh" --path "$k" >/dev/null

    # 1. exit status and output streams
    set +e
    out=$("$RUN" --kernel "$k" -- sh -c 'echo to-stdout; echo to-stderr >&2; exit 42' 2>"$work/err")
    rc=$?
    set -e
    expect "$k: exit status propagated (got $rc, want 42)" test "$rc" -eq 42
    expect "$k: stdout streamed (got '$out')" test "$out" = to-stdout
    expect "$k: stderr streamed" grep -qx to-stderr "$work/err"

    # 2. command not found -> 127, loudly
    set +e
    "$RUN" --kernel "$k" -- /nonexistent/cmd 2>/dev/null
    rc=$?
    set -e
    expect "$k: missing command gives 127 (got $rc)" test "$rc" -eq 127

    # 2b. output lost on the way (the guest gets no /dev/virtio-ports links,
    # as with udev on the host before the fix) -> 125 and a one-line reason
    set +e
    out=$(PLUGCTL_VM_SELFTEST_BREAK_PORTS=1 "$RUN" --kernel "$k" -- sh -c 'echo lost; echo lost >&2' 2>"$work/err")
    rc=$?
    set -e
    expect "$k: lost guest output gives 125 (got $rc)" test "$rc" -eq 125
    expect "$k: lost guest output is explained: $(tail -n 1 "$work/err")" \
        grep -q 'never reached the host: the guest had no /dev/virtio-ports.*--verbose' "$work/err"

    # 3. filesystem: host files visible, cwd kept, /tmp private, --rwdir shared
    mkdir -p "$work/rw"
    echo from-host >"$work/hostfile"
    set +e
    # shellcheck disable=SC2016  # expanded in the guest
    "$RUN" --kernel "$k" --rwdir "$work/rw" --env WORK="$work" -- sh -c '
        set -e
        [ "$(cat hostfile)" = from-host ]
        [ "$PWD" = "$WORK" ]
        echo guest >"$WORK/private-write"
        echo guest >rw/shared-write
        ! touch /work/.plugctl-selftest 2>/dev/null' >/dev/null
    rc=$?
    set -e
    expect "$k: host files and cwd visible, /work read-only (exit $rc)" test "$rc" -eq 0
    expect "$k: guest writes to /tmp stay in the guest" test ! -e "$work/private-write"
    expect "$k: --rwdir is writable and shared" test -f "$work/rw/shared-write"

    # 4. kernel features
    set +e
    out=$("$RUN" --kernel "$k" -- ./features.sh 2>&1)
    rc=$?
    set -e
    if [[ $rc -eq 0 && $out == *FEATURES-OK* ]]; then
        ok "$k: prio/plug/fw/nf_tables load and work (also in a new netns)"
    else
        bad "$k: features (exit $rc):"
        echo "$out" | tail -n 30 | sed 's/^/    /'
    fi

    # 5. boot-to-command time; `true` prints nothing, and so must run.sh
    for i in 1 2; do
        s=$(date +%s%N)
        set +e
        "$RUN" --kernel "$k" -- true >"$work/out" 2>"$work/err"
        rc=$?
        set -e
        ms=$((($(date +%s%N) - s) / 1000000))
        printf 'TIME: %s: run.sh -- true #%d: %d.%01d s\n' "$k" "$i" $((ms / 1000)) $((ms % 1000 / 100))
        expect "$k: a command that prints nothing passes with no output #$i (exit $rc)" \
            test "$rc" -eq 0 -a ! -s "$work/out" -a ! -s "$work/err"
    done

    # 6. the other host case: this host has udev, so also run as if it had
    # none (then guest/udevd, not guest/udevadm, makes the port links).
    # A host without udev has only that case: checks 1-5 covered it.
    if [[ $udevd != none ]]; then
        set +e
        # shellcheck disable=SC2016  # expanded in the guest
        out=$(without_host_udevd "$RUN" --kernel "$k" -- sh -c '
            [ -e /dev/virtio-ports/virtme.stdout ] || exit 3
            ! dmesg | grep -q "Starting systemd-udevd" || exit 4
            echo NO-UDEV-OK' 2>"$work/err")
        rc=$?
        set -e
        expect "$k: as on a host without udev: output and status carried (exit $rc, '$out')" \
            test "$rc" -eq 0 -a "$out" = NO-UDEV-OK
    fi
done

echo "$pass passed, $fail failed"
((fail == 0))
