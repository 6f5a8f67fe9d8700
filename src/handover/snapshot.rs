//! Taking a [`Snapshot`]: the listeners on the protected addresses (from
//! NETLINK_SOCK_DIAG, passed in), their owners from one scan of
//! `/proc/*/fd`, and which of the processes watched still live.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;

use plugctl_netlink::diag::Listener;

use super::rule::{Pid, Proc, Snapshot, Sock};

/// Which listeners the hand-over watches: the protected addresses (and
/// wildcard binds, which serve them too), on the configured ports or
/// every port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    /// The balancer addresses (config `addresses`).
    pub addresses: Vec<IpAddr>,
    /// Only these ports (config `ports`); empty: every port.
    pub ports: Vec<u16>,
}

impl Default for Scope {
    fn default() -> Scope {
        let c = crate::Config::default();
        Scope {
            addresses: c.addresses,
            ports: c.ports,
        }
    }
}

impl Scope {
    /// The scope of a configuration.
    pub fn of(cfg: &crate::Config) -> Scope {
        Scope {
            addresses: cfg.addresses.clone(),
            ports: cfg.ports.clone(),
        }
    }

    /// Does `l` serve a protected address and port?
    pub fn covers(&self, l: &Listener) -> bool {
        (self.ports.is_empty() || self.ports.contains(&l.port))
            && (l.addr.is_unspecified() || self.addresses.contains(&l.addr))
    }
}

/// For each of `inodes`, the pids holding it open: one pass over
/// `/proc/*/fd` (needs privileges to see other users' processes).
pub fn owners(inodes: &HashSet<u32>) -> HashMap<u32, Vec<Pid>> {
    let mut out: HashMap<u32, Vec<Pid>> = HashMap::new();
    if inodes.is_empty() {
        return out;
    }
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return out;
    };
    for e in dir.flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<Pid>() else {
            continue;
        };
        let Ok(fds) = std::fs::read_dir(e.path().join("fd")) else {
            continue;
        };
        let mut seen = HashSet::new();
        for fd in fds.flatten() {
            let Ok(link) = std::fs::read_link(fd.path()) else {
                continue;
            };
            if let Some(inode) = socket_inode(&link.to_string_lossy()) {
                if inodes.contains(&inode) && seen.insert(inode) {
                    out.entry(inode).or_default().push(pid);
                }
            }
        }
    }
    out
}

/// `socket:[12345]` -> 12345.
fn socket_inode(link: &str) -> Option<u32> {
    link.strip_prefix("socket:[")?
        .strip_suffix(']')?
        .parse()
        .ok()
}

