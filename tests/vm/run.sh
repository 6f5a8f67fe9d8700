#!/usr/bin/env bash
# Runs one command as root inside a throw-away QEMU VM (TCG, no KVM) that boots
# a stock Debian kernel (see kernels.sh) over the host's own root filesystem
# via virtme-ng, streams the command's stdout/stderr, and exits with the
# command's exit status.
#
#   tests/vm/run.sh [options] -- CMD [ARGS...]
#
# Options:
#   --kernel 6.1|6.12   kernel series (default ${PLUGCTL_VM_KERNEL:-6.1})
#   --timeout SECS      wall-clock limit for boot+command (default
#                       ${PLUGCTL_VM_TIMEOUT:-600}); exit 124 when hit
#   --memory SIZE       guest memory, qemu syntax (default 1G)
#   --cpus N            guest CPUs (default ${PLUGCTL_VM_CPUS:-1}: with 2 vCPUs
#                       boot takes 2-3x longer when the host is busy)
#   --rwdir DIR         make host DIR writable from the guest (repeatable;
#                       everything else the guest writes is thrown away)
#   --env NAME[=VALUE]  pass an environment variable to CMD (repeatable;
#                       without =VALUE the host's value is used)
#   --verbose           also show the kernel boot console (on stderr)
#
# The guest sees the host filesystem read-only, except for overlays on
# /etc /home /opt /srv /tmp /usr /var that keep guest writes in guest RAM.
# It starts in the caller's working directory, with the caller's PATH minus
# pyenv (whose shims are far too slow under TCG).
# Exit status is CMD's own, or 124 on timeout, 125 if the VM did not boot
# or died before CMD finished (the tail of the guest's dmesg is shown) or if
# CMD's stdout or stderr did not reach the host (the guest's virtio ports
# were not found: see --verbose), or 2 on usage errors. Kernels are fetched
# on first use (kernels.sh).
# Environment: PLUGCTL_VM_KERNEL, PLUGCTL_VM_TIMEOUT, PLUGCTL_VM_CPUS (defaults),
# PLUGCTL_VM_KMSG_LOG=FILE (save the guest's dmesg), PLUGCTL_VM_DEBUG=1,
# PLUGCTL_VM_SELFTEST_BREAK_PORTS=1 (selftest.sh only: make the guest lose
# its output channels, to check that run.sh then fails).
# See tests/vm/README.md.
set -euo pipefail

HERE=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)

# die MESSAGE [EXIT_CODE (default 125)]
die() {
    echo "run.sh: error: $1" >&2
    exit "${2:-125}"
}
usage() {
    sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2
    exit "${1:-2}"
}

kernel=${PLUGCTL_VM_KERNEL:-6.1}
timeout_s=${PLUGCTL_VM_TIMEOUT:-600}
memory=1G
cpus=${PLUGCTL_VM_CPUS:-1}
verbose=0
rwdirs=()
envs=()

while (($#)); do
    case $1 in
        --kernel) kernel=${2:?--kernel needs a value}; shift 2 ;;
        --kernel=*) kernel=${1#*=}; shift ;;
        --timeout) timeout_s=${2:?--timeout needs a value}; shift 2 ;;
        --timeout=*) timeout_s=${1#*=}; shift ;;
        --memory) memory=${2:?--memory needs a value}; shift 2 ;;
        --memory=*) memory=${1#*=}; shift ;;
        --cpus) cpus=${2:?--cpus needs a value}; shift 2 ;;
        --cpus=*) cpus=${1#*=}; shift ;;
        --rwdir) rwdirs+=("${2:?--rwdir needs a value}"); shift 2 ;;
        --rwdir=*) rwdirs+=("${1#*=}"); shift ;;
        --env) envs+=("${2:?--env needs a value}"); shift 2 ;;
        --env=*) envs+=("${1#*=}"); shift ;;
        --verbose | -v) verbose=1; shift ;;
        -h | --help) usage 0 ;;
        --) shift; break ;;
        *) echo "run.sh: unexpected argument '$1' (missing '--' before the command?)" >&2; usage ;;
    esac
done
(($#)) || { echo "run.sh: no command given" >&2; usage; }
[[ $timeout_s =~ ^[0-9]+$ ]] || die "--timeout must be whole seconds, got '$timeout_s'" 2
case $kernel in 6.1 | 6.12) ;; *) die "--kernel must be 6.1 or 6.12, got '$kernel'" 2 ;; esac

# --- tools -----------------------------------------------------------------
find_vng() {
    if command -v vng >/dev/null 2>&1; then
        command -v vng
        return 0
    fi
    local c
    for c in "${PYENV_ROOT:-$HOME/.pyenv}/shims/vng" "$HOME/.local/bin/vng" /usr/local/bin/vng; do
        [[ -x $c ]] && { echo "$c"; return 0; }
    done
    return 1
}
VNG=$(find_vng) || die "vng not found: run tests/vm/install-deps.sh first"
for t in qemu-system-x86_64 depmod busybox; do
    command -v "$t" >/dev/null 2>&1 || PATH="$PATH:/usr/sbin:/sbin" command -v "$t" >/dev/null 2>&1 ||
        die "$t not found: run tests/vm/install-deps.sh first"
