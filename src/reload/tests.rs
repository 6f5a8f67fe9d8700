//! The reload engine against the fake kernel: it holds around the command,
//! releases on every path, and never lets the protection block a deploy.

use std::ffi::OsString;
use std::path::PathBuf;

use super::*;
use crate::controller::Controller;
use crate::kernel::fake::FakeKernel;
use crate::Config;

const CLOSE: &str = "new_qdisc plug 40: Change block";
const OPEN: &str = "new_qdisc plug 40: Change release_indefinite";

struct Lab {
    dir: PathBuf,
    agent: Agent<FakeKernel>,
}

impl Drop for Lab {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Lab {
    /// An agent over a fake kernel, with the tree set up if `tree`.
    fn new(tree: bool) -> Lab {
        let dir = std::env::temp_dir().join(format!(
            "plugctl-reload-{}-{}",
            std::process::id(),
            &crate::state::dir::random_hex()[..8]
        ));
        let cfg = Config {
            state_dir: dir.clone(),
            ..Config::default()
        };
        let mut ctl = Controller::with_kernel(cfg, FakeKernel::new()).unwrap();
        if tree {
            ctl.setup(false).unwrap();
            ctl.kernel_mut().calls.clear();
        }
        Lab {
            dir,
            agent: Agent::from_controller(ctl).without_watchdog(),
        }
    }

    fn calls(&self) -> Vec<String> {
        self.agent.with_controller(|c| c.kernel_mut().calls.clone())
    }

    fn kernel(&self, f: impl FnOnce(&mut FakeKernel)) {
        self.agent.with_controller(|c| f(c.kernel_mut()))
    }
}

fn argv(args: &[&str]) -> Vec<OsString> {
    args.iter().map(OsString::from).collect()
}

fn opts() -> ReloadOptions {
    ReloadOptions {
        max_hold: Duration::from_secs(5),
        ..ReloadOptions::default()
    }
}

#[tokio::test]
async fn the_command_runs_under_a_hold_and_its_code_is_kept() {
    let lab = Lab::new(true);
    let rec = reload(&lab.agent, &argv(&["sh", "-c", "exit 3"]), &opts())
        .await
        .unwrap();
    assert!(rec.held, "{rec:?}");
    assert_eq!((rec.command_exit, rec.exit_code()), (Some(3), 3));
    assert_eq!(lab.calls(), [CLOSE, OPEN]);
    assert!(
        rec.summary().contains("reload exit 3; held"),
        "{}",
        rec.summary()
    );
}

#[tokio::test]
async fn a_command_that_cannot_start_is_released() {
    let lab = Lab::new(true);
    let e = reload(&lab.agent, &argv(&["/nonexistent/reload-cmd"]), &opts())
        .await
        .unwrap_err();
    assert_eq!(e.exit_code(), 127, "{e}");
    assert_eq!(lab.calls(), [CLOSE, OPEN]);
}

#[tokio::test]
async fn a_hung_command_is_released_at_max_hold_and_waited_for() {
    let lab = Lab::new(true);
    let o = ReloadOptions {
        max_hold: Duration::from_millis(200),
        ..opts()
    };
    let rec = reload(&lab.agent, &argv(&["sleep", "1"]), &o)
        .await
        .unwrap();
    assert!(rec.max_hold_reached, "{rec:?}");
    assert!(
        rec.held_ms < 900.0,
        "released at max-hold, not when CMD ended: {rec:?}"
    );
    assert_eq!(rec.command_exit, Some(0), "the command was left to finish");
    assert_eq!(lab.calls(), [CLOSE, OPEN]);
}

#[tokio::test]
async fn without_a_hold_the_command_still_runs_unless_strict() {
    let lab = Lab::new(false);
    let rec = reload(&lab.agent, &argv(&["true"]), &opts()).await.unwrap();
    assert!(!rec.held);
    assert_eq!(rec.command_exit, Some(0));
    assert!(rec.warnings[0].contains("without holding"), "{rec:?}");
    assert!(rec.summary().contains("NOT held"));

    let marker = lab.dir.join("ran");
    let strict = ReloadOptions {
        strict: true,
        ..opts()
    };
    let cmd = vec![OsString::from("touch"), marker.clone().into_os_string()];
    let e = reload(&lab.agent, &cmd, &strict).await.unwrap_err();
    assert_eq!(e.exit_code(), 13, "{e}");
    assert!(!marker.exists(), "--strict ran the command");
    assert!(lab.calls().is_empty(), "{:?}", lab.calls());
}

#[tokio::test]
async fn a_socket_listing_failure_does_not_block_the_deploy() {
    let lab = Lab::new(true);
    lab.kernel(|k| k.fail_listeners = true);
    let o = ReloadOptions {
        wait_listen: vec!["8080".parse().unwrap()],
        ..opts()
    };
    let rec = reload(&lab.agent, &argv(&["true"]), &o).await.unwrap();
    assert_eq!(rec.command_exit, Some(0));
    assert!(rec.held);
    assert!(
        rec.warnings
            .iter()
            .any(|w| w.contains("cannot list listening sockets")),
        "{rec:?}"
    );
    assert_eq!(lab.calls(), [CLOSE, OPEN]);
}

#[tokio::test]
async fn wait_listen_holds_until_a_new_listener_replaces_the_old() {
    let lab = Lab::new(true);
    let l = listener;
    lab.kernel(|k| k.listeners = vec![l(1)]);
    let o = ReloadOptions {
        wait_listen: vec!["8080".parse().unwrap()],
        max_hold: Duration::from_millis(300),
        ..opts()
    };
    // The old listener never goes: released at max-hold, and said why.
    let rec = reload(&lab.agent, &argv(&["true"]), &o).await.unwrap();
    assert!(rec.max_hold_reached, "{rec:?}");
    assert!(
        rec.warnings.iter().any(|w| w.contains("still listens")),
        "{rec:?}"
    );
    // A new one replaced it: released without reaching max-hold.
    lab.kernel(|k| k.listeners = vec![l(1)]);
    let agent = lab.agent.clone();
    let swap = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(50)).await;
        agent.with_controller(|c| c.kernel_mut().listeners = vec![l(2)]);
    });
    let o = ReloadOptions {
        max_hold: Duration::from_secs(5),
        ..o
    };
    let rec = reload(&lab.agent, &argv(&["true"]), &o).await.unwrap();
    swap.await.unwrap();
    assert!(!rec.max_hold_reached, "{rec:?}");
    assert!(
        rec.waited_for_listen_ms.is_some_and(|ms| ms >= 40.0),
        "{rec:?}"
    );
}

