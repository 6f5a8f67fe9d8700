//! The state directory and record against what another local user could
//! plant: wrong owners and modes, symlinks, FIFOs, oversized files, locks.

use std::os::fd::AsFd;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::*;

struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A scratch directory under the system's temp dir (root-owned and sticky).
fn scratch() -> TempDir {
    let p = std::env::temp_dir().join(format!(
        "plugctl-state-{}-{}",
        std::process::id(),
        &dir::random_hex()[..8]
    ));
    std::fs::create_dir(&p).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    TempDir(p)
}

fn mode(p: &Path) -> u32 {
    std::fs::symlink_metadata(p).unwrap().mode() & 0o7777
}

#[test]
fn the_directory_is_made_0755_and_the_lock_0600_whatever_the_umask() {
    let t = scratch();
    // Group-writable at creation would be refused; a wide umask must not
    // matter. (umask is per process: a child applies it.)
    let store = Store::new(&t.0.join("run"), "lo");
    let l = store.lock(LOCK_WAIT).unwrap();
    let mut l = l;
    l.write(Record::now(false)).unwrap();
    assert_eq!(mode(&t.0.join("run")), 0o755);
    let lock = t.0.join("run").join(format!("{}.lock", store.key));
    assert_eq!(mode(&lock), 0o600);
    assert_eq!(mode(&store.record_path()), 0o644);
}

#[test]
fn a_directory_others_can_write_or_own_is_refused() {
    let t = scratch();
    let d = t.0.join("wide");
    std::fs::create_dir(&d).unwrap();
    std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o777)).unwrap();
    let e = Store::new(&d, "lo").lock(LOCK_WAIT).unwrap_err();
    assert!(matches!(e, StateError::UnsafeDir { .. }), "{e}");
    assert!(e.to_string().contains("writable by others"), "{e}");

    let d = t.0.join("theirs");
    std::fs::create_dir(&d).unwrap();
    std::os::unix::fs::chown(&d, Some(65534), Some(65534)).unwrap();
    let e = Store::new(&d, "lo").lock(LOCK_WAIT).unwrap_err();
    assert!(e.to_string().contains("belongs to uid 65534"), "{e}");

    // Below a directory another user owns, even a good one is refused.
    let good = d.join("good");
    std::fs::create_dir(&good).unwrap();
    let e = Store::new(&good, "lo").lock(LOCK_WAIT).unwrap_err();
    assert!(e.to_string().contains("belongs to uid 65534"), "{e}");
}

#[test]
fn a_symlinked_directory_is_refused() {
    let t = scratch();
    let real = t.0.join("real");
    std::fs::create_dir(&real).unwrap();
    let link = t.0.join("link");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    let e = Store::new(&link, "lo").lock(LOCK_WAIT).unwrap_err();
    assert!(e.to_string().contains("symlink"), "{e}");
    // A symlink above it is resolved and the result checked instead.
    let below = link.join("state");
    let mut l = Store::new(&below, "lo").lock(LOCK_WAIT).unwrap();
    l.write(Record::now(false)).unwrap();
    assert!(real.join("state").is_dir());
}

#[test]
fn relative_paths_are_refused() {
    for p in ["run/plugctl", "", "/run/../tmp"] {
        let e = Store::new(Path::new(p), "lo").lock(LOCK_WAIT).unwrap_err();
        assert!(matches!(e, StateError::UnsafeDir { .. }), "{p:?}: {e}");
    }
}

#[test]
fn planted_symlinks_are_never_followed() {
    let t = scratch();
    let victim = t.0.join("victim");
    std::fs::write(&victim, "precious").unwrap();
    let store = Store::new(&t.0, "lo");
    // The record is a symlink to a file outside: reading it is refused
    // (maybe closed), and writing replaces the link, not its target.
    std::os::unix::fs::symlink(&victim, store.record_path()).unwrap();
    let mut l = store.lock(LOCK_WAIT).unwrap();
    assert!(
        matches!(&l.recorded, Recorded::Unreadable(w) if w.contains("symlink")),
        "{:?}",
        l.recorded
    );
    l.write(Record::now(false)).unwrap();
    drop(l);
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
    assert!(!std::fs::symlink_metadata(store.record_path())
        .unwrap()
        .file_type()
        .is_symlink());
    // The lock file as a symlink: refused.
    let lock = t.0.join(format!("{}.lock", store.key));
    std::fs::remove_file(&lock).unwrap();
    std::os::unix::fs::symlink(&victim, &lock).unwrap();
    let e = store.lock(LOCK_WAIT).unwrap_err();
    assert!(e.to_string().contains("symlink"), "{e}");
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
}

