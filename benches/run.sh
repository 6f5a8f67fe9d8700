#!/usr/bin/env bash
# Runs the netlink benchmarks (benches/netlink.rs) where the kernel has
# sch_prio/sch_plug/cls_fw: natively if this one does, else in the VM lab on
# Debian's 6.1 kernel. Then prints each kernel figure as a ratio to the bare
# netlink round trip measured in the same run.
#
#   benches/run.sh [--vm] [--kernel 6.1|6.12]
set -euo pipefail

ROOT=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
# shellcheck source=tests/vm/lib.sh
source tests/vm/lib.sh
parse_where_args "benches/run.sh [--vm] [--kernel 6.1|6.12]" "$@"

bin=$(cargo_exe netlink bench --bench netlink 2>/dev/null)
[[ -x $bin ]] || { echo "benches/run.sh: could not build the benchmark" >&2; exit 1; }
cargo build --release --quiet

out="$ROOT/target/bench-results"
mkdir -p "$out"
export CRITERION_HOME="$out/criterion"

if run_natively; then
    echo "# native run (this kernel has the modules)"
    "$bin" --bench --noplot
else
    echo "# VM run on Debian $KERNEL (TCG: absolute times are 25-90x native; ratios still compare)"
    tests/vm/install-deps.sh iptables >/dev/null
    tests/vm/run.sh --kernel "$KERNEL" --cpus 1 --timeout 1800 --rwdir "$out" --env CRITERION_HOME -- \
        bash -c "$LIBNL_FIX; exec \"\$@\"" guest "$bin" --bench --noplot
fi

python3 - "$CRITERION_HOME" <<'PY'
import json, os, sys
root = sys.argv[1]
est = {}
for group in sorted(os.listdir(root)):
    gdir = os.path.join(root, group)
    for bench in sorted(os.listdir(gdir)) if os.path.isdir(gdir) else []:
        f = os.path.join(gdir, bench, "new", "estimates.json")
        b = os.path.join(gdir, bench, "new", "benchmark.json")
        if os.path.exists(f) and os.path.exists(b):
            name = json.load(open(b))["function_id"]
            est[(group, name)] = json.load(open(f))["median"]["point_estimate"]
def show(group, base):
    rows = [(n, v) for (g, n), v in est.items() if g == group]
    if not rows:
        return
    ref = dict(rows).get(base)
    print(f"\n{group}:")
    for n, v in rows:
        ratio = f"{v / ref:8.1f}x {base}" if ref else ""
        print(f"  {n:48s} {v / 1e3:12.1f} us   {ratio}")
show("plug+release", "bare netlink round trip")
show("setup+teardown", "plugctl setup + teardown")
rows = {n: v for (g, n), v in est.items() if g == "steady-state"}
if rows:
    print("\nsteady-state (each vs no tree, same run):")
    for what in ("connect", "send 4 MiB"):
        a = rows.get(f"{what}, no tree")
        if not a:
            continue
        print(f"  {what:12s} {'no tree':30s} {a / 1e3:10.1f} us")
        for label in ("tree installed (plug open)", "tc qdiscs and filters only", "nft mark rule only", "no tree, again at the end"):
            b = rows.get(f"{what}, {label}")
            if b:
                print(f"  {what:12s} {label:30s} {b / 1e3:10.1f} us   overhead {100 * (b / a - 1):+.1f}%")
show("wire", "build plug change")
PY
