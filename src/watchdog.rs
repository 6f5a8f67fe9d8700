//! The watchdog: a helper process that releases a hold if its holder dies
//! without releasing (`kill -9`, a crash, an OOM kill, a kill of its whole
//! cgroup), so connections can never stay held because plugctl itself is
//! gone.
//!
//! It is armed *before* its hold begins and then blocks reading a pipe from
//! its holder. A normal release writes `R` first; end-of-file without `R`
//! means the holder died, and the watchdog gives back that holder's hold at
//! once (the held connections are released unless another live holder
//! still holds them). It ignores SIGINT, SIGTERM, SIGHUP and SIGQUIT and
//! runs in its own process group, so a Ctrl-C meant for the reload does not
//! reach it, and when armed it leaves its holder's cgroup (see `cgroup.rs`).
//!
//! Two ways to start one:
//!
//! * [`Watchdog::fork`]: the `plugctl` command forks it at start, while the
//!   process has no thread yet, so a reload starts one program, not two. The
//!   child is a copy of plugctl that opens its own kernel handles; it waits
//!   unarmed until [`Watchdog::arm`] sends it the holder's id (`A<id>\n`),
//!   leaves the cgroup, answers `armed`, and watches from then on. Its stdin
//!   and stdout are `/dev/null` (a caller's `$(plugctl reload …)` is not
//!   kept open by it), its stderr is plugctl's.
//! * [`Watchdog::spawn`]: programs that embed the library have threads
//!   already, so their watchdog is the `plugctl` binary executed again
//!   (`plugctl __watchdog ID`), armed from the start, with a pipe on its
//!   stdin and one on its stdout for "ready".

mod cgroup;

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use crate::config::Config;
use crate::error::Error;
use crate::Controller;

/// Environment variable carrying the configuration (JSON) to the watchdog.
pub const CONFIG_ENV: &str = "PLUGCTL_WATCHDOG_CONFIG";
/// Environment variable carrying the state directory, as raw bytes (a path
/// need not be UTF-8, JSON must be).
pub const STATE_DIR_ENV: &str = "PLUGCTL_WATCHDOG_STATE_DIR";
/// The hidden subcommand that runs a watchdog.
pub const SUBCOMMAND: &str = "__watchdog";

/// The `plugctl` program to run the watchdog with: this executable when it
/// is plugctl, else `plugctl` from `PATH` (programs that embed the library
/// need plugctl installed for the watchdog).
pub fn default_program() -> PathBuf {
    match std::env::current_exe() {
        Ok(p)
            if p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("plugctl")) =>
        {
            p
        }
        _ => PathBuf::from("plugctl"),
    }
}

/// The process name of a forked watchdog (`ps -o comm`, `pkill -x`): at
/// most 15 bytes.
pub const FORKED_NAME: &str = "plugctl-wdog";

/// A running watchdog.
#[derive(Debug)]
pub struct Watchdog {
    process: Process,
    /// The holder's end of the pipe the watchdog reads.
    pipe: Option<File>,
    /// A forked watchdog's answers (`armed`).
    answers: Option<BufReader<File>>,
    /// The holder it watches; `None` until armed.
    armed: Option<String>,
}

#[derive(Debug)]
enum Process {
    Spawned(Child),
    Forked(libc::pid_t),
}

fn err(what: &str, source: std::io::Error) -> Error {
    Error::Os {
        what: format!("the watchdog: {what}"),
        source,
    }
}

/// A pipe: (read end, write end), both close-on-exec, so a reload command
/// (which may daemonize) never keeps the watchdog's pipe open.
fn pipe() -> std::io::Result<(File, File)> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 fills the two-element array on success.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: two fresh descriptors that nothing else owns.
    unsafe { Ok((File::from_raw_fd(fds[0]), File::from_raw_fd(fds[1]))) }
}

/// How many threads this process has (`Threads:` in /proc/self/status).
fn threads() -> Option<usize> {
    std::fs::read_to_string("/proc/self/status")
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .and_then(|n| n.trim().parse().ok())
}

/// Ctrl-C, SIGTERM, SIGHUP and SIGQUIT are for the holder; the watchdog
/// outlives it.
fn ignore_signals() {
    // SAFETY: setting signal dispositions to SIG_IGN.
    unsafe {
        for s in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGQUIT] {
            libc::signal(s, libc::SIG_IGN);
        }
    }
}

