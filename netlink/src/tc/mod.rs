//! Traffic control over rtnetlink: the qdiscs (`prio`, `pfifo`, `plug`) and
//! the `fw` classifier plugctl builds, as typed requests and parsed dump
//! entries.
//!
//! Framing, `struct tcmsg` and the generic `TCA_*` attributes (kind,
//! statistics) are `netlink-packet-route`'s; it has no model of prio, plug
//! or fw options, so those live here (one file each) and travel as the raw
//! `TCA_OPTIONS` payload.

mod fifo;
mod fw;
mod handle;
mod plug;
mod prio;

pub use fifo::FifoOptions;
pub use fw::FwOptions;
pub use handle::{BadHandle, Handle};
pub use plug::{PlugAction, PlugOptions};
pub use prio::{PrioOptions, DEFAULT_PRIOMAP};

use netlink_packet_core::{
    DefaultNla, Nla, Parseable, NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL, NLM_F_REQUEST,
};
use netlink_packet_route::tc::{TcAttribute, TcHeader, TcMessage, TcOption, TcStats2};
use netlink_packet_route::RouteNetlinkMessage;

use crate::error::Error;
use crate::frame::RawMessage;

/// `TCA_OPTIONS`.
pub const TCA_OPTIONS: u16 = 2;
/// `RTM_NEWQDISC`.
pub const RTM_NEWQDISC: u16 = 36;
/// `RTM_NEWTFILTER`.
pub const RTM_NEWTFILTER: u16 = 44;

/// `ETH_P_IP`.
pub const ETH_P_IP: u16 = 0x0800;
/// `ETH_P_IPV6`.
pub const ETH_P_IPV6: u16 = 0x86DD;
/// `ETH_P_ALL`.
pub const ETH_P_ALL: u16 = 0x0003;

/// A qdisc's kind and options, as plugctl knows them.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum QdiscKind {
    /// `prio`.
    Prio(PrioOptions),
    /// `pfifo`; `None` = the device's default limit.
    Pfifo(Option<FifoOptions>),
    /// `plug`; dumps never carry its options (`None`).
    Plug(Option<PlugOptions>),
    /// Anything else (`noqueue`, `fq_codel`, ...), with its raw options.
    Other {
        /// `TCA_KIND`.
        kind: String,
        /// Raw `TCA_OPTIONS` payload, if any.
        options: Option<Vec<u8>>,
    },
}

impl QdiscKind {
    /// `TCA_KIND`.
    pub fn name(&self) -> &str {
        match self {
            QdiscKind::Prio(_) => "prio",
            QdiscKind::Pfifo(_) => "pfifo",
            QdiscKind::Plug(_) => "plug",
            QdiscKind::Other { kind, .. } => kind,
        }
    }

    fn options(&self) -> Option<Vec<u8>> {
        match self {
            QdiscKind::Prio(o) => Some(o.to_bytes()),
            QdiscKind::Pfifo(o) => o.map(|o| o.to_bytes()),
            QdiscKind::Plug(o) => o.map(|o| o.to_bytes()),
            QdiscKind::Other { options, .. } => options.clone(),
        }
    }

    fn parse(kind: &str, options: Option<&[u8]>) -> QdiscKind {
        let other = || QdiscKind::Other {
            kind: kind.to_string(),
            options: options.map(<[u8]>::to_vec),
        };
        match (kind, options) {
            ("prio", Some(o)) => PrioOptions::parse(o)
                .map(QdiscKind::Prio)
                .unwrap_or_else(other),
            ("pfifo", o) => QdiscKind::Pfifo(o.and_then(FifoOptions::parse)),
            ("plug", o) => QdiscKind::Plug(o.and_then(PlugOptions::parse)),
            _ => other(),
        }
    }
}

/// Queue counters of a qdisc (`TCA_STATS2`: basic + queue).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueStats {
    /// Bytes sent on (dequeued).
    pub bytes: u64,
    /// Packets sent on (dequeued).
    pub packets: u32,
    /// Packets held now.
    pub qlen: u32,
    /// Bytes held now.
    pub backlog: u32,
    /// Packets dropped (for a plug: over its byte limit).
    pub drops: u32,
    /// Requeues.
    pub requeues: u32,
    /// Overlimits.
    pub overlimits: u32,
}

