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
parse_where_args "" "$@"

tests/vm/install-deps.sh iptables >/dev/null
cargo build --release --quiet
bin=$(cargo_exe storm bench --bench storm 2>/dev/null)
out="$ROOT/target/storm"
mkdir -p "$out"
args=(--plugctl "$ROOT/target/release/plugctl" --out "$out" "${REST[@]}")

if run_natively; then
    echo "# native run; for Yelp's method: $LIBNL_FIX"
    bash -c "$LIBNL_FIX"
    "$bin" "${args[@]}"
else
    echo "# VM run on Debian $KERNEL (TCG)"
    tests/vm/run.sh --kernel "$KERNEL" --cpus 2 --memory 2G --timeout 5400 --rwdir "$out" -- \
        bash -c "$LIBNL_FIX; exec \"\$@\"" storm "$bin" "${args[@]}"
fi
echo "# wrote $out/table.md, $out/latency.svg, $out/samples.csv"
