//! The API for orchestration agents (tokio): a cloneable [`Agent`] over a
//! [`Controller`], and a [`HoldGuard`] that always gives its hold back —
//! by [`HoldGuard::release`], by `Drop`, or, if the whole process dies, by
//! its watchdog process.
//!
//! ```no_run
//! # async fn f() -> Result<(), plugctl::Error> {
//! let agent = plugctl::agent::Agent::new(plugctl::Config::default())?;
//! agent.setup(false).await?;
//! let guard = agent.hold("deploy haproxy config").await?;
//! // ... reload the service ...
//! let stats = guard.release().await?;
//! println!("held {} SYNs", stats.packets);
//! # Ok(()) }
//! ```

use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::controller::new_holder_id;
use crate::kernel::{Kernel, NetlinkKernel};
use crate::watchdog::{self, Watchdog};
use crate::{Changes, Config, Controller, Error, HoldId, HoldStats, Status};

/// A handle on plugctl's controller for async programs. Clones share it.
pub struct Agent<K: Kernel = NetlinkKernel> {
    ctl: Arc<Mutex<Controller<K>>>,
    /// The `plugctl` program the watchdog runs; `None` only in this
    /// crate's unit tests, which have no binary to run.
    watchdog_program: Option<PathBuf>,
    /// A watchdog started before the agent, not armed yet: the next hold
    /// uses it instead of starting one (see [`Agent::with_watchdog`]).
    prepared: Arc<Mutex<Option<Watchdog>>>,
}

impl<K: Kernel> Clone for Agent<K> {
    fn clone(&self) -> Self {
        Agent {
            ctl: self.ctl.clone(),
            watchdog_program: self.watchdog_program.clone(),
            prepared: self.prepared.clone(),
        }
    }
}

fn locked<K: Kernel>(ctl: &Mutex<Controller<K>>) -> MutexGuard<'_, Controller<K>> {
    // A panic while holding the mutex leaves the controller usable: its
    // state lives in the kernel and in the state files, not in memory.
    ctl.lock().unwrap_or_else(|p| p.into_inner())
}

impl Agent {
    /// An agent for `cfg`; the watchdog runs [`watchdog::default_program`].
    pub fn new(cfg: Config) -> Result<Agent, Error> {
        Ok(Agent::from_controller(Controller::new(cfg)?))
    }
}

