//! Kernel tests: need sch_prio, sch_plug and cls_fw, so they run inside a
//! VM booting stock Debian kernels (`tests/vm/kernel-tests.sh`, built
//! with `--features vm-tests`). Each test moves its own thread into a fresh
//! network namespace, so they run side by side, and checks plugctl's work
//! with independent tools (`tc`, `nft`) and real TCP connections.

mod common;

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::Command;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use plugctl::{Config, Controller};

/// Move the calling thread (and what it spawns) into a new network
/// namespace with lo up and the test addresses on it.
fn fresh_netns() {
    // SAFETY: unshare only affects the calling thread's namespaces.
    let rc = unsafe { libc::unshare(libc::CLONE_NEWNET) };
    assert_eq!(
        rc,
        0,
        "unshare(CLONE_NEWNET): {}",
        std::io::Error::last_os_error()
    );
    sh("ip link set lo up && ip addr add 169.254.255.254/32 dev lo");
}

fn sh(script: &str) -> String {
    let out = Command::new("bash")
        .args(["-c", script])
        .output()
        .expect("bash");
    assert!(
        out.status.success(),
        "{script}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

struct Plugctl {
    state: String,
    args: Vec<String>,
}

impl Plugctl {
    fn new(args: &[&str]) -> Plugctl {
        Plugctl {
            state: common::tempdir(),
            args: args.iter().map(|s| s.to_string()).collect(),
        }
    }
    fn run(&self, cmd: &[&str]) -> (i32, String, String) {
        let out = Command::new(common::plugctl_bin())
            .arg("--state-dir")
            .arg(&self.state)
            .args(&self.args)
            .args(cmd)
            .output()
            .expect("plugctl runs");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }
    fn ok(&self, cmd: &[&str]) -> String {
        let (code, out, err) = self.run(cmd);
        assert_eq!(code, 0, "plugctl {cmd:?}: {out}{err}");
        out
    }
    fn config(&self) -> Config {
        let mut c = Config {
            state_dir: self.state.clone().into(),
            ..Config::default()
        };
        let mut it = self.args.iter();
        while let Some(a) = it.next() {
            let v = it.next().expect("flag value");
            match a.as_str() {
                "--address" => {
                    if c.addresses == Config::default().addresses {
                        c.addresses.clear();
                    }
                    c.addresses.push(v.parse().expect("address"))
                }
                "--port" => c.ports.push(v.parse().expect("port")),
                other => panic!("unsupported flag in test: {other}"),
            }
        }
        c
    }
}

fn tc_and_nft() -> String {
    sh("tc -s qdisc show dev lo; tc filter show dev lo; nft list ruleset")
}

#[test]
fn setup_builds_exactly_the_tree_and_teardown_restores() {
    fresh_netns();
    let before_tc = sh("tc qdisc show dev lo");
    let before_nft = sh("nft list ruleset");
    let p = Plugctl::new(&[]);
    let out = p.ok(&["setup"]);
    assert!(out.contains("added qdisc plug 40:"), "{out}");

    let q = sh("tc qdisc show dev lo");
    println!("{q}");
    assert!(q.contains("qdisc prio 1: root refcnt"), "{q}");
    assert!(
        q.contains("bands 4 priomap 1 2 2 2 1 2 0 0 1 1 1 1 1 1 1 1"),
        "{q}"
    );
    for (h, parent) in [("10:", "1:1"), ("20:", "1:2"), ("30:", "1:3")] {
        assert!(
            q.contains(&format!("qdisc pfifo {h} parent {parent}")),
            "{q}"
        );
    }
    assert!(q.contains("qdisc plug 40: parent 1:4"), "{q}");
    assert_eq!(q.lines().count(), 5, "exactly five qdiscs: {q}");

    let f = sh("tc filter show dev lo");
    println!("{f}");
    assert!(f.contains("filter parent 1: protocol ip pref 1 fw"), "{f}");
    assert!(
        f.contains("filter parent 1: protocol ipv6 pref 2 fw"),
        "{f}"
    );
    assert_eq!(f.matches("handle 0x1 classid 1:4").count(), 2, "{f}");

    let n = sh("nft list ruleset");
    println!("{n}");
    assert!(n.contains("table inet plugctl"), "{n}");
    assert!(
        n.contains("type filter hook output priority mangle; policy accept;"),
        "{n}"
    );
    // nft 1.0.6 prints `tcp flags & (syn|ack) == syn` as `tcp flags syn / syn,ack`.
    assert!(
        n.contains("tcp flags syn / syn,ack ip daddr @lease4 meta mark set 0x00000001")
            || n.contains(
                "tcp flags & (syn | ack) == syn ip daddr @lease4 meta mark set 0x00000001"
            ),
        "{n}"
    );
    // The lease set, empty while nothing is held.
    assert!(
        n.contains("set lease4 {\n\t\ttype ipv4_addr\n\t\tflags timeout\n\t}"),
        "{n}"
    );
    assert_eq!(n.matches("meta mark set").count(), 1, "{n}");

    // Idempotent: the second run changes nothing and says so.
    let snapshot = sh("tc qdisc show dev lo; tc filter show dev lo; nft list ruleset");
    assert_eq!(p.ok(&["setup"]).trim(), "nothing to change");
    assert_eq!(
        sh("tc qdisc show dev lo; tc filter show dev lo; nft list ruleset"),
        snapshot
    );
    assert_eq!(p.run(&["status"]).0, 0);

    let out = p.ok(&["teardown"]);
    assert!(out.contains("deleted nft table inet plugctl"), "{out}");
    assert_eq!(sh("tc qdisc show dev lo"), before_tc);
    assert_eq!(sh("nft list ruleset"), before_nft);
    assert_eq!(sh("tc filter show dev lo"), "");
    assert_eq!(
        p.run(&["status"]).0,
        10,
        "status after teardown: tree missing"
    );
}

/// Start a connect in the background; the receiver gets the time it completed.
fn connect_in_background(addr: SocketAddr) -> mpsc::Receiver<Result<Instant, String>> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        // Long enough for any hold in these tests (the kernel itself gives up
        // after tcp_syn_retries, ~127 s): a test's own assertions decide.
        let r = TcpStream::connect_timeout(&addr, Duration::from_secs(120))
            .map(|_| Instant::now())
            .map_err(|e| e.to_string());
        let _ = tx.send(r);
    });
    rx
}

fn listen(addr: &str) -> TcpListener {
    TcpListener::bind(addr).unwrap_or_else(|e| panic!("bind {addr}: {e}"))
}

/// Measure one held-then-released connect to `target`.
fn held_then_released(p: &Plugctl, target: &str, others: &[&str]) {
    let _l = listen(target);
    let others_l: Vec<TcpListener> = others.iter().map(|a| listen(a)).collect();
    let mut ctl = Controller::new(p.config()).expect("config");
    // A lease far longer than the test (under TCG, process starts take
    // seconds): the lease is not what this measures.
    ctl.hold_manual(Some(Duration::from_secs(600)))
        .expect("plug");

    let rx = connect_in_background(target.parse().unwrap());
    let plugged_at = Instant::now();
    // Unmarked traffic flows while plugged.
    for (a, _l) in others.iter().zip(&others_l) {
        let t = Instant::now();
        TcpStream::connect_timeout(&a.parse().unwrap(), Duration::from_secs(2))
            .unwrap_or_else(|e| panic!("unmarked connect to {a} while plugged: {e}"));
        println!("unmarked connect to {a} while plugged: {:?}", t.elapsed());
    }
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        rx.try_recv().is_err(),
        "connect to {target} completed while plugged"
    );
    let status = p.ok(&["status", "--json"]);
    assert!(status.contains("\"state\":\"closed\""), "{status}");
    assert!(
        status.contains("\"held_packets\":1"),
        "one SYN held: {status}"
    );
    let tcs = sh("tc -s qdisc show dev lo parent 1:4");
    assert!(
        tcs.contains("backlog") && (tcs.contains("74b 1p") || tcs.contains("94b 1p")),
        "{tcs}"
    );

    let release_at = Instant::now();
    ctl.release(false).expect("release");
    let released_at = Instant::now();
    let done = rx
        .recv_timeout(Duration::from_secs(5))
        .expect("connect finished")
        .expect("connect succeeded after release");
    let delay = done.saturating_duration_since(release_at);
    println!(
        "{target}: held {:?}; release call {:?}; connect completed {:?} after the release was sent",
        release_at - plugged_at,
        released_at - release_at,
        delay
    );
    // Reference: 7-30 ms under QEMU TCG, ~1 ms natively. The bound only has
    // to show that the held SYN itself went through on release, not a later
    // retransmit (those come 1, 2, 4, 8 s apart).
    assert!(
        delay < Duration::from_millis(900),
        "connect took {delay:?} after release"
    );
    let status = p.ok(&["status", "--json"]);
    assert!(
        status.contains("\"state\":\"open\"") && status.contains("\"held_packets\":0"),
        "{status}"
    );
}

#[test]
fn plugged_ipv4_connect_waits_for_release_and_unmarked_flows() {
    fresh_netns();
    let p = Plugctl::new(&["--address", "169.254.255.254", "--port", "8080"]);
    p.ok(&["setup"]);
    held_then_released(
        &p,
        "169.254.255.254:8080",
        &["127.0.0.1:8081", "169.254.255.254:8082", "[::1]:8080"],
    );
    println!("{}", tc_and_nft());
    p.ok(&["teardown"]);
}

#[test]
fn plugged_ipv6_connect_waits_for_release() {
    fresh_netns();
    // Test traffic stays on loopback: the IPv6 address held is ::1 (one
    // port of it, so that another port of ::1 shows unmarked flows pass).
    let p = Plugctl::new(&["--address", "::1", "--port", "8080"]);
    p.ok(&["setup"]);
    let n = sh("nft list ruleset");
    assert!(
        n.contains("ip6 daddr . tcp dport @lease6 meta mark set 0x00000001"),
        "{n}"
    );
    held_then_released(&p, "[::1]:8080", &["[::1]:8081", "169.254.255.254:8080"]);
    p.ok(&["teardown"]);
}

