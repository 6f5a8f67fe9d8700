//! The root `prio` qdisc: four bands, the fourth reached only through the
//! fw filters.

use plugctl_netlink::tc::{Handle, PrioOptions, Qdisc, QdiscKind, Write as TcWrite};
use plugctl_netlink::Error as NlError;

use super::{describe, plug, slot, Check, Removed, Seen, TreePart};
use crate::config::Config;
use crate::error::Error;
use crate::kernel::Kernel;

/// The root `prio` qdisc's handle.
pub const PRIO: Handle = Handle::new(1, 0);
/// Its number of bands (band 4 only receives what the filter sends there).
pub const BANDS: u32 = 4;

/// Whether the device's root qdisc is plugctl's prio.
pub(super) fn is_ours(qs: &[Qdisc]) -> bool {
    matches!(slot(qs, Handle::ROOT), Some(q) if q.handle == PRIO && q.kind == QdiscKind::Prio(PrioOptions::with_bands(BANDS)))
}

/// `setup --force`: delete whatever root the device has, after releasing
/// plugctl's plug if it is there (deleting a plug drops what it holds).
/// The line `setup` prints.
pub(super) fn replace(k: &mut dyn Kernel, cfg: &Config, seen: &Seen) -> Result<String, Error> {
    if plug::find_plug(&seen.qdiscs).is_some() {
        if let Err(e) = plug::open_and_drain(k, seen.ifindex) {
            tracing::warn!("{e}; deleting it anyway (--force)");
        }
    }
    k.del_qdisc(seen.ifindex, Handle::ROOT, Handle::UNSPEC)
        .map_err(|e| Error::netlink("removing the existing root qdisc (--force)", e))?;
    Ok(format!(
        "removed the root qdisc on {} (--force)",
        cfg.device
    ))
}

/// The root prio.
pub(super) struct Root;

impl TreePart for Root {
    fn name(&self, _cfg: &Config) -> String {
        format!("qdisc prio {PRIO} root bands {BANDS}")
    }

    fn check(&self, _cfg: &Config, seen: &Seen) -> Check {
        match slot(&seen.qdiscs, Handle::ROOT) {
            None => Check::Missing,
            Some(_) if seen.root_ours => Check::Ok,
            Some(q) => Check::Differs(format!("found {}", describe(q))),
        }
    }

    fn conflict(&self, cfg: &Config, seen: &Seen, _check: &Check) -> String {
        let found = slot(&seen.qdiscs, Handle::ROOT).map(describe);
        format!(
            "device {} has a root qdisc that is not plugctl's: {}",
            cfg.device,
            found.unwrap_or_default()
        )
    }

    fn create(&self, k: &mut dyn Kernel, cfg: &Config, seen: &Seen) -> Result<String, Error> {
        let dev = &cfg.device;
        let prio = QdiscKind::Prio(PrioOptions::with_bands(BANDS));
        k.new_qdisc(seen.ifindex, Handle::ROOT, PRIO, &prio, TcWrite::Create)
            .map_err(|e| {
                Error::netlink_building(format!("creating the prio qdisc on {dev}"), "sch_prio", e)
            })?;
        Ok(format!("added {} on {dev}", self.name(cfg)))
    }

    fn undo(&self, k: &mut dyn Kernel, _cfg: &Config, seen: &Seen) -> Result<(), NlError> {
        k.del_qdisc(seen.ifindex, Handle::ROOT, PRIO)
    }

    fn commands(&self, cfg: &Config) -> Vec<String> {
        vec![format!(
            "tc qdisc add dev {} root handle {PRIO} prio bands {BANDS}",
            cfg.device
        )]
    }

    /// Its children and filters go with it. A root that is not plugctl's
    /// is left alone.
    fn remove(&self, k: &mut dyn Kernel, cfg: &Config, seen: &Seen) -> Removed {
        let dev = &cfg.device;
        if !seen.root_ours {
            if let Some(q) = slot(&seen.qdiscs, Handle::ROOT) {
                tracing::info!(
                    "root qdisc on {dev} is not plugctl's ({}); left alone",
                    describe(q)
                );
            }
            return Ok(None);
        }
        k.del_qdisc(seen.ifindex, Handle::ROOT, PRIO)
            .map_err(|e| Error::netlink("deleting the prio qdisc", e))?;
        Ok(Some(format!(
            "deleted qdisc prio {PRIO} root on {dev} (with its children and filters)"
        )))
    }

    fn remove_commands(&self, cfg: &Config) -> Vec<String> {
        vec![format!(
            "tc qdisc del dev {} root handle {PRIO}",
            cfg.device
        )]
    }
}