fn listener(inode: u32) -> plugctl_netlink::diag::Listener {
    plugctl_netlink::diag::Listener {
        addr: "0.0.0.0".parse().unwrap(),
        port: 8080,
        inode,
        cookie: u64::from(inode) << 40,
        rqueue: 0,
        wqueue: 128,
    }
}

/// A command that touches `marker` (the baseline is taken by then), then
/// sleeps `secs`.
fn marked(marker: &std::path::Path, secs: f64) -> Vec<OsString> {
    argv(&[
        "sh",
        "-c",
        &format!("touch '{}'; sleep {secs}", marker.display()),
    ])
}

/// Wait (bounded) for `marker` to exist.
async fn wait_for(marker: &std::path::Path) {
    for _ in 0..6000 {
        if marker.exists() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{} never appeared", marker.display());
}

/// A restart as the kernel shows it: once `marker` exists (the command
/// runs), the old listener (`listener(1)`) closes, and `gap_ms` later a new
/// one (`listener(2)`) listens.
fn restart(lab: &Lab, marker: &std::path::Path, gap_ms: u64) -> tokio::task::JoinHandle<()> {
    let agent = lab.agent.clone();
    let m = marker.to_path_buf();
    tokio::spawn(async move {
        wait_for(&m).await;
        agent.with_controller(|c| c.kernel_mut().listeners.clear());
        tokio::time::sleep(Duration::from_millis(gap_ms)).await;
        agent.with_controller(|c| c.kernel_mut().listeners = vec![listener(2)]);
    })
}

/// `argv` as what is learned is keyed by.
fn key_of(argv: &[OsString]) -> Vec<String> {
    learned_key(
        &argv
            .iter()
            .map(|a| a.to_string_lossy().into())
            .collect::<Vec<_>>(),
    )
}

#[tokio::test]
async fn by_default_a_restart_is_held_until_the_new_listener_is_up() {
    let lab = Lab::new(true);
    let marker = lab.dir.join("started");
    // The old socket (no owner found: counted as exited) closes while the
    // command runs; a new one comes up 500 ms later, after it returned.
    lab.kernel(|k| k.listeners = vec![listener(1)]);
    let swap = restart(&lab, &marker, 500);
    let o = ReloadOptions {
        quiet: Duration::from_millis(10),
        max_hold: Duration::from_secs(60),
        ..opts()
    };
    let rec = reload(&lab.agent, &marked(&marker, 0.2), &o).await.unwrap();
    swap.await.unwrap();
    assert!(!rec.max_hold_reached, "{rec:?}");
    assert_eq!(rec.handover.mode, "observed");
    assert!(
        rec.waited_for_listen_ms.is_some_and(|ms| ms >= 100.0),
        "released before the new listener: {rec:?}"
    );
    let p = &rec.handover.ports;
    assert_eq!(
        (p.len(), p[0].port, p[0].verdict),
        (1, 8080, "handed-over"),
        "{rec:?}"
    );
    assert_eq!((p[0].old_sockets, p[0].sockets), (1, 1));
    assert!(!rec.handover.quiet_window);
    assert_eq!(lab.calls(), [CLOSE, OPEN]);
    // The old listener went at once: remembered, so the next reload of the
    // command drains in full.
    let gone = p[0].old_open_ms.expect("old_open_ms");
    assert!(gone < 500.0, "{rec:?}");
    let key = learned_key(&rec.command);
    assert_eq!(
        lab.agent
            .store()
            .learned()
            .seen(&key, 8080)
            .map(|s| s.old_open_ms),
        Some(Some(gone as u64))
    );
}

/// A port whose old listeners the last reload of the same command kept
/// (nginx -s reload, USR2) is not drained: nothing resets their queue.
#[tokio::test]
async fn a_port_whose_listeners_are_kept_is_not_drained() {
    let lab = Lab::new(true);
    let queued = plugctl_netlink::diag::Listener {
        rqueue: 400,
        ..listener(1)
    };
    lab.kernel(|k| k.listeners = vec![queued]);
    let o = ReloadOptions {
        quiet: Duration::from_millis(10),
        max_hold: Duration::from_secs(60),
        ..opts()
    };
    // Another PID after the command's arguments: the same command.
    let mut learned = crate::state::Learned::default();
    learned.note(
        &["sh".into(), "-c".into(), "true".into()],
        8080,
        None,
        None,
        1,
    );
    lab.agent.store().set_learned(&learned).unwrap();
    let cmd = argv(&["sh", "-c", "true", "4242"]);
    let rec = reload(&lab.agent, &cmd, &o).await.unwrap();
    let h = &rec.handover;
    assert_eq!(h.drain_skipped, [8080], "{rec:?}");
    assert!(h.drain_ms.is_some_and(|ms| ms < 100.0), "{rec:?}");
    assert!(
        !rec.warnings.iter().any(|w| w.contains("still queued")),
        "{rec:?}"
    );
    assert_eq!(h.ports[0].queued_at_command, 400, "{rec:?}");
    // Nothing changed this time: nothing to tell, still remembered.
    assert_eq!(lab.agent.store().learned(), learned);

    // Another command on the same port is drained in full (the queue does
    // not move: the drain gives up after its stall bound).
    let rec = reload(&lab.agent, &argv(&["true"]), &o).await.unwrap();
    assert!(rec.handover.drain_skipped.is_empty(), "{rec:?}");
    assert_eq!(rec.handover.drain_budget_ms, None, "{rec:?}");
    assert!(
        rec.handover.drain_ms.is_some_and(|ms| ms >= 900.0),
        "{rec:?}"
    );
}

/// HAProxy -sf pauses its old listeners only once the new process has read
/// its configuration: the old process goes on accepting until then. So the
/// drain ends once the rest would take it half that long.
#[tokio::test]
async fn a_port_whose_listeners_stayed_open_is_drained_until_the_rest_fits_half_that() {
    let lab = Lab::new(true);
    let queued = |n| plugctl_netlink::diag::Listener {
        rqueue: n,
        ..listener(1)
    };
    lab.kernel(|k| k.listeners = vec![queued(400)]);
    let mut learned = crate::state::Learned::default();
    // 1,001 ms: `1.001 * 1000.0` is not 1001.0 in f64.
    learned.note(&["true".into()], 8080, Some(2002), None, 1);
    lab.agent.store().set_learned(&learned).unwrap();
    // The old process accepts 100 every 20 ms: 5,000/s.
    let agent = lab.agent.clone();
    let accept = tokio::spawn(async move {
        for n in [300, 200, 100, 0] {
            tokio::time::sleep(Duration::from_millis(20)).await;
            agent.with_controller(|c| c.kernel_mut().listeners = vec![queued(n)]);
        }
    });
    let o = ReloadOptions {
        quiet: Duration::from_millis(10),
        max_hold: Duration::from_secs(60),
        ..opts()
    };
    let rec = reload(&lab.agent, &argv(&["true"]), &o).await.unwrap();
    accept.await.unwrap();
    let h = &rec.handover;
    assert_eq!(h.drain_budget_ms, Some(1001.0), "{rec:?}");
    // It ended after DRAIN_RATE_AFTER, the queue not yet empty (in full it
    // empties after 80 ms), quietly.
    assert!(!h.drained, "{rec:?}");
    assert!(h.drain_ms.is_some_and(|ms| ms >= 20.0), "{rec:?}");
    assert!(
        !rec.warnings.iter().any(|w| w.contains("still queued")),
        "{rec:?}"
    );
}

/// A reload of a remembered command that shows something else replaces it:
/// the old listeners went at once, so the next one drains in full.
#[tokio::test]
async fn a_restart_replaces_what_was_learned() {
    let lab = Lab::new(true);
    let marker = lab.dir.join("started");
    let cmd = marked(&marker, 0.2);
    let key = key_of(&cmd);
    let mut learned = crate::state::Learned::default();
    learned.note(&key, 8080, None, None, 1);
    lab.agent.store().set_learned(&learned).unwrap();
    lab.kernel(|k| k.listeners = vec![listener(1)]);
    let swap = restart(&lab, &marker, 300);
    let o = ReloadOptions {
        quiet: Duration::from_millis(10),
        max_hold: Duration::from_secs(60),
        ..opts()
    };
    let rec = reload(&lab.agent, &cmd, &o).await.unwrap();
    swap.await.unwrap();
    assert_eq!(rec.handover.drain_skipped, [8080], "{rec:?}");
    let gone = rec.handover.ports[0].old_open_ms.expect("old_open_ms");
    assert_eq!(
        lab.agent
            .store()
            .learned()
            .seen(&key, 8080)
            .map(|s| s.old_open_ms),
        Some(Some(gone as u64))
    );
}

#[test]
fn the_old_listeners_are_gone_when_none_of_them_listens() {
    let scope = Scope::default();
    let base = Baseline::new(snap::take(
        &scope,
        &[listener(1), listener(3)],
        &[],
        None,
        true,
    ));
    let mut c = Closed::default();
    // Before the command starts, nothing counts.
    c.look(&base, &scope, &[]);
    assert!(c.at.is_empty());
    c.start();
    c.look(&base, &scope, &[listener(1), listener(2), listener(3)]);
    c.look(&base, &scope, &[listener(3), listener(2)]);
    assert!(c.at.is_empty(), "one old socket still listens: {c:?}");
    c.look(&base, &scope, &[listener(2)]);
    let t = c.at[&8080];
    // The first time counts.
    c.look(&base, &scope, &[]);
    assert_eq!(c.at[&8080], t);
}

/// The old listener stops while the command runs (HAProxy -sf pauses it
/// once the new process has read its configuration): when is remembered.
#[tokio::test]
async fn when_the_old_listeners_stop_while_the_command_runs_is_remembered() {
    let lab = Lab::new(true);
    let marker = lab.dir.join("started");
    lab.kernel(|k| k.listeners = vec![listener(1)]);
    let agent = lab.agent.clone();
    let m = marker.clone();
    let swap = tokio::spawn(async move {
        wait_for(&m).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        agent.with_controller(|c| c.kernel_mut().listeners = vec![listener(2)]);
    });
    let o = ReloadOptions {
        quiet: Duration::from_millis(10),
        max_hold: Duration::from_secs(60),
        ..opts()
    };
    let cmd = marked(&marker, 0.6);
    let rec = reload(&lab.agent, &cmd, &o).await.unwrap();
    swap.await.unwrap();
    let p = &rec.handover.ports[0];
    let gone = p.old_open_ms.expect("old_open_ms");
    assert!((300.0..600.0).contains(&gone), "{rec:?}");
    let key = key_of(&cmd);
    assert_eq!(
        lab.agent
            .store()
            .learned()
            .seen(&key, 8080)
            .map(|s| s.old_open_ms),
        Some(Some(gone as u64))
    );
}

/// A port that had no listener when the hold began (`added`) tells nothing
/// about how the command treats old listeners.
#[tokio::test]
async fn a_new_port_teaches_nothing() {
    let lab = Lab::new(true);
    let port = |verdict, old_sockets, old_open_ms| PortRecord {
        port: 8080,
        verdict,
        old_sockets,
        old_open_ms,
        ..PortRecord::default()
    };
    let mut rec = ReloadRecord::default();
    rec.handover.ports = vec![port("added", 0, None)];
    learn(&lab.agent, &["x".into()], &rec);
    assert_eq!(
        lab.agent.store().learned(),
        crate::state::Learned::default()
    );
    rec.handover.ports = vec![port("owners-changed", 1, None)];
    learn(&lab.agent, &["x".into()], &rec);
    assert_eq!(
        lab.agent
            .store()
            .learned()
            .seen(&["x".into()], 8080)
            .map(|s| s.old_open_ms),
        Some(None)
    );
}

#[test]
fn what_is_learned_is_keyed_by_the_command_without_its_pids() {
    let k = |a: &[&str]| learned_key(&a.iter().map(|s| s.to_string()).collect::<Vec<_>>());
    assert_eq!(
        k(&["haproxy", "-f", "h.cfg", "-D", "-sf", "123", "456"]),
        k(&["haproxy", "-f", "h.cfg", "-D", "-sf", "789"])
    );
    assert_ne!(
        k(&["systemctl", "reload", "x"]),
        k(&["systemctl", "restart", "x"])
    );
    assert_eq!(k(&["sleep", "0.5", ""]), ["sleep", "0.5", ""]);
}

#[tokio::test]
async fn by_default_nothing_changed_releases_after_the_quiet_window() {
    let lab = Lab::new(true);
    lab.kernel(|k| k.listeners = vec![listener(1)]);
    let o = ReloadOptions {
        quiet: Duration::from_millis(150),
        ..opts()
    };
    let rec = reload(&lab.agent, &argv(&["true"]), &o).await.unwrap();
    assert!(rec.handover.quiet_window, "{rec:?}");
    assert!(!rec.max_hold_reached, "{rec:?}");
    assert!(
        rec.waited_for_listen_ms.is_some_and(|ms| ms >= 150.0),
        "{rec:?}"
    );
    assert_eq!(rec.handover.ports[0].verdict, "unchanged");
}

#[tokio::test]
async fn by_default_a_restart_that_never_comes_is_released_at_max_hold() {
    let lab = Lab::new(true);
    let marker = lab.dir.join("started");
    lab.kernel(|k| k.listeners = vec![listener(1)]);
    let agent = lab.agent.clone();
    let m = marker.clone();
    let clear = tokio::spawn(async move {
        wait_for(&m).await;
        agent.with_controller(|c| c.kernel_mut().listeners.clear());
    });
    let o = ReloadOptions {
        max_hold: Duration::from_secs(5),
        ..opts()
    };
    let rec = reload(&lab.agent, &marked(&marker, 0.1), &o).await.unwrap();
    clear.await.unwrap();
    assert!(rec.max_hold_reached, "{rec:?}");
    assert!(
        rec.warnings
            .iter()
            .any(|w| w.contains("port 8080: nothing listens")),
        "{rec:?}"
    );
    assert_eq!(rec.handover.ports[0].verdict, "restarting");
}

#[tokio::test]
async fn no_wait_releases_when_the_command_returns() {
    let lab = Lab::new(true);
    lab.kernel(|k| k.listeners = vec![listener(1)]);
    let o = ReloadOptions {
        no_wait: true,
        quiet: Duration::from_secs(60),
        ..opts()
    };
    let rec = reload(&lab.agent, &argv(&["true"]), &o).await.unwrap();
    assert_eq!(rec.handover.mode, "none");
    assert_eq!(rec.waited_for_listen_ms, None, "{rec:?}");
    assert!(!rec.max_hold_reached);
    assert_eq!(lab.calls(), [CLOSE, OPEN]);
}

#[tokio::test]
async fn the_old_accept_queue_drains_before_the_command_runs() {
    let lab = Lab::new(true);
    let marker = lab.dir.join("started");
    let queued = |n| plugctl_netlink::diag::Listener {
        rqueue: n,
        ..listener(1)
    };
    lab.kernel(|k| k.listeners = vec![queued(7)]);
    let agent = lab.agent.clone();
    let m = marker.clone();
    let accept = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(!m.exists(), "the command ran before the queue was empty");
        agent.with_controller(|c| c.kernel_mut().listeners = vec![queued(0)]);
    });
    let o = ReloadOptions {
        quiet: Duration::from_millis(10),
        max_hold: Duration::from_secs(60),
        ..opts()
    };
    let rec = reload(&lab.agent, &marked(&marker, 0.0), &o).await.unwrap();
    accept.await.unwrap();
    let h = &rec.handover;
    assert!(h.drained, "{rec:?}");
    assert!(h.drain_ms.is_some_and(|ms| ms >= 150.0), "{rec:?}");
    let p = &h.ports[0];
    assert_eq!(
        (
            p.queued_at_hold,
            p.queued_at_command,
            p.backlog_at_hold,
            p.free_backlog
        ),
        (7, 0, 128, 128),
        "{rec:?}"
    );
}