impl Watchdog {
    /// Start a watchdog for holder `id` by executing `program` (a `plugctl`
    /// binary) and wait until it is ready; it is armed from the start.
    pub fn spawn(program: &Path, cfg: &Config, id: &str) -> Result<Watchdog, Error> {
        let json = serde_json::to_string(&Config {
            state_dir: PathBuf::from("/"),
            ..cfg.clone()
        })
        .map_err(|e| err("config", e.into()))?;
        let mut child = Command::new(program)
            .arg(SUBCOMMAND)
            .arg(id)
            .env(CONFIG_ENV, json)
            .env(STATE_DIR_ENV, &cfg.state_dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .process_group(0)
            .spawn()
            .map_err(|e| err(&format!("starting {}", program.display()), e))?;
        let mut line = String::new();
        if let Some(out) = child.stdout.take() {
            BufReader::new(out)
                .read_line(&mut line)
                .map_err(|e| err("ready", e))?;
        }
        if line.trim() != "ready" {
            let _ = child.kill();
            let _ = child.wait();
            return Err(err(
                "ready",
                std::io::Error::other("the watchdog did not start"),
            ));
        }
        let pipe = child.stdin.take().map(|p| File::from(OwnedFd::from(p)));
        Ok(Watchdog {
            process: Process::Spawned(child),
            pipe,
            answers: None,
            armed: Some(id.into()),
        })
    }

    /// Fork a watchdog for `cfg`, not armed yet (see [`Watchdog::arm`]).
    /// Only while this process has a single thread (before any runtime or
    /// thread pool starts): the child then is an ordinary copy of it, free
    /// to allocate and take locks. Refused otherwise.
    pub fn fork(cfg: &Config) -> Result<Watchdog, Error> {
        match threads() {
            Some(1) => {}
            n => {
                return Err(err(
                    "fork",
                    std::io::Error::other(format!(
                        "this process has {} threads; a watchdog is forked only from one",
                        n.map_or("an unknown number of".into(), |n| n.to_string())
                    )),
                ))
            }
        }
        let (cmd_r, cmd_w) = pipe().map_err(|e| err("pipe", e))?;
        let (ans_r, ans_w) = pipe().map_err(|e| err("pipe", e))?;
        // SAFETY: this process has one thread (checked above), so the child
        // is a complete copy in which every lock is free.
        match unsafe { libc::fork() } {
            -1 => Err(err("fork", std::io::Error::last_os_error())),
            0 => {
                drop(cmd_w);
                drop(ans_r);
                let cfg = cfg.clone();
                // Never unwind into the parent's stack frames copied here,
                // and never run its exit handlers or flush its buffers.
                let code = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    forked(cfg, cmd_r, ans_w)
                }))
                .unwrap_or(70);
                // SAFETY: ends this (child) process at once.
                unsafe { libc::_exit(code) }
            }
            pid => Ok(Watchdog {
                process: Process::Forked(pid),
                pipe: Some(cmd_w),
                answers: Some(BufReader::new(ans_r)),
                armed: None,
            }),
        }
    }

    /// The watchdog's process id.
    pub fn pid(&self) -> u32 {
        match &self.process {
            Process::Spawned(c) => c.id(),
            Process::Forked(pid) => *pid as u32,
        }
    }

    /// Arm it for holder `id` before that holder's hold begins: from now on,
    /// if this process dies without [`Watchdog::disarm`], it gives that hold
    /// back. Returns once it is armed (and out of this cgroup if it can be).
    /// A spawned watchdog is armed from the start (for the id it was
    /// spawned with).
    pub fn arm(&mut self, id: &str) -> Result<(), Error> {
        if let Some(armed) = &self.armed {
            if armed == id {
                return Ok(());
            }
            return Err(err(
                "arm",
                std::io::Error::other(format!("already armed for holder {armed}")),
            ));
        }
        let (Some(pipe), Some(answers)) = (self.pipe.as_mut(), self.answers.as_mut()) else {
            return Err(err("arm", std::io::Error::other("no pipe to the watchdog")));
        };
        pipe.write_all(format!("A{id}\n").as_bytes())
            .map_err(|e| err("arm", e))?;
        let mut line = String::new();
        answers.read_line(&mut line).map_err(|e| err("arm", e))?;
        if line.trim_end() != "armed" {
            return Err(err("arm", std::io::Error::other("the watchdog is gone")));
        }
        self.armed = Some(id.into());
        Ok(())
    }

    /// The holder released normally: stand the watchdog down.
    pub fn disarm(mut self) {
        if let Some(mut p) = self.pipe.take() {
            let _ = p.write_all(b"R");
        }
        match &mut self.process {
            Process::Spawned(c) => {
                let _ = c.wait();
            }
            Process::Forked(pid) => loop {
                // SAFETY: waiting for our own child.
                let r = unsafe { libc::waitpid(*pid, std::ptr::null_mut(), 0) };
                if r != -1
                    || std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted
                {
                    break;
                }
            },
        }
    }
}

