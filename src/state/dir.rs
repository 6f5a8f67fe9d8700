//! The state directory, opened so that no other user can redirect, plant or
//! swap what plugctl reads and writes in it.
//!
//! Every path component is opened with `O_NOFOLLOW` from `/` down (symlinks
//! in the configured path are resolved once, up front, and the resolved path
//! is then walked); each directory on the way must belong to root or to the
//! caller and be writable by no one else (a sticky directory such as `/tmp`
//! is fine, as only its entries' owners can replace them). The state
//! directory itself is created with mode 0755 whatever the umask, and must
//! belong to the caller when plugctl writes. Files inside are opened
//! relative to the directory's descriptor with `O_NOFOLLOW`, must be regular
//! files, are read with a size bound, and are replaced by an atomic rename
//! from a temporary file with an unpredictable name.

use std::ffi::OsStr;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{openat, renameat, OFlag};
use nix::sys::stat::{fchmod, fstat, mkdirat, FileStat, Mode, SFlag};
use nix::unistd::{unlinkat, Uid, UnlinkatFlags};

use super::StateError;

/// Mode of the state directory: the record in it is readable by every user
/// (monitoring), nothing in it is writable by anyone but its owner.
pub const DIR_MODE: u32 = 0o755;

/// What the caller will do in the directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Read the record only (status, as any user): nothing is created, and
    /// the directory may belong to root.
    Read,
    /// Change files: the directory is created if missing and must belong to
    /// the caller.
    Write,
}

/// An open, checked state directory.
#[derive(Debug)]
pub struct SecureDir {
    fd: OwnedFd,
    path: PathBuf,
}

fn io_err(path: &Path, e: Errno) -> StateError {
    StateError::Io {
        path: path.to_path_buf(),
        source: std::io::Error::from(e),
    }
}

fn unsafe_dir(path: &Path, why: impl Into<String>) -> StateError {
    StateError::UnsafeDir {
        path: path.to_path_buf(),
        why: why.into(),
    }
}

fn is_trusted_owner(uid: u32) -> bool {
    uid == 0 || uid == Uid::effective().as_raw()
}

fn writable_by_others(st: &FileStat) -> bool {
    st.st_mode & 0o022 != 0
}

fn sticky(st: &FileStat) -> bool {
    st.st_mode & 0o1000 != 0
}

const DIR_FLAGS: OFlag = OFlag::O_DIRECTORY
    .union(OFlag::O_NOFOLLOW)
    .union(OFlag::O_CLOEXEC)
    .union(OFlag::O_RDONLY);

/// Check an ancestor directory of the state directory.
fn check_ancestor(path: &Path, st: &FileStat) -> Result<(), StateError> {
    if !is_trusted_owner(st.st_uid) {
        return Err(unsafe_dir(
            path,
            format!("it belongs to uid {}, not root or the caller", st.st_uid),
        ));
    }
    if writable_by_others(st) && !sticky(st) {
        return Err(unsafe_dir(
            path,
            format!("it is writable by others (mode {:o})", st.st_mode & 0o7777),
        ));
    }
    Ok(())
}