/// A foreign root qdisc is reported and left alone; --force replaces it.
#[test]
fn foreign_root_is_left_alone_unless_forced() {
    fresh_netns();
    sh("tc qdisc add dev lo root handle 5: pfifo");
    let p = Plugctl::new(&[]);
    let (code, _, err) = p.run(&["setup"]);
    assert_eq!(code, 7, "{err}");
    assert!(err.contains("pfifo 5:"), "{err}");
    assert!(sh("tc qdisc show dev lo").contains("qdisc pfifo 5: root"));
    assert!(!sh("nft list ruleset").contains("plugctl"));
    p.ok(&["setup", "--force"]);
    assert!(sh("tc qdisc show dev lo").contains("qdisc plug 40:"));
    assert_eq!(p.run(&["status"]).0, 0);
    // Teardown with a foreign root in place leaves it alone.
    p.ok(&["teardown"]);
    sh("tc qdisc add dev lo root handle 5: pfifo");
    p.ok(&["teardown"]);
    assert!(sh("tc qdisc show dev lo").contains("qdisc pfifo 5: root"));
}

/// Teardown while plugged lets the held SYN through instead of dropping it.
#[test]
fn teardown_while_plugged_releases_first() {
    fresh_netns();
    let p = Plugctl::new(&[]);
    p.ok(&["setup"]);
    let _l = listen("169.254.255.254:9000");
    // A lease far longer than the test: it is not what this tests.
    p.ok(&["plug", "--for", "10min"]);
    let rx = connect_in_background("169.254.255.254:9000".parse().unwrap());
    std::thread::sleep(Duration::from_millis(300));
    assert!(rx.try_recv().is_err(), "held while plugged");
    let t = Instant::now();
    let out = p.ok(&["teardown", "-vv"]);
    let teardown_took = t.elapsed();
    let done = rx
        .recv_timeout(Duration::from_secs(5))
        .expect("finished")
        .expect("connected");
    let retrans = sh("nstat -az TcpExtTCPSynRetrans");
    println!(
        "{out}\nteardown took {teardown_took:?}; connected {:?} after it started\n{retrans}",
        done.saturating_duration_since(t)
    );
    // Had the plug been deleted while holding the SYN, the SYN would have
    // been dropped and TCP would retransmit it (TCPSynRetrans). While a SYN
    // sits in a qdisc, TCP defers its retransmission instead, so a held and
    // then released SYN never counts there, however slow the VM is.
    let retransmitted: u64 = retrans
        .lines()
        .find(|l| l.starts_with("TcpExtTCPSynRetrans"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .expect("nstat output");
    assert_eq!(
        retransmitted, 0,
        "the held SYN was dropped and retransmitted"
    );
}

// ---------------------------------------------------------------------------
// reload: release is guaranteed

/// Wait (bounded) until the plug is recorded closed with a live holder.
/// If it never is, `reload` is stopped and its output is part of the failure.
fn wait_plugged(p: &Plugctl, reload: &mut std::process::Child) {
    let start = Instant::now();
    loop {
        let s = p.run(&["status", "--json"]).1;
        if s.contains("\"state\":\"closed\"") && s.contains("\"alive\":true") {
            return;
        }
        // Generous: under TCG on a loaded host, process starts in the
        // guest have taken seconds each (CI saw a 10 s stall).
        if start.elapsed() > Duration::from_secs(60) {
            let _ = reload.kill();
            let mut err = String::new();
            if let Some(mut e) = reload.stderr.take() {
                let _ = std::io::Read::read_to_string(&mut e, &mut err);
            }
            panic!(
                "never plugged within {:?}: {s}\nthe reload said: {err}",
                start.elapsed()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn spawn_reload(p: &Plugctl, extra: &[&str], cmd: &[&str]) -> std::process::Child {
    Command::new(common::plugctl_bin())
        .arg("--state-dir")
        .arg(&p.state)
        .args(&p.args)
        .arg("reload")
        .args(extra)
        .arg("--")
        .args(cmd)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("plugctl reload runs")
}

fn assert_open(p: &Plugctl) {
    let s = p.ok(&["status", "--json"]);
    assert!(s.contains("\"state\":\"open\""), "plug not open: {s}");
    assert!(s.contains("\"holders\":[]"), "holders left: {s}");
}

const LB: &str = "169.254.255.254:8080";

#[test]
fn reload_releases_when_the_command_fails_or_cannot_start() {
    fresh_netns();
    let p = Plugctl::new(&[]);
    p.ok(&["setup"]);
    let (code, _, err) = p.run(&["reload", "--", "sh", "-c", "exit 3"]);
    assert_eq!(code, 3, "the command's own exit code: {err}");
    assert!(err.contains("held"), "{err}");
    assert_open(&p);
    let (code, _, err) = p.run(&["reload", "--", "/nonexistent/reload-cmd"]);
    assert_eq!(code, 127, "{err}");
    assert!(err.contains("cannot run"), "{err}");
    assert_open(&p);
    let (code, out, _) = p.run(&["reload", "--json", "--", "true"]);
    assert_eq!(code, 0);
    assert!(
        out.contains("\"held\":true") && out.contains("\"command_exit\":0"),
        "{out}"
    );
    assert_open(&p);
}

#[test]
fn reload_releases_a_hung_command_at_max_hold_and_leaves_it_running() {
    fresh_netns();
    let p = Plugctl::new(&[]);
    p.ok(&["setup"]);
    let _l = listen(LB);
    let started = Instant::now();
    let mut child = spawn_reload(&p, &["--max-hold", "1500ms", "--json"], &["sleep", "4"]);
    wait_plugged(&p, &mut child);
    let rx = connect_in_background(LB.parse().unwrap());
    let done = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("finished")
        .expect("connected");
    let at = done.saturating_duration_since(started);
    println!("hung command: connect completed {at:?} after the reload started (max-hold 1.5 s)");
    assert!(
        at >= Duration::from_millis(1400),
        "released before max-hold: {at:?}"
    );
    // The command is left running: the reload ends when it does.
    let out = child.wait_with_output().unwrap();
    let took = started.elapsed();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        took >= Duration::from_secs(4),
        "the command was not left running ({took:?})"
    );
    assert!(stdout.contains("\"max_hold_reached\":true"), "{stdout}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("max-hold"));
    assert_open(&p);
}

#[test]
fn reload_releases_on_sigint_and_sigterm() {
    fresh_netns();
    let p = Plugctl::new(&[]);
    p.ok(&["setup"]);
    let _l = listen(LB);
    for sig in [libc::SIGINT, libc::SIGTERM] {
        let mut child = spawn_reload(&p, &["--max-hold", "60s"], &["sleep", "30"]);
        wait_plugged(&p, &mut child);
        let rx = connect_in_background(LB.parse().unwrap());
        std::thread::sleep(Duration::from_millis(300));
        assert!(rx.try_recv().is_err(), "held while reloading");
        let t = Instant::now();
        // SAFETY: signalling our own child.
        unsafe { libc::kill(child.id() as i32, sig) };
        let done = rx
            .recv_timeout(Duration::from_secs(10))
            .expect("finished")
            .expect("connected");
        println!(
            "signal {sig}: connect completed {:?} after it",
            done.saturating_duration_since(t)
        );
        let out = child.wait_with_output().unwrap();
        // The command got the signal too and died of it.
        assert_eq!(
            out.status.code(),
            Some(128 + sig),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_open(&p);
    }
}

/// `kill -9` of plugctl while it holds: the watchdog releases. Without the
/// watchdog the connect would stay held for good.
#[test]
fn kill_9_of_plugctl_is_released_by_the_watchdog() {
    fresh_netns();
    let p = Plugctl::new(&[]);
    p.ok(&["setup"]);
    let _l = listen(LB);
    let mut delays = Vec::new();
    for _ in 0..3 {
        let mut child = spawn_reload(&p, &["--max-hold", "60s"], &["sleep", "30"]);
        wait_plugged(&p, &mut child);
        let rx = connect_in_background(LB.parse().unwrap());
        std::thread::sleep(Duration::from_millis(300));
        assert!(rx.try_recv().is_err(), "held while reloading");
        let t = Instant::now();
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        let done = rx
            .recv_timeout(Duration::from_secs(10))
            .expect("the watchdog released the plug")
            .expect("connected");
        delays.push(done.saturating_duration_since(t));
        // The status shows nothing left over.
        let start = Instant::now();
        while !p
            .run(&["status", "--json"])
            .1
            .contains("\"state\":\"open\"")
        {
            assert!(start.elapsed() < Duration::from_secs(5));
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    println!("kill -9 -> connect completed after: {delays:?}");
    let worst = delays.iter().max().unwrap();
    // 100 ms natively is the target; TCG runs 25-90x slower, so allow more
    // here and report the figure.
    assert!(
        *worst < Duration::from_millis(1000),
        "watchdog too slow: {delays:?}"
    );
}

/// The processes whose parent is `pid` (its watchdog, its command).
fn children_of(pid: u32) -> Vec<(u32, String)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let Some(child) = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(status) = std::fs::read_to_string(format!("/proc/{child}/status")) else {
            continue;
        };
        let ppid = status
            .lines()
            .find_map(|l| l.strip_prefix("PPid:"))
            .and_then(|v| v.trim().parse::<u32>().ok());
        if ppid == Some(pid) {
            let cmd = std::fs::read(format!("/proc/{child}/cmdline"))
                .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
                .unwrap_or_default();
            out.push((child, cmd));
        }
    }
    out
}

fn signal(pid: u32, sig: i32) {
    // SAFETY: a signal to a process this test started.
    let rc = unsafe { libc::kill(pid as i32, sig) };
    assert_eq!(rc, 0, "kill {pid}: {}", std::io::Error::last_os_error());
}

/// Every plugctl process killed mid-hold (the reload and its watchdog, as a
/// cgroup-wide kill does): new SYNs are steered into the plug only until
/// the lease (max-hold + 5 s grace) runs out, so a connect made after that
/// succeeds; a SYN held before it stays held (TCP does not retransmit a
/// SYN still queued in the host) until `plugctl release` lets it through.
#[test]
fn kill_9_of_every_plugctl_process_ends_with_the_lease() {
    fresh_netns();
    let p = Plugctl::new(&[]);
    p.ok(&["setup"]);
    let _l = listen(LB);
    // Long enough for this test to kill the reload before it releases by
    // itself at max-hold, even under TCG; the lease is 8 s + 5 s.
    let mut reload = spawn_reload(&p, &["--max-hold", "8s"], &["sleep", "60"]);
    wait_plugged(&p, &mut reload);
    let held = connect_in_background(LB.parse().unwrap());
    let start = Instant::now();
    let status = loop {
        let s = p.run(&["status", "--json"]).1;
        if s.contains("\"held_packets\":1") {
            break s;
        }
        assert!(start.elapsed() < Duration::from_secs(60), "never held: {s}");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(
        status.contains("\"lease\":[{\"address\":\"169.254.255.254\""),
        "{status}"
    );
    // The reload cannot react once stopped; then its watchdog dies, then it.
    let pid = reload.id();
    signal(pid, libc::SIGSTOP);
    let kids = children_of(pid);
    let watchdogs: Vec<u32> = kids
        .iter()
        // Forked by the CLI (named plugctl-wdog), or executed again
        // (`plugctl __watchdog ID`).
        .filter(|(c, cmd)| {
            cmd.contains("__watchdog")
                || std::fs::read_to_string(format!("/proc/{c}/comm"))
                    .is_ok_and(|n| n.trim() == plugctl::watchdog::FORKED_NAME)
        })
        .map(|(c, _)| *c)
        .collect();
    assert_eq!(watchdogs.len(), 1, "the reload's children: {kids:?}");
    for w in &watchdogs {
        signal(*w, libc::SIGKILL);
    }
    signal(pid, libc::SIGKILL);
    reload.wait().expect("reload reaped");
    let killed_at = Instant::now();
    assert!(
        held.try_recv().is_err(),
        "the held connect completed before the kill: the reload released first"
    );
    // Nobody releases now: status says so, and the lease runs out by itself.
    let start = Instant::now();
    let status = loop {
        let s = p.run(&["status", "--json"]).1;
        if s.contains("\"lease\":[]") {
            break s;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the lease never ended: {s}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    println!("lease gone {:?} after the kill", killed_at.elapsed());
    assert!(status.contains("\"state\":\"closed\""), "{status}");
    assert!(status.contains("\"leftover\":true"), "{status}");
    // A new connect passes the closed plug (unmarked) ...
    TcpStream::connect_timeout(&LB.parse().unwrap(), Duration::from_secs(30))
        .expect("a connect after the lease ran out succeeds while the plug is closed");
    // ... the one held before still waits ...
    assert!(
        held.try_recv().is_err(),
        "the held SYN got through unreleased"
    );
    // ... until release opens what is left.
    p.ok(&["release"]);
    held.recv_timeout(Duration::from_secs(60))
        .expect("the held connect finished after release")
        .expect("the held connect succeeded after release");
    assert_open(&p);
}

/// A hold left by a holder that died along with its watchdog is reported
/// by status and opened by release (and by setup).
#[test]
fn leftover_closed_plug_is_reported_and_released() {
    fresh_netns();
    let p = Plugctl::new(&[]);
    p.ok(&["setup"]);
    for fix in ["release", "setup"] {
        let mut child = spawn_reload(&p, &["--max-hold", "60s"], &["sleep", "30"]);
        wait_plugged(&p, &mut child);
        // Kill the watchdog first (plugctl's child in its own process group), then plugctl.
        sh(&format!("pkill -9 -P {} -x plugctl-wdog", child.id()));
        child.kill().unwrap();
        child.wait().unwrap();
        let (code, out, _) = p.run(&["status"]);
        assert_eq!(code, 15, "{out}");
        assert!(
            out.contains("GONE") && out.contains("nobody holds it"),
            "{out}"
        );
        let _l = listen(LB);
        let rx = connect_in_background(LB.parse().unwrap());
        std::thread::sleep(Duration::from_millis(300));
        assert!(rx.try_recv().is_err(), "the leftover plug holds");
        let out = p.ok(&[fix]);
        println!("{fix}: {out}");
        rx.recv_timeout(Duration::from_secs(5))
            .expect("finished")
            .expect("connected");
        assert_open(&p);
        assert_eq!(p.run(&["status"]).0, 0);
    }
}

/// A kill of the reload's whole cgroup (`cgroup.kill`, which is what
/// `systemctl kill`, an OOM kill of a unit with `memory.oom.group` and a
/// container stop come down to) takes plugctl and its command down, but not
/// the watchdog, which left the cgroup when it was armed: the connect held
/// during the hold gets through. (A local client's SYN in the plug is never
/// retransmitted, so without the watchdog it would hang for good.)
#[test]
fn a_kill_of_the_whole_cgroup_is_released_by_the_watchdog() {
    fresh_netns();
    let root = "/sys/fs/cgroup";
    let fs = sh(&format!("stat -f -c %T {root}"));
    assert_eq!(
        fs.trim(),
        "cgroup2fs",
        "this test needs cgroup v2 at {root}"
    );
    let cg = format!("{root}/plugctl-test-{}", std::process::id());
    std::fs::create_dir(&cg).expect("a fresh cgroup");
    let p = Plugctl::new(&[]);
    p.ok(&["setup"]);
    let _l = listen(LB);
    // The reload starts inside the fresh cgroup: a shell moves itself there
    // and becomes plugctl.
    let mut child = Command::new("bash")
        .args([
            "-c",
            &format!("echo $$ > {cg}/cgroup.procs && exec \"$@\""),
            "bash",
            common::plugctl_bin(),
            "--state-dir",
            &p.state,
            "reload",
            "--max-hold",
            "120s",
            "--",
            "sleep",
            "60",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("bash runs");
    wait_plugged(&p, &mut child);
    let procs = std::fs::read_to_string(format!("{cg}/cgroup.procs")).unwrap();
    assert!(
        procs.contains(&child.id().to_string()),
        "plugctl is in the cgroup: {procs}"
    );
    let rx = connect_in_background(LB.parse().unwrap());
    std::thread::sleep(Duration::from_millis(300));
    assert!(rx.try_recv().is_err(), "held while reloading");
    let t = Instant::now();
    std::fs::write(format!("{cg}/cgroup.kill"), "1").expect("cgroup.kill");
    let out = child.wait_with_output().unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(out.status.signal(), Some(libc::SIGKILL), "{out:?}");
    let done = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("the watchdog released the plug")
        .expect("connected");
    println!(
        "cgroup.kill -> connect completed after {:?}; plugctl said: {}",
        done.saturating_duration_since(t),
        String::from_utf8_lossy(&out.stderr)
    );
    let start = Instant::now();
    while !p
        .run(&["status", "--json"])
        .1
        .contains("\"state\":\"open\"")
    {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "not recorded open"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // The cgroup empties (the kill is asynchronous), then goes.
    let start = Instant::now();
    while std::fs::remove_dir(&cg).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "{cg} never emptied"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The watchdog `plugctl reload` forks: one program start, not two. It is
/// plugctl's child under its own name, in its own process group, ignores
/// SIGINT/SIGTERM/SIGHUP/SIGQUIT, keeps plugctl's stderr but not its stdin
/// or stdout (a caller's `$(plugctl reload …)` ends with plugctl, even if
/// the watchdog is still releasing), and has left plugctl's cgroup.
#[test]
fn the_forked_watchdog_is_apart_from_its_holder() {
    fresh_netns();
    let p = Plugctl::new(&[]);
    p.ok(&["setup"]);
    let mut child = spawn_reload(&p, &["--max-hold", "120s"], &["sleep", "60"]);
    wait_plugged(&p, &mut child);
    let pid = child.id();
    let dog = sh(&format!("pgrep -P {pid} -x plugctl-wdog"));
    let dog: u32 = dog.trim().parse().expect("one forked watchdog");
    let exe = |p: u32| std::fs::read_link(format!("/proc/{p}/exe")).unwrap();
    assert_eq!(exe(dog), exe(pid), "the same program, not executed again");
    let fd = |p: u32, n: u32| std::fs::read_link(format!("/proc/{p}/fd/{n}")).unwrap();
    assert_eq!(fd(dog, 0), std::path::Path::new("/dev/null"));
    assert_eq!(fd(dog, 1), std::path::Path::new("/dev/null"));
    assert_eq!(fd(dog, 2), fd(pid, 2), "plugctl's stderr");
    let stat = |p: u32, field: &str| {
        std::fs::read_to_string(format!("/proc/{p}/status"))
            .unwrap()
            .lines()
            .find_map(|l| l.strip_prefix(field).map(|v| v.trim().to_string()))
            .unwrap()
    };
    let ignored = u64::from_str_radix(&stat(dog, "SigIgn:"), 16).unwrap();
    for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGQUIT] {
        assert!(ignored & (1 << (sig - 1)) != 0, "signal {sig} not ignored");
    }
    // SAFETY: getpgid only reads.
    let (pg_dog, pg_pid) = unsafe { (libc::getpgid(dog as i32), libc::getpgid(pid as i32)) };
    assert_eq!(
        pg_dog, dog as i32,
        "its own process group (plugctl's is {pg_pid})"
    );
    let cgroup = |p: u32| std::fs::read_to_string(format!("/proc/{p}/cgroup")).unwrap();
    assert_eq!(cgroup(dog).trim(), "0::/", "in the root cgroup");
    // SAFETY: signalling our own child.
    unsafe { libc::kill(pid as i32, libc::SIGTERM) };
    child.wait().unwrap();
    assert_open(&p);
}

/// The shipped systemd unit releases when it stops: its `ExecStop=` (run
/// here as the unit has it, on this test's state directory) opens the plug
/// while a reload still holds it, and the held connect gets through.
#[test]
fn the_units_exec_stop_releases_a_held_plug() {
    fresh_netns();
    let p = Plugctl::new(&[]);
    p.ok(&["setup"]);
    let _l = listen(LB);
    let mut child = spawn_reload(&p, &["--max-hold", "120s"], &["sleep", "60"]);
    wait_plugged(&p, &mut child);
    let rx = connect_in_background(LB.parse().unwrap());
    std::thread::sleep(Duration::from_millis(300));
    assert!(rx.try_recv().is_err(), "held while reloading");
    let unit = include_str!("../config/plugctl.service");
    let stop = unit
        .lines()
        .find_map(|l| l.strip_prefix("ExecStop="))
        .expect("the unit has ExecStop=");
    let args: Vec<&str> = stop.split_whitespace().skip(1).collect();
    println!("ExecStop: {}", p.ok(&args));
    rx.recv_timeout(Duration::from_secs(60))
        .expect("finished")
        .expect("connected");
    child.kill().unwrap();
    child.wait().unwrap();
}

/// Issue "harden": the state record's lock is private (no other user can
/// open it, so none can block plugctl), and a process stuck on it (a root
/// process holding plugctl's lock) delays a release by a bounded time: the
/// plug opens anyway, and plugctl says it did so unrecorded.
#[test]
fn a_stuck_state_lock_does_not_keep_the_plug_closed() {
    fresh_netns();
    let p = Plugctl::new(&[]);
    p.ok(&["setup"]);
    // A lease far longer than the test: it is not what this tests.
    p.ok(&["plug", "--for", "10min"]);
    let lock = sh(&format!("ls {}/*.lock", p.state)).trim().to_string();
    // nobody cannot even open it (before: 0644, and `flock -x` as nobody
    // blocked root's release forever).
    let nobody = Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "flock",
            "-n",
            "-x",
        ])
        .arg(&lock)
        .arg("true")
        .output()
        .expect("setpriv");
    assert!(!nobody.status.success(), "nobody locked {lock}");
    // A root process sits on plugctl's own lock (an OFD lock on byte 0).
    let mut stuck = Command::new("python3")
        .args([
            "-c",
            "import fcntl, os, struct, sys, time\n\
             fd = os.open(sys.argv[1], os.O_RDWR)\n\
             fcntl.fcntl(fd, 37, struct.pack('hhqqi', fcntl.F_WRLCK, 0, 0, 1, 0))\n\
             print('locked', flush=True)\n\
             time.sleep(60)",
        ])
        .arg(&lock)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3");
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(stuck.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    assert_eq!(line.trim(), "locked");
    let _l = listen(LB);
    let rx = connect_in_background(LB.parse().unwrap());
    std::thread::sleep(Duration::from_millis(300));
    assert!(rx.try_recv().is_err(), "held while plugged");
    let t = Instant::now();
    let (code, out, err) = p.run(&["release"]);
    let took = t.elapsed();
    println!("release with a stuck lock: {took:?}: {out}{err}");
    assert_eq!(code, 0, "{out}{err}");
    assert!(err.contains("without recording it"), "{err}");
    rx.recv_timeout(Duration::from_secs(5))
        .expect("finished")
        .expect("the held connect went through");
    // The wait is 3 s; TCG may add some.
    assert!(took < Duration::from_secs(30), "{took:?}");
    let _ = stuck.kill();
    let _ = stuck.wait();
}

/// Issue "harden": a record that cannot be parsed means "maybe closed":
/// status exits 17 (before: `unknown`, exit 0), and release and setup open
/// the plug (before: setup left it closed).
#[test]
fn an_unreadable_record_is_maybe_closed() {
    fresh_netns();
    let p = Plugctl::new(&[]);
    p.ok(&["setup"]);
    let _l = listen(LB);
    for (garbage, fix) in [
        ("", "release"),
        ("{\"closed\":tr", "setup"),
        ("\u{1}\u{2}", "release"),
    ] {
        // A lease far longer than the test: it is not what this tests.
        p.ok(&["plug", "--for", "10min"]);
        let record = sh(&format!("ls {}/*.json", p.state)).trim().to_string();
        std::fs::write(&record, garbage).unwrap();
        let (code, out, _) = p.run(&["status"]);
        assert_eq!(code, 17, "{out}");
        assert!(out.contains("unreadable"), "{out}");
        let rx = connect_in_background(LB.parse().unwrap());
        std::thread::sleep(Duration::from_millis(300));
        assert!(rx.try_recv().is_err(), "the plug still holds");
        let out = p.ok(&[fix]);
        println!("{fix} with record {garbage:?}: {out}");
        rx.recv_timeout(Duration::from_secs(5))
            .expect("finished")
            .expect("the held connect went through");
        assert_open(&p);
    }
}

/// Issue "harden": a FIFO planted where the record goes neither hangs a
/// release (before: it blocked on the FIFO while holding the lock) nor
/// keeps the plug closed.
#[test]
fn a_planted_fifo_does_not_hang_release() {
    fresh_netns();
    let p = Plugctl::new(&[]);
    p.ok(&["setup"]);
    // A lease far longer than the test: it is not what this tests.
    p.ok(&["plug", "--for", "10min"]);
    let record = sh(&format!("ls {}/*.json", p.state)).trim().to_string();
    sh(&format!("rm -f {record} && mkfifo {record}"));
    let _l = listen(LB);
    let rx = connect_in_background(LB.parse().unwrap());
    std::thread::sleep(Duration::from_millis(300));
    assert!(rx.try_recv().is_err(), "held while plugged");
    let (code, out, _) = p.run(&["status"]);
    assert_eq!(code, 17, "{out}");
    let t = Instant::now();
    let out = p.ok(&["release"]);
    println!("release over a planted FIFO: {:?}: {out}", t.elapsed());
    rx.recv_timeout(Duration::from_secs(5))
        .expect("finished")
        .expect("the held connect went through");
    assert_open(&p);
}

/// Issue "harden": a holder in another PID namespace sharing the state
/// directory still counts (before: its PID was judged dead from this
/// namespace, so a plain `release` opened a plug it still held).
#[test]
fn a_holder_in_another_pid_namespace_still_holds() {
    fresh_netns();
    let p = Plugctl::new(&[]);
    p.ok(&["setup"]);
    let mut child = Command::new("unshare")
        .args(["--pid", "--fork", "--kill-child", "--"])
        .arg(common::plugctl_bin())
        .arg("--state-dir")
        .arg(&p.state)
        .args(["reload", "--max-hold", "60s", "--", "sleep", "6"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("unshare --pid");
    wait_plugged(&p, &mut child);
    let (code, out, err) = p.run(&["release"]);
    assert_eq!(code, 12, "release must refuse: {out}{err}");
    let s = p.ok(&["status", "--json"]);
    assert!(
        s.contains("\"state\":\"closed\"") && s.contains("\"alive\":true"),
        "{s}"
    );
    // A monitoring agent with CAP_NET_ADMIN but another uid reads the
    // record (no lock needed); it cannot open the lock file, so liveness
    // is unknown to it.
    let agent = Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--inh-caps=+net_admin",
            "--ambient-caps=+net_admin",
        ])
        .arg(common::plugctl_bin())
        .arg("--state-dir")
        .arg(&p.state)
        .args(["status", "--json"])
        .output()
        .expect("setpriv");
    let s = String::from_utf8_lossy(&agent.stdout);
    assert_eq!(
        agent.status.code(),
        Some(0),
        "{s}{}",
        String::from_utf8_lossy(&agent.stderr)
    );
    assert!(
        s.contains("\"state\":\"closed\"") && s.contains("\"alive\":null"),
        "{s}"
    );
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_open(&p);
}

/// Two overlapping reloads: the plug opens only when the last one ends.
#[test]
fn overlapping_reloads_release_only_when_the_last_ends() {
    fresh_netns();
    let p = Plugctl::new(&[]);
    p.ok(&["setup"]);
    let _l = listen(LB);
    // Each command runs until the test lets it end, so a slow guest cannot
    // make a hold end before the test has seen it.
    let go = |name: &str| format!("{}/go-{name}", p.state);
    let spawn = |f: &str| {
        let cmd = ["sh", "-c", "while [ ! -e \"$0\" ]; do sleep 0.02; done", f];
        spawn_reload(&p, &["--max-hold", "60s"], &cmd)
    };
    let mut a = spawn(&go("a"));
    wait_plugged(&p, &mut a);
    let b = spawn(&go("b"));
    wait_holders(&p, 2);
    let rx = connect_in_background(LB.parse().unwrap());
    std::fs::write(go("a"), "").unwrap();
    let a_out = a.wait_with_output().unwrap();
    assert!(a_out.status.success(), "{a_out:?}");
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        rx.try_recv().is_err(),
        "released when the first reload ended"
    );
    let s = p.ok(&["status", "--json"]);
    assert!(s.contains("\"state\":\"closed\""), "{s}");
    let b_end = Instant::now();
    std::fs::write(go("b"), "").unwrap();
    let b_out = b.wait_with_output().unwrap();
    assert!(b_out.status.success(), "{b_out:?}");
    let done = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("finished")
        .expect("connected");
    println!(
        "connect completed {:?} after the last reload was let end",
        done.saturating_duration_since(b_end)
    );
    assert!(done >= b_end, "connected before the last reload ended");
    assert_open(&p);
    // Neither released the other's hold: release with a live reload refuses.
    let mut c = spawn(&go("c"));
    wait_plugged(&p, &mut c);
    let (code, _, err) = p.run(&["release"]);
    assert_eq!(code, 12, "{err}");
    std::fs::write(go("c"), "").unwrap();
    c.wait_with_output().unwrap();
    assert_open(&p);
}

/// Wait (bounded) until `n` live holders are recorded.
fn wait_holders(p: &Plugctl, n: usize) {
    let start = Instant::now();
    loop {
        let s = p.run(&["status", "--json"]).1;
        if s.matches("\"alive\":true").count() >= n {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "never {n} holders: {s}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

// ---------------------------------------------------------------------------
// reload --wait-listen: readiness-gated release

/// A listener for the readiness tests: binds ADDR:PORT (SO_REUSEPORT when
/// asked), optionally after a delay, accepts and closes connections, and
/// exits after a given time (or runs until killed).
const LISTENER_PY: &str = r#"
import socket, sys, time, os
addr, port, delay, life, reuse = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]), sys.argv[5] == "1"
time.sleep(delay)
s = socket.socket(socket.AF_INET)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
if reuse:
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
s.bind((addr, port)); s.listen(128); s.settimeout(0.02)
end = time.monotonic() + life if life > 0 else float("inf")
while time.monotonic() < end:
    try:
        c, _ = s.accept(); c.close()
    except socket.timeout:
        pass
"#;

fn python() -> &'static str {
    if std::path::Path::new("/usr/bin/python3").exists() {
        "/usr/bin/python3"
    } else {
        "python3"
    }
}

/// Start a listener process; returns once it listens (if `delay` is 0).
fn start_listener(port: u16, delay: f64, life: f64, reuse: bool) -> std::process::Child {
    let c = Command::new(python())
        .args(["-c", LISTENER_PY, "169.254.255.254", &port.to_string()])
        .args([
            delay.to_string(),
            life.to_string(),
            if reuse { "1" } else { "0" }.into(),
        ])
        .spawn()
        .expect("python3");
    if delay == 0.0 {
        let start = Instant::now();
        while !sh(&format!("ss -Hltn 'sport = :{port}'")).contains(&port.to_string()) {
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "listener never came up"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    c
}

/// Connect to the LB port every `every` while the reload runs; count outcomes.
fn connects_during(port: u16, every: Duration, until: impl Fn() -> bool) -> (u32, Vec<String>) {
    let mut ok = 0;
    let mut failed = Vec::new();
    let mut pending = Vec::new();
    while !until() {
        pending.push(connect_in_background(
            format!("169.254.255.254:{port}").parse().unwrap(),
        ));
        std::thread::sleep(every);
    }
    for rx in pending {
        match rx.recv_timeout(Duration::from_secs(15)) {
            Ok(Ok(_)) => ok += 1,
            Ok(Err(e)) => failed.push(e),
            Err(_) => failed.push("no answer".into()),
        }
    }
    (ok, failed)
}

/// A shell command that runs the listener (arguments as for LISTENER_PY).
fn listener_sh(port: u16, delay: f64, life: f64, reuse: bool) -> String {
    format!(
        "{} -c '{}' 169.254.255.254 {port} {delay} {life} {}",
        python(),
        LISTENER_PY.replace('\'', "'\\''"),
        u8::from(reuse)
    )
}

/// Wait for a `reload --json` and return its output and JSON record.
fn reload_json(reload: std::process::Child, label: &str) -> (std::process::Output, String) {
    let out = reload.wait_with_output().unwrap();
    let json = String::from_utf8_lossy(&out.stdout).into_owned();
    println!("{label}: {json}");
    (out, json)
}

fn json_f64(json: &str, key: &str) -> f64 {
    let k = format!("\"{key}\":");
    let rest = &json[json.find(&k).unwrap_or_else(|| panic!("{key} in {json}")) + k.len()..];
    rest.split([',', '}'])
        .next()
        .unwrap()
        .parse()
        .unwrap_or(-1.0)
}

#[test]
fn wait_listen_cold_restart_holds_until_the_new_listener_is_up() {
    fresh_netns();
    let p = Plugctl::new(&[]);
    p.ok(&["setup"]);
    let mut old = start_listener(8080, 0.0, 0.0, false);
    let old_pid = old.id();
    // The restart command returns at once; the old process exits a moment
    // later; nothing listens for ~0.6 s; then the new listener appears.
    let script = format!(
        "(sleep 0.2; kill {old_pid}; exec {}) >/dev/null 2>&1 &",
        listener_sh(8080, 0.6, 30.0, false)
    );
    let mut reload = spawn_reload(
        &p,
        &["--wait-listen", "8080", "--max-hold", "30s", "--json"],
        &["sh", "-c", &script],
    );
    wait_plugged(&p, &mut reload);
    let done = std::sync::atomic::AtomicBool::new(false);
    let (ok, failed) = std::thread::scope(|s| {
        let h = s.spawn(|| {
            connects_during(8080, Duration::from_millis(50), || {
                done.load(std::sync::atomic::Ordering::SeqCst)
            })
        });
        let (out, json) = reload_json(reload, "cold restart");
        done.store(true, std::sync::atomic::Ordering::SeqCst);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            json_f64(&json, "held_ms") >= 700.0,
            "released before the new listener: {json}"
        );
        assert!(json.contains("\"max_hold_reached\":false"), "{json}");
        h.join().unwrap()
    });
    let _ = old.wait();
    println!("cold restart: {ok} connects ok, failed: {failed:?}");
    assert!(
        failed.is_empty(),
        "connections failed across the restart: {failed:?}"
    );
    assert!(ok > 0);
}

#[test]
fn wait_listen_hand_over_waits_for_the_old_listener_to_close() {
    fresh_netns();
    let p = Plugctl::new(&[]);
    p.ok(&["setup"]);
    let mut old = start_listener(8081, 0.0, 0.0, true);
    let old_pid = old.id();
    // New listener binds beside the old (SO_REUSEPORT) and the command
    // returns; the old one closes 300 ms later.
    let script = format!(
        "{} >/dev/null 2>&1 & \
         while ! ss -Hltn 'sport = :8081' | grep -c 8081 | grep -q 2; do sleep 0.01; done; \
         (sleep 0.3; kill {old_pid}) >/dev/null 2>&1 &",
        listener_sh(8081, 0.0, 30.0, true)
    );
    let mut reload = spawn_reload(
        &p,
        &[
            "--wait-listen",
            "169.254.255.254:8081",
            "--max-hold",
            "30s",
            "--json",
        ],
        &["sh", "-c", &script],
    );
    wait_plugged(&p, &mut reload);
    let (out, json) = reload_json(reload, "hand-over");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        json_f64(&json, "waited_for_listen_ms") >= 250.0,
        "released before the old listener closed: {json}"
    );
    assert!(json.contains("\"max_hold_reached\":false"), "{json}");
    let _ = old.wait();
}

#[test]
fn wait_listen_stale_old_listener_is_released_at_max_hold_and_named() {
    fresh_netns();
    let p = Plugctl::new(&[]);
    p.ok(&["setup"]);
    let mut old = start_listener(8082, 0.0, 0.0, true);
    let inode_line = sh("ss -Hltne 'sport = :8082'");
    let script = format!("{} >/dev/null 2>&1 &", listener_sh(8082, 0.0, 30.0, true));
    let started = Instant::now();
    let reload = spawn_reload(
        &p,
        &["--wait-listen", "8082", "--max-hold", "2s", "--json"],
        &["sh", "-c", &script],
    );
    let (out, json) = reload_json(reload, "stale");
    let took = started.elapsed();
    let err = String::from_utf8_lossy(&out.stderr);
    println!("{err}\n{inode_line}");
    assert!(json.contains("\"max_hold_reached\":true"), "{json}");
    assert!(took >= Duration::from_millis(1900), "{took:?}");
    assert!(
        err.contains(&format!("pid {}", old.id())),
        "the warning names the old listener's pid: {err}"
    );
    assert!(err.contains("inode"), "{err}");
    assert_open(&p);
    let _ = old.kill();
    let _ = old.wait();
}

// ---------------------------------------------------------------------------
// HAProxy: 50 reloads under a steady stream of new connections lose none

const HAPROXY_CFG: &str = "
global
    maxconn 2000
defaults
    mode http
    timeout connect 2s
    timeout client 5s
    timeout server 5s
frontend fe
    bind 169.254.255.254:8080
    http-request return status 200 content-type text/plain string ok
";

/// One request on a new connection: Ok, or what went wrong.
fn one_request(addr: &SocketAddr) -> Result<Duration, String> {
    one_request_within(addr, Duration::from_secs(10))
}

/// One request, giving the connect `connect` (a held SYN is not
/// retransmitted: the connect lasts as long as the hold).
fn one_request_within(addr: &SocketAddr, connect: Duration) -> Result<Duration, String> {
    use std::io::{Read, Write};
    let t = Instant::now();
    let mut s = TcpStream::connect_timeout(addr, connect).map_err(|e| format!("connect: {e}"))?;
    let connect = t.elapsed();
    s.set_read_timeout(Some(Duration::from_secs(10))).ok();
    s.write_all(b"GET / HTTP/1.0\r\n\r\n")
        .map_err(|e| format!("write: {e}"))?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).map_err(|e| format!("read: {e}"))?;
    if !buf.starts_with(b"HTTP/1.0 200") && !buf.starts_with(b"HTTP/1.1 200") {
        return Err(format!(
            "bad response: {:?}",
            String::from_utf8_lossy(&buf[..buf.len().min(40)])
        ));
    }
    Ok(connect)
}

#[test]
fn haproxy_reloads_under_load_lose_no_connection() {
    fresh_netns();
    let dir = common::tempdir();
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = format!("{dir}/haproxy.cfg");
    let pidfile = format!("{dir}/haproxy.pid");
    std::fs::write(&cfg, HAPROXY_CFG).unwrap();
    let p = Plugctl::new(&["--port", "8080"]);
    p.ok(&["setup"]);
    let st = Command::new("haproxy")
        .args(["-f", &cfg, "-p", &pidfile, "-D"])
        .status()
        .expect("haproxy");
    assert!(st.success());
    let addr: SocketAddr = LB.parse().unwrap();
    let start = Instant::now();
    while one_request(&addr).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "haproxy never answered"
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    let stop = std::sync::atomic::AtomicBool::new(false);
    const RELOADS: usize = 50;
    let (results, reload_ms) = std::thread::scope(|s| {
        // Steady load: 3 workers, each a new connection every 30 ms (about
        // 100 connections/s; TCG's ceiling is about 300/s, and HAProxy's own
        // start-up, ~1.5 s under TCG instead of ~20 ms natively, must share
        // the two virtual CPUs).
        let workers: Vec<_> = (0..3)
            .map(|_| {
                s.spawn(|| {
                    let mut out = Vec::new();
                    while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                        let t = Instant::now();
                        out.push(one_request(&addr));
                        if let Some(rest) = Duration::from_millis(30).checked_sub(t.elapsed()) {
                            std::thread::sleep(rest);
                        }
                    }
                    out
                })
            })
            .collect();
        let mut reload_ms = Vec::new();
        for _ in 0..RELOADS {
            let old = std::fs::read_to_string(&pidfile).unwrap();
            let mut args = vec!["haproxy", "-f", &cfg, "-p", &pidfile, "-D", "-sf"];
            args.extend(old.split_whitespace());
            let t = Instant::now();
            // max-hold is generous: HAProxy starts 25-90x slower under TCG,
            // and releasing before the old listener closed would reset the
            // connections in its queue (which is what the test would catch).
            let out = p.ok(&[
                "reload",
                "--wait-listen",
                "169.254.255.254:8080",
                "--max-hold",
                "30s",
                "--json",
                "--",
            ]
            .iter()
            .copied()
            .chain(args.iter().copied())
            .collect::<Vec<_>>());
            reload_ms.push((
                t.elapsed().as_secs_f64() * 1000.0,
                json_f64(&out, "held_ms"),
            ));
            assert!(
                out.contains("\"held\":true") && out.contains("\"command_exit\":0"),
                "{out}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        stop.store(true, std::sync::atomic::Ordering::SeqCst);
        let results: Vec<Result<Duration, String>> = workers
            .into_iter()
            .flat_map(|w| w.join().unwrap())
            .collect();
        (results, reload_ms)
    });
    let failed: Vec<&String> = results.iter().filter_map(|r| r.as_ref().err()).collect();
    let mut connect: Vec<Duration> = results
        .iter()
        .filter_map(|r| r.as_ref().ok().copied())
        .collect();
    connect.sort();
    let pct = |q: f64| connect[((connect.len() as f64 - 1.0) * q) as usize];
    let mut held: Vec<f64> = reload_ms.iter().map(|r| r.1).collect();
    held.sort_by(f64::total_cmp);
    println!(
        "haproxy: {RELOADS} reloads, {} connections, {} failed; connect p50 {:?} p99 {:?} max {:?}; held ms p50 {:.0} max {:.0}",
        results.len(),
        failed.len(),
        pct(0.5),
        pct(0.99),
        pct(1.0),
        held[held.len() / 2],
        held[held.len() - 1]
    );
    let _ = Command::new("sh")
        .args(["-c", &format!("kill $(cat {pidfile})")])
        .status();
    let max_hold_hit = reload_ms.iter().filter(|r| r.1 >= 29_000.0).count();
    assert_eq!(max_hold_hit, 0, "a reload hit max-hold");
    assert!(
        results.len() >= 500,
        "too few connections to mean anything: {}",
        results.len()
    );
    assert!(failed.is_empty(), "failed connections: {failed:?}");
}

/// The library example (examples/agent.rs) runs as documented.
#[test]
fn library_example_runs() {
    fresh_netns();
    let bin_dir = std::path::Path::new(common::plugctl_bin())
        .parent()
        .unwrap();
    let example = bin_dir.join("examples/agent");
    assert!(
        example.exists(),
        "{} (cargo test builds the examples)",
        example.display()
    );
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = Command::new(&example).env("PATH", path).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success());
    assert!(stdout.contains("held 0 SYNs"), "{stdout}");
    assert!(stdout.contains("tree complete"), "{stdout}");
}

// ---------------------------------------------------------------------------
// reload with no flags: the observed hand-over
//
// Each test runs `plugctl reload` without --wait-listen or --no-wait and
// checks that connects made while the plug is closed succeed (no reset, no
// refusal) and that the record shows the release came after the hand-over.
// `--max-hold 60s` is a bound for the slow TCG guest, not a mode.

/// A service for the hand-over tests: its own process group (`setsid`),
/// N SO_REUSEPORT sockets on each of the given ports, accepting and closing
/// (pausing after each accept if given a pause); SIGUSR1 closes the sockets
/// of port `drop` and it lives on; SIGTERM ends it.
const SERVICE_PY: &str = r#"
import os, select, signal, socket, sys, time
os.setsid()
ports = [int(p) for p in sys.argv[1].split(",")]
n, delay, drop = int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
pause = float(sys.argv[5]) if len(sys.argv) > 5 else 0.0
linger = float(sys.argv[6]) if len(sys.argv) > 6 else 0.0
close_first = len(sys.argv) > 7 and sys.argv[7] == "1"
if linger:
    # Exits this long after SIGTERM (HAProxy under TCG took seconds),
    # listening until then, or having closed its listeners at once.
    def term(*_):
        if close_first:
            for s in socks:
                s.close()
        time.sleep(linger)
        os._exit(0)
    signal.signal(signal.SIGTERM, term)
time.sleep(delay)
socks = []
for p in ports:
    for _ in range(n):
        s = socket.socket(socket.AF_INET)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        s.bind(("169.254.255.254", p)); s.listen(128); socks.append(s)
def usr1(*_):
    global socks
    for s in [s for s in socks if s.getsockname()[1] == drop]:
        s.close()
    socks = [s for s in socks if s.fileno() != -1]
signal.signal(signal.SIGUSR1, usr1)
while True:
    try:
        ready, _, _ = select.select(socks, [], [], 0.05)
    except (OSError, ValueError):
        continue
    for s in ready:
        try:
            c, _ = s.accept(); c.close()
        except OSError:
            pass
        time.sleep(pause)
"#;

fn service_args(ports: &str, n: u32, delay: f64, drop: u16) -> Vec<String> {
    vec![
        "-c".into(),
        SERVICE_PY.into(),
        ports.into(),
        n.to_string(),
        delay.to_string(),
        drop.to_string(),
    ]
}

/// Start a service process and wait until `port` has `total` listeners.
fn start_service(ports: &str, n: u32, port: u16, total: usize) -> std::process::Child {
    let c = Command::new(python())
        .args(service_args(ports, n, 0.0, 0))
        .spawn()
        .expect("python3");
    wait_sockets(port, |k| k == total);
    c
}

/// The service as a shell command, started in the background.
fn service_sh(ports: &str, n: u32, delay: f64) -> String {
    let a = service_args(ports, n, delay, 0);
    format!(
        "{} -c '{}' {} {} {} {} >/dev/null 2>&1 &",
        python(),
        a[1].replace('\'', "'\\''"),
        a[2],
        a[3],
        a[4],
        a[5]
    )
}

/// Wait (bounded) until the number of listeners on `port` satisfies `ok`.
fn wait_sockets(port: u16, ok: impl Fn(usize) -> bool) {
    let start = Instant::now();
    loop {
        let n = sh(&format!("ss -Hltn 'sport = :{port}'"))
            .lines()
            .filter(|l| !l.trim().is_empty())
            .count();
        if ok(n) {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "port {port}: {n} listeners, never as expected"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// SIGTERM the processes listening on `port` (found by `ss -p`, by pid),
/// but not `keep`.
fn kill_listeners_except(port: u16, keep: u32) {
    let out = sh(&format!("ss -Hltnp 'sport = :{port}'"));
    for pid in out
        .split("pid=")
        .skip(1)
        .filter_map(|r| r.split(|c: char| !c.is_ascii_digit()).next())
        .filter_map(|p| p.parse::<u32>().ok())
        .filter(|p| *p != keep)
    {
        let _ = Command::new("kill").arg(pid.to_string()).status();
    }
}

fn kill_listeners(port: u16) {
    kill_listeners_except(port, 0);
}

/// The record's `handover.ports` entry for `port`.
fn port_record(json: &str, port: u16) -> serde_json::Value {
    let v: serde_json::Value =
        serde_json::from_str(json.trim()).unwrap_or_else(|e| panic!("{e}: {json}"));
    v["handover"]["ports"]
        .as_array()
        .and_then(|a| a.iter().find(|p| p["port"] == port).cloned())
        .unwrap_or_else(|| panic!("no port {port} in {json}"))
}

/// Run a no-flag reload of `cmd` while connecting to `port` every 50 ms;
/// assert every connect succeeded and the release was not forced. Returns
/// the JSON record.
fn reload_under_connects(p: &Plugctl, port: u16, cmd: &[&str], label: &str) -> String {
    let mut reload = spawn_reload(p, &["--max-hold", "60s", "--json"], cmd);
    wait_plugged(p, &mut reload);
    let done = std::sync::atomic::AtomicBool::new(false);
    let (ok, failed, json, err) = std::thread::scope(|s| {
        let h = s.spawn(|| {
            connects_during(port, Duration::from_millis(50), || {
                done.load(std::sync::atomic::Ordering::SeqCst)
            })
        });
        let (out, json) = reload_json(reload, label);
        done.store(true, std::sync::atomic::Ordering::SeqCst);
        let (ok, failed) = h.join().unwrap();
        (
            ok,
            failed,
            json,
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    });
    println!("{label}: {ok} connects ok, failed: {failed:?}\n{err}");
    assert!(json.contains("\"held\":true"), "{json}\n{err}");
    assert!(json.contains("\"mode\":\"observed\""), "{json}");
    assert!(json.contains("\"max_hold_reached\":false"), "{json}\n{err}");
    assert!(
        failed.is_empty(),
        "{label}: connects failed: {failed:?}\n{json}"
    );
    assert!(ok > 0, "{label}: no connect was made during the hold");
    json
}

#[test]
fn handover_cold_restart_is_held_until_the_new_listener_is_up() {
    fresh_netns();
    let p = Plugctl::new(&["--port", "8090"]);
    p.ok(&["setup"]);
    let mut old = start_service("8090", 1, 8090, 1);
    // stop, a 0.3 s gap, start in the background: the command returns
    // before the new listener is up.
    let script = format!(
        "kill {}; sleep 0.3; {}",
        old.id(),
        service_sh("8090", 1, 0.0)
    );
    let json = reload_under_connects(&p, 8090, &["sh", "-c", &script], "cold restart");
    let _ = old.wait();
    let r = port_record(&json, 8090);
    assert_eq!(r["verdict"], "handed-over", "{json}");
    assert!(json.contains("\"quiet_window\":false"), "{json}");
    wait_sockets(8090, |n| n == 1);
    kill_listeners(8090);
}

/// The storm's cold restart, `kill OLD; (sleep GAP; start NEW) &`: the
/// command returns at once. The old process exits `linger` s after
/// SIGTERM, listening until then, or (`close_first`) having closed its
/// listener at once. Runs a no-flag reload under connects (none may fail),
/// checks the hand-over and that the background shell was named; returns
/// the record.
fn background_restart(
    port: u16,
    linger: &str,
    close_first: bool,
    gap: &str,
    label: &str,
) -> String {
    fresh_netns();
    let ports = port.to_string();
    let p = Plugctl::new(&["--port", &ports]);
    p.ok(&["setup"]);
    let mut old = Command::new(python())
        .args(service_args(&ports, 1, 0.0, 0))
        .args(["0", linger, if close_first { "1" } else { "0" }])
        .spawn()
        .expect("python3");
    wait_sockets(port, |n| n == 1);
    let script = format!(
        "kill {}; (sleep {gap}; {}) >/dev/null 2>&1 &",
        old.id(),
        service_sh(&ports, 1, 0.0)
    );
    let json = reload_under_connects(&p, port, &["sh", "-c", &script], label);
    let _ = old.wait();
    assert_eq!(port_record(&json, port)["verdict"], "handed-over", "{json}");
    assert!(
        json.contains("(sh)"),
        "the background shell is not named: {json}"
    );
    wait_sockets(port, |n| n == 1);
    kill_listeners(port);
    json
}

/// The old process listens for 1 s after SIGTERM (longer than the 300 ms
/// quiet window): to the listeners nothing has changed when the window
/// ends, but what the command left running is still at work, so the hold
/// goes on until the restart is seen through.
#[test]
fn handover_cold_restart_in_the_background_is_held_past_the_quiet_window() {
    let json = background_restart(8097, "1.0", false, "1.5", "background restart");
    assert!(json.contains("\"quiet_window\":false"), "{json}");
}

/// The old process closes its listener at once and exits 1.5 s later:
/// "every old socket gone, its owner lives on" would mean the port was
/// removed, but what the command left running is still at work, so the
/// hold waits for it (then for the new listener).
#[test]
fn handover_stop_then_background_start_is_not_taken_for_a_removed_port() {
    background_restart(8099, "1.5", true, "1", "stop, background start");
}

/// What the command leaves running holds the quiet window open even when
/// it changes no listener: the window starts once it has exited.
#[test]
fn handover_quiet_window_waits_for_what_the_command_left_in_the_background() {
    fresh_netns();
    let p = Plugctl::new(&["--port", "8098"]);
    p.ok(&["setup"]);
    let mut svc = start_service("8098", 1, 8098, 1);
    let json = reload_under_connects(
        &p,
        8098,
        &["sh", "-c", "(sleep 1.5) >/dev/null 2>&1 &"],
        "background sleep",
    );
    let _ = Command::new("kill").arg(svc.id().to_string()).status();
    let _ = svc.wait();
    assert_eq!(port_record(&json, 8098)["verdict"], "unchanged", "{json}");
    assert!(json.contains("\"quiet_window\":true"), "{json}");
    assert!(json.contains("(sleep)") || json.contains("(sh)"), "{json}");
    // 1.5 s of sleep and the 300 ms window after it.
    let waited = json_f64(&json, "waited_for_listen_ms");
    assert!(
        waited >= 1700.0,
        "released before what the command left ended: {json}"
    );
}

#[test]
fn handover_reuseport_group_waits_for_every_old_socket() {
    fresh_netns();
    let p = Plugctl::new(&["--port", "8091"]);
    p.ok(&["setup"]);
    let mut old = start_service("8091", 3, 8091, 3);
    // Three new sockets beside the three old ones; the command returns; the
    // old process closes 0.3 s later.
    let script = format!(
        "{} while [ $(ss -Hltn 'sport = :8091' | wc -l) -lt 6 ]; do sleep 0.02; done; \
         (sleep 0.3; kill {}) >/dev/null 2>&1 &",
        service_sh("8091", 3, 0.0),
        old.id()
    );
    let json = reload_under_connects(&p, 8091, &["sh", "-c", &script], "reuseport");
    let _ = old.wait();
    kill_listeners(8091);
    let r = port_record(&json, 8091);
    assert_eq!(r["verdict"], "handed-over", "{json}");
    assert_eq!(
        (r["old_sockets"].as_u64(), r["sockets"].as_u64()),
        (Some(3), Some(3)),
        "{json}"
    );
    assert!(
        r["waited_ms"].as_f64().unwrap_or(0.0) >= 150.0,
        "released before the old sockets closed: {json}"
    );
}

#[test]
fn handover_removed_port_is_not_waited_for() {
    fresh_netns();
    let p = Plugctl::new(&["--port", "8092", "--port", "8093"]);
    p.ok(&["setup"]);
    let svc = Command::new(python())
        .args(service_args("8092,8093", 1, 0.0, 8093))
        .spawn()
        .expect("python3");
    wait_sockets(8093, |n| n == 1);
    wait_sockets(8092, |n| n == 1);
    // The service drops port 8093 and lives on.
    let script = format!(
        "kill -USR1 {}; while ss -Hltn 'sport = :8093' | grep -q .; do sleep 0.02; done",
        svc.id()
    );
    let json = reload_under_connects(&p, 8092, &["sh", "-c", &script], "removed port");
    assert_eq!(port_record(&json, 8093)["verdict"], "removed", "{json}");
    assert_eq!(port_record(&json, 8092)["verdict"], "unchanged", "{json}");
    assert!(json.contains("\"quiet_window\":false"), "{json}");
    let _ = Command::new("kill").arg(svc.id().to_string()).status();
    let mut svc = svc;
    let _ = svc.wait();
}

#[test]
fn handover_stale_process_is_named_and_not_waited_for() {
    fresh_netns();
    let p = Plugctl::new(&["--port", "8094"]);
    p.ok(&["setup"]);
    // An old generation that never went away, then the current one.
    let mut stale = start_service("8094", 1, 8094, 1);
    let mut current = start_service("8094", 1, 8094, 2);
    let script = format!(
        "{} while [ $(ss -Hltn 'sport = :8094' | wc -l) -lt 3 ]; do sleep 0.02; done; \
         (sleep 0.3; kill {}) >/dev/null 2>&1 &",
        service_sh("8094", 1, 0.0),
        current.id()
    );
    let mut reload = spawn_reload(&p, &["--max-hold", "60s", "--json"], &["sh", "-c", &script]);
    wait_plugged(&p, &mut reload);
    let (out, json) = reload_json(reload, "stale");
    let err = String::from_utf8_lossy(&out.stderr);
    println!("{err}");
    let _ = current.wait();
    kill_listeners_except(8094, stale.id());
    assert!(json.contains("\"max_hold_reached\":false"), "{json}\n{err}");
    assert!(
        err.contains("stale") && err.contains(&format!("pid {}", stale.id())),
        "the warning names the stale process: {err}"
    );
    assert_eq!(port_record(&json, 8094)["verdict"], "handed-over", "{json}");
    assert!(
        stale.try_wait().unwrap().is_none(),
        "the stale process is left alone"
    );
    let _ = stale.kill();
    let _ = stale.wait();
}

/// HAProxy in a temp dir on 169.254.255.254:8080 (`extra` added to
/// `global`); returns (dir, cfg path, pid file).
fn haproxy_start(extra_global: &str, master_worker: bool) -> (String, String, String) {
    let dir = common::tempdir();
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = format!("{dir}/haproxy.cfg");
    let pidfile = format!("{dir}/haproxy.pid");
    let text = HAPROXY_CFG.replacen(
        "global\n",
        &format!("global\n    {}\n", extra_global.replace("DIR", &dir)),
        1,
    );
    std::fs::write(&cfg, text).unwrap();
    let mut args = vec!["-f", &cfg, "-p", &pidfile, "-D"];
    if master_worker {
        args.push("-W");
    }
    let st = Command::new("haproxy")
        .args(&args)
        .status()
        .expect("haproxy");
    assert!(st.success());
    let addr: SocketAddr = LB.parse().unwrap();
    let start = Instant::now();
    while one_request(&addr).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "haproxy never answered"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    (dir, cfg, pidfile)
}

/// `reloads` no-flag reloads of HAProxy by `cmd(pidfile contents)` while
/// three workers send a request on a new connection every 30 ms; every
/// request must succeed. Returns each reload's JSON record.
fn haproxy_handover(
    label: &str,
    p: &Plugctl,
    reloads: usize,
    pidfile: &str,
    cmd: impl Fn(&str) -> Vec<String>,
) -> Vec<String> {
    p.ok(&["setup"]);
    let addr: SocketAddr = LB.parse().unwrap();
    let stop = std::sync::atomic::AtomicBool::new(false);
    let (results, records) = std::thread::scope(|s| {
        let workers: Vec<_> = (0..3)
            .map(|_| {
                s.spawn(|| {
                    let mut out = Vec::new();
                    while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                        let t = Instant::now();
                        // Under TCG a HAProxy reload, hence a hold, took
                        // up to 18 s: the client waits longer than max-hold.
                        out.push(one_request_within(&addr, Duration::from_secs(90)));
                        if let Some(rest) = Duration::from_millis(30).checked_sub(t.elapsed()) {
                            std::thread::sleep(rest);
                        }
                    }
                    out
                })
            })
            .collect();
        let mut records = Vec::new();
        for i in 0..reloads {
            // One generation listening before each reload (an old one
            // still draining would be a stale process to this test).
            wait_sockets(8080, |n| n == 1);
            let pids = std::fs::read_to_string(pidfile).unwrap();
            let argv = cmd(pids.trim());
            let mut args = vec!["reload", "--max-hold", "60s", "--json", "--"];
            args.extend(argv.iter().map(|s| s.as_str()));
            let (code, out, err) = p.run(&args);
            println!("{label} #{i}: {out}{err}");
            assert_eq!(code, 0, "{label}: {out}{err}");
            assert!(out.contains("\"held\":true"), "{out}");
            assert!(out.contains("\"max_hold_reached\":false"), "{out}{err}");
            records.push(out);
        }
        // Requests keep flowing a little after the last release.
        let after = Instant::now();
        while after.elapsed() < Duration::from_millis(500) {
            std::thread::sleep(Duration::from_millis(50));
        }
        stop.store(true, std::sync::atomic::Ordering::SeqCst);
        let results: Vec<Result<Duration, String>> = workers
            .into_iter()
            .flat_map(|w| w.join().unwrap())
            .collect();
        (results, records)
    });
    let failed: Vec<&String> = results.iter().filter_map(|r| r.as_ref().err()).collect();
    println!(
        "{label}: {reloads} reloads, {} requests, {} failed",
        results.len(),
        failed.len()
    );
    let _ = Command::new("sh")
        .args(["-c", &format!("kill $(cat {pidfile})")])
        .status();
    assert!(failed.is_empty(), "{label}: failed requests: {failed:?}");
    records
}

fn verdict_of(json: &str) -> String {
    port_record(json, 8080)["verdict"]
        .as_str()
        .unwrap_or("")
        .to_string()
}

#[test]
fn handover_haproxy_sf() {
    fresh_netns();
    let (_dir, cfg, pidfile) = haproxy_start("", false);
    let p = Plugctl::new(&["--port", "8080"]);
    let recs = haproxy_handover("haproxy -sf", &p, 3, &pidfile, |old| {
        let mut a: Vec<String> = ["haproxy", "-f", &cfg, "-p", &pidfile, "-D", "-sf"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        a.extend(old.split_whitespace().map(String::from));
        a
    });
    for r in &recs {
        assert_eq!(verdict_of(r), "handed-over", "{r}");
    }
    // HAProxy pauses the old listener once the new process has read its
    // configuration, while the command runs: the next reload of the same
    // command (other PIDs after -sf) drains only until the old process
    // would accept the rest in half that time. The first drains in full.
    let handover = |json: &str| -> serde_json::Value {
        let v: serde_json::Value = serde_json::from_str(json.trim()).unwrap();
        v["handover"].clone()
    };
    assert_eq!(
        handover(&recs[0])["drain_budget_ms"],
        serde_json::Value::Null
    );
    for pair in recs.windows(2) {
        let open = port_record(&pair[0], 8080)["old_open_ms"]
            .as_f64()
            .unwrap_or_else(|| panic!("the old listener was not seen to stop: {}", pair[0]));
        let budget = handover(&pair[1])["drain_budget_ms"].as_f64();
        assert_eq!(
            budget,
            Some((open as u64 / 2) as f64),
            "{}\n{}",
            pair[0],
            pair[1]
        );
    }
}

#[test]
fn handover_haproxy_x_socket_transfer() {
    fresh_netns();
    let (dir, cfg, pidfile) = haproxy_start(
        "stats socket DIR/stats.sock mode 600 level admin expose-fd listeners",
        false,
    );
    let sock = format!("{dir}/stats.sock");
    let p = Plugctl::new(&["--port", "8080"]);
    let recs = haproxy_handover("haproxy -x", &p, 3, &pidfile, |old| {
        let mut a: Vec<String> = [
            "haproxy", "-f", &cfg, "-p", &pidfile, "-D", "-x", &sock, "-sf",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        a.extend(old.split_whitespace().map(String::from));
        a
    });
    for r in &recs {
        assert_eq!(
            verdict_of(r),
            "owners-changed",
            "the same socket, passed on: {r}"
        );
    }
}

/// The master-worker reload (`kill -USR2` of the master) returns before the
/// master acts. The guest runs 25-90x slower than a native machine (the
/// master's re-exec took 12-18 s here), so the quiet window (300 ms
/// natively) is 45 s, set in the configuration: the release must come from
/// the observed hand-over, not the window.
fn haproxy_master_worker(expose: bool) {
    fresh_netns();
    let (dir, _cfg, pidfile) = haproxy_start(
        if expose {
            "stats socket DIR/stats.sock mode 600 level admin expose-fd listeners"
        } else {
            ""
        },
        true,
    );
    let conf = format!("{dir}/plugctl.toml");
    std::fs::write(&conf, "quiet_window = \"45s\"\n").unwrap();
    let label = if expose {
        "master-worker USR2, expose-fd"
    } else {
        "master-worker USR2"
    };
    let p = Plugctl {
        state: common::tempdir(),
        args: vec!["--config".into(), conf, "--port".into(), "8080".into()],
    };
    // The pid file holds the master's pid.
    let recs = haproxy_handover(label, &p, 2, &pidfile, |master| {
        let master = master.split_whitespace().next().unwrap_or("");
        vec!["kill".into(), "-USR2".into(), master.into()]
    });
    for r in &recs {
        let v = verdict_of(r);
        assert!(
            v == "handed-over" || v == "owners-changed",
            "released on an observed hand-over: {r}"
        );
        assert!(r.contains("\"quiet_window\":false"), "{r}");
    }
}

#[test]
fn handover_haproxy_master_worker_usr2() {
    haproxy_master_worker(false);
}

#[test]
fn handover_haproxy_master_worker_usr2_expose_fd() {
    haproxy_master_worker(true);
}

/// nginx, all in a temp dir (config, pid file, logs, temp paths), on
/// 169.254.255.254:8095 only; `nginx -s reload` signals the master and
/// returns before it acts (the quiet window is raised for TCG as for the
/// HAProxy master-worker test).
#[test]
fn handover_nginx_s_reload() {
    fresh_netns();
    let Ok(nginx) = which("nginx") else {
        panic!("nginx is not installed (tests/vm/install-deps.sh installs it)");
    };
    let dir = common::tempdir();
    std::fs::create_dir_all(&dir).unwrap();
    let conf = format!("{dir}/nginx.conf");
    std::fs::write(
        &conf,
        format!(
            "pid {dir}/nginx.pid;
error_log {dir}/error.log;
worker_processes 2;
events {{ worker_connections 256; }}
http {{
    access_log off;
    client_body_temp_path {dir}/body; proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi; uwsgi_temp_path {dir}/uwsgi; scgi_temp_path {dir}/scgi;
    server {{
        listen 169.254.255.254:8095;
        location / {{ return 200 \"ok\\n\"; }}
    }}
}}
"
        ),
    )
    .unwrap();
    let base = ["-p", &dir, "-c", &conf, "-e", &format!("{dir}/error.log")].map(String::from);
    let st = Command::new(&nginx).args(&base).status().expect("nginx");
    assert!(
        st.success(),
        "nginx did not start: {}",
        std::fs::read_to_string(format!("{dir}/error.log")).unwrap_or_default()
    );
    let addr: SocketAddr = "169.254.255.254:8095".parse().unwrap();
    let start = Instant::now();
    while one_request(&addr).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "nginx never answered"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let pconf = format!("{dir}/plugctl.toml");
    std::fs::write(&pconf, "quiet_window = \"45s\"\n").unwrap();
    let p = Plugctl {
        state: common::tempdir(),
        args: vec!["--config".into(), pconf, "--port".into(), "8095".into()],
    };
    p.ok(&["setup"]);
    for i in 0..2 {
        let mut cmd = vec![nginx.clone()];
        cmd.extend(base.iter().cloned());
        cmd.extend(["-s".to_string(), "reload".to_string()]);
        let cmd: Vec<&str> = cmd.iter().map(|s| s.as_str()).collect();
        let json = reload_under_connects(&p, 8095, &cmd, &format!("nginx -s reload #{i}"));
        let v = port_record(&json, 8095);
        assert_eq!(
            v["verdict"], "owners-changed",
            "new workers on the same socket: {json}"
        );
        assert!(json.contains("\"quiet_window\":false"), "{json}");
    }
    let pid = std::fs::read_to_string(format!("{dir}/nginx.pid")).unwrap_or_default();
    let _ = Command::new("kill").args(["-QUIT", pid.trim()]).status();
}

fn which(name: &str) -> Result<String, ()> {
    for d in ["/usr/sbin", "/usr/bin", "/sbin", "/bin"] {
        let p = format!("{d}/{name}");
        if std::path::Path::new(&p).exists() {
            return Ok(p);
        }
    }
    Err(())
}

/// Drain before the command: connections already in the old listener's
/// accept queue when the plug closes are accepted by the old process before
/// the restart kills it, instead of being reset with the closing listener.
/// The old process accepts one connection every 0.3 s from a queue of 80
/// (about 24 s of work, more than plugctl takes to start under TCG), so the
/// queue is not empty when the hold begins; max-hold 120 s bounds the drain
/// at 30 s.
#[test]
fn handover_drains_the_old_accept_queue_before_a_restart() {
    use std::io::Read;
    fresh_netns();
    let p = Plugctl::new(&["--port", "8096"]);
    p.ok(&["setup"]);
    // An old process that accepts one connection every 0.3 s.
    let mut old = Command::new(python())
        .args(service_args("8096", 1, 0.0, 0))
        .arg("0.3")
        .spawn()
        .expect("python3");
    wait_sockets(8096, |n| n == 1);
    let addr: SocketAddr = "169.254.255.254:8096".parse().unwrap();
    let queued: Vec<TcpStream> = (0..80)
        .map(|_| TcpStream::connect_timeout(&addr, Duration::from_secs(60)).expect("connect"))
        .collect();
    let script = format!(
        "kill {}; sleep 0.3; {}",
        old.id(),
        service_sh("8096", 1, 0.0)
    );
    let mut reload = spawn_reload(
        &p,
        &["--max-hold", "120s", "--json"],
        &["sh", "-c", &script],
    );
    wait_plugged(&p, &mut reload);
    let (out, json) = reload_json(reload, "drain");
    let _ = old.wait();
    println!("{}", String::from_utf8_lossy(&out.stderr));
    let mut outcome = Vec::new();
    for mut c in queued {
        c.set_read_timeout(Some(Duration::from_secs(60))).ok();
        let mut b = [0u8; 1];
        outcome.push(match c.read(&mut b) {
            Ok(0) => "closed".to_string(),
            Ok(_) => "data".to_string(),
            Err(e) => e.to_string(),
        });
    }
    kill_listeners(8096);
    println!("drain: {outcome:?}");
    let r = port_record(&json, 8096);
    assert!(
        r["queued_at_hold"].as_u64().unwrap_or(0) > 0,
        "nothing was queued when the hold began: the test proved nothing: {json}"
    );
    assert_eq!(r["queued_at_command"], 0, "{json}");
    assert!(json.contains("\"drained\":true"), "{json}");
    assert!(
        outcome.iter().all(|o| o == "closed"),
        "queued connections were reset: {outcome:?}"
    );
}
