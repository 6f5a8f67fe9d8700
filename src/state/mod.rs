//! What the kernel cannot tell: whether new connections are held (the
//! record's `closed`), and who holds them. One record per device and network namespace under `state_dir`
//! (default `/run/plugctl`, a tmpfs: a reboot forgets it, as it forgets the
//! qdiscs), changed under one lock.
//!
//! Files, for device `lo` in the network namespace with inode `N`:
//!
//! - `lo.netns-N.json`, mode 0644: the [`Record`]. Anyone may read it
//!   (`plugctl status` from a monitoring agent); no one needs a lock to.
//! - `lo.netns-N.lock`, mode 0600: the lock file. Byte 0 is the mutex over
//!   the record; byte `1 + n` is holder slot `n`, locked by the holder for
//!   as long as it holds (see [`lock`]). Only its owner can open it, so no
//!   other user can take a lock that blocks plugctl (`flock` works on a
//!   read-only descriptor, and `fcntl` read locks block writers).
//!
//! - `lo.netns-N.learned.json`, mode 0600: what reloads showed about their
//!   commands (see [`learned`]). Read and replaced without the lock: two
//!   reloads at once lose at most one's lesson.
//!
//! Every wait for the mutex is bounded ([`LOCK_WAIT`]): the caller decides
//! what to do without it (a release goes ahead anyway: the kernel's state
//! is the truth, the record is bookkeeping).

pub mod dir;
pub mod learned;
pub mod lock;
pub mod record;

use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::fcntl::OFlag;
use nix::sys::stat::{fchmod, Mode};
use nix::unistd::Uid;

pub use dir::{Access, SecureDir};
pub use learned::{Learned, LearnedError};
pub use record::{Holder, Record, RecordError};

/// Longest wait for the record's lock.
pub const LOCK_WAIT: Duration = Duration::from_secs(3);
/// Mode of the lock file: its owner's alone.
pub const LOCK_MODE: u32 = 0o600;
/// Mode of the record: readable by every user.
pub const RECORD_MODE: u32 = 0o644;
/// Mode of the learned file: its owner's alone (it names commands).
pub const LEARNED_MODE: u32 = 0o600;

/// The clock, as it was reached before [`crate::clock`] had its own module
/// (`reload.rs` still calls it here).
pub use crate::clock::now_ms;

/// Why the state could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StateError {
    /// The state directory (or one above it) could be changed by someone
    /// else, or is not a directory.
    #[error("refusing state directory {path}: {why}")]
    UnsafeDir {
        /// The directory.
        path: PathBuf,
        /// What is wrong with it.
        why: String,
    },
    /// A file in the state directory is a symlink, FIFO or the like.
    #[error("refusing {path}: it is {what}")]
    NotAFile {
        /// The file.
        path: PathBuf,
        /// What it is.
        what: &'static str,
    },
    /// A file in the state directory is larger than any plugctl writes.
    #[error("refusing {path}: larger than {max} bytes")]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// The bound.
        max: usize,
    },
    /// Another process held the record's lock for longer than [`LOCK_WAIT`].
    #[error("the state lock {path} was held by another process for over {waited:?}")]
    LockTimeout {
        /// The lock file.
        path: PathBuf,
        /// How long plugctl waited.
        waited: Duration,
    },
    /// Reading or writing failed.
    #[error("state file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// The record as found on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recorded {
    /// No record: the plug has not been changed since setup (or ever).
    Nothing,
    /// A record that cannot be parsed: the plug may be closed.
    Unreadable(String),
    /// The record.
    Found(Record),
}

impl Recorded {
    /// The record, if there is a readable one.
    pub fn record(&self) -> Option<&Record> {
        match self {
            Recorded::Found(r) => Some(r),
            _ => None,
        }
    }
}

/// The state of one device in the current network namespace.
#[derive(Debug, Clone)]
pub struct Store {
    dir: PathBuf,
    key: String,
}

impl Store {
    /// The state of `device` under `dir`. Network namespaces share `/run`,
    /// so the namespace's inode is part of the file names.
    pub fn new(dir: &Path, device: &str) -> Store {
        let ns = std::fs::metadata("/proc/thread-self/ns/net")
            .map(|m| m.ino())
            .unwrap_or(0);
        Store {
            dir: dir.to_path_buf(),
            key: format!("{device}.netns-{ns}"),
        }
    }

    fn record_name(&self) -> String {
        format!("{}.json", self.key)
    }