/// A process's parent, group and start time, from `/proc/PID/stat`.
pub fn proc_info(pid: Pid) -> Option<Proc> {
    parse_stat(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// Parse `/proc/PID/stat`: `pid (comm) state ppid pgrp session ... starttime`
/// (field 22); comm may hold spaces and parentheses, so fields are counted
/// from the last `)`.
pub fn parse_stat(text: &str) -> Option<Proc> {
    let (head, rest) = text.rsplit_once(')')?;
    let pid = head.split_once(" (")?.0.trim().parse().ok()?;
    // rest: " S ppid pgrp session tty tpgid flags minflt cminflt majflt
    // cmajflt utime stime cutime cstime priority nice threads itrealvalue
    // starttime ..." -> after the state, starttime is the 19th.
    let f: Vec<&str> = rest.split_whitespace().collect();
    Some(Proc {
        pid,
        ppid: f.get(1)?.parse().ok()?,
        pgid: f.get(2)?.parse().ok()?,
        start: f.get(19)?.parse().ok()?,
    })
}

/// Does `p` still run (the same process, not a later one with its pid,
/// and not a zombie: an exited process its parent has not reaped yet)?
fn alive(p: &Proc) -> bool {
    let Ok(text) = std::fs::read_to_string(format!("/proc/{}/stat", p.pid)) else {
        return false;
    };
    parse_stat(&text).is_some_and(|now| now.start == p.start) && !exited(&text)
}

/// Is the state in a `/proc/PID/stat` text Z (zombie) or X (dead)?
pub(crate) fn exited(text: &str) -> bool {
    text.rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .is_some_and(|state| state == "Z" || state == "X")
}

/// The snapshot of `listeners` in `scope`. With `scan`, owners come from a
/// fresh `/proc` scan; without, from `prev` for sockets it knew (a scan is
/// the costly part, so a poll loop rescans only when sockets changed or
/// every so often). `watch`: processes whose survival to report.
pub fn take(
    scope: &Scope,
    listeners: &[Listener],
    watch: &[Proc],
    prev: Option<&Snapshot>,
    scan: bool,
) -> Snapshot {
    let mine: Vec<&Listener> = listeners.iter().filter(|l| scope.covers(l)).collect();
    let known: HashMap<u64, &Sock> = prev
        .map(|p| p.socks.iter().map(|s| (s.cookie, s)).collect())
        .unwrap_or_default();
    let scan = scan || mine.iter().any(|l| !known.contains_key(&l.cookie));
    let found = if scan {
        owners(&mine.iter().map(|l| l.inode).collect())
    } else {
        HashMap::new()
    };
    let socks: Vec<Sock> = mine
        .iter()
        .map(|l| Sock {
            cookie: l.cookie,
            inode: l.inode,
            port: l.port,
            owners: if scan {
                let mut o = found.get(&l.inode).cloned().unwrap_or_default();
                o.sort_unstable();
                o
            } else {
                known
                    .get(&l.cookie)
                    .map(|s| s.owners.clone())
                    .unwrap_or_default()
            },
            rqueue: l.rqueue,
            wqueue: l.wqueue,
        })
        .collect();
    let mut procs = HashMap::new();
    for pid in socks.iter().flat_map(|s| s.owners.iter()) {
        if procs.contains_key(pid) {
            continue;
        }
        let info = prev
            .and_then(|p| p.procs.get(pid).copied())
            .filter(|_| !scan)
            .or_else(|| proc_info(*pid));
        if let Some(info) = info {
            procs.insert(*pid, info);
        }
    }
    Snapshot {
        socks,
        procs,
        alive: watch.iter().filter(|p| alive(p)).map(|p| p.pid).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn l(addr: &str, port: u16) -> Listener {
        Listener {
            addr: addr.parse().unwrap(),
            port,
            inode: 1,
            cookie: 1,
            rqueue: 0,
            wqueue: 0,
        }
    }

    #[test]
    fn scope_covers_protected_addresses_and_wildcards() {
        let s = Scope {
            addresses: vec![
                "169.254.255.254".parse().unwrap(),
                "fd00::1".parse().unwrap(),
            ],
            ports: vec![],
        };
        assert!(s.covers(&l("169.254.255.254", 80)));
        assert!(s.covers(&l("0.0.0.0", 22)));
        assert!(s.covers(&l("::", 443)));
        assert!(s.covers(&l("fd00::1", 443)));
        assert!(!s.covers(&l("127.0.0.1", 80)));
        let s = Scope {
            ports: vec![80],
            ..s
        };
        assert!(s.covers(&l("0.0.0.0", 80)));
        assert!(!s.covers(&l("0.0.0.0", 22)));
    }

    #[test]
    fn parses_proc_stat() {
        // A comm with a space and a parenthesis.
        let text = "4242 (hap (x) y) S 1 4240 4240 0 -1 4194624 1 0 0 0 0 0 0 0 20 0 1 0 987654 1000 10 18446744073709551615";
        assert_eq!(
            parse_stat(text),
            Some(Proc {
                pid: 4242,
                ppid: 1,
                pgid: 4240,
                start: 987654
            })
        );
        assert!(!exited(text));
        assert!(exited(&text.replace(") S ", ") Z ")));
        assert_eq!(parse_stat("garbage"), None);
        assert_eq!(parse_stat("1 (x) S 0"), None);
    }

    #[test]
    fn finds_its_own_socket_and_its_own_start() {
        let s = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let fd = std::os::fd::AsRawFd::as_raw_fd(&s);
        let link = std::fs::read_link(format!("/proc/self/fd/{fd}")).unwrap();
        let inode = socket_inode(&link.to_string_lossy()).unwrap();
        let me = std::process::id();
        assert_eq!(owners(&HashSet::from([inode])).get(&inode), Some(&vec![me]));
        let p = proc_info(me).unwrap();
        assert!(alive(&p));
        assert!(!alive(&Proc {
            start: p.start + 1,
            ..p
        }));
    }
}