/// Leave the holder's cgroup, warning (once: each watchdog arms once) if
/// that cannot be done.
fn leave_cgroup() {
    match cgroup::leave() {
        Ok(cgroup::Moved::From(from)) => {
            tracing::debug!("watchdog {}: left cgroup {from}", std::process::id())
        }
        Ok(cgroup::Moved::Stayed) => {}
        Err(why) => crate::report::warning(&format!(
            "the watchdog stays in its holder's cgroup: {why}; killing that whole cgroup would take it along"
        )),
    }
}

/// A forked watchdog's body (see [`Watchdog::fork`]).
fn forked(cfg: Config, commands: File, mut answers: File) -> i32 {
    // SAFETY: plain system calls on this process.
    unsafe {
        libc::setpgid(0, 0);
        let name = std::ffi::CString::new(FORKED_NAME).unwrap_or_default();
        libc::prctl(libc::PR_SET_NAME, name.as_ptr());
    }
    ignore_signals();
    // Not the holder's stdin and stdout: a caller reading plugctl's stdout
    // to its end must not wait for the watchdog too.
    if let Ok(null) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
    {
        use std::os::fd::AsRawFd;
        // SAFETY: dup2 onto the standard descriptors of this process.
        unsafe {
            libc::dup2(null.as_raw_fd(), 0);
            libc::dup2(null.as_raw_fd(), 1);
        }
    }
    let ctl = match Controller::new(cfg) {
        Ok(c) => c,
        Err(e) => {
            crate::report::error(&format!("watchdog: {e}"));
            return e.exit_code();
        }
    };
    watch(ctl, None, commands, Some(&mut answers))
}

/// Read the holder's pipe until `R` (disarmed: exit 0) or its end: then, if
/// armed, give the holder's hold back. `A<id>\n` arms (answered `armed` on
/// `answers`, after leaving the cgroup).
fn watch(
    mut ctl: Controller,
    mut armed: Option<String>,
    pipe: File,
    mut answers: Option<&mut File>,
) -> i32 {
    let mut pipe = BufReader::new(pipe);
    loop {
        let mut byte = [0u8; 1];
        match pipe.read(&mut byte) {
            Ok(1) if byte[0] == b'R' => return 0,
            Ok(1) if byte[0] == b'A' => {
                let mut id = String::new();
                if pipe.read_line(&mut id).is_err() || !id.ends_with('\n') {
                    break;
                }
                leave_cgroup();
                armed = Some(id.trim_end().to_string());
                if let Some(a) = answers.as_mut() {
                    if a.write_all(b"armed\n").is_err() {
                        break;
                    }
                }
            }
            Ok(1) => {}
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Ok(_) | Err(_) => break,
        }
    }
    let Some(id) = armed else {
        // Never armed: nothing to give back.
        return 0;
    };
    // The holder died holding: give its hold back.
    match ctl.release_holder(&id, 0) {
        Ok(s) => {
            tracing::warn!(
                "holder {id} died while holding; {}",
                if s.released {
                    "plug released"
                } else {
                    "other holders remain"
                }
            );
            0
        }
        Err(e) => {
            crate::report::error(&format!("watchdog: releasing for dead holder {id}: {e}"));
            e.exit_code()
        }
    }
}

/// The spawned watchdog's body (`plugctl __watchdog ID`), armed for holder
/// `id` from the start. Returns its exit code.
pub fn run(id: &str) -> i32 {
    let cfg: Option<Config> = std::env::var(CONFIG_ENV)
        .ok()
        .and_then(|j| serde_json::from_str(&j).ok());
    let (Some(mut cfg), Some(dir)) = (cfg, std::env::var_os(STATE_DIR_ENV)) else {
        crate::report::error(&format!(
            "watchdog: no configuration in {CONFIG_ENV} and {STATE_DIR_ENV}"
        ));
        return 3;
    };
    cfg.state_dir = PathBuf::from(dir);
    ignore_signals();
    let ctl = match Controller::new(cfg) {
        Ok(c) => c,
        Err(e) => {
            crate::report::error(&format!("watchdog: {e}"));
            return e.exit_code();
        }
    };
    leave_cgroup();
    {
        let mut out = std::io::stdout().lock();
        if out
            .write_all(b"ready\n")
            .and_then(|()| out.flush())
            .is_err()
        {
            return 19;
        }
    }
    // SAFETY: stdin (fd 0) is the holder's pipe, owned by nothing else here.
    let stdin = unsafe { File::from_raw_fd(0) };
    watch(ctl, Some(id.into()), stdin, None)
}