impl SecureDir {
    /// Open the state directory at `path` (absolute) for `access`.
    /// `Ok(None)` when reading and it does not exist.
    pub fn open(path: &Path, access: Access) -> Result<Option<SecureDir>, StateError> {
        if !path.is_absolute() {
            return Err(unsafe_dir(path, "it is not an absolute path"));
        }
        let name = match path.file_name() {
            Some(n) => n.to_os_string(),
            None => return Err(unsafe_dir(path, "it names no directory")),
        };
        if path
            .components()
            .any(|c| matches!(c, Component::ParentDir | Component::CurDir))
        {
            return Err(unsafe_dir(path, "it contains `.` or `..`"));
        }
        let parent = path.parent().unwrap_or(Path::new("/"));
        // Resolve symlinks in the ancestors once (`/var/run` -> `/run`),
        // then walk the result without following any.
        let parent = match std::fs::canonicalize(parent) {
            Ok(p) => p,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && access == Access::Read => {
                return Ok(None)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                create_ancestors(parent)?;
                std::fs::canonicalize(parent).map_err(|source| StateError::Io {
                    path: parent.to_path_buf(),
                    source,
                })?
            }
            Err(source) => {
                return Err(StateError::Io {
                    path: parent.to_path_buf(),
                    source,
                })
            }
        };
        let mut here = PathBuf::from("/");
        let mut fd =
            nix::fcntl::open("/", DIR_FLAGS, Mode::empty()).map_err(|e| io_err(&here, e))?;
        check_ancestor(&here, &fstat(&fd).map_err(|e| io_err(&here, e))?)?;
        for c in parent.components().skip(1) {
            here.push(c);
            fd = openat(&fd, c.as_os_str(), DIR_FLAGS, Mode::empty())
                .map_err(|e| io_err(&here, e))?;
            check_ancestor(&here, &fstat(&fd).map_err(|e| io_err(&here, e))?)?;
        }
        let full = here.join(&name);
        let dir = match openat(&fd, name.as_os_str(), DIR_FLAGS, Mode::empty()) {
            Ok(d) => d,
            Err(Errno::ENOENT) if access == Access::Read => return Ok(None),
            Err(Errno::ENOENT) => {
                match mkdirat(&fd, name.as_os_str(), Mode::from_bits_truncate(DIR_MODE)) {
                    Ok(()) | Err(Errno::EEXIST) => {}
                    Err(e) => return Err(io_err(&full, e)),
                }
                let d = openat(&fd, name.as_os_str(), DIR_FLAGS, Mode::empty())
                    .map_err(|e| open_dir_err(&fd, &name, &full, e))?;
                let st = fstat(&d).map_err(|e| io_err(&full, e))?;
                // The umask may have narrowed (or a racing creator widened)
                // the mode: set it exactly, if the directory is ours.
                if st.st_uid == Uid::effective().as_raw() && st.st_mode & 0o7777 != DIR_MODE {
                    fchmod(&d, Mode::from_bits_truncate(DIR_MODE)).map_err(|e| io_err(&full, e))?;
                }
                d
            }
            Err(e) => return Err(open_dir_err(&fd, &name, &full, e)),
        };
        let st = fstat(&dir).map_err(|e| io_err(&full, e))?;
        let euid = Uid::effective().as_raw();
        match access {
            Access::Write if st.st_uid != euid => {
                return Err(unsafe_dir(
                    &full,
                    format!(
                        "it belongs to uid {}, not to the caller (uid {euid})",
                        st.st_uid
                    ),
                ))
            }
            Access::Read if !is_trusted_owner(st.st_uid) => {
                return Err(unsafe_dir(
                    &full,
                    format!("it belongs to uid {}, not root or the caller", st.st_uid),
                ))
            }
            _ => {}
        }
        if writable_by_others(&st) {
            return Err(unsafe_dir(
                &full,
                format!(
                    "it is writable by others (mode {:o}; plugctl wants {DIR_MODE:o})",
                    st.st_mode & 0o7777
                ),
            ));
        }
        Ok(Some(SecureDir {
            fd: dir,
            path: full,
        }))
    }

    /// Its path, for messages.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn file_path(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    /// Open `name` as a regular file, never through a symlink, never
    /// blocking on a FIFO. `Ok(None)` if it does not exist.
    pub fn open_file(
        &self,
        name: &str,
        flags: OFlag,
        mode: u32,
    ) -> Result<Option<(File, FileStat)>, StateError> {
        let path = self.file_path(name);
        let flags = flags | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_NONBLOCK;
        let fd = match openat(&self.fd, name, flags, Mode::from_bits_truncate(mode)) {
            Ok(fd) => fd,
            Err(Errno::ENOENT) => return Ok(None),
            Err(Errno::ELOOP) => {
                return Err(StateError::NotAFile {
                    path,
                    what: "a symlink",
                })
            }
            Err(Errno::ENXIO) => {
                return Err(StateError::NotAFile {
                    path,
                    what: "a socket or FIFO",
                })
            }
            Err(e) => return Err(io_err(&path, e)),
        };
        let st = fstat(&fd).map_err(|e| io_err(&path, e))?;
        if SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT != SFlag::S_IFREG {
            return Err(StateError::NotAFile {
                path,
                what: "not a regular file",
            });
        }
        Ok(Some((File::from(fd), st)))
    }

