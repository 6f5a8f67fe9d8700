//! The hand-over rule: a pure function of two snapshots of the listeners
//! on the protected addresses (one taken when the hold began, one now) and
//! the time since the reload command returned. No I/O here: the snapshots
//! are taken by [`mod@super::snapshot`].
//!
//! Per port (sockets told apart by cookie; "old" = listening when the hold
//! began, "new" = not):
//!
//! | what is seen | verdict | release? |
//! |---|---|---|
//! | a new socket from a new process, an old one still open | hand-over | wait for the old to close |
//! | a new socket from a new process, no old one left | handed over | yes (after settle) |
//! | a new socket owned by an old owner (or its child) | the group grew | yes (after settle) |
//! | no old socket, new ones | added | yes (after settle) |
//! | every old socket gone, an old owner lives on | the port was removed | yes (no wait), unless what the command left running still runs |
//! | every old socket gone, every old owner exited | restart | wait for a new socket |
//! | some old sockets gone, others still listen | shrank | yes (after settle) |
//! | the same sockets, a holder they did not have | owners changed (fd passing, new workers) | yes (after settle) |
//! | nothing changed | unchanged | see below |
//!
//! Over all ports: any port waiting holds the release (a removed port too
//! while the command's background processes run: a stop, its restart under
//! way); otherwise, if any
//! port changed, release once that has held for the settle time; if
//! nothing changed anywhere, release after the quiet window (an
//! asynchronous reload such as `kill -USR2` returns before anything
//! happens), measured from the command's return, or from when what it left
//! running in the background was last seen ([`super::background`]; the
//! caller passes the time since then as `since_return`).
//!
//! Two generations on one port when the hold began (sockets owned by
//! different process groups) mean a stale process from an earlier reload:
//! the older generation's sockets are excluded from both snapshots (never
//! "must close") and reported.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt;
use std::time::Duration;

/// A process id.
pub type Pid = u32;

/// What the rule needs to know about a process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Proc {
    /// Its pid.
    pub pid: Pid,
    /// Its parent's pid.
    pub ppid: Pid,
    /// Its process group.
    pub pgid: Pid,
    /// When it started, in clock ticks since boot (`/proc/PID/stat` field
    /// 22): with the pid, tells a process from a later one given its pid.
    pub start: u64,
}

/// One listening socket on a protected address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sock {
    /// The socket cookie: unique, never reused.
    pub cookie: u64,
    /// The socket inode (what `/proc/PID/fd` shows).
    pub inode: u32,
    /// The local port.
    pub port: u16,
    /// The processes that hold it open (empty: none found).
    pub owners: Vec<Pid>,
    /// Connections in its accept queue.
    pub rqueue: u32,
    /// Its backlog.
    pub wqueue: u32,
}

/// The listeners on the protected addresses at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// Every listening socket in scope.
    pub socks: Vec<Sock>,
    /// The owners of those sockets.
    pub procs: HashMap<Pid, Proc>,
    /// Of the processes watched (the owners when the hold began), those
    /// still alive (same pid and start time).
    pub alive: HashSet<Pid>,
}

/// A stale generation found when the hold began.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stale {
    /// The port.
    pub port: u16,
    /// The stale sockets' owners.
    pub pids: Vec<Pid>,
    /// The stale sockets.
    pub cookies: Vec<u64>,
}

impl fmt::Display for Stale {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pids: Vec<String> = self.pids.iter().map(|p| p.to_string()).collect();
        write!(
            f,
            "port {}: a stale listener from an earlier generation (pid {}) still listens beside the current one; it is not waited for",
            self.port,
            pids.join(", ")
        )
    }
}

/// The snapshot taken when the hold began, with stale generations set
/// aside.
#[derive(Debug, Clone, Default)]
pub struct Baseline {
    /// The snapshot, stale sockets included.
    pub snap: Snapshot,
    /// Stale generations, per port.
    pub stale: Vec<Stale>,
    stale_cookies: HashSet<u64>,
}