    fn lock_name(&self) -> String {
        format!("{}.lock", self.key)
    }

    fn learned_name(&self) -> String {
        format!("{}.learned.json", self.key)
    }

    /// What earlier reloads showed (see [`learned`]). Empty when the
    /// directory or the file is missing, unsafe or unreadable: it only
    /// ever saves time.
    pub fn learned(&self) -> Learned {
        let Ok(Some(dir)) = SecureDir::open(&self.dir, Access::Write) else {
            return Learned::default();
        };
        match dir.read(&self.learned_name(), learned::MAX_LEN) {
            Ok(Some(bytes)) => Learned::parse(&bytes).unwrap_or_else(|e| {
                tracing::warn!(
                    "ignoring {}: {e}",
                    dir.path().join(self.learned_name()).display()
                );
                Learned::default()
            }),
            _ => Learned::default(),
        }
    }

    /// The directory, opened (and created if missing) for writing.
    fn writable_dir(&self) -> Result<SecureDir, StateError> {
        SecureDir::open(&self.dir, Access::Write)?.ok_or_else(|| StateError::UnsafeDir {
            path: self.dir.clone(),
            why: "it could not be created".into(),
        })
    }

    /// Replace what is learned.
    pub fn set_learned(&self, l: &Learned) -> Result<(), StateError> {
        let dir = self.writable_dir()?;
        dir.replace(&self.learned_name(), &l.to_bytes(), LEARNED_MODE)
    }

    /// The record's path.
    pub fn record_path(&self) -> PathBuf {
        self.dir.join(self.record_name())
    }

    /// Read the record without the lock, as any user may. Holders' liveness
    /// is known only to a caller that can open the lock file.
    pub fn peek(&self) -> Result<Peek, StateError> {
        let Some(dir) = SecureDir::open(&self.dir, Access::Read)? else {
            return Ok(Peek {
                recorded: Recorded::Nothing,
                lock: None,
            });
        };
        let recorded = read_record(&dir, &self.record_name());
        let lock = match dir.open_file(&self.lock_name(), OFlag::O_RDONLY, 0) {
            Ok(Some((f, st))) if st.st_uid == Uid::effective().as_raw() || st.st_uid == 0 => {
                Some(f)
            }
            _ => None,
        };
        Ok(Peek { recorded, lock })
    }

    /// Take the record's lock, waiting at most `wait`.
    pub fn lock(&self, wait: Duration) -> Result<Locked, StateError> {
        let dir = self.writable_dir()?;
        let lock_name = self.lock_name();
        let lock = open_lock(&dir, &lock_name)?;
        let lock_path = dir.path().join(&lock_name);
        let got = lock::lock_within(&lock, 0, wait).map_err(|source| StateError::Io {
            path: lock_path.clone(),
            source,
        })?;
        if !got {
            return Err(StateError::LockTimeout {
                path: lock_path,
                waited: wait,
            });
        }
        let recorded = read_record(&dir, &self.record_name());
        Ok(Locked {
            dir,
            lock,
            lock_name,
            record_name: self.record_name(),
            learned_name: self.learned_name(),
            recorded,
        })
    }
}

fn read_record(dir: &SecureDir, name: &str) -> Recorded {
    match dir.read(name, record::MAX_LEN) {
        Ok(None) => Recorded::Nothing,
        Ok(Some(bytes)) => match Record::parse(&bytes) {
            Ok(r) => Recorded::Found(r),
            Err(e) => Recorded::Unreadable(e.0),
        },
        Err(e) => Recorded::Unreadable(e.to_string()),
    }
}

/// Open (creating) the lock file: a regular file of the caller's, mode
/// 0600. One found with a wider mode (left by an older plugctl, or made
/// under another umask) is replaced by a new file, so that descriptors
/// others may have opened on the old one lock nothing that counts.
fn open_lock(dir: &SecureDir, name: &str) -> Result<File, StateError> {
    let path = dir.path().join(name);
    let flags = OFlag::O_RDWR | OFlag::O_CREAT;
    for _ in 0..3 {
        let Some((f, st)) = dir.open_file(name, flags, LOCK_MODE)? else {
            continue;
        };
        if st.st_uid != Uid::effective().as_raw() {
            return Err(StateError::NotAFile {
                path,
                what: "owned by another user",
            });
        }
        if st.st_mode & 0o7777 == LOCK_MODE {
            return Ok(f);
        }
        if st.st_size == 0 && st.st_nlink == 1 && st.st_mode & 0o077 == 0 {
            // Just created under a narrower umask: fix the mode.
            fchmod(&f, Mode::from_bits_truncate(LOCK_MODE)).map_err(|e| StateError::Io {
                path: path.clone(),
                source: e.into(),
            })?;
            return Ok(f);
        }
        tracing::warn!(
            "replacing lock file {} of mode {:o} with a private one",
            path.display(),
            st.st_mode & 0o7777
        );
        dir.replace(name, b"", LOCK_MODE)?;
    }
    Err(StateError::Io {
        path,
        source: std::io::Error::other("the lock file keeps changing"),
    })
}

