//! Open-file-description locks (`F_OFD_SETLK`) on single bytes of the
//! private lock file: byte 0 is the record's mutex, byte `1 + n` is holder
//! slot `n`. The kernel drops an OFD lock when the last descriptor of its
//! open file description closes, so a holder that dies, in any PID
//! namespace, frees its slot without anyone having to judge a PID.

use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg};

fn range(ty: libc::c_int, byte: i64) -> libc::flock {
    // SAFETY: flock is plain old data; all-zero is a valid value.
    let mut fl: libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = ty as libc::c_short;
    fl.l_whence = libc::SEEK_SET as libc::c_short;
    fl.l_start = byte;
    fl.l_len = 1;
    fl
}

/// Take a write lock on `byte` if no one else has it.
pub fn try_lock(fd: impl AsFd, byte: i64) -> std::io::Result<bool> {
    let fl = range(libc::F_WRLCK, byte);
    match fcntl(fd.as_fd(), FcntlArg::F_OFD_SETLK(&fl)) {
        Ok(_) => Ok(true),
        Err(Errno::EAGAIN | Errno::EACCES) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Take a write lock on `byte`, waiting at most `wait`. `Ok(false)` when
/// it could not be had in time.
pub fn lock_within(fd: impl AsFd, byte: i64, wait: Duration) -> std::io::Result<bool> {
    let start = Instant::now();
    let mut pause = Duration::from_micros(200);
    loop {
        if try_lock(fd.as_fd(), byte)? {
            return Ok(true);
        }
        let left = wait.saturating_sub(start.elapsed());
        if left.is_zero() {
            return Ok(false);
        }
        std::thread::sleep(pause.min(left));
        pause = (pause * 2).min(Duration::from_millis(10));
    }
}

/// Does an open file description other than `fd`'s hold a lock on `byte`?
pub fn is_locked(fd: impl AsFd, byte: i64) -> std::io::Result<bool> {
    let mut fl = range(libc::F_WRLCK, byte);
    fcntl(fd.as_fd(), FcntlArg::F_OFD_GETLK(&mut fl))?;
    Ok(fl.l_type != libc::F_UNLCK as libc::c_short)
}
