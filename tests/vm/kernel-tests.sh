#!/usr/bin/env bash
# Builds the kernel tests (tests/kernel.rs, feature vm-tests) and runs them
# inside a VM on each stock Debian kernel: Debian 12's 6.1 and Debian 13's
# 6.12 (they have sch_prio, sch_plug and cls_fw; this host may not).
#
#   tests/vm/kernel-tests.sh [--kernel 6.1|6.12]... [-- TEST-ARGS...]
#
# Without --kernel both kernels run. TEST-ARGS go to the test binary (a name
# filter, --nocapture, ...). Exits non-zero if any kernel's run fails.
set -euo pipefail

HERE=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd -- "$HERE/../.." && pwd)
# shellcheck source=tests/vm/lib.sh
source "$HERE/lib.sh"

kernels=()
while (($#)); do
    case $1 in
        --kernel) kernels+=("${2:?--kernel needs a value}"); shift 2 ;;
        --) shift; break ;;
        *) echo "kernel-tests.sh: unexpected argument '$1'" >&2; exit 2 ;;
    esac
done
((${#kernels[@]})) || kernels=(6.1 6.12)

cd "$ROOT"
# The examples too: library_example_runs runs examples/agent.rs in the VM.
cargo build --quiet --examples
bin=$(cargo_exe kernel test --features vm-tests --test kernel)
[[ -x $bin ]] || { echo "kernel-tests.sh: could not build the kernel test binary" >&2; exit 1; }

# The HAProxy test is a load test: 100 new connections/s on one vCPU under
# TCG. Beside it, the other tests' processes start seconds late and their
# waits stretch (a CI run held one plug for 19 s). So by default it runs alone,
# after the others, in the same VM boot. With TEST-ARGS, those decide.
load_test=haproxy_reloads_under_load_lose_no_connection
if (($#)); then
    guest=("$bin" --test-threads=2 --nocapture "$@")
else
    guest=(bash -c '"$1" --test-threads=2 --nocapture --skip "$2" && "$1" --nocapture --exact "$2"' \
        kernel-tests "$bin" "$load_test")
fi

status=0
for k in "${kernels[@]}"; do
    echo "=== kernel tests on Debian $k kernel ==="
    start=$(date +%s)
    # 1800 s: the hand-over tests (each reload model, HAProxy's under load)
    # took the parallel phase to ~700 s on a busy 2-core host under TCG, and
    # the HAProxy load test runs after it.
    if "$HERE/run.sh" --kernel "$k" --timeout 1800 -- "${guest[@]}"; then
        echo "=== $k: passed in $(($(date +%s) - start)) s (boot included) ==="
    else
        rc=$?
        echo "=== $k: FAILED (exit $rc) after $(($(date +%s) - start)) s ===" >&2
        status=1
    fi
done
exit "$status"
