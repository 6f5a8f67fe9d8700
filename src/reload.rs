//! `plugctl reload -- CMD`: hold new connections, run the reload command,
//! wait until it is safe, release — and release on every path: the command
//! fails or cannot start, hangs past `max_hold`, plugctl gets SIGINT,
//! SIGTERM, SIGQUIT or SIGHUP, its output is closed, or plugctl is killed
//! outright (the hold's watchdog).
//!
//! Signals: SIGINT, SIGTERM and SIGQUIT are forwarded to the command and
//! release the hold at once; SIGHUP (a dropped ssh session) releases the
//! hold but is not forwarded: a reload half done is worse than one
//! finished, and a command that shares the terminal gets the terminal's own
//! SIGHUP anyway. In every case plugctl then waits for the command, and its
//! record (summary, `--json`, `--record`) is still written.

use std::ffi::OsString;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::signal::unix::{signal, Signal, SignalKind};

use crate::agent::{Agent, HoldGuard};
use crate::error::Error;
use crate::kernel::Kernel;
use crate::ready::{self, ListenSpec, Settler};
use crate::HoldStats;

pub use crate::runas::RunAs;

/// How a reload runs.
#[derive(Debug, Clone)]
pub struct ReloadOptions {
    /// Release at the latest this long after the plug closed, even if the
    /// command is still running (it is left running).
    pub max_hold: Duration,
    /// Refuse to run the command if the plug cannot be closed (default:
    /// run it unprotected, with a warning).
    pub strict: bool,
    /// Run the command as this user and group instead of plugctl's own.
    pub user: Option<RunAs>,
    /// After the command returns, hold until these ports have a new
    /// listener and no old one (see [`crate::ready`]).
    pub wait_listen: Vec<ListenSpec>,
    /// How long readiness must hold before releasing.
    pub settle: Duration,
}

impl Default for ReloadOptions {
    fn default() -> ReloadOptions {
        ReloadOptions {
            max_hold: Duration::from_secs(5),
            strict: false,
            user: None,
            wait_listen: vec![],
            settle: Duration::from_millis(20),
        }
    }
}

/// What one reload did: printed as the summary line, or as JSON.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ReloadRecord {
    /// When the reload began, ms since the Unix epoch.
    pub start_ms: u64,
    /// The command (argv).
    pub command: Vec<String>,
    /// Whether new connections were held.
    pub held: bool,
    /// How long the plug was held by this reload, ms.
    pub held_ms: f64,
    /// SYNs held at release.
    pub packets: u32,
    /// Bytes held at release.
    pub bytes: u32,
    /// SYNs dropped (plug full) during the hold.
    pub drops: u32,
    /// The command's exit code, if it exited.
    pub command_exit: Option<i32>,
    /// The signal that ended the command, if one did.
    pub command_signal: Option<i32>,
    /// How long the release waited for the listeners after the command
    /// returned, ms (with `wait_listen`).
    pub waited_for_listen_ms: Option<f64>,
    /// Released because `max_hold` was reached.
    pub max_hold_reached: bool,
    /// The signal plugctl received, if any (forwarded to the command).
    pub signal: Option<i32>,
    /// Warnings (also logged).
    pub warnings: Vec<String>,
}

impl ReloadRecord {
    /// The exit code `plugctl reload` ends with: the command's own (128+N
    /// for a command killed by signal N).
    pub fn exit_code(&self) -> i32 {
        match (self.command_exit, self.command_signal) {
            (Some(c), _) => c,
            (None, Some(s)) => 128 + s,
            (None, None) => 1,
        }
    }

    /// The one-line summary.
    pub fn summary(&self) -> String {
        let exit = match (self.command_exit, self.command_signal) {
            (Some(c), _) => format!("exit {c}"),
            (None, Some(s)) => format!("killed by signal {s}"),
            _ => "no exit status".into(),
        };
        if self.held {
            format!(
                "plugctl: reload {exit}; held {:.1} ms; {} SYNs ({} bytes) held at release; {} dropped{}",
                self.held_ms,
                self.packets,
                self.bytes,
                self.drops,
                if self.max_hold_reached { "; released at max-hold" } else { "" }
            )
        } else {
            format!("plugctl: reload {exit}; NOT held (connections were not protected)")
        }
    }
}

