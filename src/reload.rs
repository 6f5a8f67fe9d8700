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

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::signal::unix::{signal, Signal, SignalKind};

use crate::agent::{Agent, HoldGuard};
use crate::error::Error;
use crate::handover::background::{self, Background};
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
    /// listener and no old one (see [`crate::handover`]).
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
    /// What the command left running in the background (`PID (comm)`),
    /// waited for before the quiet window ended (see
    /// [`crate::handover::background`]).
    pub background: Vec<String>,
    /// Stale listeners found when the hold began (not waited for).
    pub stale: Vec<String>,
    /// How long the drain before the command took, ms: with the plug
    /// closed, the old listeners' accept queues were left to empty (bounded
    /// by a quarter of max-hold).
    pub drain_ms: Option<f64>,
    /// The accept queues drained were empty when the command ran.
    pub drained: bool,
    /// SYNs the plug held when the drain ended (it ends once they are as
    /// many as the connections still queued).
    pub drain_held: u32,
    /// Ports not drained: the last reload of this command kept their old
    /// listeners (see [`crate::state::learned`]).
    pub drain_skipped: Vec<u16>,
    /// The drain ended once what was left would take the old process at
    /// most this long, ms: half the time the old listeners stayed open
    /// after the last start of this command (`None`: drained in full).
    pub drain_budget_ms: Option<f64>,
}

/// One port's hand-over.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PortRecord {
    /// The port.
    pub port: u16,
    /// The last verdict (see [`crate::handover::rule::Verdict::name`]).
    pub verdict: &'static str,
    /// How long after the command returned the port reached its last
    /// verdict for good (the release, if it never changed), ms.
    pub waited_ms: f64,
    /// Listening sockets when the hold began (stale ones excluded).
    pub old_sockets: usize,
    /// Listening sockets at release.
    pub sockets: usize,
    /// Connections in the old listeners' accept queues when the hold began
    /// (summed over a reuseport group).
    pub queued_at_hold: u32,
    /// Connections still queued when the command ran (after the drain).
    pub queued_at_command: u32,
    /// The old listeners' backlog (summed).
    pub backlog_at_hold: u32,
    /// Free places in the accept queues at release (backlog - queued).
    pub free_backlog: u32,
    /// How long after the command started the old listeners stopped
    /// listening, ms (`None`: they still listened at release). Remembered
    /// for the next reload of the same command, unless nothing changed.
    pub old_open_ms: Option<f64>,
    /// Whether the old process accepted what was queued when the command
    /// ran before its listeners stopped (at most half was left at the last
    /// look); `None`: nothing was queued, or it was not seen. `false` (a
    /// stop that closes without accepting, such as SIGTERM, resets what is
    /// queued) is remembered: the next reload of the command drains in
    /// full.
    pub old_accepted: Option<bool>,
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
    let key = learned_key(&record.command);
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
    // A signal that arrived during the drain, handled once CMD runs.
    let mut pending: Option<(i32, bool)> = None;
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
                // Read only when there is something to drain.
                let learned = (!b.current_cookies().is_empty()).then(|| agent.store().learned());
                let plan = DrainPlan::new(&b, |port| {
                    let s = learned.as_ref()?.seen(&key, port)?;
                    Some((s.old_open_ms, s.accepts))
                });
                record.handover.drain_skipped = plan.skip.iter().copied().collect();
                // Whole milliseconds, as learned: `as_secs_f64() * 1000` is not exact.
                record.handover.drain_budget_ms = plan.budget.map(|d| d.as_millis() as f64);
                let queued;
                (queued, pending) = drain(
                    agent,
                    hold.guard.as_ref(),
                    opts,
                    &b,
                    &plan,
                    &mut signals,
                    &mut record,
                )
                .await;
                Watch::Observed(Box::new(b), queued)
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
        Watch::Observed(..) => "observed",
    };

    let mut cmd = tokio::process::Command::new(program);
    cmd.args(&argv[1..]);
    if let Some(u) = &opts.user {
        u.apply(&mut cmd);
    }
    // Per port, when (ms after the command started) the old listeners were
    // first seen gone (see `learn`).
    let mut closed = Closed::default();
    if let Watch::Observed(_, queued) = &watch {
        closed.queued = queued.clone();
    }
    // What the command leaves running, if this process adopts it.
    let bg = match watch {
        Watch::Observed(..) => Background::before_command(),
        _ => None,
    };
    closed.start();
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
    if let Some((sig, fwd)) = pending {
        got_signal(child_pid.filter(|_| fwd), sig, &mut record);
        hold.release(&mut record).await;
    }

    let mut tick = tokio::time::interval(CLOSE_POLL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Only old listeners can stop.
    let base = match &watch {
        Watch::Observed(b, _) if !b.current_cookies().is_empty() => Some(b),
        _ => None,
    };
    let status = loop {
        let held = hold.guard.is_some();
        tokio::select! {
            st = child.wait() => break st,
            _ = tick.tick(), if held && base.is_some() => {
                if let (Some(b), Ok(l)) = (base, agent.listeners().await) {
                    closed.look(b, &opts.scope, &l);
                }
            }
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
            Watch::Observed(base, queued) => {
                observe(
                    agent,
                    opts,
                    Start {
                        base,
                        queued_at_command: queued,
                        bg: bg.as_ref(),
                        command: child_pid,
                    },
                    &mut closed,
                    deadline,
                    &mut signals,
                    &mut record,
                )
                .await
            }
        }
        if !matches!(watch, Watch::Nothing) {
            record.waited_for_listen_ms = Some(waited.elapsed().as_secs_f64() * 1000.0);
        }
    }
    hold.release(&mut record).await;
    // After the release: nothing here is worth a held SYN's time.
    if matches!(watch, Watch::Observed(..)) {
        learn(agent, &key, &record);
    }
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
    burst_check(&mut record);
    Ok(record)
}

