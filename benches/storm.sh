#!/usr/bin/env bash
# The reload-storm benchmark, one command: builds plugctl and the storm
# (benches/storm.rs), runs every method side by side — natively if this
# kernel has sch_prio/sch_plug/cls_fw, otherwise in the VM lab on Debian's
# 6.1 kernel — and writes target/storm/table.md (under $CARGO_TARGET_DIR
# if set), latency.svg, samples.csv.
#
#   benches/storm.sh [--vm] [--kernel 6.1|6.12] [--saturation] [STORM-ARGS...]
#
# --saturation: the overload scenario — naive, Yelp and plugctl at 300 new
# connections/s (above what HAProxy sustains under TCG; it keeps up at 150)
# with a reload 500 ms after the previous one ended; writes
# target/storm/saturation/. A hold must not lose more than naive here.
#
# STORM-ARGS: --rate N (default 200/s: the TCG ceiling is ~300), --reloads N
# (default 50 per method), --gap-ms N (pause between reloads, default
# 1000), --plugctl-flags "FLAGS" (plugctl's flags; default "--max-hold 30s",
# the TCG scaling; none: no flags at all), --method M
# (repeatable; default all: naive plugctl yelp syn-drop seamless sysctl cold
# cold+sysctl cold+syn-drop cold+plugctl).
set -euo pipefail

ROOT=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
# shellcheck source=tests/vm/lib.sh
source tests/vm/lib.sh
saturation=0
args_in=()
for a in "$@"; do
    if [[ $a == --saturation ]]; then saturation=1; else args_in+=("$a"); fi
done
parse_where_args "" ${args_in[@]+"${args_in[@]}"}

tests/vm/install-deps.sh iptables >/dev/null
bin=$(bench_exe storm)
target=${CARGO_TARGET_DIR:-$ROOT/target}
out="$target/storm"
if ((saturation)); then
    out="$out/saturation"
    REST=(--rate 300 --gap-ms 500 --reloads 40 --method naive --method yelp --method plugctl
        ${REST[@]+"${REST[@]}"})
fi
mkdir -p "$out"
args=(--plugctl "$target/release/plugctl" --out "$out" ${REST[@]+"${REST[@]}"})

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
