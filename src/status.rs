//! `plugctl status`: the tree as found, whether it matches the
//! configuration, the plug's state and its counters.

use std::fmt;

use serde::Serialize;

use crate::config::Config;
use crate::holders::Holder;
use crate::state::PlugState;
use crate::tree::{Check, Observed, Part};

/// How the tree compares with the configuration, as a whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Setup {
    /// Everything is there as configured.
    Complete,
    /// Nothing is there.
    Missing,
    /// Some is there, or something else is.
    Differs,
}

/// The plug as plugctl knows it.
#[derive(Debug, Clone, Serialize)]
pub struct Plug {
    /// `open`, `closed`, or `unknown` (no record: the kernel cannot say).
    pub state: &'static str,
    /// Who changed it last.
    pub pid: Option<u32>,
    /// When, in ms since the Unix epoch.
    pub since_ms: Option<u64>,
    /// SYNs held right now.
    pub held_packets: u32,
    /// Bytes held right now.
    pub held_bytes: u32,
    /// Packets passed on since the plug was created.
    pub passed_packets: u32,
    /// Packets dropped because the plug was full.
    pub drops: u32,
}

/// Everything `status` reports.
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    /// Device.
    pub device: String,
    /// Its index.
    pub ifindex: i32,
    /// The tree as a whole.
    pub setup: Setup,
    /// Each part.
    pub parts: Vec<Part>,
    /// The plug, if it exists.
    pub plug: Option<Plug>,
    /// Who holds the plug (live or not: a dead one is a crash left over).
    pub holders: Vec<HolderStatus>,
    /// The plug is recorded closed but no live holder is left (a crash):
    /// `plugctl release` or `plugctl setup` opens it.
    pub leftover: bool,
}

/// One holder, as `status` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct HolderStatus {
    /// The holder.
    #[serde(flatten)]
    pub holder: Holder,
    /// Whether its process is still running.
    pub alive: bool,
}

impl Status {
    pub(crate) fn new(
        cfg: &Config,
        obs: Observed,
        state: Option<PlugState>,
        holders: Vec<Holder>,
    ) -> Status {
        let holders: Vec<HolderStatus> = holders
            .into_iter()
            .map(|holder| HolderStatus {
                alive: holder.alive(),
                holder,
            })
            .collect();
        let leftover =
            obs.has_plug() && state.is_some_and(|s| s.closed) && !holders.iter().any(|h| h.alive);
        let setup = if obs.complete() {
            Setup::Complete
        } else if obs.absent() {
            Setup::Missing
        } else {
            Setup::Differs
        };
        let plug = obs.plug_stats.map(|s| Plug {
            state: match state {
                Some(PlugState { closed: true, .. }) => "closed",
                Some(_) => "open",
                None => "unknown",
            },
            pid: state.map(|s| s.pid),
            since_ms: state.map(|s| s.since_ms),
            held_packets: s.qlen,
            held_bytes: s.backlog,
            passed_packets: s.packets,
            drops: s.drops,
        });
        Status {
            device: cfg.device.clone(),
            ifindex: obs.ifindex,
            setup,
            parts: obs.parts,
            plug,
            holders,
            leftover,
        }
    }

    /// 0 when the tree is complete, 10 when it is missing, 11 when it
    /// differs from the configuration, 15 when it is complete but the plug
    /// was left closed by a holder that is gone (so `status` can be a
    /// health check).
    pub fn exit_code(&self) -> i32 {
        match self.setup {
            Setup::Complete if self.leftover => 15,
            Setup::Complete => 0,
            Setup::Missing => 10,
            Setup::Differs => 11,
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let setup = match self.setup {
            Setup::Complete => "complete",
            Setup::Missing => "missing",
            Setup::Differs => "differs from the config",
        };
        writeln!(
            f,
            "device {} (ifindex {}): tree {setup}",
            self.device, self.ifindex
        )?;
        for p in &self.parts {
            let c = match &p.check {
                Check::Ok => "ok".to_string(),
                Check::Missing => "MISSING".to_string(),
                Check::Differs(d) => format!("DIFFERS: {d}"),
            };
            writeln!(f, "  {:<62} {c}", p.name)?;
        }
        match &self.plug {
            Some(p) => write!(
                f,
                "plug: {}{}; holding {} packets ({} bytes); passed {}; dropped {}",
                p.state,
                p.pid
                    .map(|pid| format!(" (set by pid {pid})"))
                    .unwrap_or_default(),
                p.held_packets,
                p.held_bytes,
                p.passed_packets,
                p.drops
            ),
            None => write!(f, "plug: none"),
        }?;
        for h in &self.holders {
            write!(
                f,
                "\nholder {}: {} (pid {}){}",
                h.holder.id,
                h.holder.what,
                h.holder.pid.map_or("-".into(), |p| p.to_string()),
                if h.alive { "" } else { " GONE" }
            )?;
        }
        if self.leftover {
            write!(f, "\nWARNING: the plug is closed but nobody holds it (a crash?): run `plugctl release`")?;
        }
        Ok(())
    }
}