/// One qdisc as found in a dump.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Qdisc {
    /// Device index (dumps cover every device: filter on this).
    pub ifindex: i32,
    /// Its handle (`1:`); 0 for a default qdisc.
    pub handle: Handle,
    /// Its parent (`root` or a class such as `1:4`).
    pub parent: Handle,
    /// Kind and options.
    pub kind: QdiscKind,
    /// Counters.
    pub stats: QueueStats,
}

/// How a `RTM_NEWQDISC` treats an existing qdisc.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Write {
    /// `tc qdisc add`: REQUEST|ACK|EXCL|CREATE; fails with EEXIST if present.
    Create,
    /// `tc qdisc change`: REQUEST|ACK; fails with ENOENT if absent.
    Change,
}

impl Write {
    fn flags(self) -> u16 {
        match self {
            Write::Create => NLM_F_REQUEST | NLM_F_ACK | NLM_F_EXCL | NLM_F_CREATE,
            Write::Change => NLM_F_REQUEST | NLM_F_ACK,
        }
    }
}

fn header(ifindex: i32, handle: Handle, parent: Handle, info: u32) -> TcHeader {
    TcHeader {
        index: ifindex,
        handle: handle.0.into(),
        parent: parent.0.into(),
        info,
        ..Default::default()
    }
}

fn kind_and_options(kind: &str, options: Option<Vec<u8>>) -> Vec<TcAttribute> {
    let mut attrs = vec![TcAttribute::Kind(kind.to_string())];
    if let Some(o) = options {
        attrs.push(TcAttribute::Other(DefaultNla::new(TCA_OPTIONS, o)));
    }
    attrs
}

/// `RTM_NEWQDISC`: create or change the qdisc `handle` at `parent`.
pub fn new_qdisc(
    ifindex: i32,
    parent: Handle,
    handle: Handle,
    kind: &QdiscKind,
    how: Write,
    seq: u32,
) -> Vec<u8> {
    let msg = TcMessage::from_parts(
        header(ifindex, handle, parent, 0),
        kind_and_options(kind.name(), kind.options()),
    );
    crate::frame::serialize(
        RouteNetlinkMessage::NewQueueDiscipline(msg),
        how.flags(),
        seq,
    )
}

/// `RTM_DELQDISC` of the qdisc `handle` at `parent` (`tc qdisc del`).
/// Deleting a root qdisc removes its children and filters with it.
pub fn del_qdisc(ifindex: i32, parent: Handle, handle: Handle, seq: u32) -> Vec<u8> {
    let msg = TcMessage::from_parts(header(ifindex, handle, parent, 0), vec![]);
    crate::frame::serialize(
        RouteNetlinkMessage::DelQueueDiscipline(msg),
        NLM_F_REQUEST | NLM_F_ACK,
        seq,
    )
}

/// `RTM_GETQDISC` dump. The kernel ignores the ifindex: every device's
/// qdiscs come back.
pub fn dump_qdiscs(seq: u32) -> Vec<u8> {
    let msg = TcMessage::from_parts(header(0, Handle(0), Handle(0), 0), vec![]);
    crate::frame::serialize(
        RouteNetlinkMessage::GetQueueDiscipline(msg),
        NLM_F_REQUEST | NLM_F_DUMP,
        seq,
    )
}

/// Parse one `RTM_NEWQDISC` dump entry.
pub fn parse_qdisc(msg: &RawMessage) -> Result<Qdisc, Error> {
    let body = msg.body_of(RTM_NEWQDISC, "RTM_NEWQDISC")?;
    let tc = TcMessage::parse(body).map_err(|e| Error::Malformed(e.to_string()))?;
    let (kind, options, stats) = attributes(&tc.attributes);
    Ok(Qdisc {
        ifindex: tc.header.index,
        handle: Handle(tc.header.handle.into()),
        parent: Handle(tc.header.parent.into()),
        kind: QdiscKind::parse(&kind, options.as_deref()),
        stats,
    })
}

