//! When a reload may release: the hand-over of the listening sockets.
//!
//! By default (`plugctl reload -- CMD`) the hand-over is observed: the
//! listeners on the protected addresses are snapshot when the hold begins
//! and polled after CMD returns, and a pure rule ([`rule`]) over the two
//! snapshots says, per port, whether it is safe ([`mod@snapshot`] takes them).
//!
//! `reload --wait-listen [ADDR:]PORT` (this file) is the explicit form:
//! after the reload command returns, keep holding until, for every named
//! port, a listening socket exists that did not exist when the hold began,
//! *no* socket that listened then still listens, and that has held for a
//! settle time. Sockets are told apart by inode (NETLINK_SOCK_DIAG).
//!
//! Either way: a SYN released into a listener that is about to close would
//! be reset; one released while nothing listens would be refused.

pub mod background;
pub mod rule;
pub mod snapshot;

use std::collections::HashSet;
use std::fmt;
use std::time::{Duration, Instant};

use plugctl_netlink::diag::Listener;

/// Where `--wait-listen`'s type is declared: the configuration reads it.
pub use crate::config::ListenSpec;

impl ListenSpec {
    /// Does `l` serve this spec?
    pub fn matches(&self, l: &Listener) -> bool {
        l.port == self.port
            && self
                .addr
                .is_none_or(|a| a == l.addr || l.addr.is_unspecified())
    }
}

/// The inodes listening for each spec.
pub type Snapshot = Vec<HashSet<u32>>;

/// Which sockets serve each spec now.
pub fn snapshot(specs: &[ListenSpec], listeners: &[Listener]) -> Snapshot {
    specs
        .iter()
        .map(|s| {
            listeners
                .iter()
                .filter(|l| s.matches(l))
                .map(|l| l.inode)
                .collect()
        })
        .collect()
}

/// Why a spec is not ready.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotReady {
    /// No socket listens that was not there at plug time.
    NoNewListener(ListenSpec),
    /// Sockets that listened at plug time still do.
    OldStillListening(ListenSpec, Vec<u32>),
}

impl fmt::Display for NotReady {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NotReady::NoNewListener(s) => write!(f, "no new listener on {s}"),
            NotReady::OldStillListening(s, inodes) => {
                let who: Vec<String> = inodes
                    .iter()
                    .map(|i| match owner_of_socket(*i) {
                        Some(pid) => format!("inode {i} (pid {pid})"),
                        None => format!("inode {i}"),
                    })
                    .collect();
                write!(
                    f,
                    "the old listener on {s} still listens: {}",
                    who.join(", ")
                )
            }
        }
    }
}

/// Compare `now` with `before`: `Ok` if every spec has a new listener and
/// no old one.
pub fn check(specs: &[ListenSpec], before: &Snapshot, now: &Snapshot) -> Result<(), NotReady> {
    for ((spec, b), n) in specs.iter().zip(before).zip(now) {
        let old: Vec<u32> = b.intersection(n).copied().collect();
        if !old.is_empty() {
            return Err(NotReady::OldStillListening(*spec, old));
        }
        if n.is_empty() {
            return Err(NotReady::NoNewListener(*spec));
        }
    }
    Ok(())
}

/// Tracks readiness over time: ready once [`check`] has passed for `settle`.
#[derive(Debug)]
pub struct Settler {
    settle: Duration,
    since: Option<Instant>,
}

impl Settler {
    /// A settler requiring `settle` of continuous readiness.
    pub fn new(settle: Duration) -> Settler {
        Settler {
            settle,
            since: None,
        }
    }
    /// Feed one observation; true once it has been ready for `settle`.
    pub fn observe(&mut self, ready: bool, now: Instant) -> bool {
        if !ready {
            self.since = None;
            return false;
        }
        let since = *self.since.get_or_insert(now);
        now.duration_since(since) >= self.settle
    }
}

/// The pid of a process holding socket `inode` open, from `/proc/*/fd`
/// (needs privileges to see other users' processes).
pub fn owner_of_socket(inode: u32) -> Option<u32> {
    snapshot::owners(&HashSet::from([inode]))
        .remove(&inode)
        .and_then(|pids| pids.into_iter().min())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn l(addr: &str, port: u16, inode: u32) -> Listener {
        Listener {
            addr: addr.parse().unwrap(),
            port,
            inode,
            cookie: u64::from(inode),
            rqueue: 0,
            wqueue: 0,
        }
    }

    #[test]
    fn readiness_cases() {
        let specs = ["169.254.255.254:8080".parse().unwrap()];
        let before = snapshot(
            &specs,
            &[l("169.254.255.254", 8080, 1), l("127.0.0.1", 8080, 9)],
        );
        // Cold restart: nothing listens for a while.
        assert!(matches!(
            check(&specs, &before, &snapshot(&specs, &[])),
            Err(NotReady::NoNewListener(_))
        ));
        // Hand-over: the new one is up, the old one not yet closed.
        let both = snapshot(
            &specs,
            &[l("169.254.255.254", 8080, 1), l("0.0.0.0", 8080, 2)],
        );
        assert!(
            matches!(check(&specs, &before, &both), Err(NotReady::OldStillListening(_, ref v)) if v == &[1])
        );
        // Done: only the new one (wildcard-bound) listens.
        assert_eq!(
            check(&specs, &before, &snapshot(&specs, &[l("0.0.0.0", 8080, 2)])),
            Ok(())
        );
    }

    #[test]
    fn settles_only_after_continuous_readiness() {
        let mut s = Settler::new(Duration::from_millis(20));
        let t = Instant::now();
        assert!(!s.observe(true, t));
        assert!(!s.observe(true, t + Duration::from_millis(10)));
        assert!(!s.observe(false, t + Duration::from_millis(15)));
        assert!(!s.observe(true, t + Duration::from_millis(30)));
        assert!(s.observe(true, t + Duration::from_millis(50)));
    }
}