/// Warn when the SYNs released at once exceeded the free places in the
/// listeners' accept queues: the excess is dropped and retried after 1 s.
fn burst_check(record: &mut ReloadRecord) {
    let ports = &record.handover.ports;
    if ports.is_empty() || record.packets == 0 {
        return;
    }
    let free: u32 = ports.iter().map(|p| p.free_backlog).sum();
    if record.packets > free {
        warn(
            record,
            format!(
                "the release burst ({} SYNs) exceeded the listeners' free backlog ({free}): \
                 connections beyond it wait for a SYN retry; raise the service's backlog \
                 (and net.core.somaxconn), and with SO_REUSEPORT listeners consider \
                 net.ipv4.tcp_migrate_req=1 so a closing listener's queue moves to its successor",
                record.packets
            ),
        );
    }
}

/// The command as what is learned is keyed by: its arguments without the
/// numeric ones (`haproxy … -sf $(cat pidfile)` names other PIDs each time).
fn learned_key(command: &[String]) -> Vec<String> {
    command
        .iter()
        .filter(|a| a.is_empty() || !a.bytes().all(|b| b.is_ascii_digit()))
        .cloned()
        .collect()
}

/// Remember what this reload showed on each port, for the next reload of
/// the same command (see [`crate::state::learned`]). A reload cut short
/// (max-hold, a signal) shows nothing.
fn learn<K: Kernel + Send + 'static>(agent: &Agent<K>, key: &[String], record: &ReloadRecord) {
    if record.max_hold_reached || record.signal.is_some() {
        return;
    }
    // Nothing changed, only some of a group closed, or there was no old
    // listener: nothing to tell.
    let silent = [
        rule::Verdict::Unchanged.name(),
        rule::Verdict::Shrank.name(),
    ];
    let tell: Vec<&PortRecord> = record
        .handover
        .ports
        .iter()
        .filter(|p| p.old_sockets > 0 && !silent.contains(&p.verdict))
        .collect();
    if tell.is_empty() {
        return;
    }
    let store = agent.store();
    let mut learned = store.learned();
    let now = crate::state::now_ms();
    let mut changed = false;
    for p in tell {
        changed |= learned.note(
            key,
            p.port,
            p.old_open_ms.map(|ms| ms as u64),
            p.old_accepted,
            now,
        );
    }
    if changed {
        if let Err(e) = store.set_learned(&learned) {
            tracing::warn!("could not remember the hand-over: {e}");
        }
    }
}

