//! What the kernel cannot tell: whether the plug is closed. plugctl keeps
//! it in a small JSON file per device and network namespace under
//! `state_dir` (default `/run/plugctl`, a tmpfs: a reboot forgets it, as it
//! forgets the qdiscs).

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::error::Error;

/// The plug's last known state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlugState {
    /// True while new SYNs are being held.
    pub closed: bool,
    /// Process that last changed it.
    pub pid: u32,
    /// When it last changed, milliseconds since the Unix epoch.
    pub since_ms: u64,
}

impl PlugState {
    /// A state set now by this process.
    pub fn now(closed: bool) -> PlugState {
        PlugState {
            closed,
            pid: std::process::id(),
            since_ms: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_millis() as u64)
                .unwrap_or(0),
        }
    }
}

/// The state file of one device in the current network namespace.
#[derive(Debug, Clone)]
pub struct StateFile {
    path: PathBuf,
}

impl StateFile {
    /// The file for `device` under `dir`. Network namespaces share `/run`,
    /// so the namespace's inode is part of the name.
    pub fn new(dir: &Path, device: &str) -> StateFile {
        let ns = std::fs::metadata("/proc/thread-self/ns/net")
            .map(|m| m.ino())
            .unwrap_or(0);
        StateFile {
            path: dir.join(format!("{device}.netns-{ns}.json")),
        }
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn err(&self, source: std::io::Error) -> Error {
        Error::State {
            path: self.path.clone(),
            source,
        }
    }

    /// The recorded state, `None` if nothing was recorded (or it is unreadable).
    pub fn read(&self) -> Option<PlugState> {
        let text = std::fs::read_to_string(&self.path).ok()?;
        serde_json::from_str(&text).ok()
    }

    /// Record `state` (written to a temporary file, then renamed over).
    pub fn write(&self, state: PlugState) -> Result<(), Error> {
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| self.err(e))?;
        }
        let tmp = self
            .path
            .with_extension(format!("tmp.{}", std::process::id()));
        let text = serde_json::to_string(&state).map_err(|e| self.err(e.into()))?;
        std::fs::write(&tmp, text).map_err(|e| self.err(e))?;
        std::fs::rename(&tmp, &self.path).map_err(|e| self.err(e))
    }

    /// Forget the state (teardown).
    pub fn remove(&self) -> Result<(), Error> {
        match std::fs::remove_file(&self.path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(self.err(e)),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_remove() {
        let dir = std::env::temp_dir().join(format!("plugctl-state-test-{}", std::process::id()));
        let f = StateFile::new(&dir, "lo");
        assert_eq!(f.read(), None);
        let s = PlugState::now(true);
        f.write(s).unwrap();
        assert_eq!(f.read(), Some(s));
        f.remove().unwrap();
        f.remove().unwrap();
        assert_eq!(f.read(), None);
        let _ = std::fs::remove_dir_all(dir);
    }
}
