//! The [`Controller`]: plugctl's tree on one device, its hold and the state
//! record that says who holds it.

use plugctl_netlink::tc::QueueStats;

use crate::clock;
use crate::config::Config;
use crate::error::Error;
use crate::hold::{Hold, PlugQdisc};
use crate::kernel::{Kernel, NetlinkKernel};
use crate::state::{self, Holder, Locked, Record, Recorded, Slot, StateError, Store};
use crate::status::Status;
use crate::tree::{self, Changes};

/// Drives plugctl's tree on one device, as configured.
pub struct Controller<K: Kernel = NetlinkKernel> {
    cfg: Config,
    kernel: K,
    store: Store,
    lock_wait: std::time::Duration,
}

impl Controller<NetlinkKernel> {
    /// A controller for `cfg` over the real kernel. Fails only on an invalid
    /// configuration; nothing is sent to the kernel yet.
    pub fn new(cfg: Config) -> Result<Self, Error> {
        Controller::with_kernel(cfg, NetlinkKernel::new())
    }
}

/// What a hold saw, read just before the plug opened.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct HoldStats {
    /// Whether this call opened the plug (false: another holder still holds it).
    pub opened: bool,
    /// SYNs held when it opened.
    pub packets: u32,
    /// Bytes held when it opened.
    pub bytes: u32,
    /// Packets dropped (plug full) since the hold began.
    pub drops: u32,
    /// Set when the plug was opened without updating the state record (its
    /// lock could not be had, or the record could not be written): why.
    pub unrecorded: Option<String>,
}

/// A hold taken with [`Controller::hold_as`]: give it back with
/// [`Controller::unhold`]. While it exists, its lock slot says its holder
/// is alive; if the process dies, the kernel frees the slot.
#[derive(Debug)]
pub struct HoldId {
    /// The holder's id in the record.
    pub id: String,
    drops_at_start: u32,
    _slot: Slot,
}

/// A new holder id: this process's pid (as it sees it) and 64 random bits,
/// so holders in different PID namespaces never collide.
pub fn new_holder_id() -> String {
    format!("{}-{}", std::process::id(), &state::dir::random_hex()[..16])
}

const MANUAL: &str = "manual";

impl<K: Kernel> Controller<K> {
    /// A controller over any [`Kernel`] (tests use a fake).
    pub fn with_kernel(cfg: Config, kernel: K) -> Result<Self, Error> {
        cfg.validate()?;
        let store = Store::new(&cfg.state_dir, &cfg.device);
        Ok(Controller {
            cfg,
            kernel,
            store,
            lock_wait: state::LOCK_WAIT,
        })
    }