#[test]
fn a_planted_fifo_does_not_hang_anyone() {
    let t = scratch();
    let store = Store::new(&t.0, "lo");
    nix::unistd::mkfifo(&store.record_path(), Mode::from_bits_truncate(0o644)).unwrap();
    let start = Instant::now();
    let l = store.lock(LOCK_WAIT).unwrap();
    assert!(
        matches!(&l.recorded, Recorded::Unreadable(w) if w.contains("not a regular file")),
        "{:?}",
        l.recorded
    );
    drop(l);
    assert!(matches!(
        store.peek().unwrap().recorded,
        Recorded::Unreadable(_)
    ));
    assert!(start.elapsed() < Duration::from_secs(1));
}

#[test]
fn an_oversized_record_is_unreadable_not_read_whole() {
    let t = scratch();
    let store = Store::new(&t.0, "lo");
    std::fs::write(store.record_path(), vec![b' '; record::MAX_LEN * 4]).unwrap();
    assert!(
        matches!(store.peek().unwrap().recorded, Recorded::Unreadable(ref w) if w.contains("larger")),
    );
}

#[test]
fn a_lock_file_others_could_open_is_replaced() {
    let t = scratch();
    let store = Store::new(&t.0, "lo");
    let lock = t.0.join(format!("{}.lock", store.key));
    std::fs::write(&lock, "").unwrap();
    std::fs::set_permissions(&lock, std::fs::Permissions::from_mode(0o644)).unwrap();
    // Someone opened it while it was readable, and locks byte 0.
    let theirs = std::fs::File::open(&lock).unwrap();
    let mut fl: libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = libc::F_RDLCK as libc::c_short;
    fl.l_len = 1;
    nix::fcntl::fcntl(theirs.as_fd(), nix::fcntl::FcntlArg::F_OFD_SETLK(&fl)).unwrap();
    let l = store.lock(Duration::from_millis(100)).unwrap();
    assert_eq!(mode(&lock), 0o600);
    drop(l);
}

#[test]
fn the_lock_wait_is_bounded() {
    let t = scratch();
    let store = Store::new(&t.0, "lo");
    let held = store.lock(LOCK_WAIT).unwrap();
    let start = Instant::now();
    let e = store.lock(Duration::from_millis(150)).unwrap_err();
    assert!(matches!(e, StateError::LockTimeout { .. }), "{e}");
    assert!(start.elapsed() < Duration::from_secs(1));
    drop(held);
    store.lock(Duration::from_millis(150)).unwrap();
}

#[test]
fn a_slot_is_alive_while_its_descriptor_is_open() {
    let t = scratch();
    let store = Store::new(&t.0, "lo");
    let l = store.lock(LOCK_WAIT).unwrap();
    let slot = l.take_slot(&[]).unwrap();
    let h = Holder {
        id: "x".into(),
        slot: Some(slot.slot),
        pid: None,
        since_ms: 0,
        what: String::new(),
        lease_until_ms: None,
    };
    assert!(l.alive(&h));
    assert!(store.peek().unwrap().alive(&h) == Some(true));
    let second = l.take_slot(std::slice::from_ref(&h)).unwrap();
    assert_ne!(second.slot, slot.slot);
    drop(slot);
    assert!(!l.alive(&h));
    assert!(store.peek().unwrap().alive(&h) == Some(false));
}

#[test]
fn temporary_names_are_not_predictable() {
    let a = dir::random_hex();
    let b = dir::random_hex();
    assert_eq!(a.len(), 32);
    assert_ne!(a, b);
}

/// What reloads learned is its owner's alone, survives a read that finds
/// junk (as nothing learned), and goes with the record at teardown.
#[test]
fn the_learned_file_is_0600_and_goes_at_teardown() {
    let t = scratch();
    let store = Store::new(&t.0.join("run"), "lo");
    assert_eq!(store.learned(), Learned::default());
    let mut l = Learned::default();
    l.note(&["haproxy".into(), "-sf".into()], 80, Some(2000), None, 1);
    store.set_learned(&l).unwrap();
    let path = t.0.join("run").join(format!("{}.learned.json", store.key));
    assert_eq!(mode(&path), 0o600);
    assert_eq!(store.learned(), l);
    std::fs::write(&path, b"{junk").unwrap();
    assert_eq!(store.learned(), Learned::default());
    store.set_learned(&l).unwrap();
    let mut locked = store.lock(LOCK_WAIT).unwrap();
    locked.write(Record::now(false)).unwrap();
    locked.remove().unwrap();
    assert!(!path.exists() && !store.record_path().exists());
}