impl Baseline {
    /// Set aside, per port, every generation but the newest.
    pub fn new(snap: Snapshot) -> Baseline {
        let mut stale = Vec::new();
        let mut by_port: BTreeMap<u16, Vec<&Sock>> = BTreeMap::new();
        for s in &snap.socks {
            by_port.entry(s.port).or_default().push(s);
        }
        for (port, socks) in by_port {
            // Generation: the process group of a socket's first known
            // owner; its age: its oldest owner's start time.
            let mut gens: BTreeMap<Pid, (u64, Vec<&Sock>)> = BTreeMap::new();
            for s in socks {
                let procs: Vec<&Proc> = s.owners.iter().filter_map(|p| snap.procs.get(p)).collect();
                let Some(first) = procs.first() else { continue };
                let start = procs.iter().map(|p| p.start).min().unwrap_or(first.start);
                let g = gens.entry(first.pgid).or_insert((start, Vec::new()));
                g.0 = g.0.min(start);
                g.1.push(s);
            }
            if gens.len() < 2 {
                continue;
            }
            let newest = gens
                .iter()
                .max_by_key(|(pgid, (start, _))| (*start, **pgid))
                .map(|(pgid, _)| *pgid);
            for (pgid, (_, socks)) in &gens {
                if Some(*pgid) == newest {
                    continue;
                }
                let pids: BTreeSet<Pid> = socks
                    .iter()
                    .flat_map(|s| s.owners.iter().copied())
                    .collect();
                stale.push(Stale {
                    port,
                    pids: pids.into_iter().collect(),
                    cookies: socks.iter().map(|s| s.cookie).collect(),
                });
            }
        }
        let stale_cookies = stale
            .iter()
            .flat_map(|s| s.cookies.iter().copied())
            .collect();
        Baseline {
            snap,
            stale,
            stale_cookies,
        }
    }

    /// The owners of the (non-stale) sockets when the hold began: the
    /// processes whose survival the rule asks about.
    pub fn owners(&self) -> Vec<Proc> {
        let mut pids: BTreeSet<Pid> = BTreeSet::new();
        for s in self.current(&self.snap) {
            pids.extend(&s.owners);
        }
        pids.iter()
            .filter_map(|p| self.snap.procs.get(p).copied())
            .collect()
    }

    /// Is this socket one of a stale generation?
    pub fn is_stale(&self, cookie: u64) -> bool {
        self.stale_cookies.contains(&cookie)
    }

    /// The cookies of the (non-stale) sockets when the hold began.
    pub fn current_cookies(&self) -> HashSet<u64> {
        self.current(&self.snap).map(|s| s.cookie).collect()
    }

    fn current<'a>(&'a self, snap: &'a Snapshot) -> impl Iterator<Item = &'a Sock> + 'a {
        snap.socks
            .iter()
            .filter(|s| !self.stale_cookies.contains(&s.cookie))
    }
}

/// An old socket that still listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Old {
    /// Its cookie.
    pub cookie: u64,
    /// Its inode.
    pub inode: u32,
    /// Who holds it.
    pub owners: Vec<Pid>,
}

/// What one port is doing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Nothing changed.
    Unchanged,
    /// The same sockets, held by a process that did not hold them.
    OwnersChanged,
    /// A new socket owned by an old owner (or a child of one).
    Grew,
    /// New sockets, and none listened before.
    Added,
    /// New sockets from a new process, and no old one left.
    HandedOver,
    /// Some old sockets closed, the others still listen.
    Shrank,
    /// Every old socket closed while an old owner lives on.
    Removed,
    /// Every old socket closed and every old owner exited: wait for a new
    /// one.
    Restarting,
    /// A new process listens beside old sockets that are still open: wait
    /// for them to close.
    HandingOver(Vec<Old>),
}

impl Verdict {
    /// Must the release wait for this port?
    pub fn waits(&self) -> bool {
        matches!(self, Verdict::Restarting | Verdict::HandingOver(_))
    }

    /// Did anything happen on this port?
    pub fn changed(&self) -> bool {
        !matches!(self, Verdict::Unchanged)
    }

    /// A short name, for the record.
    pub fn name(&self) -> &'static str {
        match self {
            Verdict::Unchanged => "unchanged",
            Verdict::OwnersChanged => "owners-changed",
            Verdict::Grew => "grew",
            Verdict::Added => "added",
            Verdict::HandedOver => "handed-over",
            Verdict::Shrank => "shrank",
            Verdict::Removed => "removed",
            Verdict::Restarting => "restarting",
            Verdict::HandingOver(_) => "handing-over",
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Verdict::Restarting => write!(f, "nothing listens since the old listener closed"),
            Verdict::HandingOver(old) => {
                let who: Vec<String> = old
                    .iter()
                    .map(|o| {
                        let pids: Vec<String> = o.owners.iter().map(|p| p.to_string()).collect();
                        if pids.is_empty() {
                            format!("inode {}", o.inode)
                        } else {
                            format!("inode {} (pid {})", o.inode, pids.join(", "))
                        }
                    })
                    .collect();
                write!(f, "the old listener still listens: {}", who.join(", "))
            }
            other => f.write_str(other.name()),
        }
    }
}

