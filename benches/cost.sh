#!/usr/bin/env bash
# The cost of one reload (benches/cost.rs): `plugctl reload -- true` against
# Yelp's `nl-qdisc-add … --buffer; true; nl-qdisc-add … --release-indefinite`,
# interleaved, same plug; prints the medians and the ratio plugctl/Yelp.
# Natively if this kernel has sch_prio/sch_plug/cls_fw, else in the VM lab
# on Debian's 6.1 kernel.
#
#   benches/cost.sh [--vm] [--kernel 6.1|6.12] [--rounds N] [--plugctl PATH]...
#
# Without --plugctl it times this checkout's release build; give --plugctl
# more than once to time other builds (e.g. main's) in the same rounds.
set -euo pipefail

ROOT=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
# shellcheck source=tests/vm/lib.sh
source tests/vm/lib.sh
parse_where_args "" "$@"

tests/vm/install-deps.sh >/dev/null
bin=$(bench_exe cost)
[[ -x $bin ]] || { echo "benches/cost.sh: could not build the benchmark" >&2; exit 1; }
args=("${REST[@]}")
[[ " ${args[*]} " == *" --plugctl "* ]] ||
    args+=(--plugctl "${CARGO_TARGET_DIR:-$ROOT/target}/release/plugctl")

if run_natively; then
    echo "# native run; for Yelp's method: $LIBNL_FIX"
    bash -c "$LIBNL_FIX"
    "$bin" "${args[@]}"
else
    echo "# VM run on Debian $KERNEL (TCG: absolute times are 25-90x native; the ratio compares)"
    tests/vm/run.sh --kernel "$KERNEL" --cpus 1 --timeout 1800 -- \
        bash -c "$LIBNL_FIX; exec \"\$@\"" cost "$bin" "${args[@]}"
fi