impl<K: Kernel + Send + 'static> Agent<K> {
    /// An agent over a controller of any kernel.
    pub fn from_controller(ctl: Controller<K>) -> Agent<K> {
        Agent {
            ctl: Arc::new(Mutex::new(ctl)),
            watchdog_program: Some(watchdog::default_program()),
            prepared: Arc::new(Mutex::new(None)),
        }
    }

    /// Use `dog`, a watchdog started already and not armed (the `plugctl`
    /// command forks one before its runtime starts: [`Watchdog::fork`]),
    /// for the next hold, instead of executing the watchdog program then.
    pub fn with_watchdog(self, dog: Watchdog) -> Agent<K> {
        *self.prepared.lock().unwrap_or_else(|p| p.into_inner()) = Some(dog);
        self
    }

    /// Use `program` (a `plugctl` binary) for the watchdog.
    pub fn with_watchdog_program(mut self, program: PathBuf) -> Agent<K> {
        self.watchdog_program = Some(program);
        self
    }

    /// No watchdog (unit tests, which have no `plugctl` binary to run).
    #[cfg(test)]
    pub(crate) fn without_watchdog(mut self) -> Agent<K> {
        self.watchdog_program = None;
        self
    }

    /// Run `f` on the controller (unit tests inspect the fake kernel).
    #[cfg(test)]
    pub(crate) fn with_controller<T>(&self, f: impl FnOnce(&mut Controller<K>) -> T) -> T {
        f(&mut locked(&self.ctl))
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Controller<K>) -> Result<T, Error> + Send + 'static,
    ) -> Result<T, Error> {
        let ctl = self.ctl.clone();
        tokio::task::spawn_blocking(move || f(&mut locked(&ctl)))
            .await
            .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))
    }

    /// The state store (what reloads learned lives there too).
    pub fn store(&self) -> crate::state::Store {
        locked(&self.ctl).store().clone()
    }

    /// Build the tree (see [`Controller::setup`]).
    pub async fn setup(&self, force: bool) -> Result<Changes, Error> {
        self.blocking(move |c| c.setup(force)).await
    }

    /// The status (see [`Controller::status`]).
    pub async fn status(&self) -> Result<Status, Error> {
        self.blocking(|c| c.status()).await
    }

    /// Every listening TCP socket.
    pub async fn listeners(&self) -> Result<Vec<plugctl_netlink::diag::Listener>, Error> {
        self.blocking(|c| c.listeners()).await
    }

    /// Hold new connections until the returned guard is released or dropped.
    /// A watchdog process is armed first, so even if this process dies the
    /// hold is given back.
    ///
    /// New connections are steered into the plug only while the hold's
    /// lease lasts: the config's `max_hold` + [`crate::hold::lease::GRACE`].
    /// A guard kept longer no longer holds new connections (those held
    /// already stay held until it is released): set `max_hold` to the
    /// longest hold the caller takes.
    pub async fn hold(&self, what: &str) -> Result<HoldGuard<K>, Error> {
        if !crate::kernel::has_net_admin() {
            return Err(Error::Permission {
                what: "holding connections".into(),
            });
        }
        let id = new_holder_id();
        let what = what.to_string();
        let program = self.watchdog_program.clone();
        let prepared = self
            .prepared
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        let (id, watchdog) = self
            .blocking(move |c| {
                let dog = match (prepared, &program) {
                    (Some(mut d), program) => match d.arm(&id) {
                        Ok(()) => Some(d),
                        Err(e) => match program {
                            Some(p) => {
                                tracing::warn!("{e}; starting another watchdog");
                                Some(Watchdog::spawn(p, c.config(), &id)?)
                            }
                            None => return Err(e),
                        },
                    },
                    (None, Some(p)) => Some(Watchdog::spawn(p, c.config(), &id)?),
                    (None, None) => None,
                };
                match c.hold_as(id, &what) {
                    Ok(id) => Ok((id, dog)),
                    Err(e) => {
                        if let Some(d) = dog {
                            d.disarm();
                        }
                        Err(e)
                    }
                }
            })
            .await?;
        Ok(HoldGuard {
            ctl: self.ctl.clone(),
            id: Some(id),
            watchdog,
            since: Instant::now(),
        })
    }
}

/// A hold on the plug. Release it with [`HoldGuard::release`]; dropping it
/// releases too (blocking briefly).
pub struct HoldGuard<K: Kernel + Send + 'static = NetlinkKernel> {
    ctl: Arc<Mutex<Controller<K>>>,
    id: Option<HoldId>,
    watchdog: Option<Watchdog>,
    since: Instant,
}

impl<K: Kernel + Send + 'static> HoldGuard<K> {
    /// How long it has held.
    pub fn held_for(&self) -> Duration {
        self.since.elapsed()
    }

    /// Give the hold back now (the held connections are released unless
    /// others still hold them).
    pub async fn release(mut self) -> Result<HoldStats, Error> {
        let ctl = self.ctl.clone();
        let id = self.id.take();
        let dog = self.watchdog.take();
        tokio::task::spawn_blocking(move || release_now(&ctl, id, dog))
            .await
            .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))
    }

    /// What is held now: the SYNs waiting in the plug.
    pub async fn held_now(&self) -> Result<crate::hold::Counters, Error> {
        let ctl = self.ctl.clone();
        tokio::task::spawn_blocking(move || locked(&ctl).held_now())
            .await
            .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))
    }

    /// Give the hold back now, from synchronous code.
    pub fn release_blocking(mut self) -> Result<HoldStats, Error> {
        release_now(&self.ctl, self.id.take(), self.watchdog.take())
    }
}