/// The record read without its lock.
#[derive(Debug)]
pub struct Peek {
    /// The record.
    pub recorded: Recorded,
    lock: Option<File>,
}

impl Peek {
    /// Whether `h` still holds: `None` when this caller cannot tell (it
    /// cannot open the lock file).
    pub fn alive(&self, h: &Holder) -> Option<bool> {
        match (h.slot, &self.lock) {
            (None, _) => Some(true),
            (Some(slot), Some(f)) => lock::is_locked(f, slot_byte(slot)).ok(),
            (Some(_), None) => None,
        }
    }
}

fn slot_byte(slot: u32) -> i64 {
    1 + i64::from(slot)
}

/// The record under its lock; dropped = unlocked.
#[derive(Debug)]
pub struct Locked {
    dir: SecureDir,
    lock: File,
    lock_name: String,
    record_name: String,
    learned_name: String,
    /// The record as found when the lock was taken.
    pub recorded: Recorded,
}

/// A holder's lock slot: the hold counts as alive while this is open.
#[derive(Debug)]
pub struct Slot {
    _file: File,
    /// The slot number.
    pub slot: u32,
}

impl Locked {
    /// Does `h` still hold? The manual hold always does; a holder with a
    /// slot does while some process keeps that slot locked.
    pub fn alive(&self, h: &Holder) -> bool {
        match h.slot {
            None => true,
            // If the kernel cannot say, count it as holding (never release
            // another's hold on a guess).
            Some(slot) => lock::is_locked(&self.lock, slot_byte(slot)).unwrap_or(true),
        }
    }

    /// The recorded holders that still hold (none if the record is
    /// unreadable).
    pub fn live_holders(&self) -> Vec<Holder> {
        self.recorded
            .record()
            .map(|r| {
                r.holders
                    .iter()
                    .filter(|h| self.alive(h))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Whether any slot is locked by someone (an unreadable record cannot
    /// name its holders, but their slots still tell that they exist).
    pub fn any_slot_locked(&self) -> bool {
        (0..record::MAX_HOLDERS as u32)
            .any(|s| lock::is_locked(&self.lock, slot_byte(s)).unwrap_or(false))
    }

    /// Lock a free slot for a new holder, given the holders that stay.
    pub fn take_slot(&self, holders: &[Holder]) -> Result<Slot, StateError> {
        let path = self.dir.path().join(&self.lock_name);
        let io = |source: std::io::Error| StateError::Io {
            path: path.clone(),
            source,
        };
        let (file, _) = self
            .dir
            .open_file(&self.lock_name, OFlag::O_RDWR, LOCK_MODE)?
            .ok_or_else(|| io(std::io::Error::from(std::io::ErrorKind::NotFound)))?;
        for slot in 0..record::MAX_HOLDERS as u32 {
            if holders.iter().any(|h| h.slot == Some(slot)) {
                continue;
            }
            if lock::try_lock(&file, slot_byte(slot)).map_err(io)? {
                return Ok(Slot { _file: file, slot });
            }
        }
        Err(io(std::io::Error::other("every holder slot is taken")))
    }

    /// Write `record` (replacing the file atomically).
    pub fn write(&mut self, record: Record) -> Result<(), StateError> {
        self.dir
            .replace(&self.record_name, &record.to_bytes(), RECORD_MODE)?;
        self.recorded = Recorded::Found(record);
        Ok(())
    }

    /// Forget the record, and what reloads learned (teardown).
    pub fn remove(&mut self) -> Result<(), StateError> {
        self.dir.remove(&self.record_name)?;
        self.dir.remove(&self.learned_name)?;
        self.recorded = Recorded::Nothing;
        Ok(())
    }
}

#[cfg(test)]
mod tests;