/// How often the listeners are looked at while the command runs, for the
/// old ones stopping (a socket diag dump; no `/proc` scan).
const CLOSE_POLL: Duration = Duration::from_millis(50);

/// Per port, when the old listeners were first seen gone: ms after the
/// command started.
#[derive(Debug, Default)]
struct Closed {
    started: Option<Instant>,
    at: BTreeMap<u16, f64>,
    /// Per port, the old listeners' queue when the command ran.
    queued: BTreeMap<u16, u32>,
    /// Per port, the old queue at the last look after the command started
    /// with every old listener still listening. (With the plug closed no
    /// new connection reaches them: only the old process accepting
    /// shrinks it.)
    last_q: BTreeMap<u16, u32>,
}

impl Closed {
    /// The command starts now.
    fn start(&mut self) {
        self.started = Some(Instant::now());
    }

    /// Look at the listeners (all of them: filtered by `scope`).
    fn look(&mut self, base: &Baseline, scope: &Scope, l: &[plugctl_netlink::diag::Listener]) {
        self.seen(
            base,
            l.iter()
                .filter(|l| scope.covers(l))
                .map(|l| (l.cookie, l.port, l.rqueue)),
        );
    }

    /// Note the ports none of whose old sockets is among the `(cookie,
    /// port, queue)` listening now, and the old queue of those whose old
    /// sockets all still listen.
    fn seen(&mut self, base: &Baseline, now: impl Iterator<Item = (u64, u16, u32)>) {
        let Some(started) = self.started else {
            return;
        };
        let old = base.current_cookies();
        // Per port: old sockets still listening, and their queue.
        let mut open: BTreeMap<u16, (usize, u32)> = BTreeMap::new();
        for (_, port, q) in now.filter(|(c, _, _)| old.contains(c)) {
            let e = open.entry(port).or_default();
            e.0 += 1;
            e.1 += q;
        }
        let mut at_hold: BTreeMap<u16, usize> = BTreeMap::new();
        for s in base.snap.socks.iter().filter(|s| old.contains(&s.cookie)) {
            *at_hold.entry(s.port).or_default() += 1;
        }
        let t = started.elapsed().as_secs_f64() * 1000.0;
        for (port, n) in at_hold {
            match open.get(&port) {
                None => {
                    self.at.entry(port).or_insert(t);
                }
                Some(&(k, q)) => {
                    if k == n && !self.at.contains_key(&port) {
                        self.last_q.insert(port, q);
                    }
                }
            }
        }
    }

    /// Whether the old process accepted what was queued on `port` before
    /// its listeners stopped: at the last look before they did, at most
    /// half of what was queued when the command ran was left (the rest
    /// was reset). `None`: nothing was queued, they did not stop, or no
    /// look saw them open after the command started.
    fn accepted(&self, port: u16) -> Option<bool> {
        let was = self.queued.get(&port).copied().unwrap_or(0);
        if was == 0 || !self.at.contains_key(&port) {
            return None;
        }
        let left = *self.last_q.get(&port)?;
        Some(left <= was / 2)
    }
}

/// The drain before the command, per port, from what earlier reloads of
/// the command showed (see [`crate::state::learned`]).
#[derive(Debug, Default)]
struct DrainPlan {
    /// Not drained: the old listeners are kept.
    skip: BTreeSet<u16>,
    /// Drained until what is left would take the old process at most this
    /// long (`None`: in full).
    budget: Option<Duration>,
}

