//! The fw filters on the root: a packet marked by the nf_tables rule goes
//! to class 1:4, the plug. One filter per protocol (tc matches one
//! protocol per filter priority).

use plugctl_netlink::tc::{FwFilter, FwOptions, ETH_P_IP, ETH_P_IPV6};
use plugctl_netlink::Error as NlError;

use super::{Check, Seen, TreePart, PLUG_PARENT, PRIO};
use crate::config::Config;
use crate::error::Error;
use crate::kernel::Kernel;

/// The fw filter for one protocol.
pub(super) struct Fw {
    /// Its priority among the root's filters.
    prio: u16,
    /// Ethertype.
    protocol: u16,
    /// The protocol in `tc` words.
    family: &'static str,
}

/// IPv4, at prio 1.
pub(super) const IP: Fw = Fw {
    prio: 1,
    protocol: ETH_P_IP,
    family: "ip",
};
/// IPv6, at prio 2.
pub(super) const IPV6: Fw = Fw {
    prio: 2,
    protocol: ETH_P_IPV6,
    family: "ipv6",
};

/// The fw filters: IPv4 at prio 1, IPv6 at prio 2 (one protocol per prio).
pub fn filters(cfg: &Config, ifindex: i32) -> [FwFilter; 2] {
    [IP.filter(cfg, ifindex), IPV6.filter(cfg, ifindex)]
}

impl Fw {
    fn filter(&self, cfg: &Config, ifindex: i32) -> FwFilter {
        FwFilter {
            ifindex,
            parent: PRIO,
            prio: self.prio,
            protocol: self.protocol,
            mark: cfg.mark,
            options: FwOptions {
                classid: PLUG_PARENT,
                mask: None,
            },
        }
    }
}

impl TreePart for Fw {
    fn name(&self, cfg: &Config) -> String {
        format!(
            "filter {} prio {} fw handle {} classid {PLUG_PARENT}",
            self.family, self.prio, cfg.mark
        )
    }

    fn check(&self, cfg: &Config, seen: &Seen) -> Check {
        let want = self.filter(cfg, seen.ifindex);
        let at_prio: Vec<_> = seen
            .filters
            .iter()
            .filter(|f| f.prio == want.prio && f.handle != 0)
            .collect();
        match at_prio.as_slice() {
            [] => Check::Missing,
            [f] if f.protocol == want.protocol
                && f.kind == "fw"
                && f.handle == want.mark
                && f.fw == Some(want.options) =>
            {
                Check::Ok
            }
            fs => Check::Differs(format!(
                "found {}",
                fs.iter()
                    .map(|f| format!(
                        "{} handle {:#x} protocol {:#06x}",
                        f.kind, f.handle, f.protocol
                    ))
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        }
    }

    fn create(&self, k: &mut dyn Kernel, cfg: &Config, seen: &Seen) -> Result<String, Error> {
        k.new_filter(&self.filter(cfg, seen.ifindex))
            .map_err(|e| Error::netlink_building("adding the fw filter", "cls_fw", e))?;
        Ok(format!("added {}", self.name(cfg)))
    }

    fn undo(&self, k: &mut dyn Kernel, cfg: &Config, seen: &Seen) -> Result<(), NlError> {
        k.del_filter(&self.filter(cfg, seen.ifindex))
    }

    fn commands(&self, cfg: &Config) -> Vec<String> {
        vec![format!(
            "tc filter add dev {} parent {PRIO} protocol {} prio {} handle {} fw classid {PLUG_PARENT}",
            cfg.device, self.family, self.prio, cfg.mark
        )]
    }
}
