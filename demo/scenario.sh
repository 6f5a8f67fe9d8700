#!/usr/bin/env bash
# The demo's scenario (demo/run.sh runs it in a private network namespace):
# a "balancer" listening on 169.254.255.254:8080, a client connecting while
# the plug is closed, and the release that lets it in.
set -euo pipefail
: "${PLUGCTL:?}"
state=$(mktemp -d)
p() { echo "\$ plugctl $*"; "$PLUGCTL" --state-dir "$state" "$@"; }

# Debian's python3 starts faster than a pyenv shim (it matters under TCG).
py=python3; [ -x /usr/bin/python3 ] && py=/usr/bin/python3
wait_for() { for _ in $(seq 200); do eval "$1" && return 0; sleep 0.1; done; echo "timed out: $1" >&2; exit 1; }

ip link set lo up
ip addr add 169.254.255.254/32 dev lo

p setup
echo; p setup
echo
"$py" - <<'PY' &
import socket, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("169.254.255.254", 8080)); s.listen(16)
time.sleep(30)
PY
listener=$!
wait_for 'ss -Hltn "sport = :8080" | grep -q 8080'

p plug
echo "# a client connects to 169.254.255.254:8080 while the plug is closed"
"$py" - <<'PY' &
import socket, time
t = time.monotonic()
socket.create_connection(("169.254.255.254", 8080), timeout=20)
print(f"# client: connected after {(time.monotonic() - t) * 1000:.0f} ms, no error", flush=True)
PY
client=$!
wait_for '"$PLUGCTL" --state-dir "$state" status --json | grep -q "\"held_packets\":1"'
sleep 1
echo; p status
echo; p release
wait "$client"
echo; p status
echo; p teardown
kill "$listener" 2>/dev/null || true
rm -rf "$state"
