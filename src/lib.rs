//! plugctl: lose zero connections across service reloads.
//!
//! While a proxy such as HAProxy reloads, there is a moment when no process
//! accepts on its port, and new connections are refused. plugctl holds the
//! SYNs of new connections to the balancer's addresses in a tc `plug` qdisc
//! for the length of the reload (Yelp's method), then lets them through:
//! clients see a connect that takes a few milliseconds longer, not an error.
//!
//! [`Controller`] is the entry point: it builds the tree ([`Controller::setup`]),
//! takes and gives back holds ([`Controller::hold`], [`Controller::unhold`]),
//! reports [`Status`] and removes the tree. Every kernel exchange goes
//! through the [`kernel::Kernel`] trait. [`agent`] wraps it for tokio
//! programs, with a guard that always releases, and [`reload`] runs a reload
//! command under a hold.
#![deny(missing_docs)]

pub mod agent;
pub mod config;
pub mod error;
pub mod hold;
pub mod holders;
pub mod kernel;
pub mod ready;
pub mod reload;
pub mod runas;
pub mod state;
pub mod status;
pub mod tree;
pub mod watchdog;

pub use config::Config;
pub use error::Error;
pub use status::Status;
pub use tree::Changes;

use hold::{Hold, PlugQdisc};
use holders::{Holder, Registry};
use kernel::{Kernel, NetlinkKernel};
use plugctl_netlink::tc::QueueStats;
use state::{PlugState, StateFile};

/// Drives plugctl's tree on one device, as configured.
pub struct Controller<K: Kernel = NetlinkKernel> {
    cfg: Config,
    kernel: K,
    state: StateFile,
    holders: Registry,
}

impl Controller<NetlinkKernel> {
    /// A controller for `cfg` over the real kernel. Fails only on an invalid
    /// configuration; nothing is sent to the kernel yet.
    pub fn new(cfg: Config) -> Result<Self, Error> {
        Controller::with_kernel(cfg, NetlinkKernel::new())
    }
}

/// What a hold saw, read just before the plug opened.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct HoldStats {
    /// Whether this call opened the plug (false: another holder still holds it).
    pub opened: bool,
    /// SYNs held when it opened.
    pub packets: u32,
    /// Bytes held when it opened.
    pub bytes: u32,
    /// Packets dropped (plug full) since the hold began.
    pub drops: u32,
}

/// A hold taken with [`Controller::hold`]: give it back with
/// [`Controller::unhold`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HoldId {
    /// The holder's registry id.
    pub id: String,
    drops_at_start: u32,
}