done

VMLINUZ=$("$HERE/kernels.sh" --path "$kernel") || die "cannot get the $kernel kernel (tests/vm/kernels.sh --path $kernel)"

# The guest init (virtme-ng-init) runs CMD with its stdout/stderr on the
# virtio ports for them only if it finds /dev/virtio-ports/* links, which udev
# would make; else it uses the console and the host gets no output. The guest
# stand-ins for udevd and udevadm make those links whether or not the host
# has udev (guest/virtio-port-links says how), and they are put first on the
# guest init's PATH through the kernel command line, so the folder must not
# contain whitespace. The guest also prints $SENTINEL first on both streams;
# if it does not arrive, run.sh fails (125) rather than pass with no output.
SHIM_DIR="$HERE/guest"
for t in udevd udevadm virtio-port-links; do
    [[ -x $SHIM_DIR/$t ]] || die "$SHIM_DIR/$t missing or not executable"
done
[[ $SHIM_DIR != *[[:space:]]* ]] || die "path of $SHIM_DIR must not contain whitespace"
GUEST_INIT_PATH="$SHIM_DIR:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# --- per-run state folder, shared read-write with the guest ------------------
STATE=$(mktemp -d "${TMPDIR:-/tmp}/plugctl-vm.XXXXXX")
# The guest's first line on stdout is "$SENTINEL stdout", on stderr
# "$SENTINEL stderr"; relay() below removes them.
SENTINEL="run.sh: guest channel up (${STATE##*/}):"
vm_pid=""
cat_pids=()
# shellcheck disable=SC2317  # invoked via trap
cleanup() {
    if [[ -n $vm_pid ]]; then
        # timeout(1) passes the signal on to vng/qemu.
        kill -TERM "$vm_pid" 2>/dev/null || true
        wait "$vm_pid" 2>/dev/null || true
    fi
    if ((${#cat_pids[@]})); then
        kill "${cat_pids[@]}" 2>/dev/null || true
    fi
    rm -rf -- "$STATE"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

cwd=$PWD
# The caller's PATH, minus pyenv: its shims are shell scripts that take ~50 s
# per call under TCG; `python3` is then Debian's /usr/bin/python3.
guest_path=""
IFS=: read -r -a path_parts <<<"$PATH"
for p in "${path_parts[@]}"; do
    case $p in "" | */.pyenv/shims | */.pyenv/bin | */.pyenv/plugins/*) continue ;; esac
    guest_path="${guest_path:+$guest_path:}$p"
done
case ":$guest_path:" in *:/usr/sbin:*) ;; *) guest_path="$guest_path:/usr/sbin" ;; esac
case ":$guest_path:" in *:/sbin:*) ;; *) guest_path="$guest_path:/sbin" ;; esac

{
    echo '#!/bin/bash'
    echo '# generated by tests/vm/run.sh; runs inside the guest'
    printf 'STATE=%q\n' "$STATE"
    printf 'SENTINEL=%q\n' "$SENTINEL"
    printf 'CWD=%q\n' "$cwd"
    printf 'export PATH=%q\n' "$guest_path"
    echo 'export HOME=/root'
    for e in "${envs[@]}"; do
        name=${e%%=*}
        [[ $name =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || die "bad --env name '$name'" 2
        if [[ $e == *=* ]]; then
            printf 'export %s=%q\n' "$name" "${e#*=}"
        elif [[ -n ${!name+x} ]]; then
            printf 'export %s=%q\n' "$name" "${!name}"
        fi
    done
    printf 'CMD=('
    printf ' %q' "$@"
    printf ' )\n'
    cat <<'GUEST'
# Proof for the host that both streams are carried (it strips these lines).
printf '%s stdout\n' "$SENTINEL"
printf '%s stderr\n' "$SENTINEL" >&2
# Which port links virtme-ng-init saw (shell builtins only: no exec over 9p).
echo /dev/virtio-ports/* >"$STATE/ports"
if ! cd -- "$CWD"; then
    echo "run.sh(guest): cannot cd to $CWD" >&2
    echo 125 >"$STATE/status"
    exit 125
fi
: >"$STATE/started"
# Copy the guest kernel log to the host while the command runs, so that
# oopses/warnings (and the lead-up to a panic) can be shown afterwards.
dmesg --follow >"$STATE/kmsg.log" 2>/dev/null &
kmsg_pid=$!
"${CMD[@]}"
rc=$?
kill "$kmsg_pid" 2>/dev/null
dmesg >"$STATE/kmsg.log" 2>/dev/null
echo "$rc" >"$STATE/status.tmp" && mv "$STATE/status.tmp" "$STATE/status"
sync
exit "$rc"
GUEST
} >"$STATE/guest.sh"
chmod +x "$STATE/guest.sh"

vng_args=(
    -r "$VMLINUZ"
    --user root
    --disable-kvm
    --force-9p # skip the failing virtiofsd attempt (qemu's old C virtiofsd): -4 s
    --memory "$memory"
    --cpus "$cpus"
    --cwd /
    --rwdir "$STATE"
    --append "PATH=$GUEST_INIT_PATH"
)
if [[ -n ${PLUGCTL_VM_SELFTEST_BREAK_PORTS:-} ]]; then
    # guest/virtio-port-links then makes no links: the broken-channel case.
    vng_args+=(--append plugctl_vm_break_port_links=1)
fi
for d in "${rwdirs[@]}"; do
    [[ -d $d ]] || die "--rwdir $d: not a directory" 2
    vng_args+=(--rwdir "$(cd -- "$d" && pwd)")
done
((verbose)) && vng_args+=(-v)

# relay STREAM: copy stdin to stdout, except the first line that is exactly
# "$SENTINEL STREAM": drop it, create $STATE/STREAM.up and copy the rest
# unchanged with cat. Lines before it (vng's own messages, and the boot
# console with --verbose) pass through.
relay() {
    local line=""
    while IFS= read -r line; do
        if [[ $line == "$SENTINEL $1" ]]; then
            : >"$STATE/$1.up"
            exec cat
        fi
        printf '%s\n' "$line"
    done
    [[ -z $line ]] || printf '%s' "$line"
}

# qemu reopens /proc/self/fd/1 and /proc/self/fd/2 for the guest's output. On
# a regular file it would truncate it and write from offset 0, so hand it
# fifos and copy them to our own stdout/stderr.
mkfifo "$STATE/stdout.fifo" "$STATE/stderr.fifo"
relay stdout <"$STATE/stdout.fifo" &
cat_pids+=($!)
relay stderr <"$STATE/stderr.fifo" >&2 &
cat_pids+=($!)

start=$(date +%s)
timeout -k 15 "$timeout_s" "$VNG" "${vng_args[@]}" -- bash "$STATE/guest.sh" \
    </dev/null >"$STATE/stdout.fifo" 2>"$STATE/stderr.fifo" &
vm_pid=$!
vng_rc=0
wait "$vm_pid" || vng_rc=$?
vm_pid=""
wait "${cat_pids[@]}" 2>/dev/null || true
cat_pids=()
elapsed=$(($(date +%s) - start))

kmsg_text() { cat -- "$STATE/kmsg.log"; }
if [[ -n ${PLUGCTL_VM_KMSG_LOG:-} && -f $STATE/kmsg.log ]]; then
    kmsg_text >"$PLUGCTL_VM_KMSG_LOG" || true
fi

if [[ -f $STATE/status ]]; then
    rc=$(<"$STATE/status")
    [[ $rc =~ ^[0-9]+$ ]] || die "guest wrote a bad status '$rc'"
    if [[ -n ${PLUGCTL_VM_DEBUG:-} ]]; then
        echo "run.sh: kernel $kernel, ${elapsed}s, command exit $rc (vng exit $vng_rc)" >&2
    fi
    lost=()
    [[ -f $STATE/stdout.up ]] || lost+=(stdout)
    [[ -f $STATE/stderr.up ]] || lost+=(stderr)
    if ((${#lost[@]})); then
        what="${lost[*]}"
        what=${what/ / and }
        ports=$(cat -- "$STATE/ports" 2>/dev/null || true)
        if [[ $ports == *virtio-ports/virtme.stdout* ]]; then
            cause="although the guest had its /dev/virtio-ports links ($ports)"
        else
            cause="the guest had no /dev/virtio-ports/virtme.* links (made by tests/vm/guest/virtio-port-links), so virtme-ng-init ran it on the console"
        fi
        die "the command ran (exit $rc) but its $what never reached the host: $cause; rerun with --verbose to see the console (kernel $kernel)"
    fi
    exit "$rc"
fi

# No status: the command did not finish. Show why, as far as the console knows.
if ((!verbose)) && [[ -s $STATE/kmsg.log ]]; then
    echo "run.sh: ---- last lines of the guest kernel log ----" >&2
    kmsg_text | tail -n "${PLUGCTL_VM_KMSG_LINES:-40}" >&2
    echo "run.sh: ---- end of kernel log ----" >&2
fi
if ((vng_rc == 124 || vng_rc == 137)); then
    die "timed out after ${timeout_s}s (kernel $kernel): $*" 124
fi
if [[ -f $STATE/started ]]; then
    die "the guest died before the command finished (kernel $kernel, vng exit $vng_rc): $*"
fi
die "the VM did not boot or could not start the command (kernel $kernel, vng exit $vng_rc); rerun with --verbose to see the boot console"
