//! The three `pfifo` qdiscs on bands 1-3: where all other traffic goes.

use plugctl_netlink::tc::{Handle, QdiscKind, Write as TcWrite};
use plugctl_netlink::Error as NlError;

use super::{Check, Seen, TreePart};
use crate::config::Config;
use crate::error::Error;
use crate::kernel::Kernel;

/// A `pfifo` child of the root prio.
pub(super) struct Fifo {
    /// The class it hangs on.
    parent: Handle,
    /// Its handle.
    handle: Handle,
}

/// The fifos on bands 1, 2 and 3.
pub(super) const FIFOS: [Fifo; 3] = [
    Fifo {
        parent: Handle::new(1, 1),
        handle: Handle::new(0x10, 0),
    },
    Fifo {
        parent: Handle::new(1, 2),
        handle: Handle::new(0x20, 0),
    },
    Fifo {
        parent: Handle::new(1, 3),
        handle: Handle::new(0x30, 0),
    },
];

impl TreePart for Fifo {
    fn name(&self, _cfg: &Config) -> String {
        format!("qdisc pfifo {} parent {}", self.handle, self.parent)
    }

    fn check(&self, _cfg: &Config, seen: &Seen) -> Check {
        seen.check_child(self.parent, self.handle, "pfifo")
    }

    fn create(&self, k: &mut dyn Kernel, cfg: &Config, seen: &Seen) -> Result<String, Error> {
        let pfifo = QdiscKind::Pfifo(None);
        k.new_qdisc(
            seen.ifindex,
            self.parent,
            self.handle,
            &pfifo,
            TcWrite::Create,
        )
        .map_err(|e| {
            let what = format!("creating pfifo {}", self.handle);
            Error::netlink_building(what, "sch_fifo", e)
        })?;
        Ok(format!("added {}", self.name(cfg)))
    }

    fn undo(&self, k: &mut dyn Kernel, _cfg: &Config, seen: &Seen) -> Result<(), NlError> {
        k.del_qdisc(seen.ifindex, self.parent, self.handle)
    }

    fn commands(&self, cfg: &Config) -> Vec<String> {
        vec![format!(
            "tc qdisc add dev {} parent {} handle {} pfifo",
            cfg.device, self.parent, self.handle
        )]
    }
}
