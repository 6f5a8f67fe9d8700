//! How SYNs are held: the one seam between "hold new connections now" and
//! the mechanism that does it. Today that is the `plug` qdisc; kernels
//! without sch_plug will get another implementation of [`Hold`].

use plugctl_netlink::tc::QueueStats;

use crate::error::Error;
use crate::kernel::Kernel;
use crate::tree;

/// A mechanism that holds new connections.
pub trait Hold {
    /// Start holding new SYNs.
    fn close(&mut self) -> Result<(), Error>;
    /// Let everything held through, and stop holding.
    fn open(&mut self) -> Result<(), Error>;
}

/// The plug qdisc `40:` under `1:4`.
pub struct PlugQdisc<'k> {
    kernel: &'k mut dyn Kernel,
    ifindex: i32,
}

impl<'k> PlugQdisc<'k> {
    /// The plug on device `ifindex`.
    pub fn new(kernel: &'k mut dyn Kernel, ifindex: i32) -> PlugQdisc<'k> {
        PlugQdisc { kernel, ifindex }
    }
}

impl Hold for PlugQdisc<'_> {
    fn close(&mut self) -> Result<(), Error> {
        tree::close(self.kernel, self.ifindex)
    }
    fn open(&mut self) -> Result<(), Error> {
        tree::open(self.kernel, self.ifindex)
    }
}

/// Counters of what a hold holds (packets and bytes now, drops so far).
pub type HoldStats = QueueStats;
