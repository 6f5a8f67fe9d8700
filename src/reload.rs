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
use crate::handover::rule::{self, Baseline, Decision, Snapshot};
use crate::handover::snapshot::{self as snap, Scope};
use crate::handover::{self as ready, ListenSpec, Settler};
use crate::kernel::Kernel;
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
    /// Release as soon as the command returns: no hand-over is observed
    /// (ignored with `wait_listen`).
    pub no_wait: bool,
    /// The observed hand-over: when nothing has changed on any port, release
    /// this long after the command returned.
    pub quiet: Duration,
    /// The listeners the observed hand-over watches (the protected
    /// addresses and ports; see [`Scope::of`]).
    pub scope: Scope,
}

impl Default for ReloadOptions {
    fn default() -> ReloadOptions {
        ReloadOptions {
            max_hold: Duration::from_secs(5),
            strict: false,
            user: None,
            wait_listen: vec![],
            settle: Duration::from_millis(20),
            no_wait: false,
            quiet: Duration::from_millis(300),
            scope: Scope::default(),
        }
    }
}

/// What the release waited for after the command returned.
#[derive(Debug, Clone, Default, Serialize)]
pub struct HandoverRecord {
    /// `observed` (the default), `wait-listen`, or `none` (`--no-wait`, or
    /// nothing to observe).
    pub mode: &'static str,
    /// Per port seen, what the observed hand-over concluded.
    pub ports: Vec<PortRecord>,
    /// Nothing changed on any port: released after the quiet window.
    pub quiet_window: bool,
    /// Stale listeners found when the hold began (not waited for).
    pub stale: Vec<String>,
}

