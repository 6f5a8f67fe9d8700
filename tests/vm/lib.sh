# shellcheck shell=bash
# Helpers shared by the scripts that build something and run it in the VM lab
# (tests/vm/kernel-tests.sh, demo/run.sh, benches/run.sh, benches/storm.sh,
# benches/cost.sh).
# Source it; it defines functions and one constant only.

# cargo_exe NAME CARGO-ARGS...: build with `cargo CARGO-ARGS --no-run` and
# print the path of the executable of target NAME (a test or a bench).
cargo_exe() {
    local name=$1
    shift
    cargo "$@" --no-run --message-format=json | python3 -c 'import sys, json
name = sys.argv[1]
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["name"] == name:
        print(m["executable"])' "$name"
}

# bench_exe NAME: build benchmark NAME, print its path, then build the
# release binary the benchmark times. In that order: building a bench
# relinks target/release/plugctl with the dev-dependencies' features
# (tokio's multi-thread runtime); `cargo build --release` makes the binary
# users get.
bench_exe() {
    local bin
    bin=$(cargo_exe "$1" bench --bench "$1" 2>/dev/null)
    cargo build --release --quiet || return 1
    echo "$bin"
}

# kernel_has_plug: does this kernel have sch_prio, sch_plug and cls_fw?
# (Tried in a throw-away network namespace: nothing here changes.)
kernel_has_plug() {
    unshare --net -- bash -c 'tc qdisc add dev lo root handle 1: prio bands 4 &&
        tc qdisc add dev lo parent 1:4 handle 40: plug &&
        tc filter add dev lo parent 1: protocol ip prio 1 handle 1 fw classid 1:4' >/dev/null 2>&1
}

# parse_where_args USAGE ARGS...: the --vm / --kernel SERIES options of
# demo/run.sh and benches/*.sh. Sets FORCE_VM (1 with either option), KERNEL
# (default 6.1) and REST (the other arguments). With USAGE non-empty, any
# other argument prints USAGE and exits 2.
# shellcheck disable=SC2034 # FORCE_VM, KERNEL, REST are for the caller
parse_where_args() {
    local usage=$1
    shift
    FORCE_VM=0
    KERNEL=6.1
    REST=()
    while (($#)); do
        case $1 in
            --vm) FORCE_VM=1; shift ;;
            --kernel) KERNEL=${2:?--kernel needs 6.1 or 6.12}; FORCE_VM=1; shift 2 ;;
            *)
                if [[ -n $usage ]]; then
                    echo "usage: $usage" >&2
                    exit 2
                fi
                REST+=("$1"); shift ;;
        esac
    done
}

# run_natively: true unless --vm/--kernel was given or this kernel lacks
# sch_prio/sch_plug/cls_fw.
run_natively() {
    ((FORCE_VM == 0)) && kernel_has_plug
}

# Debian 12's libnl looks for its tc plugins under libnl/ but installs them
# under libnl-3/ (netlink-reference.md trip-up 15); Yelp's method
# (nl-qdisc-add ... plug) needs them. A shell line, run in the guest (whose
# /usr is a throw-away overlay); a native storm run applies it to the host
# and says so.
# shellcheck disable=SC2034 # used by the scripts that source this file
LIBNL_FIX='[ -e /usr/lib/x86_64-linux-gnu/libnl ] || ln -s libnl-3 /usr/lib/x86_64-linux-gnu/libnl'
