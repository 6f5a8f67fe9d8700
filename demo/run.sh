#!/usr/bin/env bash
# The plugctl demo: builds plugctl, then — natively if this kernel has
# sch_prio/sch_plug/cls_fw, otherwise inside a VM booting Debian's stock 6.1
# kernel — sets up the tree in a private network namespace, holds a real TCP
# connect while the plug is closed, releases it, and tears everything down.
# Nothing on this machine's own network changes. Run as root.
#
#   demo/run.sh [--vm] [--kernel 6.1|6.12]
set -euo pipefail

ROOT=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
# shellcheck source=tests/vm/lib.sh
source tests/vm/lib.sh
parse_where_args "demo/run.sh [--vm] [--kernel 6.1|6.12]" "$@"

cargo build --release --quiet
# Where that build went: $CARGO_TARGET_DIR (relative to $ROOT) when set.
target_dir=${CARGO_TARGET_DIR:-target}
[[ $target_dir == /* ]] || target_dir="$ROOT/$target_dir"
export PLUGCTL="$target_dir/release/plugctl"

if run_natively; then
    echo "# this kernel has sch_prio, sch_plug and cls_fw: running natively in a private netns"
    exec unshare --net -- bash "$ROOT/demo/scenario.sh"
fi
echo "# running in a VM on Debian's $KERNEL kernel (this kernel lacks sch_prio/sch_plug/cls_fw, or --vm)"
tests/vm/install-deps.sh >/dev/null
exec tests/vm/run.sh --kernel "$KERNEL" --env PLUGCTL -- unshare --net -- bash "$ROOT/demo/scenario.sh"