/// Judge every port seen in either snapshot (stale sockets left out).
pub fn judge(base: &Baseline, now: &Snapshot) -> Vec<(u16, Verdict)> {
    let mut ports: BTreeMap<u16, (Vec<&Sock>, Vec<&Sock>)> = BTreeMap::new();
    for s in base.current(&base.snap) {
        ports.entry(s.port).or_default().0.push(s);
    }
    for s in base.current(now) {
        ports.entry(s.port).or_default().1.push(s);
    }
    ports
        .into_iter()
        .map(|(port, (before, now_socks))| (port, judge_port(&before, &now_socks, &base.snap, now)))
        .collect()
}

fn judge_port(before: &[&Sock], now: &[&Sock], then: &Snapshot, snap: &Snapshot) -> Verdict {
    let old_cookies: HashSet<u64> = before.iter().map(|s| s.cookie).collect();
    let now_cookies: HashSet<u64> = now.iter().map(|s| s.cookie).collect();
    let old_owners: HashSet<Pid> = before
        .iter()
        .flat_map(|s| s.owners.iter().copied())
        .collect();
    let kept: Vec<&&Sock> = now
        .iter()
        .filter(|s| old_cookies.contains(&s.cookie))
        .collect();
    let new: Vec<&&Sock> = now
        .iter()
        .filter(|s| !old_cookies.contains(&s.cookie))
        .collect();
    let gone = before.iter().any(|s| !now_cookies.contains(&s.cookie));
    // A new socket is the old generation's if an old owner (or a child of
    // one) holds it.
    let by_old = |s: &Sock| {
        s.owners.iter().any(|p| {
            old_owners.contains(p)
                || snap
                    .procs
                    .get(p)
                    .is_some_and(|pr| old_owners.contains(&pr.ppid))
        })
    };
    let new_by_new = new.iter().any(|s| !by_old(s));
    if new_by_new && !kept.is_empty() {
        return Verdict::HandingOver(
            kept.iter()
                .map(|s| Old {
                    cookie: s.cookie,
                    inode: s.inode,
                    owners: s.owners.clone(),
                })
                .collect(),
        );
    }
    if new_by_new {
        return if before.is_empty() {
            Verdict::Added
        } else {
            Verdict::HandedOver
        };
    }
    if !new.is_empty() {
        return Verdict::Grew;
    }
    if gone {
        if !kept.is_empty() {
            return Verdict::Shrank;
        }
        // Unknown owners (none found) count as exited: wait for a new
        // socket, bounded by max-hold, rather than guess it was removed.
        return if old_owners.iter().any(|p| snap.alive.contains(p)) {
            Verdict::Removed
        } else {
            Verdict::Restarting
        };
    }
    let owners_of = |snap: &Snapshot, cookie: u64| -> BTreeSet<Pid> {
        snap.socks
            .iter()
            .filter(|s| s.cookie == cookie)
            .flat_map(|s| s.owners.iter().copied())
            .collect()
    };
    // A kept socket with a holder it did not have (fd passing, new
    // workers). Holders only leaving is no hand-over: a process that is
    // exiting shows no open files before its listener closes.
    if kept.iter().any(|s| {
        let then = owners_of(then, s.cookie);
        owners_of(snap, s.cookie).iter().any(|p| !then.contains(p))
    }) {
        return Verdict::OwnersChanged;
    }
    Verdict::Unchanged
}

/// What to do now, given every port's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// A port waits (restart or hand-over in progress).
    Wait,
    /// Nothing changed yet; the quiet window is still open.
    Quiet,
    /// Something changed and every port is safe: release once this has
    /// held for the settle time.
    Ready,
    /// Nothing changed for the whole quiet window: release now.
    QuietOver,
}

/// The rule over all ports. `since_return` is the time since the reload
/// command returned (or since what it left running was last seen); `busy`:
/// what the command left running in the background still runs. Then a
/// port whose old sockets closed while an old owner lives on is not taken
/// for a removed port: a stop whose process closes its listeners first and
/// exits later looks the same while the restart is under way
/// (`kill OLD; (sleep 0.3; start) &`), and the quiet window does not end.
pub fn decide(
    verdicts: &[(u16, Verdict)],
    since_return: Duration,
    quiet: Duration,
    busy: bool,
) -> Decision {
    if verdicts
        .iter()
        .any(|(_, v)| v.waits() || (busy && *v == Verdict::Removed))
    {
        Decision::Wait
    } else if verdicts.iter().any(|(_, v)| v.changed()) {
        Decision::Ready
    } else if since_return >= quiet && !busy {
        Decision::QuietOver
    } else {
        Decision::Quiet
    }
}

#[cfg(test)]
mod tests;
