# Helpers shared by the scripts that build something and run it in the VM lab
# (tests/vm/kernel-tests.sh, demo/run.sh, benches/run.sh, benches/storm.sh).
# Source it; it defines functions only.

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

# kernel_has_plug: does this kernel have sch_prio, sch_plug and cls_fw?
# (Tried in a throw-away network namespace: nothing here changes.)
kernel_has_plug() {
    unshare --net -- bash -c 'tc qdisc add dev lo root handle 1: prio bands 4 &&
        tc qdisc add dev lo parent 1:4 handle 40: plug &&
        tc filter add dev lo parent 1: protocol ip prio 1 handle 1 fw classid 1:4' >/dev/null 2>&1
}
