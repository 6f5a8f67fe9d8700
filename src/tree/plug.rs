//! The `plug` qdisc on band 4: where marked SYNs wait while it is closed.
//! Its two actions, in the kernel's words `TCQ_PLUG_BUFFER` and
//! `TCQ_PLUG_RELEASE_INDEFINITE`, are [`close`] and [`open`] here.

use std::time::{Duration, Instant};

use plugctl_netlink::tc::{Handle, PlugAction, PlugOptions, Qdisc, QdiscKind, Write as TcWrite};
use plugctl_netlink::Error as NlError;

use super::{root, slot, Check, Removed, Seen, TreePart};
use crate::config::Config;
use crate::error::Error;
use crate::kernel::Kernel;

/// The class the plug hangs on.
pub const PLUG_PARENT: Handle = Handle::new(1, 4);
/// The plug's handle.
pub const PLUG: Handle = Handle::new(0x40, 0);

/// What a failed [`open`] was doing, in an error message.
const OPENING: &str = "releasing the plug";

/// Longest wait for a released plug to hand its packets on before it is
/// deleted.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(1);

/// plugctl's plug among a device's qdiscs: kind `plug`, handle [`PLUG`]
/// under [`PLUG_PARENT`], with plugctl's root prio above it.
pub fn find_plug(qs: &[Qdisc]) -> Option<&Qdisc> {
    slot(qs, PLUG_PARENT)
        .filter(|q| q.handle == PLUG && q.kind.name() == "plug" && root::is_ours(qs))
}

fn change(k: &mut dyn Kernel, ifindex: i32, action: PlugAction) -> Result<(), NlError> {
    let kind = QdiscKind::Plug(Some(PlugOptions::action(action)));
    k.new_qdisc(ifindex, PLUG_PARENT, PLUG, &kind, TcWrite::Change)
}

/// Close the plug on device `ifindex`: what arrives waits.
pub(crate) fn close(k: &mut dyn Kernel, ifindex: i32) -> Result<(), Error> {
    change(k, ifindex, PlugAction::Buffer).map_err(|e| Error::netlink("closing the plug", e))
}

/// Open the plug on device `ifindex`: what waits leaves, and what arrives
/// passes until it is closed again.
pub(crate) fn open(k: &mut dyn Kernel, ifindex: i32) -> Result<(), Error> {
    change(k, ifindex, PlugAction::ReleaseIndefinite).map_err(|e| Error::netlink(OPENING, e))
}

/// `tc`'s words for [`open`].
fn open_command(cfg: &Config) -> String {
    format!(
        "tc qdisc change dev {} parent {PLUG_PARENT} handle {PLUG} plug release_indefinite",
        cfg.device
    )
}

/// Open the plug and wait until it holds nothing. Opening only schedules
/// the device queue; the held packets leave in a softirq a moment later,
/// and deleting the qdisc before that would drop them (clients would wait
/// for their 1 s SYN retransmission).
pub(super) fn open_and_drain(k: &mut dyn Kernel, ifindex: i32) -> Result<(), Error> {
    open(k, ifindex)?;
    let start = Instant::now();
    loop {
        let qs = k.qdiscs(ifindex).map_err(|e| Error::netlink(OPENING, e))?;
        let held = find_plug(&qs).map_or(0, |q| q.stats.qlen);
        if held == 0 {
            return Ok(());
        }
        if start.elapsed() > DRAIN_TIMEOUT {
            tracing::warn!("plug still holds {held} packets after release; deleting it drops them");
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// The plug.
pub(super) struct Plug;

impl TreePart for Plug {
    fn name(&self, _cfg: &Config) -> String {
        format!("qdisc plug {PLUG} parent {PLUG_PARENT}")
    }

    fn check(&self, _cfg: &Config, seen: &Seen) -> Check {
        seen.check_child(PLUG_PARENT, PLUG, "plug")
    }

    /// A new plug starts closed: it is opened before anything is steered
    /// into it, and deleted again if it cannot be.
    fn create(&self, k: &mut dyn Kernel, cfg: &Config, seen: &Seen) -> Result<String, Error> {
        let plug = QdiscKind::Plug(Some(PlugOptions::create(cfg.plug_limit)));
        k.new_qdisc(seen.ifindex, PLUG_PARENT, PLUG, &plug, TcWrite::Create)
            .map_err(|e| Error::netlink_building("creating the plug qdisc", "sch_plug", e))?;
        if let Err(e) = open(k, seen.ifindex) {
            if let Err(u) = self.undo(k, cfg, seen) {
                tracing::warn!("rollback step failed: {u}");
            }
            return Err(e);
        }
        Ok(format!(
            "added {} limit {} (released)",
            self.name(cfg),
            cfg.plug_limit
        ))
    }

    fn undo(&self, k: &mut dyn Kernel, _cfg: &Config, seen: &Seen) -> Result<(), NlError> {
        k.del_qdisc(seen.ifindex, PLUG_PARENT, PLUG)
    }

    fn commands(&self, cfg: &Config) -> Vec<String> {
        vec![
            format!(
                "tc qdisc add dev {} parent {PLUG_PARENT} handle {PLUG} plug limit {}",
                cfg.device, cfg.plug_limit
            ),
            open_command(cfg),
        ]
    }

    /// Opened and drained, not deleted: the root takes it along.
    fn remove(&self, k: &mut dyn Kernel, _cfg: &Config, seen: &Seen) -> Removed {
        if find_plug(&seen.qdiscs).is_none() {
            return Ok(None);
        }
        open_and_drain(k, seen.ifindex)?;
        Ok(Some(format!("released plug {PLUG}")))
    }

    fn remove_commands(&self, cfg: &Config) -> Vec<String> {
        vec![open_command(cfg)]
    }

    fn removed_first(&self) -> bool {
        true
    }
}