/// One port's hand-over.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PortRecord {
    /// The port.
    pub port: u16,
    /// The last verdict (see [`crate::handover::rule::Verdict::name`]).
    pub verdict: &'static str,
    /// How long after the command returned the port became safe for good
    /// (or the wait ended), ms.
    pub waited_ms: f64,
    /// Listening sockets when the hold began (stale ones excluded).
    pub old_sockets: usize,
    /// Listening sockets at release.
    pub sockets: usize,
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
    /// returned, ms (observed hand-over or `wait_listen`).
    pub waited_for_listen_ms: Option<f64>,
    /// What the hand-over saw.
    pub handover: HandoverRecord,
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
    let watch = if !record.held {
        Watch::Nothing
    } else if !opts.wait_listen.is_empty() {
        match agent.listeners().await {
            Ok(l) => Watch::Listen(ready::snapshot(&opts.wait_listen, &l)),
            // A protection must not block a deploy: run the command, and
            // release when it returns.
            Err(e) => {
                cannot_list(&mut record, &e);
                Watch::Nothing
            }
        }
    } else if opts.no_wait {
        Watch::Nothing
    } else {
        match baseline(agent, &opts.scope).await {
            Ok(b) => {
                for st in &b.stale {
                    warn(&mut record, st.to_string());
                    record.handover.stale.push(st.to_string());
                }
                Watch::Observed(Box::new(b))
            }
            Err(e) => {
                cannot_list(&mut record, &e);
                Watch::Nothing
            }
        }
    };
    record.handover.mode = match watch {
        Watch::Nothing => "none",
        Watch::Listen(_) => "wait-listen",
        Watch::Observed(_) => "observed",
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
    if hold.guard.is_some() {
        let waited = Instant::now();
        match &watch {
            Watch::Nothing => {}
            Watch::Listen(before) => {
                wait_listen(agent, opts, before, deadline, &mut signals, &mut record).await
            }
            Watch::Observed(base) => {
                observe(agent, opts, base, deadline, &mut signals, &mut record).await
            }
        }
        if !matches!(watch, Watch::Nothing) {
            record.waited_for_listen_ms = Some(waited.elapsed().as_secs_f64() * 1000.0);
        }
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

/// What the release waits for after the command returns.
enum Watch {
    /// Nothing: release at once.
    Nothing,
    /// `--wait-listen`: these ports' sockets when the hold began.
    Listen(ready::Snapshot),
    /// The observed hand-over, from this baseline.
    Observed(Box<Baseline>),
}

fn cannot_list(record: &mut ReloadRecord, e: &Error) {
    warn(
        record,
        format!("cannot list listening sockets ({e}); releasing when the command returns"),
    );
}

/// The snapshot the observed hand-over starts from.
async fn baseline<K: Kernel + Send + 'static>(
    agent: &Agent<K>,
    scope: &Scope,
) -> Result<Baseline, Error> {
    let listeners = agent.listeners().await?;
    let scope = scope.clone();
    let s = tokio::task::spawn_blocking(move || snap::take(&scope, &listeners, &[], None, true))
        .await
        .unwrap_or_default();
    Ok(Baseline::new(s))
}

/// How often the observed hand-over rescans `/proc` for owners when the
/// sockets have not changed (a new socket always triggers a scan).
const OWNER_RESCAN: Duration = Duration::from_millis(50);
/// How often the listeners are polled.
const POLL: Duration = Duration::from_millis(5);

/// The observed hand-over: poll until the rule says release (settled when
/// something changed), max-hold, or a signal.
async fn observe<K: Kernel + Send + 'static>(
    agent: &Agent<K>,
    opts: &ReloadOptions,
    base: &Baseline,
    deadline: tokio::time::Instant,
    signals: &mut Signals,
    record: &mut ReloadRecord,
) {
    let returned = Instant::now();
    let watch = base.owners();
    let mut settler = Settler::new(opts.settle);
    let mut prev: Option<Snapshot> = None;
    let mut last_scan: Option<Instant> = None;
    // Per port: since when (ms after the command returned) it is safe.
    let mut safe_since: std::collections::BTreeMap<u16, Option<f64>> = Default::default();
    let mut verdicts: Vec<(u16, rule::Verdict)> = Vec::new();
    loop {
        let listeners = match agent.listeners().await {
            Ok(l) => l,
            Err(e) => {
                warn(
                    record,
                    format!("cannot list listening sockets ({e}); releasing now"),
                );
                break;
            }
        };
        let scan = last_scan.is_none_or(|t| t.elapsed() >= OWNER_RESCAN);
        if scan {
            last_scan = Some(Instant::now());
        }
        let (scope, w, p) = (opts.scope.clone(), watch.clone(), prev.take());
        let now = tokio::task::spawn_blocking(move || {
            snap::take(&scope, &listeners, &w, p.as_ref(), scan)
        })
        .await
        .unwrap_or_default();
        verdicts = rule::judge(base, &now);
        let t = returned.elapsed().as_secs_f64() * 1000.0;
        for (port, v) in &verdicts {
            let e = safe_since.entry(*port).or_insert(None);
            if v.waits() {
                *e = None;
            } else if e.is_none() {
                *e = Some(t);
            }
        }
        prev = Some(now);
        let decision = rule::decide(&verdicts, returned.elapsed(), opts.quiet);
        let done = match decision {
            Decision::QuietOver => {
                record.handover.quiet_window = true;
                true
            }
            Decision::Ready => settler.observe(true, Instant::now()),
            Decision::Wait | Decision::Quiet => settler.observe(false, Instant::now()),
        };
        if done {
            break;
        }
        tokio::select! {
            _ = tokio::time::sleep(POLL) => {}
            _ = tokio::time::sleep_until(deadline) => {
                record.max_hold_reached = true;
                let why: Vec<String> = verdicts
                    .iter()
                    .filter(|(_, v)| v.waits())
                    .map(|(p, v)| format!("port {p}: {v}"))
                    .collect();
                let why = if why.is_empty() { "the hand-over had not settled".into() } else { why.join("; ") };
                warn(record, format!("releasing at max-hold ({:?}) although {why}", opts.max_hold));
                break;
            }
            (sig, _) = signals.recv() => {
                got_signal(None, sig, record);
                break;
            }
        }
    }
    let end = returned.elapsed().as_secs_f64() * 1000.0;
    let count = |snap: &Snapshot, port: u16| snap.socks.iter().filter(|s| s.port == port).count();
    let stale: std::collections::HashSet<u64> = base
        .stale
        .iter()
        .flat_map(|s| s.cookies.iter().copied())
        .collect();
    record.handover.ports = verdicts
        .iter()
        .map(|(port, v)| PortRecord {
            port: *port,
            verdict: v.name(),
            waited_ms: safe_since.get(port).copied().flatten().unwrap_or(end),
            old_sockets: base
                .snap
                .socks
                .iter()
                .filter(|s| s.port == *port && !stale.contains(&s.cookie))
                .count(),
            sockets: prev.as_ref().map_or(0, |s| count(s, *port)),
        })
        .collect();
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