struct Hold<K: Kernel + Send + 'static> {
    guard: Option<HoldGuard<K>>,
    since: Instant,
    stats: Option<HoldStats>,
    held_ms: f64,
}

impl<K: Kernel + Send + 'static> Hold<K> {
    async fn release(&mut self, record: &mut ReloadRecord) {
        let Some(g) = self.guard.take() else { return };
        self.held_ms = self.since.elapsed().as_secs_f64() * 1000.0;
        match g.release().await {
            Ok(s) => {
                if let Some(why) = &s.unrecorded {
                    warn(
                        record,
                        format!("released the plug without recording it: {why}"),
                    );
                }
                self.stats = Some(s);
            }
            Err(e) => {
                // The watchdog (armed when the guard failed) tries again.
                let w = format!("releasing the plug failed: {e}");
                tracing::error!("{w}");
                record.warnings.push(w);
            }
        }
    }
}

fn warn(record: &mut ReloadRecord, w: String) {
    crate::report::warning(&w);
    record.warnings.push(w);
}

/// The signals a reload handles while it holds.
struct Signals {
    int: Signal,
    term: Signal,
    quit: Signal,
    hup: Signal,
}

impl Signals {
    fn new() -> Result<Signals, Error> {
        let s = |kind: SignalKind| {
            signal(kind).map_err(|source| Error::Os {
                what: "installing signal handlers".into(),
                source,
            })
        };
        Ok(Signals {
            int: s(SignalKind::interrupt())?,
            term: s(SignalKind::terminate())?,
            quit: s(SignalKind::quit())?,
            hup: s(SignalKind::hangup())?,
        })
    }

    /// The next signal: its number, and whether to forward it to the command.
    async fn recv(&mut self) -> (i32, bool) {
        tokio::select! {
            _ = self.int.recv() => (libc::SIGINT, true),
            _ = self.term.recv() => (libc::SIGTERM, true),
            _ = self.quit.recv() => (libc::SIGQUIT, true),
            _ = self.hup.recv() => (libc::SIGHUP, false),
        }
    }
}

