//! Holding with the tc `plug` qdisc of plugctl's tree: holding closes the
//! plug, releasing opens it (see [`crate::tree`]'s `plug.rs` for the
//! qdisc itself).

use super::{Counters, Hold};
use crate::error::Error;
use crate::kernel::Kernel;
use crate::tree::{self, PLUG, PLUG_PARENT};

/// The plug on one device.
#[derive(Debug, Clone)]
pub struct PlugHold {
    device: String,
    /// Where [`Hold::held`] last found it.
    ifindex: Option<i32>,
}

impl PlugHold {
    /// The plug on `device` (nothing is sent to the kernel yet).
    pub fn new(device: &str) -> PlugHold {
        PlugHold {
            device: device.into(),
            ifindex: None,
        }
    }

    fn lookup(&self, k: &mut dyn Kernel) -> Result<i32, Error> {
        k.ifindex(&self.device)
            .map_err(|e| Error::netlink("looking up the device", e))?
            .ok_or_else(|| Error::NoDevice(self.device.clone()))
    }

    fn ifindex(&mut self, k: &mut dyn Kernel) -> Result<i32, Error> {
        match self.ifindex {
            Some(i) => Ok(i),
            None => self.lookup(k),
        }
    }
}

impl Hold for PlugHold {
    /// One qdisc dump: the plug, below plugctl's root, and its counters.
    fn held(&mut self, k: &mut dyn Kernel) -> Result<Counters, Error> {
        let ifindex = self.lookup(k)?;
        let qs = k
            .qdiscs(ifindex)
            .map_err(|e| Error::netlink("reading qdiscs", e))?;
        let Some(plug) = tree::find_plug(&qs) else {
            return Err(Error::NotSetUp {
                device: self.device.clone(),
                missing: format!("no plug qdisc {PLUG} under {PLUG_PARENT}"),
            });
        };
        self.ifindex = Some(ifindex);
        Ok(Counters {
            packets: plug.stats.qlen,
            bytes: plug.stats.backlog,
            drops: plug.stats.drops,
        })
    }

    fn hold(&mut self, k: &mut dyn Kernel) -> Result<(), Error> {
        let ifindex = self.ifindex(k)?;
        tree::close(k, ifindex)
    }

    fn release(&mut self, k: &mut dyn Kernel) -> Result<(), Error> {
        let ifindex = self.ifindex(k)?;
        tree::open(k, ifindex)
    }
}