#[tokio::test]
async fn a_queue_that_never_drains_is_not_waited_for_long() {
    let lab = Lab::new(true);
    lab.kernel(|k| {
        k.listeners = vec![plugctl_netlink::diag::Listener {
            rqueue: 3,
            ..listener(1)
        }]
    });
    let o = ReloadOptions {
        quiet: Duration::from_millis(10),
        max_hold: Duration::from_millis(800),
        ..opts()
    };
    let rec = reload(&lab.agent, &argv(&["true"]), &o).await.unwrap();
    assert!(!rec.handover.drained, "{rec:?}");
    assert!(
        rec.handover.drain_ms.is_some_and(|ms| ms >= 200.0),
        "{rec:?}"
    );
    assert!(
        rec.warnings
            .iter()
            .any(|w| w.contains("3 connections were still queued")),
        "{rec:?}"
    );
    assert_eq!(rec.handover.ports[0].queued_at_command, 3);
}

/// An overloaded service: its old queue shrinks slowly while new SYNs pile
/// up in the plug. The drain stops once the plug holds as many as are still
/// queued, long before the queue would be empty.
#[tokio::test]
async fn the_drain_ends_when_the_plug_holds_as_many_as_are_queued() {
    let lab = Lab::new(true);
    let queued = |n| plugctl_netlink::diag::Listener {
        rqueue: n,
        ..listener(1)
    };
    lab.kernel(|k| k.listeners = vec![queued(400)]);
    let agent = lab.agent.clone();
    let load = tokio::spawn(async move {
        // 20 ms later: 390 queued, 500 SYNs held.
        tokio::time::sleep(Duration::from_millis(20)).await;
        agent.with_controller(|c| {
            let k = c.kernel_mut();
            k.listeners = vec![queued(390)];
            for q in k.qdiscs.iter_mut().filter(|q| q.kind.name() == "plug") {
                q.stats.qlen = 500;
            }
        });
    });
    let o = ReloadOptions {
        quiet: Duration::from_millis(10),
        max_hold: Duration::from_secs(60),
        ..opts()
    };
    let rec = reload(&lab.agent, &argv(&["true"]), &o).await.unwrap();
    load.await.unwrap();
    let h = &rec.handover;
    assert!(!h.drained, "{rec:?}");
    assert_eq!(h.drain_held, 500, "{rec:?}");
    // Not the 1 s stall bound, nor a quarter of max-hold (15 s).
    assert!(h.drain_ms.is_some_and(|ms| ms < 900.0), "{rec:?}");
    assert!(
        rec.warnings
            .iter()
            .any(|w| w.contains("390 connections were still queued") && w.contains("held: 500")),
        "{rec:?}"
    );
}