/// Run `argv` under a hold (see the module docs).
pub async fn reload<K: Kernel + Send + 'static>(
    agent: &Agent<K>,
    argv: &[OsString],
    opts: &ReloadOptions,
) -> Result<ReloadRecord, Error> {
    let program = argv
        .first()
        .ok_or_else(|| Error::Usage("no command given".into()))?;
    let mut record = ReloadRecord {
        start_ms: crate::state::now_ms(),
        command: argv
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect(),
        ..ReloadRecord::default()
    };
    // Signals are caught from here on, so none can end plugctl mid-hold.
    let mut signals = Signals::new()?;

    let what = format!("reload: {}", record.command.join(" "));
    let mut hold = Hold {
        guard: None,
        since: Instant::now(),
        stats: None,
        held_ms: 0.0,
    };
    match agent.hold(&what).await {
        Ok(g) => {
            hold.guard = Some(g);
            hold.since = Instant::now();
            record.held = true;
        }
        Err(e) if opts.strict => return Err(Error::Strict(Box::new(e))),
        Err(e) => warn(
            &mut record,
            format!("running the command without holding connections: {e}"),
        ),
    }
    let now = tokio::time::Instant::now();
    // max_hold is validated (at most 10 min); a library caller's absurd
    // value must still not overflow.
    let deadline = now
        .checked_add(opts.max_hold)
        .unwrap_or(now + Duration::from_secs(600));
    let before = if record.held && !opts.wait_listen.is_empty() {
        match agent.listeners().await {
            Ok(l) => Some(ready::snapshot(&opts.wait_listen, &l)),
            // A protection must not block a deploy: run the command, and
            // release when it returns.
            Err(e) => {
                warn(
                    &mut record,
                    format!(
                        "cannot list listening sockets ({e}); releasing when the command returns"
                    ),
                );
                None
            }
        }
    } else {
        None
    };

    let mut cmd = tokio::process::Command::new(program);
    cmd.args(&argv[1..]);
    if let Some(u) = &opts.user {
        u.apply(&mut cmd);
    }
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(source) => {
            hold.release(&mut record).await;
            return Err(Error::CommandStart {
                command: program.to_string_lossy().into_owned(),
                source,
            });
        }
    };
    let child_pid = child.id();

    let status = loop {
        let held = hold.guard.is_some();
        tokio::select! {
            st = child.wait() => break st,
            _ = tokio::time::sleep_until(deadline), if held => {
                record.max_hold_reached = true;
                warn(&mut record, format!(
                    "the command is still running after max-hold ({:?}); releasing the plug and leaving it running",
                    opts.max_hold
                ));
                hold.release(&mut record).await;
            }
            (sig, fwd) = signals.recv() => {
                got_signal(child_pid.filter(|_| fwd), sig, &mut record);
                hold.release(&mut record).await;
            }
        }
    };
    if let (Some(before), true) = (&before, hold.guard.is_some()) {
        let waited = Instant::now();
        wait_listen(agent, opts, before, deadline, &mut signals, &mut record).await;
        record.waited_for_listen_ms = Some(waited.elapsed().as_secs_f64() * 1000.0);
    }
    hold.release(&mut record).await;
    match status {
        Ok(st) => {
            use std::os::unix::process::ExitStatusExt;
            record.command_exit = st.code();
            record.command_signal = st.signal();
            if !st.success() {
                warn(&mut record, format!("the command failed ({st})"));
            }
        }
        Err(e) => warn(&mut record, format!("waiting for the command: {e}")),
    }
    record.held_ms = hold.held_ms;
    if let Some(s) = hold.stats {
        record.packets = s.packets;
        record.bytes = s.bytes;
        record.drops = s.drops;
    }
    Ok(record)
}

/// Poll the listeners until ready (and settled), max-hold, or a signal.
async fn wait_listen<K: Kernel + Send + 'static>(
    agent: &Agent<K>,
    opts: &ReloadOptions,
    before: &ready::Snapshot,
    deadline: tokio::time::Instant,
    signals: &mut Signals,
    record: &mut ReloadRecord,
) {
    let mut settler = Settler::new(opts.settle);
    loop {
        let listeners = match agent.listeners().await {
            Ok(l) => l,
            Err(e) => {
                warn(
                    record,
                    format!("cannot list listening sockets ({e}); releasing now"),
                );
                return;
            }
        };
        let now = ready::snapshot(&opts.wait_listen, &listeners);
        let verdict = ready::check(&opts.wait_listen, before, &now);
        if settler.observe(verdict.is_ok(), Instant::now()) {
            return;
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(5)) => {}
            _ = tokio::time::sleep_until(deadline) => {
                record.max_hold_reached = true;
                let why = verdict.err().map_or("readiness had not settled".into(), |n| n.to_string());
                warn(record, format!("releasing at max-hold ({:?}) although {why}", opts.max_hold));
                return;
            }
            (sig, _) = signals.recv() => {
                got_signal(None, sig, record);
                return;
            }
        }
    }
}

/// Note signal `sig`, and forward it to the command at `forward_to`.
fn got_signal(forward_to: Option<u32>, sig: i32, record: &mut ReloadRecord) {
    record.signal = Some(sig);
    if let Some(pid) = forward_to {
        // SAFETY: sending a signal to our own child, not yet reaped (the
        // select above has not seen it exit).
        unsafe { libc::kill(pid as libc::pid_t, sig) };
        tracing::warn!("got signal {sig}: forwarded to the command, releasing the plug");
    } else {
        tracing::warn!("got signal {sig}: releasing the plug");
    }
}

#[cfg(test)]
mod tests;
