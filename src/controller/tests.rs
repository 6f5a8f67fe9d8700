//! The controller against the fake kernel and a private state directory:
//! who closes and opens the plug, and when.

use std::os::fd::AsFd;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::*;
use crate::kernel::fake::FakeKernel;

pub(super) struct TempDir(pub(super) PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub(super) fn temp_dir() -> TempDir {
    TempDir(std::env::temp_dir().join(format!(
        "plugctl-ctl-{}-{}",
        std::process::id(),
        &state::dir::random_hex()[..8]
    )))
}

/// A controller over a fake kernel with the tree set up.
fn controller(dir: &TempDir) -> Controller<FakeKernel> {
    let cfg = Config {
        state_dir: dir.0.clone(),
        ..Config::default()
    };
    let mut c = Controller::with_kernel(cfg, FakeKernel::new())
        .unwrap()
        .with_lock_wait(Duration::from_millis(200));
    c.setup(false).unwrap();
    c.kernel_mut().calls.clear();
    c
}

const CLOSE: &str = "new_qdisc plug 40: Change block";
const OPEN: &str = "new_qdisc plug 40: Change release_indefinite";

fn recorded<K: Kernel>(c: &Controller<K>) -> Recorded {
    c.store().peek().unwrap().recorded
}

#[test]
fn a_hold_closes_and_its_release_opens() {
    let dir = temp_dir();
    let mut c = controller(&dir);
    let h = c.hold("test").unwrap();
    assert_eq!(c.kernel_mut().calls, [CLOSE]);
    let Recorded::Found(r) = recorded(&c) else {
        panic!("no record")
    };
    assert!(r.closed);
    assert_eq!(r.holders.len(), 1);
    assert!(c.store().peek().unwrap().alive(&r.holders[0]) == Some(true));
    let s = c.release_hold(h).unwrap();
    assert!(s.released && s.unrecorded.is_none());
    assert_eq!(c.kernel_mut().calls, [CLOSE, OPEN]);
    let Recorded::Found(r) = recorded(&c) else {
        panic!("no record")
    };
    assert!(!r.closed && r.holders.is_empty());
}

#[test]
fn overlapping_holds_open_only_with_the_last() {
    let dir = temp_dir();
    let mut c = controller(&dir);
    let a = c.hold("a").unwrap();
    let b = c.hold("b").unwrap();
    assert_eq!(
        c.kernel_mut().calls,
        [CLOSE],
        "the second hold sends nothing"
    );
    assert!(!c.release_hold(a).unwrap().released);
    assert_eq!(c.kernel_mut().calls, [CLOSE]);
    assert!(c.release_hold(b).unwrap().released);
    assert_eq!(c.kernel_mut().calls, [CLOSE, OPEN]);
}

#[test]
fn release_refuses_a_live_holder_unless_forced() {
    let dir = temp_dir();
    let mut c = controller(&dir);
    let h = c.hold("reload").unwrap();
    let e = c.release(false).unwrap_err();
    assert!(
        matches!(e, Error::Held(ref m) if m.contains("reload")),
        "{e}"
    );
    assert_eq!(c.kernel_mut().calls, [CLOSE]);
    assert!(c.release(true).unwrap().released);
    assert_eq!(c.kernel_mut().calls, [CLOSE, OPEN]);
    drop(h);
}

#[test]
fn a_holder_that_is_gone_no_longer_holds() {
    let dir = temp_dir();
    let mut c = controller(&dir);
    let h = c.hold("dies").unwrap();
    // Dropping the HoldId closes its slot's descriptor, as the kernel does
    // for a process that dies.
    drop(h);
    let st = c.status().unwrap();
    assert!(st.leftover, "{st}");
    assert_eq!(st.exit_code(), 15);
    assert!(c.release(false).unwrap().released);
    assert_eq!(c.kernel_mut().calls, [CLOSE, OPEN]);
    assert_eq!(c.status().unwrap().exit_code(), 0);
}

#[test]
fn setup_opens_a_plug_left_closed() {
    let dir = temp_dir();
    let mut c = controller(&dir);
    drop(c.hold("dies").unwrap());
    let changes = c.setup(false).unwrap();
    assert!(changes.to_string().contains("left closed"), "{changes}");
    assert_eq!(c.kernel_mut().calls, [CLOSE, OPEN]);
}

#[test]
fn manual_plug_holds_until_release() {
    let dir = temp_dir();
    let mut c = controller(&dir);
    c.hold_manual(None).unwrap();
    assert_eq!(c.kernel_mut().calls, [CLOSE]);
    // The manual hold has no process: nothing can judge it dead.
    assert!(!c.status().unwrap().leftover);
    let h = c.hold("reload").unwrap();
    assert!(
        !c.release_hold(h).unwrap().released,
        "the manual hold remains"
    );
    assert!(c.release(false).unwrap().released);
    assert_eq!(c.kernel_mut().calls, [CLOSE, OPEN]);
}

#[test]
fn an_unreadable_record_means_maybe_closed() {
    for garbage in [&b""[..], b"{\"closed\":", b"\x00\xff"] {
        let dir = temp_dir();
        let mut c = controller(&dir);
        std::fs::write(c.store().record_path(), garbage).unwrap();
        let st = c.status().unwrap();
        assert_eq!(st.exit_code(), 17, "{garbage:?}: {st}");
        assert_eq!(st.plug.as_ref().map(|p| p.state), Some("unreadable"));
        let changes = c.setup(false).unwrap();
        assert!(changes.to_string().contains("unreadable"), "{changes}");
        assert_eq!(c.kernel_mut().calls, [OPEN]);
        assert_eq!(c.status().unwrap().exit_code(), 0);
        std::fs::write(c.store().record_path(), garbage).unwrap();
        assert!(c.release(false).unwrap().released);
    }
}

#[test]
fn a_stuck_lock_does_not_keep_the_plug_closed() {
    let dir = temp_dir();
    let mut c = controller(&dir);
    let h = c.hold("reload").unwrap();
    // Another process (here: another open file description) sits on the
    // record's lock.
    let lock_path = c.store().record_path().with_extension("lock");
    let other = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&lock_path)
        .unwrap();
    assert!(state::lock::try_lock(other.as_fd(), 0).unwrap());
    // A new hold cannot be recorded: it fails, and sends nothing.
    let t = Instant::now();
    let e = c.hold("second").unwrap_err();
    assert!(
        matches!(e, Error::State(StateError::LockTimeout { .. })),
        "{e}"
    );
    assert!(t.elapsed() < Duration::from_secs(2), "the wait is bounded");
    assert_eq!(c.kernel_mut().calls, [CLOSE]);
    // A release opens the plug anyway, and says so.
    let s = c.release_hold(h).unwrap();
    assert!(s.released);
    assert!(
        s.unrecorded.as_deref().is_some_and(|w| w.contains("lock")),
        "{s:?}"
    );
    assert_eq!(c.kernel_mut().calls, [CLOSE, OPEN]);
    let s = c.release(false).unwrap();
    assert!(s.released && s.unrecorded.is_some());
}