#[test]
fn a_burst_beyond_the_free_backlog_is_warned_about() {
    let mut rec = ReloadRecord {
        packets: 300,
        ..ReloadRecord::default()
    };
    rec.handover.ports = vec![PortRecord {
        port: 8080,
        free_backlog: 200,
        ..PortRecord::default()
    }];
    burst_check(&mut rec);
    assert!(
        rec.warnings[0].contains("300 SYNs") && rec.warnings[0].contains("tcp_migrate_req=1"),
        "{rec:?}"
    );
    let mut rec = ReloadRecord {
        packets: 200,
        ..rec
    };
    rec.warnings.clear();
    burst_check(&mut rec);
    assert!(rec.warnings.is_empty(), "{rec:?}");
}

#[tokio::test]
async fn no_command_is_a_usage_error() {
    let lab = Lab::new(true);
    let e = reload(&lab.agent, &[], &opts()).await.unwrap_err();
    assert_eq!(e.exit_code(), 2, "{e}");
    assert!(lab.calls().is_empty());
}

/// While the command runs (the plug closed: nothing new reaches the old
/// listeners), only the old process accepting shrinks their queue. Most of
/// it still there at the last look before they stopped means the old
/// process stopped without accepting (a SIGTERM), and that was reset;
/// little left means it accepted (HAProxy -sf).
#[test]
fn whether_the_old_process_accepted_during_the_command_is_seen() {
    let scope = Scope::default();
    let base = Baseline::new(snap::take(&scope, &[listener(1)], &[], None, true));
    let q = |n| plugctl_netlink::diag::Listener {
        rqueue: n,
        ..listener(1)
    };
    let run = |looks: &[&[plugctl_netlink::diag::Listener]]| {
        let mut c = Closed {
            queued: [(8080, 10)].into(),
            ..Closed::default()
        };
        c.start();
        for l in looks {
            c.look(&base, &scope, l);
        }
        c.accepted(8080)
    };
    assert_eq!(run(&[&[q(9)], &[q(8)], &[]]), Some(false));
    assert_eq!(run(&[&[q(9)], &[q(1)], &[]]), Some(true));
    assert_eq!(run(&[&[q(5)], &[]]), Some(true));
    // Still listening at the end, or never seen open: unknown.
    assert_eq!(run(&[&[q(9)]]), None);
    assert_eq!(run(&[&[]]), None);
    // Before the command starts, nothing counts.
    let mut c = Closed {
        queued: [(8080, 10)].into(),
        ..Closed::default()
    };
    c.look(&base, &scope, &[q(0)]);
    c.start();
    c.look(&base, &scope, &[]);
    assert_eq!(c.accepted(8080), None);
    // Nothing was queued: nothing is known.
    let mut c = Closed::default();
    c.start();
    c.look(&base, &scope, &[q(0)]);
    c.look(&base, &scope, &[]);
    assert_eq!(c.accepted(8080), None);
}

/// What the drain plan makes of it: a port whose old process stopped
/// accepting when the command started is drained in full, not to a budget.
#[test]
fn a_port_whose_old_process_stopped_accepting_is_drained_in_full() {
    let base = Baseline::new(snap::take(
        &Scope::default(),
        &[listener(1)],
        &[],
        None,
        true,
    ));
    let plan = DrainPlan::new(&base, |_| Some((Some(1000), Some(false))));
    assert!(plan.skip.is_empty());
    assert_eq!(plan.budget, None);
    for accepts in [Some(true), None] {
        let plan = DrainPlan::new(&base, |_| Some((Some(1000), accepts)));
        assert_eq!(plan.budget, Some(Duration::from_millis(500)));
    }
    let plan = DrainPlan::new(&base, |_| Some((None, Some(false))));
    assert_eq!(plan.skip.len(), 1);
}