impl DrainPlan {
    /// `seen(port)`: what the last observed reload of the command showed
    /// on `port`: how long its old listeners stayed open, and whether the
    /// old process accepted meanwhile ([`crate::state::learned::Seen`]).
    fn new(
        base: &Baseline,
        seen: impl Fn(u16) -> Option<(Option<u64>, Option<bool>)>,
    ) -> DrainPlan {
        let old = base.current_cookies();
        let ports: BTreeSet<u16> = base
            .snap
            .socks
            .iter()
            .filter(|s| old.contains(&s.cookie))
            .map(|s| s.port)
            .collect();
        let mut plan = DrainPlan::default();
        let (mut budget, mut full): (Option<Duration>, bool) = (None, false);
        for port in ports {
            match seen(port) {
                Some((None, _)) => {
                    plan.skip.insert(port);
                }
                // The old process left most of its queue when its listeners
                // stopped (a SIGTERM): what is left queued would be reset.
                Some((Some(_), Some(false))) => full = true,
                // Half: the old process accepts more slowly while the new
                // one starts beside it.
                Some((Some(ms), _)) => {
                    let b = Duration::from_millis(ms / 2);
                    budget = Some(budget.map_or(b, |x| x.min(b)));
                }
                None => full = true,
            }
        }
        plan.budget = budget.filter(|_| !full);
        plan
    }
}

/// How much of max-hold the drain before the command may take.
const DRAIN_SHARE: u32 = 4;
/// The drain gives up when the queues have not shrunk for this long.
const DRAIN_STALL: Duration = Duration::from_secs(1);
/// How often the drain looks at what the plug holds (every this many polls).
const DRAIN_PLUG_EVERY: u32 = 10;
/// How long the drain watches the old process accept before it trusts the
/// pace it saw (to end within the plan's budget).
const DRAIN_RATE_AFTER: Duration = Duration::from_millis(20);

