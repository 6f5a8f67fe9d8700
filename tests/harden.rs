//! Host tests of what a local user, a tired operator or a broken pipe can
//! do to plugctl (issue "harden"): each ran against the code before the fix
//! and failed. They need no plug, so they run on this machine's kernel, each
//! in its own network namespace; what needs a plug is in tests/kernel.rs.

mod common;

use common::in_netns;

fn rc_lines(out: &str) -> Vec<&str> {
    out.lines().filter(|l| l.starts_with("rc=")).collect()
}

/// The state directory and lock file get explicit modes, whatever the
/// umask: before, `umask 000` made a world-writable directory.
#[test]
fn the_state_directory_has_explicit_modes_under_any_umask() {
    for umask in ["000", "077"] {
        let r = in_netns(&format!(
            r#"umask {umask}
            $PLUGCTL --state-dir "$STATE/d" release; echo "rc=$?"
            stat -c '%a %u' "$STATE/d"; stat -c '%a %u' "$STATE"/d/*.lock"#
        ));
        // No plug on this kernel (exit 8), but the state was opened first.
        assert_eq!(rc_lines(&r.stdout), ["rc=8"], "{}{}", r.stdout, r.stderr);
        assert!(
            r.stdout.contains("\n755 0\n600 0"),
            "umask {umask}: {}",
            r.stdout
        );
    }
}

/// A state directory that others could change is refused in one line with
/// its own exit code (16), and nothing is written into it.
#[test]
fn an_unsafe_state_directory_is_refused() {
    let r = in_netns(
        r#"mkdir -p "$STATE"
        mkdir -m 777 "$STATE/wide"; chmod 777 "$STATE/wide"
        $PLUGCTL --state-dir "$STATE/wide" release 2>"$STATE/err"; echo "rc=$?"; cat "$STATE/err"
        mkdir "$STATE/theirs"; chown 65534 "$STATE/theirs"
        $PLUGCTL --state-dir "$STATE/theirs" release 2>"$STATE/err"; echo "rc=$?"; cat "$STATE/err"
        mkdir "$STATE/real"; ln -s real "$STATE/link"
        $PLUGCTL --state-dir "$STATE/link" release 2>"$STATE/err"; echo "rc=$?"; cat "$STATE/err"
        ls -A "$STATE/wide" "$STATE/theirs" "$STATE/real" | tr '\n' ' '; echo"#,
    );
    assert_eq!(
        rc_lines(&r.stdout),
        ["rc=16", "rc=16", "rc=16"],
        "{}{}",
        r.stdout,
        r.stderr
    );
    assert!(
        r.stdout.contains("it is writable by others"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("it belongs to uid 65534"), "{}", r.stdout);
    assert!(r.stdout.contains("it is a symlink"), "{}", r.stdout);
    assert_eq!(r.stdout.matches("plugctl: error: refusing").count(), 3);
    // Nothing was written into any of them.
    let listing = r.stdout.lines().last().unwrap_or("");
    assert!(
        !listing.contains(".lock") && !listing.contains(".json"),
        "{listing}"
    );
}

/// Symlinks planted in the state directory are never followed: before,
/// root created the file a planted lock symlink pointed to.
#[test]
fn planted_symlinks_are_not_followed() {
    let r = in_netns(
        r#"mkdir -p "$STATE/s"; chmod 755 "$STATE/s"
        ns=$(stat -L -c %i /proc/self/ns/net)
        ln -s "$STATE/victim-lock" "$STATE/s/lo.netns-$ns.lock"
        ln -s "$STATE/victim-record" "$STATE/s/lo.netns-$ns.json"
        $PLUGCTL --state-dir "$STATE/s" release 2>"$STATE/err"; echo "rc=$?"
        $PLUGCTL --state-dir "$STATE/s" plug 2>>"$STATE/err"; echo "rc=$?"
        ls "$STATE" | grep -c victim
        cat "$STATE/err""#,
    );
    // The lock file is a symlink: refused (9) before anything else.
    assert_eq!(
        rc_lines(&r.stdout),
        ["rc=9", "rc=8"],
        "{}{}",
        r.stdout,
        r.stderr
    );
    assert!(r.stdout.contains("it is a symlink"), "{}", r.stdout);
    assert!(
        r.stdout.contains("\n0\n"),
        "a victim file appeared: {}",
        r.stdout
    );
}

/// No other user can take the lock that root's `release` needs (before:
/// `flock -x` as nobody blocked `release` forever), and a root process
/// stuck on it delays a release by a bounded time only.
#[test]
fn no_one_can_block_a_release() {
    let r = in_netns(
        r#"wait_for() { for _ in $(seq 400); do [ -e "$1" ] && return; sleep 0.05; done; echo "never: $1"; }
        $PLUGCTL --state-dir "$STATE" release 2>/dev/null; echo "rc=$?"
        lock=$(ls "$STATE"/*.lock)
        # As nobody: neither flock nor an fcntl read lock can be had.
        setpriv --reuid=65534 --regid=65534 --clear-groups flock -n -s "$lock" true 2>/dev/null && echo "nobody-flock=ok"
        setpriv --reuid=65534 --regid=65534 --clear-groups cat "$lock" 2>/dev/null && echo "nobody-open=ok"
        stat -c 'lock-mode=%a' "$lock"
        # A root flock (what an older plugctl took) no longer blocks anything.
        python3 -c '
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR)
fcntl.flock(fd, fcntl.LOCK_EX)
open(sys.argv[2], "w").close()
time.sleep(30)' "$lock" "$STATE/flocked" & f=$!
        wait_for "$STATE/flocked"
        start=$(date +%s%N)
        timeout 20 $PLUGCTL --state-dir "$STATE" release 2>/dev/null; echo "rc=$?"
        echo "ms=$(( ($(date +%s%N) - start) / 1000000 ))"
        kill $f
        # A stuck process holding plugctl's own (OFD) lock: bounded wait.
        python3 -c '
import fcntl, os, struct, sys, time
fd = os.open(sys.argv[1], os.O_RDWR)
fcntl.fcntl(fd, 37, struct.pack("hhqqi", fcntl.F_WRLCK, 0, 0, 1, 0))  # F_OFD_SETLK
open(sys.argv[2], "w").close()
time.sleep(30)' "$lock" "$STATE/ofd-locked" & p=$!
        wait_for "$STATE/ofd-locked"
        start=$(date +%s%N)
        timeout 20 $PLUGCTL --state-dir "$STATE" release; echo "rc=$?"
        echo "ms=$(( ($(date +%s%N) - start) / 1000000 ))"
        kill $p"#,
    );
    assert!(!r.stdout.contains("never:"), "{}{}", r.stdout, r.stderr);
    let rcs = rc_lines(&r.stdout);
    assert_eq!(rcs, ["rc=8", "rc=8", "rc=8"], "{}{}", r.stdout, r.stderr);
    assert!(!r.stdout.contains("nobody-flock=ok"), "{}", r.stdout);
    assert!(!r.stdout.contains("nobody-open=ok"), "{}", r.stdout);
    assert!(r.stdout.contains("lock-mode=600"), "{}", r.stdout);
    let ms: Vec<u64> = r
        .stdout
        .lines()
        .filter_map(|l| l.strip_prefix("ms="))
        .filter_map(|v| v.parse().ok())
        .collect();
    assert_eq!(ms.len(), 2, "{}", r.stdout);
    assert!(
        ms[0] < 2_000,
        "a root flock delayed release by {} ms",
        ms[0]
    );
    assert!(
        (2_500..10_000).contains(&ms[1]),
        "a stuck lock holder delayed release by {} ms (bound: 3 s)",
        ms[1]
    );
    // Without a plug on this kernel the release then finds no tree; with
    // one it opens the plug anyway (tests/kernel.rs).
    assert!(r.stderr.contains("not set up"), "{}", r.stderr);
}

/// A closed or broken stdout/stderr never stops a reload: CMD still runs,
/// the exit code is still CMD's and the `--record` line is still written
/// (before: exit 101, and where a warning came first CMD never ran).
#[test]
fn a_closed_pipe_never_stops_a_reload() {
    let r = in_netns(
        r#"mkdir -p "$STATE"
        # stderr into a pipe whose reader closed it; the hold fails on this
        # kernel, so a warning is written before CMD starts.
        $PLUGCTL --state-dir "$STATE/s" reload --record "$STATE/rec" -- sh -c 'touch "$1"; exit 3' sh "$STATE/ran1" 2>&1 >/dev/null | (exec 0<&-; sleep 1)
        echo "rc=${PIPESTATUS[0]}"
        # stdout closed, --json.
        $PLUGCTL --state-dir "$STATE/s" reload --json --record "$STATE/rec" -- touch "$STATE/ran2" >&- 2>/dev/null
        echo "rc=$?"
        # stderr closed outright.
        $PLUGCTL --state-dir "$STATE/s" reload --record "$STATE/rec" -- touch "$STATE/ran3" 2>&-
        echo "rc=$?"
        # status into a closed pipe: its own exit code (10, tree missing), no panic.
        $PLUGCTL --state-dir "$STATE/s" status --json | (exec 0<&-; sleep 1)
        echo "rc=${PIPESTATUS[0]}"
        $PLUGCTL --state-dir "$STATE/s" setup --dry-run | (exec 0<&-; sleep 1)
        echo "rc=${PIPESTATUS[0]}"
        ls "$STATE" | grep -c '^ran'
        wc -l <"$STATE/rec""#,
    );
    assert_eq!(
        rc_lines(&r.stdout),
        ["rc=3", "rc=0", "rc=0", "rc=10", "rc=0"],
        "{}{}",
        r.stdout,
        r.stderr
    );
    let tail: Vec<&str> = r.stdout.lines().rev().take(2).collect();
    assert_eq!(tail, ["3", "3"], "3 commands ran, 3 records: {}", r.stdout);
    assert!(!r.stderr.contains("panicked"), "{}", r.stderr);
}

/// A closed stdin, stdout or stderr is opened on /dev/null before plugctl
/// opens anything (std's start-up did this; plugctl's `main` skips that
/// start-up and must do it): else its first pipe, socket or state file
/// would be fd 1 and get the output, and CMD would inherit the hole.
#[test]
fn closed_standard_descriptors_become_dev_null() {
    let r = in_netns(
        r#"mkdir -p "$STATE"
        # The shell's own descriptors, read before any redirection of its own.
        probe='r=$(for fd in 0 1 2; do readlink "/proc/$$/fd/$fd" 2>/dev/null || echo closed; done); echo "$r" >"$1"'
        $PLUGCTL --state-dir "$STATE/s" reload --json -- sh -c "$probe" sh "$STATE/fds" <&- >&- 2>&-
        echo "rc=$?"
        cat "$STATE/fds"
        # Nothing plugctl wrote landed in its state files.
        cat "$STATE/s"/* 2>/dev/null | grep -c '"command"' || true"#,
    );
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(
        lines,
        ["rc=0", "/dev/null", "/dev/null", "/dev/null", "0"],
        "{}{}",
        r.stdout,
        r.stderr
    );
}

/// Non-UTF-8 arguments and paths are passed on byte for byte, and bad ones
/// in flags that must be text are a bad command line (before: exit 101).
#[test]
fn non_utf8_arguments_and_paths() {
    let r = in_netns(
        r#"mkdir -p "$STATE"
        dir="$STATE/$(printf 'st\377')"
        $PLUGCTL --state-dir "$dir" reload --record "$STATE/$(printf 'r\376')" -- printf '%s' "$(printf '\376\377')" >"$STATE/out" 2>/dev/null
        echo "rc=$?"
        od -An -tx1 "$STATE/out"
        ls "$STATE" | od -An -c | tr -d ' \n'; echo
        $PLUGCTL --device "$(printf 'l\377')" status 2>/dev/null; echo "rc=$?"
        $PLUGCTL reload --user "$(printf 'u\377')" -- true 2>/dev/null; echo "rc=$?""#,
    );
    assert_eq!(
        rc_lines(&r.stdout),
        ["rc=0", "rc=2", "rc=2"],
        "{}{}",
        r.stdout,
        r.stderr
    );
    assert!(r.stdout.contains(" fe ff"), "{}", r.stdout);
    assert!(r.stdout.contains("r376"), "the record file: {}", r.stdout);
}

/// Durations out of range are a bad command line (exit 2, CMD not run),
/// not an overflow panic; out of range in the file they are a bad config.
#[test]
fn absurd_durations_are_refused() {
    let r = in_netns(
        r#"mkdir -p "$STATE"
        for d in 18446744073709551615s 0s 11min; do
            $PLUGCTL reload --max-hold "$d" -- touch "$STATE/ran" 2>>"$STATE/err"; echo "rc=$?"
        done
        $PLUGCTL reload --settle 1000h -- touch "$STATE/ran" 2>>"$STATE/err"; echo "rc=$?"
        printf 'max_hold = "0s"\n' >"$STATE/c.toml"
        $PLUGCTL --config "$STATE/c.toml" reload -- touch "$STATE/ran" 2>>"$STATE/err"; echo "rc=$?"
        test -e "$STATE/ran" && echo CMD-RAN
        cat "$STATE/err""#,
    );
    assert_eq!(
        rc_lines(&r.stdout),
        ["rc=2", "rc=2", "rc=2", "rc=2", "rc=3"],
        "{}{}",
        r.stdout,
        r.stderr
    );
    assert!(!r.stdout.contains("CMD-RAN"), "{}", r.stdout);
    assert_eq!(
        r.stdout.matches("plugctl: error:").count(),
        5,
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("max_hold must be between"),
        "{}",
        r.stdout
    );
}

/// `plug --for` is validated before anything is sent: a value that is no
/// duration, zero or over an hour is a usage error (exit 2), and the
/// state directory is never created.
#[test]
fn a_bad_plug_lease_is_a_usage_error() {
    let r = in_netns(
        r#"for d in xyz 0s 2h -1s; do
            $PLUGCTL --state-dir "$STATE/s" plug --for "$d" 2>>"$STATE.err"; echo "rc=$?"
        done
        test -e "$STATE/s" && echo STATE-CREATED
        cat "$STATE.err"; rm -f "$STATE.err""#,
    );
    assert_eq!(
        rc_lines(&r.stdout),
        ["rc=2", "rc=2", "rc=2", "rc=2"],
        "{}{}",
        r.stdout,
        r.stderr
    );
    assert!(!r.stdout.contains("STATE-CREATED"), "{}", r.stdout);
    assert!(
        r.stdout.contains("a lease must be between 1ms and 1h"),
        "{}",
        r.stdout
    );
}

/// SIGHUP (a dropped ssh session) and SIGQUIT no longer kill plugctl
/// mid-reload: it releases, waits for CMD and writes the record (before:
/// exit 129 and no record). SIGHUP is not forwarded; SIGQUIT is.
#[test]
fn sighup_and_sigquit_leave_a_record() {
    let r = in_netns(
        r#"mkdir -p "$STATE"
        # Each step waits for what it needs to have happened (CMD's handlers
        # installed, plugctl's note of the signal), never for a fixed time.
        wait_for() { for _ in $(seq 400); do grep -qs "$2" "$1" && return; sleep 0.05; done; echo "never: $2 in $1"; }
        for sig in HUP QUIT; do
            $PLUGCTL --state-dir "$STATE/s" reload --record "$STATE/rec.$sig" -- \
                python3 -c 'import os, signal, sys, time
signal.signal(signal.SIGHUP, lambda *a: sys.exit(11))
signal.signal(signal.SIGQUIT, lambda *a: sys.exit(12))
open(sys.argv[1], "w").write("ready")
for _ in range(600):
    if os.path.exists(sys.argv[2]):
        break
    time.sleep(0.05)' "$STATE/ready.$sig" "$STATE/go.$sig" 2>"$STATE/err.$sig" &
            p=$!
            wait_for "$STATE/ready.$sig" ready
            kill -$sig $p
            wait_for "$STATE/err.$sig" "got signal"
            touch "$STATE/go.$sig"
            wait $p; echo "rc=$?"
            cat "$STATE/rec.$sig"; echo
        done"#,
    );
    assert!(!r.stdout.contains("never:"), "{}{}", r.stdout, r.stderr);
    assert_eq!(
        rc_lines(&r.stdout),
        ["rc=0", "rc=12"],
        "HUP not forwarded (CMD ends normally), QUIT forwarded: {}{}",
        r.stdout,
        r.stderr
    );
    assert!(r.stdout.contains(r#""signal":1,"#), "{}", r.stdout);
    assert!(r.stdout.contains(r#""signal":3,"#), "{}", r.stdout);
}
