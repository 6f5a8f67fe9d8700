//! How new connections are held: the seam between "hold new connections
//! now" and the mechanism that does it. The [`Controller`](crate::Controller)
//! holds, releases and counts through [`Hold`] alone. Today's mechanism is
//! the tc `plug` qdisc ([`PlugHold`], `plug.rs`); one that holds without a
//! plug (NFQUEUE) will be another file here. What steers new SYNs into it
//! is leased ([`lease`]): it ends by itself if nobody renews it.

pub mod lease;
mod plug;

pub use plug::PlugHold;

use crate::error::Error;
use crate::kernel::Kernel;

/// A mechanism that holds new connections.
pub trait Hold {
    /// Find the mechanism and read what it holds now, in one look at the
    /// kernel; [`Hold::hold`] and [`Hold::release`] then act where it was
    /// found. Fails with [`Error::NotSetUp`] if it is not there.
    fn held(&mut self, k: &mut dyn Kernel) -> Result<Counters, Error>;
    /// Start holding new connections.
    fn hold(&mut self, k: &mut dyn Kernel) -> Result<(), Error>;
    /// Let everything held through, and stop holding.
    fn release(&mut self, k: &mut dyn Kernel) -> Result<(), Error>;
}

/// A mechanism's own counters: what it holds now, and what it could not.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    /// Packets held now.
    pub packets: u32,
    /// Their bytes.
    pub bytes: u32,
    /// Packets dropped because it was full, since it was created.
    pub drops: u32,
}