#[test]
fn a_failed_close_leaves_no_holder_behind() {
    let dir = temp_dir();
    let mut c = controller(&dir);
    c.kernel_mut().fail_on = Some((
        CLOSE.into(),
        plugctl_netlink::KernelError {
            errno: libc::EINVAL,
            message: None,
        },
    ));
    assert!(c.hold("fails").is_err());
    let Recorded::Found(r) = recorded(&c) else {
        panic!("no record")
    };
    assert!(!r.closed && r.holders.is_empty(), "{r:?}");
}

#[test]
fn a_hold_and_its_release_each_read_the_qdiscs_once() {
    let dir = temp_dir();
    let mut c = controller(&dir);
    c.kernel_mut().qdisc_dumps = 0;
    let h = c.hold("once").unwrap();
    assert_eq!(c.kernel_mut().qdisc_dumps, 1, "hold");
    c.release_hold(h).unwrap();
    assert_eq!(c.kernel_mut().qdisc_dumps, 2, "release");
}

#[test]
fn a_release_reports_what_was_held_and_what_the_hold_dropped() {
    let dir = temp_dir();
    let mut c = controller(&dir);
    let set_plug = |c: &mut Controller<FakeKernel>, qlen, backlog, drops| {
        let qs = &mut c.kernel_mut().qdiscs;
        let plug = qs.iter_mut().find(|q| q.handle == tree::PLUG).unwrap();
        plug.stats.qlen = qlen;
        plug.stats.backlog = backlog;
        plug.stats.drops = drops;
    };
    // Drops from before the hold are not its own.
    set_plug(&mut c, 0, 0, 5);
    let h = c.hold("counted").unwrap();
    set_plug(&mut c, 2, 148, 8);
    let s = c.release_hold(h).unwrap();
    assert_eq!((s.packets, s.bytes, s.drops), (2, 148, 3), "{s:?}");
}
