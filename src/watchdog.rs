//! The watchdog: a helper process that releases a hold if its holder dies
//! without releasing (`kill -9`, a crash, an OOM kill), so connections can
//! never stay held because plugctl itself is gone.
//!
//! The holder starts it (`plugctl __watchdog`) *before* its hold begins,
//! with a pipe on its stdin. The watchdog opens its netlink sockets, says
//! "ready", and blocks reading the pipe. A normal release writes `R` first;
//! end-of-file without `R` means the holder died, and the watchdog gives
//! back that holder's hold at once (the held connections are released
//! unless another live holder still holds them). It runs in its own process group, so a Ctrl-C
//! meant for the reload does not reach it.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};

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

/// A running watchdog, armed for one holder.
#[derive(Debug)]
pub struct Watchdog {
    child: Child,
    pipe: Option<ChildStdin>,
}

fn err(what: &str, source: std::io::Error) -> Error {
    Error::Os {
        what: format!("the watchdog: {what}"),
        source,
    }
}

impl Watchdog {
    /// Start a watchdog for holder `id` and wait until it is ready.
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
        let pipe = child.stdin.take();
        Ok(Watchdog { child, pipe })
    }

    /// The holder released normally: stand the watchdog down.
    pub fn disarm(mut self) {
        if let Some(mut p) = self.pipe.take() {
            let _ = p.write_all(b"R");
        }
        let _ = self.child.wait();
    }
}

/// The watchdog process's body (`plugctl __watchdog ID`). Returns its exit code.
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
    // Ctrl-C and SIGTERM are for the holder; the watchdog outlives it.
    // SAFETY: setting a signal disposition to SIG_IGN.
    unsafe {
        libc::signal(libc::SIGINT, libc::SIG_IGN);
        libc::signal(libc::SIGTERM, libc::SIG_IGN);
        libc::signal(libc::SIGHUP, libc::SIG_IGN);
        libc::signal(libc::SIGQUIT, libc::SIG_IGN);
    }
    let mut ctl = match Controller::new(cfg) {
        Ok(c) => c,
        Err(e) => {
            crate::report::error(&format!("watchdog: {e}"));
            return e.exit_code();
        }
    };
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
    let mut byte = [0u8; 1];
    let n = std::io::stdin().read(&mut byte).unwrap_or(0);
    if n == 1 && byte[0] == b'R' {
        return 0;
    }
    // The holder died holding: give its hold back.
    match ctl.release_holder(id, 0) {
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