fn attributes(attrs: &[TcAttribute]) -> (String, Option<Vec<u8>>, QueueStats) {
    let mut kind = String::new();
    let mut options = None;
    let mut stats = QueueStats::default();
    for a in attrs {
        match a {
            TcAttribute::Kind(k) => kind = k.clone(),
            // netlink-packet-route keeps options of kinds it does not model
            // as one raw attribute holding the whole TCA_OPTIONS payload.
            TcAttribute::Options(opts) => {
                if let [TcOption::Other(nla)] = opts.as_slice() {
                    let mut v = vec![0; nla.value_len()];
                    nla.emit_value(&mut v);
                    options = Some(v);
                }
            }
            TcAttribute::Stats2(s2) => {
                for s in s2 {
                    match s {
                        TcStats2::Basic(b) => {
                            stats.bytes = b.bytes;
                            stats.packets = b.packets;
                        }
                        TcStats2::Queue(q) => {
                            stats.qlen = q.qlen;
                            stats.backlog = q.backlog;
                            stats.drops = q.drops;
                            stats.requeues = q.requeues;
                            stats.overlimits = q.overlimits;
                        }
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    (kind, options, stats)
}

/// An `fw` filter: packets whose `mark & mask == mark` go to `options.classid`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FwFilter {
    /// Device index.
    pub ifindex: i32,
    /// The qdisc it is attached to (`1:`).
    pub parent: Handle,
    /// Filter priority ("pref"); one protocol per priority.
    pub prio: u16,
    /// Ethertype (`ETH_P_IP`, `ETH_P_IPV6`, `ETH_P_ALL`), host order.
    pub protocol: u16,
    /// The mark (the filter handle); non-zero.
    pub mark: u32,
    /// Class id and mask.
    pub options: FwOptions,
}

fn filter_info(prio: u16, protocol: u16) -> u32 {
    (prio as u32) << 16 | protocol.to_be() as u32
}

/// `RTM_NEWTFILTER` (`tc filter add ... fw classid ...`, REQUEST|ACK|EXCL|CREATE).
pub fn new_fw_filter(f: &FwFilter, seq: u32) -> Vec<u8> {
    let msg = TcMessage::from_parts(
        header(
            f.ifindex,
            Handle(f.mark),
            f.parent,
            filter_info(f.prio, f.protocol),
        ),
        kind_and_options("fw", Some(f.options.to_bytes())),
    );
    crate::frame::serialize(
        RouteNetlinkMessage::NewTrafficFilter(msg),
        Write::Create.flags(),
        seq,
    )
}

/// `RTM_DELTFILTER` of one fw filter (`tc filter del ... prio P handle H fw`).
pub fn del_fw_filter(f: &FwFilter, seq: u32) -> Vec<u8> {
    let msg = TcMessage::from_parts(
        header(
            f.ifindex,
            Handle(f.mark),
            f.parent,
            filter_info(f.prio, f.protocol),
        ),
        vec![TcAttribute::Kind("fw".into())],
    );
    crate::frame::serialize(
        RouteNetlinkMessage::DelTrafficFilter(msg),
        NLM_F_REQUEST | NLM_F_ACK,
        seq,
    )
}

/// `RTM_GETTFILTER` dump of the filters attached to `parent` on `ifindex`
/// (the kernel honours both for filter dumps).
pub fn dump_filters(ifindex: i32, parent: Handle, seq: u32) -> Vec<u8> {
    let msg = TcMessage::from_parts(header(ifindex, Handle(0), parent, 0), vec![]);
    crate::frame::serialize(
        RouteNetlinkMessage::GetTrafficFilter(msg),
        NLM_F_REQUEST | NLM_F_DUMP,
        seq,
    )
}

/// One filter as found in a dump.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    /// Device index.
    pub ifindex: i32,
    /// The qdisc it hangs on.
    pub parent: Handle,
    /// Priority.
    pub prio: u16,
    /// Ethertype, host order.
    pub protocol: u16,
    /// Handle; for fw the mark, 0 for the per-instance header entry.
    pub handle: u32,
    /// `TCA_KIND`.
    pub kind: String,
    /// fw options, when the filter is an fw filter with a class id.
    pub fw: Option<FwOptions>,
}

/// Parse one `RTM_NEWTFILTER` dump entry.
pub fn parse_filter(msg: &RawMessage) -> Result<Filter, Error> {
    let body = msg.body_of(RTM_NEWTFILTER, "RTM_NEWTFILTER")?;
    let tc = TcMessage::parse(body).map_err(|e| Error::Malformed(e.to_string()))?;
    let (kind, options, _) = attributes(&tc.attributes);
    let fw = if kind == "fw" {
        options.as_deref().and_then(FwOptions::parse)
    } else {
        None
    };
    Ok(Filter {
        ifindex: tc.header.index,
        parent: Handle(tc.header.parent.into()),
        prio: (tc.header.info >> 16) as u16,
        protocol: u16::from_be(tc.header.info as u16),
        handle: tc.header.handle.into(),
        kind,
        fw,
    })
}

#[cfg(test)]
pub(crate) mod tests;