/// Before the command: with the plug closed no new connection reaches the
/// old listeners, and the old process keeps accepting what is queued. Wait
/// (bounded by a quarter of max-hold) until their accept queues are empty,
/// so a listener that closes during the reload resets nothing.
///
/// What earlier reloads of the command showed shortens it ([`DrainPlan`]):
/// a port whose old listeners are kept is not drained, and one whose old
/// listeners stayed open for a while after the command started, the old
/// process accepting meanwhile, is drained only until it, at the pace
/// seen, would accept the rest in half that while.
///
/// The drain also ends once the plug holds as many SYNs as the old queues
/// still have connections: draining longer could save at most those from
/// a reset, and makes more than that many new connections wait, all
/// released at once into a service that is not keeping up (an overloaded
/// service's queue drains slowly while new SYNs pile up; waiting for it
/// would make every release burst bigger than the last).
async fn drain<K: Kernel + Send + 'static>(
    agent: &Agent<K>,
    guard: Option<&HoldGuard<K>>,
    opts: &ReloadOptions,
    base: &Baseline,
    plan: &DrainPlan,
    signals: &mut Signals,
    record: &mut ReloadRecord,
) -> (BTreeMap<u16, u32>, Option<(i32, bool)>) {
    let old = base.current_cookies();
    // Per port, the connections queued on the old listeners.
    let queued = |socks: &mut dyn Iterator<Item = (u64, u16, u32)>| -> BTreeMap<u16, u32> {
        let mut m = BTreeMap::new();
        for (cookie, port, rqueue) in socks {
            if old.contains(&cookie) {
                *m.entry(port).or_insert(0) += rqueue;
            }
        }
        m
    };
    let start = Instant::now();
    let bound = opts.max_hold / DRAIN_SHARE;
    // What is left to drain: the queues of the ports not skipped.
    let to_drain = |m: &BTreeMap<u16, u32>| -> u32 {
        m.iter()
            .filter(|(p, _)| !plan.skip.contains(p))
            .map(|(_, n)| n)
            .sum()
    };
    let mut per_port = queued(&mut base.snap.socks.iter().map(|s| (s.cookie, s.port, s.rqueue)));
    let mut left: u32 = to_drain(&per_port);
    let initial = left;
    // Ended because the old process can accept what is left before its
    // listeners stop (the plan's budget).
    let mut in_budget = false;
    // A queue that does not shrink for DRAIN_STALL is not being accepted
    // from (a stuck or paused process): waiting longer would only delay.
    let mut progress = Instant::now();
    let mut pending = None;
    let mut polls = 0u32;
    let mut held = 0u32;
    while left > 0 && start.elapsed() < bound && progress.elapsed() < DRAIN_STALL && held < left {
        tokio::select! {
            _ = tokio::time::sleep(POLL) => {}
            sig = signals.recv() => {
                pending = Some(sig);
                break;
            }
        }
        match agent.listeners().await {
            Ok(l) => {
                per_port = queued(&mut l.iter().map(|l| (l.cookie, l.port, l.rqueue)));
                let now: u32 = to_drain(&per_port);
                if now < left {
                    progress = Instant::now();
                }
                left = now;
                let e = start.elapsed();
                if let (Some(b), true) = (plan.budget, e >= DRAIN_RATE_AFTER && left < initial) {
                    // At the pace seen so far.
                    let rate = f64::from(initial - left) / e.as_secs_f64();
                    if f64::from(left) / rate <= b.as_secs_f64() {
                        in_budget = true;
                        break;
                    }
                }
            }
            Err(_) => break,
        }
        polls += 1;
        if let (Some(g), 0) = (guard, polls % DRAIN_PLUG_EVERY) {
            if let Ok(c) = g.held_now().await {
                held = c.packets;
            }
        }
    }
    record.handover.drain_held = held;
    record.handover.drain_ms = Some(start.elapsed().as_secs_f64() * 1000.0);
    record.handover.drained = left == 0;
    if left > 0 && !in_budget {
        warn(
            record,
            format!(
                "{left} connections were still queued on the old listeners after {:?} (bound: a quarter of max-hold, {DRAIN_STALL:?} without progress, or as many new SYNs held: {held}); running the command anyway",
                start.elapsed()
            ),
        );
    }
    (per_port, pending)
}

/// What the release waits for after the command returns.
enum Watch {
    /// Nothing: release at once.
    Nothing,
    /// `--wait-listen`: these ports' sockets when the hold began.
    Listen(ready::Snapshot),
    /// The observed hand-over, from this baseline; per port, what was
    /// still queued on the old listeners when the command ran.
    Observed(Box<Baseline>, BTreeMap<u16, u32>),
}

/// The listening sockets now; if they cannot be listed, a warning that the
/// wait ends here (the caller releases).
async fn listeners_or_release<K: Kernel + Send + 'static>(
    agent: &Agent<K>,
    record: &mut ReloadRecord,
) -> Option<Vec<plugctl_netlink::diag::Listener>> {
    match agent.listeners().await {
        Ok(l) => Some(l),
        Err(e) => {
            warn(
                record,
                format!("cannot list listening sockets ({e}); releasing now"),
            );
            None
        }
    }
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

/// What the observed hand-over starts from when the command returns.
struct Start<'a> {
    /// The listeners when the hold began.
    base: &'a Baseline,
    /// Per port, what was still queued on the old listeners when the
    /// command ran.
    queued_at_command: &'a BTreeMap<u16, u32>,
    /// This process's children before the command (`None`: it does not
    /// adopt what the command leaves running).
    bg: Option<&'a Background>,
    /// The command's pid.
    command: Option<u32>,
}