    /// Wait at most `wait` for the state record's lock (default
    /// [`state::LOCK_WAIT`]).
    pub fn with_lock_wait(mut self, wait: std::time::Duration) -> Self {
        self.lock_wait = wait;
        self
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// The state store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The kernel (tests inspect the fake through it).
    pub fn kernel_mut(&mut self) -> &mut K {
        &mut self.kernel
    }

    /// Build whatever part of the tree is missing (see [`tree::setup`]). A
    /// plug that may have been left closed (recorded closed with every
    /// holder gone, or an unreadable record) is released.
    pub fn setup(&mut self, force: bool) -> Result<Changes, Error> {
        let mut changes = tree::setup(&mut self.kernel, &self.cfg, force)?;
        let mut locked = self.store.lock(self.lock_wait)?;
        if changes.plug_created {
            let mut r = Record::now(false);
            r.holders = locked.live_holders();
            locked.write(r)?;
        } else if let Some(why) = leftover(&locked) {
            let ifindex = self.plug_ifindex()?;
            PlugQdisc::new(&mut self.kernel, ifindex).open()?;
            locked.write(Record::now(false))?;
            changes.lines.push(format!("released a plug that {why}"));
        }
        Ok(changes)
    }

    /// Remove what `setup` built (see [`tree::teardown`]) and forget the
    /// record.
    pub fn teardown(&mut self) -> Result<Changes, Error> {
        let locked = self.store.lock(self.lock_wait);
        let changes = tree::teardown(&mut self.kernel, &self.cfg)?;
        match locked {
            Ok(mut l) => l.remove()?,
            Err(e) => tracing::warn!("the tree is gone but its record stays: {e}"),
        }
        Ok(changes)
    }

    /// The device's index, if the plug exists on it. Cheaper than a full
    /// [`tree::observe`]: this is on the reload path.
    fn plug_ifindex(&mut self) -> Result<i32, Error> {
        let ifindex = self
            .kernel
            .ifindex(&self.cfg.device)
            .map_err(|e| Error::netlink("looking up the device", e))?
            .ok_or_else(|| Error::NoDevice(self.cfg.device.clone()))?;
        let qs = self
            .kernel
            .qdiscs(ifindex)
            .map_err(|e| Error::netlink("reading qdiscs", e))?;
        if tree::find_plug(&qs).is_none() {
            return Err(Error::NotSetUp {
                device: self.cfg.device.clone(),
                missing: format!("no plug qdisc {} under {}", tree::PLUG, tree::PLUG_PARENT),
            });
        }
        Ok(ifindex)
    }

    fn plug_stats(&mut self, ifindex: i32) -> QueueStats {
        self.kernel
            .qdiscs(ifindex)
            .ok()
            .and_then(|qs| tree::find_plug(&qs).map(|q| q.stats))
            .unwrap_or_default()
    }

    /// Add `holder` under the lock and close the plug unless it already is
    /// (recorded closed with live holders).
    fn add_holder(&mut self, mut holder: Holder, with_slot: bool) -> Result<Option<Slot>, Error> {
        let ifindex = self.plug_ifindex()?;
        let mut locked = self.store.lock(self.lock_wait)?;
        let mut others = locked.live_holders();
        others.retain(|h| h.id != holder.id);
        let already_closed =
            !others.is_empty() && locked.recorded.record().is_some_and(|r| r.closed);
        let slot = if with_slot {
            let s = locked.take_slot(&others)?;
            holder.slot = Some(s.slot);
            Some(s)
        } else {
            None
        };
        let mut r = Record::now(true);
        r.holders = others.clone();
        r.holders.push(holder);
        // Recorded before the plug closes: if this process dies in between,
        // the record shows a closed plug whose holder is gone, which
        // `setup` and `release` open.
        locked.write(r)?;
        if !already_closed {
            if let Err(e) = PlugQdisc::new(&mut self.kernel, ifindex).close() {
                let mut r = Record::now(!others.is_empty());
                r.holders = others;
                if let Err(w) = locked.write(r) {
                    tracing::warn!("{w}");
                }
                return Err(e);
            }
        }
        Ok(slot)
    }

    /// Take a hold for holder `id`: new connections are held until every
    /// holder has let go. The plug closes with the first holder.
    pub fn hold_as(&mut self, id: String, what: &str) -> Result<HoldId, Error> {
        let holder = Holder {
            id: id.clone(),
            slot: None,
            pid: Some(std::process::id()),
            since_ms: clock::now_ms(),
            what: what.into(),
        };
        let Some(slot) = self.add_holder(holder, true)? else {
            unreachable!("add_holder with a slot returns one")
        };
        let drops_at_start = self
            .plug_ifindex()
            .map(|i| self.plug_stats(i).drops)
            .unwrap_or(0);
        Ok(HoldId {
            id,
            drops_at_start,
            _slot: slot,
        })
    }

    /// Take a hold for this process (see [`Controller::hold_as`]).
    pub fn hold(&mut self, what: &str) -> Result<HoldId, Error> {
        self.hold_as(new_holder_id(), what)
    }

    /// Give back a hold. The plug opens if no other live holder remains.
    pub fn unhold(&mut self, hold: HoldId) -> Result<HoldStats, Error> {
        // The slot stays locked until the record no longer names it.
        self.unhold_id(&hold.id, hold.drops_at_start)
    }

    /// Give back the hold of holder `id` (the watchdog does this for a dead
    /// holder). If the record's lock cannot be had in time, the plug is
    /// opened anyway: a stuck lock must never keep connections held.
    pub fn unhold_id(&mut self, id: &str, drops_at_start: u32) -> Result<HoldStats, Error> {
        let mut locked = match self.store.lock(self.lock_wait) {
            Ok(l) => l,
            Err(e @ StateError::LockTimeout { .. }) => return self.open_unrecorded(e.to_string()),
            Err(e) => return Err(e.into()),
        };
        let mut holders = locked.live_holders();
        holders.retain(|h| h.id != id);
        if !holders.is_empty() {
            let mut r = Record::now(true);
            r.holders = holders;
            let n = r.holders.len();
            locked.write(r)?;
            tracing::info!("the hold stays: {n} other holder(s)");
            return Ok(HoldStats::default());
        }
        self.open_recorded(&mut locked, drops_at_start)
    }

    /// Open the plug and record it open.
    fn open_recorded(
        &mut self,
        locked: &mut Locked,
        drops_at_start: u32,
    ) -> Result<HoldStats, Error> {
        let ifindex = self.plug_ifindex()?;
        let s = self.plug_stats(ifindex);
        PlugQdisc::new(&mut self.kernel, ifindex).open()?;
        let unrecorded = locked
            .write(Record::now(false))
            .err()
            .map(|e| format!("the plug is open, but {e}"));
        Ok(HoldStats {
            opened: true,
            packets: s.qlen,
            bytes: s.backlog,
            drops: s.drops.saturating_sub(drops_at_start),
            unrecorded,
        })
    }

    /// Open the plug without the record's lock.
    fn open_unrecorded(&mut self, why: String) -> Result<HoldStats, Error> {
        let ifindex = self.plug_ifindex()?;
        let s = self.plug_stats(ifindex);
        PlugQdisc::new(&mut self.kernel, ifindex).open()?;
        tracing::debug!("opened the plug without updating its record: {why}");
        Ok(HoldStats {
            opened: true,
            packets: s.qlen,
            bytes: s.backlog,
            drops: s.drops,
            unrecorded: Some(why),
        })
    }

    /// `plugctl plug`: close the plug until `plugctl release`.
    pub fn plug(&mut self) -> Result<(), Error> {
        let holder = Holder {
            id: MANUAL.into(),
            slot: None,
            pid: Some(std::process::id()),
            since_ms: clock::now_ms(),
            what: "plugctl plug".into(),
        };
        self.add_holder(holder, false).map(|_| ())
    }

    /// `plugctl release`: give back the manual hold and open the plug unless
    /// a live holder (a running reload) still holds it; with `force`, open it
    /// regardless and forget every holder. An unreadable record counts as
    /// "maybe closed, holders unknown": the plug is opened. If the record's
    /// lock cannot be had in time, the plug is opened anyway, and the
    /// returned stats say so.
    pub fn release(&mut self, force: bool) -> Result<HoldStats, Error> {
        let mut locked = match self.store.lock(self.lock_wait) {
            Ok(l) => l,
            Err(e @ StateError::LockTimeout { .. }) => return self.open_unrecorded(e.to_string()),
            Err(e) => return Err(e.into()),
        };
        if !force {
            let live: Vec<Holder> = locked
                .live_holders()
                .into_iter()
                .filter(|h| h.id != MANUAL)
                .collect();
            if !live.is_empty() {
                return Err(Error::Held(
                    live.iter()
                        .map(|h| match h.pid {
                            Some(pid) => format!("{} (pid {pid}, {})", h.id, h.what),
                            None => format!("{} ({})", h.id, h.what),
                        })
                        .collect::<Vec<_>>()
                        .join(", "),
                ));
            }
        }
        if let Recorded::Unreadable(why) = &locked.recorded {
            tracing::warn!("the state record was unreadable ({why}); opening the plug");
        }
        self.open_recorded(&mut locked, 0)
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
        let peek = self.store.peek()?;
        Ok(Status::new(&self.cfg, obs, &peek))
    }
}

/// Why the plug may have been left closed, if it may: recorded closed with
/// every holder gone, or the record unreadable.
fn leftover(locked: &Locked) -> Option<String> {
    match &locked.recorded {
        Recorded::Unreadable(why) => {
            Some(format!("may have been closed (unreadable record: {why})"))
        }
        Recorded::Found(r) if r.closed && locked.live_holders().is_empty() => {
            Some("was left closed by a holder that is gone".into())
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod golden;
