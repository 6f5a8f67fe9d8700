//! plugctl: lose zero connections across service reloads.
//!
//! While a proxy such as HAProxy reloads, there is a moment when no process
//! accepts on its port, and new connections are refused. plugctl holds the
//! SYNs of new connections to the balancer's addresses in a tc `plug` qdisc
//! for the length of the reload (Yelp's method), then lets them through:
//! clients see a connect that takes a few milliseconds longer, not an error.
//!
//! [`Controller`] is the entry point: it builds the tree ([`Controller::setup`]),
//! closes and opens the plug, reports [`Status`] and removes the tree. Every
//! kernel exchange goes through the [`kernel::Kernel`] trait.
#![deny(missing_docs)]

pub mod config;
pub mod error;
pub mod hold;
pub mod kernel;
pub mod state;
pub mod status;
pub mod tree;

pub use config::Config;
pub use error::Error;
pub use status::Status;
pub use tree::Changes;

use hold::{Hold, PlugQdisc};
use kernel::{Kernel, NetlinkKernel};
use state::{PlugState, StateFile};

/// Drives plugctl's tree on one device, as configured.
pub struct Controller<K: Kernel = NetlinkKernel> {
    cfg: Config,
    kernel: K,
    state: StateFile,
}

impl Controller<NetlinkKernel> {
    /// A controller for `cfg` over the real kernel. Fails only on an invalid
    /// configuration; nothing is sent to the kernel yet.
    pub fn new(cfg: Config) -> Result<Self, Error> {
        Controller::with_kernel(cfg, NetlinkKernel::new())
    }
}

impl<K: Kernel> Controller<K> {
    /// A controller over any [`Kernel`] (tests use a fake).
    pub fn with_kernel(cfg: Config, kernel: K) -> Result<Self, Error> {
        cfg.validate()?;
        let state = StateFile::new(&cfg.state_dir, &cfg.device);
        Ok(Controller { cfg, kernel, state })
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// Build whatever part of the tree is missing (see [`tree::setup`]).
    pub fn setup(&mut self, force: bool) -> Result<Changes, Error> {
        let changes = tree::setup(&mut self.kernel, &self.cfg, force)?;
        if changes.0.iter().any(|c| c.contains("qdisc plug")) {
            self.state.write(PlugState::now(false))?;
        }
        Ok(changes)
    }

    /// Remove what `setup` built (see [`tree::teardown`]) and forget the plug state.
    pub fn teardown(&mut self) -> Result<Changes, Error> {
        let changes = tree::teardown(&mut self.kernel, &self.cfg)?;
        self.state.remove()?;
        Ok(changes)
    }

    fn plug_ifindex(&mut self) -> Result<i32, Error> {
        let obs = tree::observe(&mut self.kernel, &self.cfg)?;
        if !obs.has_plug() {
            return Err(Error::NotSetUp {
                device: self.cfg.device.clone(),
                missing: format!("no plug qdisc {} under {}", tree::PLUG, tree::PLUG_PARENT),
            });
        }
        Ok(obs.ifindex)
    }

    /// Close the plug: new connections to the configured addresses are held
    /// until [`Controller::release`].
    pub fn plug(&mut self) -> Result<(), Error> {
        let ifindex = self.plug_ifindex()?;
        PlugQdisc::new(&mut self.kernel, ifindex).close()?;
        if let Err(e) = self.state.write(PlugState::now(true)) {
            // Never leave a plug closed that nobody knows about.
            let _ = PlugQdisc::new(&mut self.kernel, ifindex).open();
            return Err(e);
        }
        Ok(())
    }

    /// Open the plug: everything held goes through, and nothing more is held.
    pub fn release(&mut self) -> Result<(), Error> {
        let ifindex = self.plug_ifindex()?;
        PlugQdisc::new(&mut self.kernel, ifindex).open()?;
        self.state.write(PlugState::now(false))
    }

    /// The tree as found in the kernel, compared with the configuration,
    /// with the plug's recorded state and counters.
    pub fn status(&mut self) -> Result<Status, Error> {
        let obs = tree::observe(&mut self.kernel, &self.cfg)?;
        Ok(Status::new(&self.cfg, obs, self.state.read()))
    }
}
