//! The [`Controller`]: plugctl's tree on one device, the mechanism that
//! holds new connections there ([`Hold`]) and the state record that says
//! who holds them.

use crate::clock;
use crate::config::Config;
use crate::error::Error;
use crate::hold::{lease, Counters, Hold, PlugHold};
use crate::kernel::{Kernel, NetlinkKernel};
use crate::state::{self, Holder, Locked, Record, Recorded, Slot, StateError, Store};
use crate::status::Status;
use crate::tree::{self, Changes};

/// Drives plugctl's tree on one device, as configured.
pub struct Controller<K: Kernel = NetlinkKernel> {
    cfg: Config,
    kernel: K,
    /// What holds new connections: the only way the controller holds,
    /// releases and counts.
    backend: Box<dyn Hold + Send>,
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

/// What a hold saw, read just before it was released.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct HoldStats {
    /// Whether this call released the held connections (false: another
    /// holder still holds them).
    pub released: bool,
    /// SYNs held when they were released.
    pub packets: u32,
    /// Bytes held when they were released.
    pub bytes: u32,
    /// Packets dropped (the hold full) since the hold began.
    pub drops: u32,
    /// Set when the hold was released without updating the state record
    /// (its lock could not be had, or the record could not be written): why.
    pub unrecorded: Option<String>,
}

impl HoldStats {
    /// Released now, holding what `held` says; drops counted from
    /// `drops_at_start`.
    fn released(held: Counters, drops_at_start: u32, unrecorded: Option<String>) -> HoldStats {
        HoldStats {
            released: true,
            packets: held.packets,
            bytes: held.bytes,
            drops: held.drops.saturating_sub(drops_at_start),
            unrecorded,
        }
    }
}