fn release_now<K: Kernel>(
    ctl: &Mutex<Controller<K>>,
    id: Option<HoldId>,
    dog: Option<Watchdog>,
) -> Result<HoldStats, Error> {
    let Some(id) = id else {
        return Ok(HoldStats::default());
    };
    let r = locked(ctl).release_hold(id);
    match (&r, dog) {
        // Released: stand the watchdog down.
        (Ok(_), Some(d)) => d.disarm(),
        // Failed: dropping the armed watchdog's pipe makes it try itself.
        (Err(_), Some(d)) => drop(d),
        (_, None) => {}
    }
    r
}

impl<K: Kernel + Send + 'static> Drop for HoldGuard<K> {
    fn drop(&mut self) {
        if self.id.is_some() {
            if let Err(e) = release_now(&self.ctl, self.id.take(), self.watchdog.take()) {
                tracing::error!("releasing a dropped hold: {e}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::fake::FakeKernel;

    const CLOSE: &str = "new_qdisc plug 40: Change block";
    const OPEN: &str = "new_qdisc plug 40: Change release_indefinite";

    fn agent(dir: &std::path::Path) -> Agent<FakeKernel> {
        let cfg = Config {
            state_dir: dir.to_path_buf(),
            ..Config::default()
        };
        let mut ctl = Controller::with_kernel(cfg, FakeKernel::new()).unwrap();
        ctl.setup(false).unwrap();
        ctl.kernel_mut().calls.clear();
        Agent::from_controller(ctl).without_watchdog()
    }

    #[tokio::test]
    async fn a_guard_releases_when_released_or_dropped() {
        let dir =
            std::env::temp_dir().join(format!("plugctl-agent-{}", crate::state::dir::random_hex()));
        let a = agent(&dir);
        let g = a.hold("deploy").await.unwrap();
        let calls = || a.with_controller(|c| c.kernel_mut().calls.clone());
        assert_eq!(calls(), [CLOSE]);
        let s = g.release().await.unwrap();
        assert!(s.released, "{s:?}");
        assert_eq!(calls(), [CLOSE, OPEN]);
        // Dropped without release: Drop gives the hold back.
        drop(a.hold("dropped").await.unwrap());
        assert_eq!(calls(), [CLOSE, OPEN, CLOSE, OPEN]);
        // Two guards: the plug opens with the last.
        let g1 = a.hold("one").await.unwrap();
        let g2 = a.hold("two").await.unwrap();
        assert!(!g1.release_blocking().unwrap().released);
        assert!(g2.release().await.unwrap().released);
        assert_eq!(calls().len(), 6);
        let _ = std::fs::remove_dir_all(dir);
    }

    /// The hold and release paths send what they need and nothing more:
    /// one qdisc dump each (the plug is plugctl's, and what it holds), one
    /// plug change each, no other read. A second dump, or a filter or
    /// nf_tables dump, on either path fails here.
    #[tokio::test]
    async fn a_hold_and_its_release_send_one_dump_and_one_change_each() {
        let dir =
            std::env::temp_dir().join(format!("plugctl-agent-{}", crate::state::dir::random_hex()));
        let a = agent(&dir);
        let reads = || {
            a.with_controller(|c| {
                let k = c.kernel_mut();
                (k.qdisc_dumps, k.other_reads, k.calls.clone())
            })
        };
        a.with_controller(|c| {
            c.kernel_mut().qdisc_dumps = 0;
            c.kernel_mut().other_reads = 0;
        });
        let g = a.hold("counted").await.unwrap();
        assert_eq!(reads(), (1, 0, vec![CLOSE.to_string()]), "hold");
        g.release().await.unwrap();
        assert_eq!(
            reads(),
            (2, 0, vec![CLOSE.to_string(), OPEN.to_string()]),
            "release"
        );
        let _ = std::fs::remove_dir_all(dir);
    }
}