/// The observed hand-over: poll until the rule says release (settled when
/// something changed), max-hold, or a signal.
async fn observe<K: Kernel + Send + 'static>(
    agent: &Agent<K>,
    opts: &ReloadOptions,
    start: Start<'_>,
    closed: &mut Closed,
    deadline: tokio::time::Instant,
    signals: &mut Signals,
    record: &mut ReloadRecord,
) {
    let Start {
        base,
        queued_at_command,
        bg,
        command,
    } = start;
    let returned = Instant::now();
    // The quiet window runs from here, or from when what the command left
    // running was last seen.
    let mut quiet_from = returned;
    let mut bg_next = returned;
    let mut bg_left: Vec<u32> = Vec::new();
    let watch = base.owners();
    let mut settler = Settler::new(opts.settle);
    let mut prev: Option<Snapshot> = None;
    let mut last_scan: Option<Instant> = None;
    // Per port: since when (ms after the command returned) it is safe.
    let mut safe_since: BTreeMap<u16, Option<f64>> = Default::default();
    let mut verdicts: Vec<(u16, rule::Verdict)> = Vec::new();
    loop {
        let Some(listeners) = listeners_or_release(agent, record).await else {
            break;
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
        closed.seen(base, now.socks.iter().map(|s| (s.cookie, s.port, s.rqueue)));
        let t = returned.elapsed().as_secs_f64() * 1000.0;
        for (port, v) in &verdicts {
            // Since when the port is in its safe, changed state.
            let e = safe_since.entry(*port).or_insert(None);
            if v.waits() || !v.changed() {
                *e = None;
            } else if e.is_none() {
                *e = Some(t);
            }
        }
        prev = Some(now);
        // What the command left running, looked at when it matters (a port
        // seen removed, or the quiet window over), at most every
        // OWNER_RESCAN.
        let nothing = !verdicts.iter().any(|(_, v)| v.changed());
        let matters = verdicts.iter().any(|(_, v)| *v == rule::Verdict::Removed)
            || (nothing && quiet_from.elapsed() >= opts.quiet);
        if let (Some(b), true) = (bg, matters && Instant::now() >= bg_next) {
            bg_left = b.left(command).iter().map(|p| p.pid).collect();
            bg_next = Instant::now() + OWNER_RESCAN;
            for &pid in &bg_left {
                let n = background::name(pid);
                if !record.handover.background.contains(&n) {
                    record.handover.background.push(n);
                }
            }
        }
        let busy = matters && !bg_left.is_empty();
        if busy && nothing {
            // Still at work: the window starts again once it is not.
            quiet_from = Instant::now();
        }
        let decision = rule::decide(&verdicts, quiet_from.elapsed(), opts.quiet, busy);
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
                let why = if !why.is_empty() {
                    why.join("; ")
                } else if !bg_left.is_empty() {
                    let names: Vec<String> = bg_left.iter().map(|&p| background::name(p)).collect();
                    format!("what the command left running still ran: {}", names.join(", "))
                } else {
                    "the hand-over had not settled".into()
                };
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
    let old = base.current_cookies();
    let at_hold: Vec<&rule::Sock> = base
        .snap
        .socks
        .iter()
        .filter(|s| old.contains(&s.cookie))
        .collect();
    let last: &[rule::Sock] = prev.as_ref().map_or(&[], |s| &s.socks);
    record.handover.ports = verdicts
        .iter()
        .map(|(port, v)| {
            let then = at_hold.iter().filter(|s| s.port == *port);
            let now = last
                .iter()
                .filter(|s| s.port == *port && !base.is_stale(s.cookie));
            PortRecord {
                port: *port,
                verdict: v.name(),
                waited_ms: safe_since.get(port).copied().flatten().unwrap_or(end),
                old_sockets: then.clone().count(),
                sockets: now.clone().count(),
                queued_at_hold: then.clone().map(|s| s.rqueue).sum(),
                queued_at_command: queued_at_command.get(port).copied().unwrap_or(0),
                backlog_at_hold: then.map(|s| s.wqueue).sum(),
                free_backlog: now.map(|s| s.wqueue.saturating_sub(s.rqueue)).sum(),
                old_open_ms: closed.at.get(port).copied(),
                old_accepted: closed.accepted(*port),
            }
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
        let Some(listeners) = listeners_or_release(agent, record).await else {
            return;
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