/// A hold taken with [`Controller::hold_as`]: give it back with
/// [`Controller::release_hold`]. While it exists, its lock slot says its
/// holder is alive; if the process dies, the kernel frees the slot.
#[derive(Debug)]
pub struct HoldId {
    /// The holder's id in the record.
    pub id: String,
    drops_at_start: u32,
    _slot: Option<Slot>,
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
            backend: Box::new(PlugHold::new(&cfg.device)),
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
    /// hold that may have been left behind (recorded with every holder
    /// gone, or an unreadable record) is released.
    pub fn setup(&mut self, force: bool) -> Result<Changes, Error> {
        let mut changes = tree::setup(&mut self.kernel, &self.cfg, force)?;
        let mut locked = self.store.lock(self.lock_wait)?;
        if changes.plug_created {
            let mut r = Record::now(false);
            r.holders = locked.live_holders();
            locked.write(r)?;
        } else if let Some(why) = leftover(&locked) {
            self.release_now()?;
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

    /// Let the held connections through: one look at the backend (what
    /// it holds), then the release, then the end of the lease (after the
    /// release: a lease that cannot be ended must not keep anything held,
    /// and a SYN marked meanwhile passes the open plug).
    fn release_now(&mut self) -> Result<Counters, Error> {
        let held = self.backend.held(&mut self.kernel)?;
        self.backend.release(&mut self.kernel)?;
        if let Err(e) = lease::end(&mut self.kernel, &self.cfg) {
            tracing::warn!("the plug is open, but the lease stays until it expires: {e}");
        }
        Ok(held)
    }

    /// Add `holder` under the lock, renew the lease to its `lease_until_ms`
    /// or a live holder's later one, and hold new connections unless they
    /// already are (recorded held, with live holders). Returns the slot
    /// (if `with_slot`) and what the backend held before.
    fn add_holder(
        &mut self,
        mut holder: Holder,
        with_slot: bool,
    ) -> Result<(Option<Slot>, Counters), Error> {
        let before = self.backend.held(&mut self.kernel)?;
        let mut locked = self.store.lock(self.lock_wait)?;
        let mut others = locked.live_holders();
        others.retain(|h| h.id != holder.id);
        let already_held = !others.is_empty() && locked.recorded.record().is_some_and(|r| r.closed);
        let slot = if with_slot {
            let s = locked.take_slot(&others)?;
            holder.slot = Some(s.slot);
            Some(s)
        } else {
            None
        };
        let mut r = Record::now(true);
        // Never shorten another live holder's lease.
        let until = others
            .iter()
            .filter_map(|h| h.lease_until_ms)
            .chain(holder.lease_until_ms)
            .max();
        r.holders = others.clone();
        r.holders.push(holder);
        // Recorded before the hold begins: if this process dies in between,
        // the record shows a hold whose holder is gone, which `setup` and
        // `release` release.
        locked.write(r)?;
        // The lease first: SYNs it marks pass the plug until it closes.
        let renewed = match until {
            Some(until) => {
                let left = until.saturating_sub(clock::now_ms()).max(1);
                lease::renew(
                    &mut self.kernel,
                    &self.cfg,
                    std::time::Duration::from_millis(left),
                )
            }
            None => Ok(()),
        };
        let held = renewed.and_then(|()| match already_held {
            true => Ok(()),
            false => self.backend.hold(&mut self.kernel),
        });
        if !already_held {
            if let Err(e) = held {
                let mut r = Record::now(!others.is_empty());
                r.holders = others;
                if let Err(w) = locked.write(r) {
                    tracing::warn!("{w}");
                }
                if let Err(w) = lease::end(&mut self.kernel, &self.cfg) {
                    tracing::warn!("{w}");
                }
                return Err(e);
            }
        } else if let Err(e) = held {
            // Already held by others: their hold stands, this one failed.
            let mut r = Record::now(true);
            r.holders = others;
            if let Err(w) = locked.write(r) {
                tracing::warn!("{w}");
            }
            return Err(e);
        }
        Ok((slot, before))
    }

    /// Take a hold for holder `id`: new connections are held until every
    /// holder has let go. Holding begins with the first holder. Its lease
    /// is `max_hold` + [`lease::GRACE`].
    pub fn hold_as(&mut self, id: String, what: &str) -> Result<HoldId, Error> {
        let now = clock::now_ms();
        let holder = Holder {
            id: id.clone(),
            slot: None,
            pid: Some(std::process::id()),
            since_ms: now,
            what: what.into(),
            lease_until_ms: Some(now.saturating_add(ms(lease::default_lease(&self.cfg)))),
        };
        let (slot, before) = self.add_holder(holder, true)?;
        Ok(HoldId {
            id,
            drops_at_start: before.drops,
            _slot: slot,
        })
    }

    /// What the hold mechanism holds now (the plug's queue).
    pub fn held_now(&mut self) -> Result<Counters, Error> {
        self.backend.held(&mut self.kernel)
    }

    /// Take a hold for this process (see [`Controller::hold_as`]).
    pub fn hold(&mut self, what: &str) -> Result<HoldId, Error> {
        self.hold_as(new_holder_id(), what)
    }

    /// Give back a hold. The held connections are released if no other
    /// live holder remains.
    pub fn release_hold(&mut self, hold: HoldId) -> Result<HoldStats, Error> {
        // The slot stays locked until the record no longer names it.
        self.release_holder(&hold.id, hold.drops_at_start)
    }

    /// Give back the hold of holder `id` (the watchdog does this for a dead
    /// holder). If the record's lock cannot be had in time, the held
    /// connections are released anyway: a stuck lock must never keep them
    /// held.
    pub fn release_holder(&mut self, id: &str, drops_at_start: u32) -> Result<HoldStats, Error> {
        let mut locked = match self.lock_for_release(drops_at_start)? {
            Ok(l) => l,
            Err(released) => return Ok(released),
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
        self.release_recorded(&mut locked, drops_at_start)
    }

    /// Release the held connections and record that nothing is held.
    fn release_recorded(
        &mut self,
        locked: &mut Locked,
        drops_at_start: u32,
    ) -> Result<HoldStats, Error> {
        let held = self.release_now()?;
        let unrecorded = locked
            .write(Record::now(false))
            .err()
            .map(|e| format!("the plug is open, but {e}"));
        Ok(HoldStats::released(held, drops_at_start, unrecorded))
    }

    /// The record's lock for a release; if it cannot be had in time, the
    /// held connections are released without it (`Ok(Err(stats))`): the
    /// kernel's state is the truth, the record is bookkeeping.
    fn lock_for_release(
        &mut self,
        drops_at_start: u32,
    ) -> Result<Result<Locked, HoldStats>, Error> {
        match self.store.lock(self.lock_wait) {
            Ok(l) => Ok(Ok(l)),
            Err(e @ StateError::LockTimeout { .. }) => {
                let held = self.release_now()?;
                tracing::debug!("released the hold without updating its record: {e}");
                Ok(Err(HoldStats::released(
                    held,
                    drops_at_start,
                    Some(e.to_string()),
                )))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// `plugctl plug`: hold new connections until `plugctl release`, new
    /// ones at most for `lease` (default `max_hold` + [`lease::GRACE`]).
    pub fn hold_manual(&mut self, lease: Option<std::time::Duration>) -> Result<(), Error> {
        let now = clock::now_ms();
        let lease = lease.unwrap_or_else(|| lease::default_lease(&self.cfg));
        let holder = Holder {
            id: MANUAL.into(),
            slot: None,
            pid: Some(std::process::id()),
            since_ms: now,
            what: "plugctl plug".into(),
            lease_until_ms: Some(now.saturating_add(ms(lease))),
        };
        self.add_holder(holder, false).map(|_| ())
    }

    /// `plugctl release`: give back the manual hold and release the held
    /// connections unless a live holder (a running reload) still holds
    /// them; with `force`, release them regardless and forget every holder.
    /// An unreadable record counts as "maybe held, holders unknown": they
    /// are released. If the record's lock cannot be had in time, they are
    /// released anyway, and the returned stats say so.
    pub fn release(&mut self, force: bool) -> Result<HoldStats, Error> {
        let mut locked = match self.lock_for_release(0)? {
            Ok(l) => l,
            Err(released) => return Ok(released),
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
            tracing::warn!("the state record was unreadable ({why}); releasing the hold");
        }
        self.release_recorded(&mut locked, 0)
    }

    /// Every listening TCP socket (for the readiness check).
    pub fn listeners(&mut self) -> Result<Vec<plugctl_netlink::diag::Listener>, Error> {
        self.kernel
            .listeners()
            .map_err(|e| Error::netlink("listing listening sockets", e))
    }

    /// The tree as found in the kernel, compared with the configuration,
    /// with the hold's recorded state, its holders and the plug's counters.
    pub fn status(&mut self) -> Result<Status, Error> {
        let obs = tree::observe(&mut self.kernel, &self.cfg)?;
        let leased = lease::read(&mut self.kernel, &self.cfg)?;
        let peek = self.store.peek()?;
        Ok(Status::new(&self.cfg, obs, &peek, leased))
    }
}

fn ms(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Why connections may have been left held, if they may: recorded held
/// (`closed`) with every holder gone, or the record unreadable. The words
/// are `setup`'s output.
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

#[cfg(test)]
mod lease_tests;
