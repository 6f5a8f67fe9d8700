#!/usr/bin/env bash
# The reload-storm benchmark, one command: builds plugctl and the storm
# (benches/storm.rs), runs every method side by side — natively if this
# kernel has sch_prio/sch_plug/cls_fw, otherwise in the VM lab on Debian's
# 6.1 kernel — and writes target/storm/table.md, latency.svg, samples.csv.
#
#   benches/storm.sh [--vm] [--kernel 6.1|6.12] [STORM-ARGS...]
#
# STORM-ARGS: --rate N (default 200/s: the TCG ceiling is ~300), --reloads N
# (default 50 per method), --gap-ms N (pause between reloads, default
# 1000), --method M
# (repeatable; default all: naive plugctl yelp syn-drop seamless sysctl cold
# cold+sysctl cold+syn-drop cold+plugctl).
set -euo pipefail

ROOT=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
# shellcheck source=tests/vm/lib.sh
source tests/vm/lib.sh
vm=0
kernel=6.1
pass=()
while (($#)); do
    case $1 in
        --vm) vm=1; shift ;;
        --kernel) kernel=${2:?}; vm=1; shift 2 ;;
        *) pass+=("$1"); shift ;;
    esac
done

tests/vm/install-deps.sh iptables >/dev/null
cargo build --release --quiet
bin=$(cargo_exe storm bench --bench storm 2>/dev/null)
out="$ROOT/target/storm"
mkdir -p "$out"
args=(--plugctl "$ROOT/target/release/plugctl" --out "$out" "${pass[@]}")

# Debian 12's libnl looks for its tc plugins under libnl/ but installs them
# under libnl-3/ (netlink-reference.md trip-up 15); Yelp's method needs them.
libnl_fix='[ -e /usr/lib/x86_64-linux-gnu/libnl ] || ln -s libnl-3 /usr/lib/x86_64-linux-gnu/libnl'

if ((vm == 0)) && kernel_has_plug; then
    echo "# native run"
    bash -c "$libnl_fix"
    "$bin" "${args[@]}"
else
    echo "# VM run on Debian $kernel (TCG)"
    # The guest's /usr is a throw-away overlay: the libnl fix stays in the VM.
    tests/vm/run.sh --kernel "$kernel" --cpus 2 --memory 2G --timeout 5400 --rwdir "$out" -- \
        bash -c "$libnl_fix; exec \"\$@\"" storm "$bin" "${args[@]}"
fi
echo "# wrote $out/table.md, $out/latency.svg, $out/samples.csv"
