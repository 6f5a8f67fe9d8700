//! Who holds the plug. Several reloads (or library guards) may overlap: the
//! plug closes with the first holder and opens only when the last one lets
//! go, and nobody releases another's hold. Holders are files in a directory
//! next to the state file, changed under an exclusive `flock`, so separate
//! `plugctl` processes agree. A holder whose process died (a crash, a
//! `kill -9`) no longer counts: its entry is pruned by whoever looks next.

use std::fs::{self, File, OpenOptions};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use serde::{Deserialize, Serialize};

use crate::error::Error;

/// One holder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    /// Unique name (`PID-N`, or `manual` for `plugctl plug`).
    pub id: String,
    /// Its process; `None` for the manual hold, which lasts until `release`.
    pub pid: Option<u32>,
    /// The process's start time (clock ticks since boot), so a recycled pid
    /// does not count as the same process.
    pub start_time: Option<u64>,
    /// When the hold began, ms since the Unix epoch.
    pub since_ms: u64,
    /// What it is for (the reload command, "manual", ...).
    pub what: String,
}

/// The holder registry of one device in one network namespace.
#[derive(Debug, Clone)]
pub struct Registry {
    dir: PathBuf,
    lock: PathBuf,
}

/// An exclusive lock on the registry; dropped = unlocked.
pub struct Locked<'r> {
    reg: &'r Registry,
    _file: File,
}

static NEXT: AtomicU32 = AtomicU32::new(1);

/// Start time of `pid` (field 22 of `/proc/PID/stat`), `None` if it is gone
/// or a zombie (dead, not yet reaped).
pub fn process_start_time(pid: u32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may contain spaces: count after its ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let mut fields = rest.split_whitespace();
    if matches!(fields.next(), Some("Z" | "X")) {
        return None;
    }
    fields.nth(18)?.parse().ok()
}

impl Holder {
    /// A holder for this process.
    pub fn this_process(what: &str) -> Holder {
        let pid = std::process::id();
        Holder {
            id: format!("{pid}-{}", NEXT.fetch_add(1, Ordering::Relaxed)),
            pid: Some(pid),
            start_time: process_start_time(pid),
            since_ms: crate::state::PlugState::now(true).since_ms,
            what: what.into(),
        }
    }

    /// The hold `plugctl plug` takes: it lasts until `plugctl release`.
    pub fn manual() -> Holder {
        Holder {
            id: "manual".into(),
            pid: None,
            start_time: None,
            since_ms: crate::state::PlugState::now(true).since_ms,
            what: "plugctl plug".into(),
        }
    }

    /// Is its process still running (the manual hold always is)?
    pub fn alive(&self) -> bool {
        match self.pid {
            None => true,
            Some(pid) => {
                let now = process_start_time(pid);
                now.is_some() && (self.start_time.is_none() || now == self.start_time)
            }
        }
    }
}

impl Registry {
    /// The registry kept beside `state_file`.
    pub fn beside(state_file: &Path) -> Registry {
        Registry {
            dir: state_file.with_extension("holders"),
            lock: state_file.with_extension("lock"),
        }
    }

    fn err(&self, path: &Path, source: std::io::Error) -> Error {
        Error::State {
            path: path.to_path_buf(),
            source,
        }
    }

    /// Take the registry's lock (blocks while another plugctl holds it).
    pub fn lock(&self) -> Result<Locked<'_>, Error> {
        fs::create_dir_all(&self.dir).map_err(|e| self.err(&self.dir, e))?;
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&self.lock)
            .map_err(|e| self.err(&self.lock, e))?;
        // SAFETY: a valid, open file descriptor.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } != 0 {
            return Err(self.err(&self.lock, std::io::Error::last_os_error()));
        }
        Ok(Locked {
            reg: self,
            _file: file,
        })
    }

    /// Every recorded holder, dead ones included (no lock needed: each file
    /// is written whole by a rename).
    pub fn all(&self) -> Vec<Holder> {
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return vec![];
        };
        let mut out: Vec<Holder> = entries
            .flatten()
            .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
            .filter_map(|e| fs::read_to_string(e.path()).ok())
            .filter_map(|t| serde_json::from_str(&t).ok())
            .collect();
        out.sort_by_key(|h| h.since_ms);
        out
    }
}

impl Locked<'_> {
    fn path(&self, id: &str) -> PathBuf {
        self.reg.dir.join(format!("{id}.json"))
    }

    /// Record `h`.
    pub fn add(&self, h: &Holder) -> Result<(), Error> {
        let path = self.path(&h.id);
        let tmp = path.with_extension("tmp");
        let text = serde_json::to_string(h).map_err(|e| self.reg.err(&path, e.into()))?;
        fs::write(&tmp, text).map_err(|e| self.reg.err(&tmp, e))?;
        fs::rename(&tmp, &path).map_err(|e| self.reg.err(&path, e))
    }

    /// Forget holder `id` (no error if it is not there).
    pub fn remove(&self, id: &str) -> Result<(), Error> {
        match fs::remove_file(self.path(id)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(self.reg.err(&self.path(id), e))
            }
            _ => Ok(()),
        }
    }

    /// The live holders, after forgetting the dead ones.
    pub fn live(&self) -> Result<Vec<Holder>, Error> {
        let mut live = Vec::new();
        for h in self.reg.all() {
            if h.alive() {
                live.push(h);
            } else {
                tracing::info!(
                    "forgetting holder {} (pid {:?}): its process is gone",
                    h.id,
                    h.pid
                );
                self.remove(&h.id)?;
            }
        }
        Ok(live)
    }

    /// Forget every holder (teardown, `release --force`).
    pub fn clear(&self) -> Result<(), Error> {
        for h in self.reg.all() {
            self.remove(&h.id)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn live_holders_and_pruning() {
        let dir = std::env::temp_dir().join(format!("plugctl-holders-{}", std::process::id()));
        let reg = Registry::beside(&dir.join("lo.json"));
        let l = reg.lock().unwrap();
        let me = Holder::this_process("test");
        assert!(me.alive());
        l.add(&me).unwrap();
        l.add(&Holder::manual()).unwrap();
        // A process that has exited.
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        let dead = Holder {
            id: format!("{pid}-1"),
            pid: Some(pid),
            start_time: Some(1),
            since_ms: 0,
            what: "dead".into(),
        };
        l.add(&dead).unwrap();
        assert_eq!(reg.all().len(), 3);
        let live = l.live().unwrap();
        assert_eq!(live.len(), 2, "{live:?}");
        assert_eq!(reg.all().len(), 2, "the dead holder was forgotten");
        l.remove(&me.id).unwrap();
        l.remove("manual").unwrap();
        assert!(l.live().unwrap().is_empty());
        drop(l);
        let _ = fs::remove_dir_all(dir);
    }

    #[test]
    fn start_time_of_this_process() {
        assert!(process_start_time(std::process::id()).is_some());
        assert_eq!(process_start_time(u32::MAX - 1), None);
    }
}