    /// Read `name` whole, refusing more than `max` bytes.
    pub fn read(&self, name: &str, max: usize) -> Result<Option<Vec<u8>>, StateError> {
        let Some((file, _)) = self.open_file(name, OFlag::O_RDONLY, 0)? else {
            return Ok(None);
        };
        let mut out = Vec::new();
        file.take(max as u64 + 1)
            .read_to_end(&mut out)
            .map_err(|source| StateError::Io {
                path: self.file_path(name),
                source,
            })?;
        if out.len() > max {
            return Err(StateError::TooLarge {
                path: self.file_path(name),
                max,
            });
        }
        Ok(Some(out))
    }

    /// Replace `name` with `bytes` (mode `mode`), atomically: written to a
    /// new file with an unpredictable name, then renamed over.
    pub fn replace(&self, name: &str, bytes: &[u8], mode: u32) -> Result<(), StateError> {
        let path = self.file_path(name);
        let tmp = format!(".{name}.{}", random_hex());
        let flags = OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL;
        let (mut file, _) = self
            .open_file(&tmp, flags, mode)?
            .ok_or_else(|| io_err(&path, Errno::ENOENT))?;
        let r = fchmod(&file, Mode::from_bits_truncate(mode))
            .map_err(std::io::Error::from)
            .and_then(|()| file.write_all(bytes))
            .map_err(|source| StateError::Io {
                path: path.clone(),
                source,
            })
            .and_then(|()| {
                renameat(&self.fd, tmp.as_str(), &self.fd, name).map_err(|e| io_err(&path, e))
            });
        if r.is_err() {
            let _ = unlinkat(&self.fd, tmp.as_str(), UnlinkatFlags::NoRemoveDir);
        }
        r
    }

    /// Remove `name` (no error if it is not there).
    pub fn remove(&self, name: &str) -> Result<(), StateError> {
        match unlinkat(&self.fd, name, UnlinkatFlags::NoRemoveDir) {
            Ok(()) | Err(Errno::ENOENT) => Ok(()),
            Err(e) => Err(io_err(&self.file_path(name), e)),
        }
    }

    /// Its descriptor.
    pub fn fd(&self) -> impl AsFd + '_ {
        &self.fd
    }
}

/// Why `name` in `parent` could not be opened as a directory.
fn open_dir_err(parent: &OwnedFd, name: &OsStr, path: &Path, e: Errno) -> StateError {
    let is_symlink = || {
        nix::sys::stat::fstatat(parent, name, nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW)
            .is_ok_and(|st| SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFLNK)
    };
    match e {
        Errno::ELOOP => unsafe_dir(path, "it is a symlink"),
        Errno::ENOTDIR if is_symlink() => unsafe_dir(path, "it is a symlink"),
        Errno::ENOTDIR => unsafe_dir(path, "it is not a directory"),
        e => io_err(path, e),
    }
}

/// Create the missing ancestors of the state directory, mode 0755.
fn create_ancestors(dir: &Path) -> Result<(), StateError> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(DIR_MODE)
        .create(dir)
        .map_err(|source| StateError::Io {
            path: dir.to_path_buf(),
            source,
        })
}

/// 128 random bits as hex, from the kernel's generator.
pub fn random_hex() -> String {
    let mut buf = [0u8; 16];
    // getrandom(2) never returns short reads for 16 bytes once the pool is
    // initialised; fall back to time and pid mixing if it ever fails.
    // SAFETY: writing at most 16 bytes into a 16-byte buffer.
    let n = unsafe { libc::getrandom(buf.as_mut_ptr().cast(), buf.len(), 0) };
    if n != buf.len() as isize {
        let t = crate::clock::now_ms() as u128 ^ ((std::process::id() as u128) << 64);
        buf = t.to_le_bytes();
    }
    buf.iter().map(|b| format!("{b:02x}")).collect()
}
