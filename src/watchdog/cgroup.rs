//! The watchdog leaves its holder's cgroup: whatever kills that cgroup as a
//! whole (`systemctl kill` or `stop` of the service, an OOM kill of the unit
//! with `memory.oom.group`, a write to `cgroup.kill`, a container stop) then
//! kills the holder but not the watchdog, which releases the hold.
//!
//! Where to: the root of the cgroup v2 hierarchy as this process sees it
//! (`/sys/fs/cgroup`, or `/sys/fs/cgroup/unified` on a hybrid system). The
//! root cgroup always exists, is exempt from the "no internal processes"
//! rule, and is left as it was: nothing is created, so nothing is left
//! behind and nothing of systemd's tree is touched but the one move. A
//! transient systemd scope would need D-Bus and systemd; a cgroup of
//! plugctl's own would need creating and removing, racing other watchdogs.
//! The watchdog lives only as long as a hold, so a process in the root
//! cgroup for that long costs nothing.
//!
//! Where the move is refused (not root, a read-only cgroupfs in a
//! container, a cgroup namespace whose root has controllers enabled), the
//! watchdog stays where it is and says so once.

use std::path::{Path, PathBuf};

/// `CGROUP2_SUPER_MAGIC` (include/uapi/linux/magic.h).
const CGROUP2_MAGIC: i64 = 0x6367_7270;

/// Where this process's cgroup v2 hierarchy is mounted, if it is.
fn cgroup2_root() -> Option<PathBuf> {
    ["/sys/fs/cgroup", "/sys/fs/cgroup/unified"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| is_cgroup2(p))
}

fn is_cgroup2(p: &Path) -> bool {
    let Ok(c) = std::ffi::CString::new(p.as_os_str().as_encoded_bytes()) else {
        return false;
    };
    // SAFETY: statfs into a zeroed struct we own, on a NUL-terminated path.
    unsafe {
        let mut s: libc::statfs = std::mem::zeroed();
        libc::statfs(c.as_ptr(), &mut s) == 0 && s.f_type as i64 == CGROUP2_MAGIC
    }
}

/// This process's cgroup v2 path (`0::/system.slice/x.service`), from
/// `/proc/self/cgroup`.
pub fn current() -> Option<String> {
    let s = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    s.lines()
        .find_map(|l| l.strip_prefix("0::"))
        .map(str::to_string)
}

/// What [`leave`] did.
#[derive(Debug, PartialEq, Eq)]
pub enum Moved {
    /// Already in the root cgroup (or no cgroup v2 at all): nothing to do.
    Stayed,
    /// Moved from this cgroup into the root.
    From(String),
}

/// Move this process into the root cgroup. The error says why it could
/// not, in words for a warning.
pub fn leave() -> Result<Moved, String> {
    let Some(from) = current() else {
        return Ok(Moved::Stayed);
    };
    if from == "/" {
        return Ok(Moved::Stayed);
    }
    let Some(root) = cgroup2_root() else {
        return Err(format!(
            "no cgroup v2 hierarchy mounted to leave cgroup {from} for"
        ));
    };
    let procs = root.join("cgroup.procs");
    std::fs::write(&procs, std::process::id().to_string())
        .map(|()| Moved::From(from.clone()))
        .map_err(|e| {
            format!(
                "cannot move out of cgroup {from} ({}: {e})",
                procs.display()
            )
        })
}
