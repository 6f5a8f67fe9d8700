//! `plugctl status`: the tree as found, whether it matches the
//! configuration, the plug's state and its counters.

use std::fmt;

use serde::Serialize;

use crate::config::Config;
use crate::hold::lease::Leased;
use crate::state::{Holder, Peek, Recorded};
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
    /// `open`, `closed`, `unknown` (no record: the kernel cannot say), or
    /// `unreadable` (a record that cannot be parsed: maybe closed).
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
    /// The lease: each address \[. port\] whose new SYNs are steered into
    /// the plug, and for how much longer (empty: none are).
    pub lease: Vec<Leased>,
    /// The plug is recorded closed but no live holder is left (a crash):
    /// `plugctl release` or `plugctl setup` opens it.
    pub leftover: bool,
    /// Why the state record could not be read, if it could not: the plug
    /// may be closed (`plugctl release` or `plugctl setup` opens it).
    pub record_error: Option<String>,
}

/// One holder, as `status` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct HolderStatus {
    /// The holder.
    #[serde(flatten)]
    pub holder: Holder,
    /// Whether it still holds (its process keeps its lock slot); `null`
    /// when the caller may not open the lock file to tell.
    pub alive: Option<bool>,
}

impl Status {
    pub(crate) fn new(cfg: &Config, obs: Observed, peek: &Peek, lease: Vec<Leased>) -> Status {
        let record = peek.recorded.record();
        let holders: Vec<HolderStatus> = record
            .map(|r| r.holders.clone())
            .unwrap_or_default()
            .into_iter()
            .map(|holder| HolderStatus {
                alive: peek.alive(&holder),
                holder,
            })
            .collect();
        let leftover = obs.has_plug()
            && record.is_some_and(|r| r.closed)
            && holders.iter().all(|h| h.alive == Some(false));
        let record_error = match &peek.recorded {
            Recorded::Unreadable(why) => Some(why.clone()),
            _ => None,
        };
        let setup = if obs.complete() {
            Setup::Complete
        } else if obs.absent() {
            Setup::Missing
        } else {
            Setup::Differs
        };
        let plug = obs.plug_stats.map(|s| Plug {
            state: match &peek.recorded {
                Recorded::Found(r) if r.closed => "closed",
                Recorded::Found(_) => "open",
                Recorded::Nothing => "unknown",
                Recorded::Unreadable(_) => "unreadable",
            },
            pid: record.map(|r| r.pid),
            since_ms: record.map(|r| r.since_ms),
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
            lease,
            leftover,
            record_error,
        }
    }

    /// 0 when the tree is complete, 10 when it is missing, 11 when it
    /// differs from the configuration, 15 when it is complete but the plug
    /// was left closed by a holder that is gone, 17 when its state record
    /// cannot be read (the plug may be closed), so `status` can be a health
    /// check.
    pub fn exit_code(&self) -> i32 {
        match self.setup {
            Setup::Complete if self.record_error.is_some() => 17,
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
                match h.alive {
                    Some(true) => "",
                    Some(false) => " GONE",
                    None => " (alive? only the state directory's owner can tell)",
                }
            )?;
        }
        if self.lease.is_empty() && self.plug.is_some() {
            write!(f, "\nlease: none (new SYNs are not steered into the plug)")?;
        }
        for l in &self.lease {
            let port = l.port.map(|p| format!(" . {p}")).unwrap_or_default();
            let ms = |v: Option<u64>| v.map_or("?".into(), |v| v.to_string());
            write!(
                f,
                "\nlease: {}{port} expires in {} ms (of {} ms)",
                l.address,
                ms(l.expires_in_ms),
                ms(l.lease_ms)
            )?;
        }
        if let Some(why) = &self.record_error {
            write!(f, "\nWARNING: the state record is unreadable ({why}); the plug may be closed: run `plugctl release`")?;
        }
        if self.leftover {
            write!(f, "\nWARNING: the plug is closed but nobody holds it (a crash?): run `plugctl release`")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::controller::Controller;
    use crate::kernel::fake::FakeKernel;
    use crate::Config;

    fn controller(dir: &std::path::Path) -> Controller<FakeKernel> {
        let cfg = Config {
            state_dir: dir.to_path_buf(),
            ..Config::default()
        };
        Controller::with_kernel(cfg, FakeKernel::new()).unwrap()
    }

    #[test]
    fn exit_codes_say_how_the_tree_compares() {
        let dir = std::env::temp_dir().join(format!("plugctl-status-{}", std::process::id()));
        let mut c = controller(&dir);
        let st = c.status().unwrap();
        assert_eq!((st.exit_code(), st.plug.is_none()), (10, true), "{st}");
        c.setup(false).unwrap();
        let st = c.status().unwrap();
        assert_eq!(st.exit_code(), 0, "{st}");
        assert_eq!(st.plug.as_ref().map(|p| p.state), Some("open"));
        // A part taken away: differs, and the text says which.
        c.kernel_mut().filters.pop();
        let st = c.status().unwrap();
        assert_eq!(st.exit_code(), 11, "{st}");
        assert!(st.to_string().contains("MISSING"), "{st}");
        let json = serde_json::to_string(&st).unwrap();
        assert!(json.contains(r#""setup":"differs""#), "{json}");
        let _ = std::fs::remove_dir_all(dir);
    }
}