impl<K: Kernel> Controller<K> {
    /// A controller over any [`Kernel`] (tests use a fake).
    pub fn with_kernel(cfg: Config, kernel: K) -> Result<Self, Error> {
        cfg.validate()?;
        let state = StateFile::new(&cfg.state_dir, &cfg.device);
        let holders = Registry::beside(state.path());
        Ok(Controller {
            cfg,
            kernel,
            state,
            holders,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// The holder registry.
    pub fn holders(&self) -> &Registry {
        &self.holders
    }

    /// Build whatever part of the tree is missing (see [`tree::setup`]). A
    /// plug left closed by a holder that no longer exists (a crash) is
    /// released.
    pub fn setup(&mut self, force: bool) -> Result<Changes, Error> {
        let mut changes = tree::setup(&mut self.kernel, &self.cfg, force)?;
        if changes.plug_created {
            self.state.write(PlugState::now(false))?;
        } else if self.release_leftover()? {
            changes
                .lines
                .push("released a plug left closed by a holder that is gone".into());
        }
        Ok(changes)
    }

    /// Release a plug recorded closed whose holders are all gone.
    fn release_leftover(&mut self) -> Result<bool, Error> {
        let lock = self.holders.lock()?;
        let recorded_closed = self.state.read().is_some_and(|s| s.closed);
        if !recorded_closed || !lock.live()?.is_empty() {
            return Ok(false);
        }
        let ifindex = self.plug_ifindex()?;
        PlugQdisc::new(&mut self.kernel, ifindex).open()?;
        self.state.write(PlugState::now(false))?;
        Ok(true)
    }

    /// Remove what `setup` built (see [`tree::teardown`]) and forget the
    /// plug state and holders.
    pub fn teardown(&mut self) -> Result<Changes, Error> {
        let lock = self.holders.lock()?;
        let changes = tree::teardown(&mut self.kernel, &self.cfg)?;
        lock.clear()?;
        self.state.remove()?;
        Ok(changes)
    }

    /// The device's index, if the plug exists on it. Cheaper than a full
    /// [`tree::observe`]: this is on the reload path.
    fn plug_ifindex(&mut self) -> Result<i32, Error> {
        let missing = |cfg: &Config| Error::NotSetUp {
            device: cfg.device.clone(),
            missing: format!("no plug qdisc {} under {}", tree::PLUG, tree::PLUG_PARENT),
        };
        let ifindex = self
            .kernel
            .ifindex(&self.cfg.device)
            .map_err(|e| Error::netlink("looking up the device", e))?
            .ok_or_else(|| Error::NoDevice(self.cfg.device.clone()))?;
        let qs = self
            .kernel
            .qdiscs(ifindex)
            .map_err(|e| Error::netlink("reading qdiscs", e))?;
        let plug = qs.iter().any(|q| {
            q.parent == tree::PLUG_PARENT
                && q.handle == tree::PLUG
                && q.kind.name() == "plug"
                && qs.iter().any(|r| {
                    r.parent == plugctl_netlink::tc::Handle::ROOT && r.handle == tree::PRIO
                })
        });
        if !plug {
            return Err(missing(&self.cfg));
        }
        Ok(ifindex)
    }

    fn plug_stats(&mut self, ifindex: i32) -> QueueStats {
        self.kernel
            .qdiscs(ifindex)
            .ok()
            .and_then(|qs| {
                qs.into_iter()
                    .find(|q| q.parent == tree::PLUG_PARENT && q.handle == tree::PLUG)
            })
            .map(|q| q.stats)
            .unwrap_or_default()
    }

    /// Take a hold for `holder`: new connections are held until every
    /// holder has let go. The plug closes with the first holder.
    pub fn hold_as(&mut self, holder: Holder) -> Result<HoldId, Error> {
        let ifindex = self.plug_ifindex()?;
        let lock = self.holders.lock()?;
        let first = lock.live()?.is_empty();
        lock.add(&holder)?;
        if first {
            if let Err(e) = PlugQdisc::new(&mut self.kernel, ifindex).close() {
                let _ = lock.remove(&holder.id);
                return Err(e);
            }
        }
        if let Err(e) = self.state.write(PlugState::now(true)) {
            // Never leave a plug closed that nobody knows about.
            let _ = lock.remove(&holder.id);
            if first {
                let _ = PlugQdisc::new(&mut self.kernel, ifindex).open();
            }
            return Err(e);
        }
        let drops_at_start = self.plug_stats(ifindex).drops;
        Ok(HoldId {
            id: holder.id,
            drops_at_start,
        })
    }

    /// Take a hold for this process (see [`Controller::hold_as`]).
    pub fn hold(&mut self, what: &str) -> Result<HoldId, Error> {
        self.hold_as(Holder::this_process(what))
    }

    /// Give back a hold. The plug opens if no other live holder remains.
    pub fn unhold(&mut self, hold: &HoldId) -> Result<HoldStats, Error> {
        self.unhold_id(&hold.id, hold.drops_at_start)
    }

    /// Give back the hold of holder `id` (the watchdog does this for a dead
    /// holder).
    pub fn unhold_id(&mut self, id: &str, drops_at_start: u32) -> Result<HoldStats, Error> {
        let lock = self.holders.lock()?;
        lock.remove(id)?;
        let others = lock.live()?;
        if !others.is_empty() {
            tracing::info!("plug stays closed: {} other holder(s)", others.len());
            return Ok(HoldStats::default());
        }
        let ifindex = self.plug_ifindex()?;
        let s = self.plug_stats(ifindex);
        PlugQdisc::new(&mut self.kernel, ifindex).open()?;
        self.state.write(PlugState::now(false))?;
        Ok(HoldStats {
            opened: true,
            packets: s.qlen,
            bytes: s.backlog,
            drops: s.drops.saturating_sub(drops_at_start),
        })
    }

    /// `plugctl plug`: close the plug until `plugctl release`.
    pub fn plug(&mut self) -> Result<(), Error> {
        self.hold_as(Holder::manual()).map(|_| ())
    }

    /// `plugctl release`: give back the manual hold and open the plug unless
    /// a live holder (a running reload) still holds it; with `force`, open it
    /// regardless and forget every holder.
    pub fn release(&mut self, force: bool) -> Result<HoldStats, Error> {
        if force {
            let lock = self.holders.lock()?;
            lock.clear()?;
            drop(lock);
        }
        {
            let lock = self.holders.lock()?;
            lock.remove("manual")?;
            let live = lock.live()?;
            if !live.is_empty() {
                return Err(Error::Held(
                    live.iter()
                        .map(|h| format!("{} (pid {}, {})", h.id, h.pid.unwrap_or(0), h.what))
                        .collect::<Vec<_>>()
                        .join(", "),
                ));
            }
        }
        // No holder is left: open it, whatever was recorded (a crash may
        // have left it closed).
        self.unhold_id("manual", 0)
    }

    /// Every listening TCP socket (for the readiness check).
    pub fn listeners(&mut self) -> Result<Vec<plugctl_netlink::diag::Listener>, Error> {
        self.kernel
            .listeners()
            .map_err(|e| Error::netlink("listing listening sockets", e))
    }

    /// The tree as found in the kernel, compared with the configuration,
    /// with the plug's recorded state, its holders and its counters.
    pub fn status(&mut self) -> Result<Status, Error> {
        let obs = tree::observe(&mut self.kernel, &self.cfg)?;
        let holders = self.holders.all();
        Ok(Status::new(&self.cfg, obs, self.state.read(), holders))
    }
}
