//! plugctl's tree on a device, Yelp's layout:
//!
//! ```text
//! root prio 1: bands 4
//!   1:1 pfifo 10:   1:2 pfifo 20:   1:3 pfifo 30:
//!   1:4 plug 40:  (limit = plug_limit bytes; released after creation)
//!   filters on 1:  fw handle MARK classid 1:4   (prio 1 ip, prio 2 ipv6)
//! nf_tables: table inet TABLE, chain output (filter, hook output, priority mangle)
//!   one rule per address [x port]: tcp flags & (syn|ack) == syn, daddr ADDR -> mark MARK
//! ```
//!
//! This module compares what the kernel has with that layout ([`observe`]),
//! builds it ([`setup`]), removes it ([`teardown`]) and prints it as the
//! equivalent `tc`/`nft` commands ([`commands`]).

use std::fmt;

use plugctl_netlink::nft::{MarkRule, Ruleset};
use plugctl_netlink::tc::{
    FwFilter, FwOptions, Handle, PlugAction, PlugOptions, PrioOptions, Qdisc, QdiscKind,
    QueueStats, Write, ETH_P_IP, ETH_P_IPV6,
};
use serde::Serialize;

use crate::config::Config;
use crate::error::Error;
use crate::kernel::Kernel;

/// The root `prio` qdisc's handle.
pub const PRIO: Handle = Handle::new(1, 0);
/// Its number of bands (band 4 only receives what the filter sends there).
pub const BANDS: u32 = 4;
/// `(parent class, handle)` of the three `pfifo` children.
pub const FIFOS: [(Handle, Handle); 3] = [
    (Handle::new(1, 1), Handle::new(0x10, 0)),
    (Handle::new(1, 2), Handle::new(0x20, 0)),
    (Handle::new(1, 3), Handle::new(0x30, 0)),
];
/// The class the plug hangs on.
pub const PLUG_PARENT: Handle = Handle::new(1, 4);
/// The plug's handle.
pub const PLUG: Handle = Handle::new(0x40, 0);
/// plugctl's nf_tables chain.
pub const CHAIN: &str = "output";

/// plugctl's plug among a device's qdiscs: kind `plug`, handle [`PLUG`]
/// under [`PLUG_PARENT`], with plugctl's root prio above it.
pub fn find_plug(qs: &[Qdisc]) -> Option<&Qdisc> {
    let root_ours = qs
        .iter()
        .any(|r| r.parent == Handle::ROOT && r.handle == PRIO);
    qs.iter().find(|q| {
        root_ours && q.parent == PLUG_PARENT && q.handle == PLUG && q.kind.name() == "plug"
    })
}

/// The fw filters: IPv4 at prio 1, IPv6 at prio 2 (one protocol per prio).
pub fn filters(cfg: &Config, ifindex: i32) -> [FwFilter; 2] {
    let f = |prio, protocol| FwFilter {
        ifindex,
        parent: PRIO,
        prio,
        protocol,
        mark: cfg.mark,
        options: FwOptions {
            classid: PLUG_PARENT,
            mask: None,
        },
    };
    [f(1, ETH_P_IP), f(2, ETH_P_IPV6)]
}

/// The nf_tables rules: one per address, times each port if ports are set.
pub fn rules(cfg: &Config) -> Vec<MarkRule> {
    let ports: Vec<Option<u16>> = if cfg.ports.is_empty() {
        vec![None]
    } else {
        cfg.ports.iter().copied().map(Some).collect()
    };
    cfg.addresses
        .iter()
        .flat_map(|&addr| {
            ports.iter().map(move |&port| MarkRule {
                addr,
                port,
                mark: cfg.mark,
            })
        })
        .collect()
}

fn plug_create(cfg: &Config) -> QdiscKind {
    QdiscKind::Plug(Some(PlugOptions::create(cfg.plug_limit)))
}

/// The `tc`/`nft` commands equivalent to `setup` (for `--dry-run`).
pub fn commands(cfg: &Config) -> Vec<String> {
    let dev = &cfg.device;
    let mut c = vec![format!(
        "tc qdisc add dev {dev} root handle {PRIO} prio bands {BANDS}"
    )];
    for (parent, handle) in FIFOS {
        c.push(format!(
            "tc qdisc add dev {dev} parent {parent} handle {handle} pfifo"
        ));
    }
    c.push(format!(
        "tc qdisc add dev {dev} parent {PLUG_PARENT} handle {PLUG} plug limit {}",
        cfg.plug_limit
    ));
    c.push(format!(
        "tc qdisc change dev {dev} parent {PLUG_PARENT} handle {PLUG} plug release_indefinite"
    ));
    for f in filters(cfg, 0) {
        let proto = if f.protocol == ETH_P_IP { "ip" } else { "ipv6" };
        c.push(format!(
            "tc filter add dev {dev} parent {PRIO} protocol {proto} prio {} handle {} fw classid {PLUG_PARENT}",
            f.prio, f.mark
        ));
    }
    let t = &cfg.table;
    c.push(format!("nft add table inet {t}"));
    c.push(format!(
        "nft add chain inet {t} {CHAIN} '{{ type filter hook output priority mangle; policy accept; }}'"
    ));
    for r in rules(cfg) {
        c.push(format!(
            "nft add rule inet {t} {CHAIN} {}",
            r.to_nft_syntax()
        ));
    }
    c
}

/// The `tc`/`nft` commands equivalent to `teardown`.
pub fn teardown_commands(cfg: &Config) -> Vec<String> {
    let dev = &cfg.device;
    vec![
        format!(
            "tc qdisc change dev {dev} parent {PLUG_PARENT} handle {PLUG} plug release_indefinite"
        ),
        format!("tc qdisc del dev {dev} root handle {PRIO}"),
        format!("nft delete table inet {}", cfg.table),
    ]
}

/// How one part of the tree compares with the configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "state", content = "detail")]
pub enum Check {
    /// Present as configured.
    Ok,
    /// Not there.
    Missing,
    /// Something else is there.
    Differs(String),
}

/// One part of the tree and how it compares.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Part {
    /// What it is, in `tc`/`nft` words.
    pub name: String,
    /// How it compares.
    pub check: Check,
}

/// What the kernel has, compared with the configuration.
#[derive(Debug, Clone, Serialize)]
pub struct Observed {
    /// Device index.
    pub ifindex: i32,
    /// Root, pfifos, plug, filters, rules, in that order.
    pub parts: Vec<Part>,
    /// The plug's counters, if the plug exists.
    #[serde(skip)]
    pub plug_stats: Option<QueueStats>,
    /// The root qdisc when it is not plugctl's and not a default one.
    #[serde(skip)]
    foreign_root: Option<String>,
    #[serde(skip)]
    root_ours: bool,
    #[serde(skip)]
    table_exists: bool,
}

impl Observed {
    /// Every part is as configured.
    pub fn complete(&self) -> bool {
        self.parts.iter().all(|p| p.check == Check::Ok)
    }
    /// No part is there at all.
    pub fn absent(&self) -> bool {
        self.parts.iter().all(|p| p.check == Check::Missing)
    }
    /// Whether the plug qdisc exists.
    pub fn has_plug(&self) -> bool {
        self.plug_stats.is_some()
    }
    fn check(&self, idx: usize) -> &Check {
        &self.parts[idx].check
    }
}

fn describe(q: &Qdisc) -> String {
    let opts = match &q.kind {
        QdiscKind::Prio(p) => format!(" bands {}", p.bands),
        _ => String::new(),
    };
    format!("{} {}{opts}", q.kind.name(), q.handle)
}

fn find(qs: &[Qdisc], parent: Handle) -> Option<&Qdisc> {
    // Default qdiscs (handle 0) count as empty slots.
    qs.iter().find(|q| q.parent == parent && q.handle.0 != 0)
}

fn qdisc_check(found: Option<&Qdisc>, handle: Handle, kind: &str) -> Check {
    match found {
        None => Check::Missing,
        Some(q) if q.handle == handle && q.kind.name() == kind => Check::Ok,
        Some(q) => Check::Differs(format!("found {}", describe(q))),
    }
}

/// Index of the first filter part and of the rules part in `Observed::parts`.
const FILTER0: usize = 5;
const RULES: usize = 7;

/// Compare the kernel's state on `cfg.device` with `cfg`.
pub fn observe(k: &mut dyn Kernel, cfg: &Config) -> Result<Observed, Error> {
    let ifindex = k
        .ifindex(&cfg.device)
        .map_err(|e| Error::netlink("looking up the device", e))?
        .ok_or_else(|| Error::NoDevice(cfg.device.clone()))?;
    let qs = k
        .qdiscs(ifindex)
        .map_err(|e| Error::netlink("reading qdiscs", e))?;
    let mut parts = Vec::new();

    let root = find(&qs, Handle::ROOT);
    let root_ours = matches!(root, Some(q) if q.handle == PRIO && q.kind == QdiscKind::Prio(PrioOptions::with_bands(BANDS)));
    let foreign_root = root.filter(|_| !root_ours).map(describe);
    parts.push(Part {
        name: format!("qdisc prio {PRIO} root bands {BANDS}"),
        check: match root {
            None => Check::Missing,
            Some(_) if root_ours => Check::Ok,
            Some(q) => Check::Differs(format!("found {}", describe(q))),
        },
    });
    for (parent, handle) in FIFOS {
        let check = if root_ours {
            qdisc_check(find(&qs, parent), handle, "pfifo")
        } else {
            Check::Missing
        };
        parts.push(Part {
            name: format!("qdisc pfifo {handle} parent {parent}"),
            check,
        });
    }
    let plug = if root_ours {
        find(&qs, PLUG_PARENT)
    } else {
        None
    };
    let plug_check = qdisc_check(plug, PLUG, "plug");
    let plug_stats = (plug_check == Check::Ok)
        .then(|| plug.map(|q| q.stats))
        .flatten();
    parts.push(Part {
        name: format!("qdisc plug {PLUG} parent {PLUG_PARENT}"),
        check: plug_check,
    });

    let found_filters = if root_ours {
        k.filters(ifindex, PRIO)
            .map_err(|e| Error::netlink("reading filters", e))?
    } else {
        vec![]
    };
    for want in filters(cfg, ifindex) {
        let proto = if want.protocol == ETH_P_IP {
            "ip"
        } else {
            "ipv6"
        };
        let at_prio: Vec<_> = found_filters
            .iter()
            .filter(|f| f.prio == want.prio && f.handle != 0)
            .collect();
        let check = match at_prio.as_slice() {
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
        };
        parts.push(Part {
            name: format!(
                "filter {proto} prio {} fw handle {} classid {PLUG_PARENT}",
                want.prio, want.mark
            ),
            check,
        });
    }

    let found_rules = k
        .nft_rules(&cfg.table, CHAIN)
        .map_err(|e| Error::netlink("reading nf_tables rules", e))?;
    let want_rules = rules(cfg);
    let table_exists = found_rules.is_some();
    parts.push(Part {
        name: format!(
            "nft table inet {} chain {CHAIN}: {} mark rule(s)",
            cfg.table,
            want_rules.len()
        ),
        check: match found_rules {
            None => Check::Missing,
            Some(found)
                if found.len() == want_rules.len()
                    && found
                        .iter()
                        .zip(&want_rules)
                        .all(|(f, w)| f.as_ref() == Some(w)) =>
            {
                Check::Ok
            }
            Some(found) => Check::Differs(format!(
                "found {} rule(s), {} of them plugctl mark rules as configured",
                found.len(),
                found
                    .iter()
                    .filter(|f| f.as_ref().is_some_and(|f| want_rules.contains(f)))
                    .count()
            )),
        },
    });
    debug_assert_eq!(parts.len(), RULES + 1);

    Ok(Observed {
        ifindex,
        parts,
        plug_stats,
        foreign_root,
        root_ours,
        table_exists,
    })
}

/// What `setup` or `teardown` changed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Changes {
    /// One line per change, as the CLI prints them.
    pub lines: Vec<String>,
    /// `setup` created the plug qdisc (and released it): any recorded plug
    /// state belongs to a plug that no longer exists.
    #[serde(skip)]
    pub plug_created: bool,
}

impl fmt::Display for Changes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.lines.is_empty() {
            return f.write_str("nothing to change");
        }
        for (i, c) in self.lines.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{c}")?;
        }
        Ok(())
    }
}

/// Something `setup` created, to undo if a later step fails.
enum Undo {
    Root,
    Qdisc(Handle, Handle),
    Filter(FwFilter),
    Table,
}

/// Build whatever part of the tree is missing. Running it on a complete tree
/// changes nothing. A root qdisc or filter that is not plugctl's is left
/// alone and reported unless `force`, which replaces it. If a step fails,
/// what this run created is removed again before the error is returned.
pub fn setup(k: &mut dyn Kernel, cfg: &Config, force: bool) -> Result<Changes, Error> {
    let obs = observe(k, cfg)?;
    let ifindex = obs.ifindex;
    let mut changes = Changes::default();

    let mut rebuild = false;
    if let Some(foreign) = &obs.foreign_root {
        if !force {
            return Err(Error::Conflict(format!(
                "device {} has a root qdisc that is not plugctl's: {foreign}",
                cfg.device
            )));
        }
        rebuild = true;
    }
    // Our root with something foreign below it or in our filter slots.
    let differs: Vec<&Part> = obs.parts[1..RULES]
        .iter()
        .filter(|p| matches!(p.check, Check::Differs(_)))
        .collect();
    if obs.root_ours && !differs.is_empty() {
        if !force {
            let d = &differs[0];
            return Err(Error::Conflict(format!(
                "{} on {}: {:?}",
                d.name, cfg.device, d.check
            )));
        }
        rebuild = true;
    }
    let mut obs = obs;
    if rebuild {
        // With --force: release first (deleting a plug drops what it holds).
        if obs.has_plug() {
            let _ = release_and_drain(k, ifindex);
        }
        k.del_qdisc(ifindex, Handle::ROOT, Handle::UNSPEC)
            .map_err(|e| Error::netlink("removing the existing root qdisc (--force)", e))?;
        changes.lines.push(format!(
            "removed the root qdisc on {} (--force)",
            cfg.device
        ));
        obs = observe(k, cfg)?;
    }

    let mut undo: Vec<Undo> = Vec::new();
    let result = build(k, cfg, &obs, &mut undo, &mut changes);
    if let Err(e) = result {
        rollback(k, cfg, ifindex, undo);
        return Err(e);
    }
    Ok(changes)
}

fn build(
    k: &mut dyn Kernel,
    cfg: &Config,
    obs: &Observed,
    undo: &mut Vec<Undo>,
    changes: &mut Changes,
) -> Result<(), Error> {
    let ifindex = obs.ifindex;
    let dev = &cfg.device;
    if *obs.check(0) == Check::Missing {
        k.new_qdisc(
            ifindex,
            Handle::ROOT,
            PRIO,
            &QdiscKind::Prio(PrioOptions::with_bands(BANDS)),
            Write::Create,
        )
        .map_err(|e| {
            Error::netlink_building(format!("creating the prio qdisc on {dev}"), "sch_prio", e)
        })?;
        undo.push(Undo::Root);
        changes.lines.push(format!(
            "added qdisc prio {PRIO} root bands {BANDS} on {dev}"
        ));
    }
    for (i, (parent, handle)) in FIFOS.into_iter().enumerate() {
        if *obs.check(1 + i) == Check::Missing {
            k.new_qdisc(
                ifindex,
                parent,
                handle,
                &QdiscKind::Pfifo(None),
                Write::Create,
            )
            .map_err(|e| {
                Error::netlink_building(format!("creating pfifo {handle}"), "sch_fifo", e)
            })?;
            undo.push(Undo::Qdisc(parent, handle));
            changes
                .lines
                .push(format!("added qdisc pfifo {handle} parent {parent}"));
        }
    }
    if *obs.check(4) == Check::Missing {
        k.new_qdisc(ifindex, PLUG_PARENT, PLUG, &plug_create(cfg), Write::Create)
            .map_err(|e| Error::netlink_building("creating the plug qdisc", "sch_plug", e))?;
        undo.push(Undo::Qdisc(PLUG_PARENT, PLUG));
        // A new plug starts closed: open it before anything is steered into it.
        k.new_qdisc(
            ifindex,
            PLUG_PARENT,
            PLUG,
            &QdiscKind::Plug(Some(PlugOptions::action(PlugAction::ReleaseIndefinite))),
            Write::Change,
        )
        .map_err(|e| Error::netlink("releasing the new plug", e))?;
        changes.lines.push(format!(
            "added qdisc plug {PLUG} parent {PLUG_PARENT} limit {} (released)",
            cfg.plug_limit
        ));
        changes.plug_created = true;
    }
    for (i, f) in filters(cfg, ifindex).into_iter().enumerate() {
        if *obs.check(FILTER0 + i) == Check::Missing {
            k.new_filter(&f)
                .map_err(|e| Error::netlink_building("adding the fw filter", "cls_fw", e))?;
            undo.push(Undo::Filter(f));
            changes.lines.push(
                obs.parts[FILTER0 + i]
                    .name
                    .replace("filter", "added filter"),
            );
        }
    }
    if *obs.check(RULES) != Check::Ok {
        let rules = rules(cfg);
        let rs = Ruleset::new(&cfg.table, CHAIN, &rules);
        k.nft_install(&rs).map_err(|e| {
            Error::netlink_building("installing the nf_tables mark rule", "nf_tables", e)
        })?;
        if !obs.table_exists {
            undo.push(Undo::Table);
        }
        changes.lines.push(format!(
            "installed nft table inet {} with {} mark rule(s)",
            cfg.table,
            rules.len()
        ));
    }
    Ok(())
}

fn rollback(k: &mut dyn Kernel, cfg: &Config, ifindex: i32, undo: Vec<Undo>) {
    for u in undo.into_iter().rev() {
        let r = match &u {
            Undo::Root => k.del_qdisc(ifindex, Handle::ROOT, PRIO),
            Undo::Qdisc(parent, handle) => k.del_qdisc(ifindex, *parent, *handle),
            Undo::Filter(f) => k.del_filter(f),
            Undo::Table => k.nft_delete(&cfg.table),
        };
        if let Err(e) = r {
            tracing::warn!("rollback step failed: {e}");
        }
    }
}

/// Longest wait for a released plug to hand its packets on before it is
/// deleted.
const DRAIN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(1);

/// Release the plug and wait until it holds nothing. Releasing only
/// schedules the device queue; the held packets leave in a softirq a moment
/// later, and deleting the qdisc before that would drop them (clients would
/// wait for their 1 s SYN retransmission).
fn release_and_drain(k: &mut dyn Kernel, ifindex: i32) -> Result<(), plugctl_netlink::Error> {
    let release = QdiscKind::Plug(Some(PlugOptions::action(PlugAction::ReleaseIndefinite)));
    k.new_qdisc(ifindex, PLUG_PARENT, PLUG, &release, Write::Change)?;
    let start = std::time::Instant::now();
    loop {
        let held = k
            .qdiscs(ifindex)?
            .iter()
            .find(|q| q.parent == PLUG_PARENT && q.handle == PLUG)
            .map_or(0, |q| q.stats.qlen);
        if held == 0 {
            return Ok(());
        }
        if start.elapsed() > DRAIN_TIMEOUT {
            tracing::warn!("plug still holds {held} packets after release; deleting it drops them");
            return Ok(());
        }
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
}

/// Remove exactly what `setup` builds: release the plug (deleting it would
/// drop what it holds), delete the root prio (children and filters go with
/// it) and plugctl's nf_tables table. A root qdisc that is not plugctl's is
/// left alone.
pub fn teardown(k: &mut dyn Kernel, cfg: &Config) -> Result<Changes, Error> {
    let mut changes = Changes::default();
    let obs = observe(k, cfg)?;
    if obs.has_plug() {
        release_and_drain(k, obs.ifindex).map_err(|e| Error::netlink("releasing the plug", e))?;
        changes.lines.push(format!("released plug {PLUG}"));
    }
    if obs.root_ours {
        k.del_qdisc(obs.ifindex, Handle::ROOT, PRIO)
            .map_err(|e| Error::netlink("deleting the prio qdisc", e))?;
        changes.lines.push(format!(
            "deleted qdisc prio {PRIO} root on {} (with its children and filters)",
            cfg.device
        ));
    } else if let Some(f) = &obs.foreign_root {
        tracing::info!(
            "root qdisc on {} is not plugctl's ({f}); left alone",
            cfg.device
        );
    }
    if obs.table_exists {
        k.nft_delete(&cfg.table)
            .map_err(|e| Error::netlink("deleting the nf_tables table", e))?;
        changes
            .lines
            .push(format!("deleted nft table inet {}", cfg.table));
    }
    Ok(changes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::fake::FakeKernel;
    use plugctl_netlink::KernelError;

    fn fails_with(prefix: &str, errno: i32, message: &str) -> Option<(String, KernelError)> {
        Some((
            prefix.into(),
            KernelError {
                errno,
                message: Some(message.into()),
            },
        ))
    }

    #[test]
    fn setup_builds_in_order_and_second_run_changes_nothing() {
        let mut k = FakeKernel::new();
        let cfg = Config::default();
        let changes = setup(&mut k, &cfg, false).unwrap();
        assert_eq!(changes.lines.len(), 8, "{changes}");
        assert!(changes.plug_created);
        assert_eq!(
            k.calls,
            [
                "new_qdisc prio 1: Create",
                "new_qdisc pfifo 10: Create",
                "new_qdisc pfifo 20: Create",
                "new_qdisc pfifo 30: Create",
                "new_qdisc plug 40: Create",
                "new_qdisc plug 40: Change release_indefinite",
                "new_filter prio 1",
                "new_filter prio 2",
                "nft_install plugctl",
            ]
        );
        assert!(observe(&mut k, &cfg).unwrap().complete());
        k.calls.clear();
        let again = setup(&mut k, &cfg, false).unwrap();
        assert_eq!(again.to_string(), "nothing to change");
        assert!(!again.plug_created);
        assert!(k.calls.is_empty(), "{:?}", k.calls);
    }

    #[test]
    fn failure_half_way_rolls_back_what_this_run_created() {
        let mut k = FakeKernel::new();
        k.fail_on = fails_with("new_filter prio 1", libc::ENOENT, "TC classifier not found");
        let err = setup(&mut k, &Config::default(), false).unwrap_err();
        assert!(
            matches!(
                err,
                Error::MissingKernelFeature {
                    feature: "cls_fw",
                    ..
                }
            ),
            "{err}"
        );
        assert!(
            k.qdiscs.iter().all(|q| q.handle.0 == 0),
            "left behind: {:?}",
            k.qdiscs
        );
        assert!(k.filters.is_empty() && k.table.is_none());
    }

    #[test]
    fn failure_of_the_rule_keeps_what_existed_before() {
        let mut k = FakeKernel::new();
        let cfg = Config::default();
        setup(&mut k, &cfg, false).unwrap();
        // The rule is gone (someone flushed the ruleset); re-adding it fails.
        k.table = None;
        k.fail_on = fails_with("nft_install", libc::EPERM, "Operation not permitted");
        let err = setup(&mut k, &cfg, false).unwrap_err();
        assert!(matches!(err, Error::Permission { .. }), "{err}");
        // The tc tree predates this run: it stays.
        assert!(k.qdiscs.iter().any(|q| q.handle == PLUG));
        assert_eq!(k.filters.len(), 2);
    }

    #[test]
    fn foreign_root_is_refused_unless_forced() {
        let mut k = FakeKernel::new();
        k.qdiscs[0].handle = Handle::new(0x8001, 0);
        k.qdiscs[0].kind = QdiscKind::Other {
            kind: "fq_codel".into(),
            options: None,
        };
        let err = setup(&mut k, &Config::default(), false).unwrap_err();
        assert!(
            matches!(err, Error::Conflict(ref m) if m.contains("fq_codel 8001:")),
            "{err}"
        );
        assert!(k.calls.is_empty());
        setup(&mut k, &Config::default(), true).unwrap();
        assert_eq!(k.calls[0], "del_qdisc root 0:");
        assert!(observe(&mut k, &Config::default()).unwrap().complete());
    }

    #[test]
    fn teardown_releases_then_removes_only_what_setup_built() {
        let mut k = FakeKernel::new();
        let cfg = Config::default();
        setup(&mut k, &cfg, false).unwrap();
        k.calls.clear();
        teardown(&mut k, &cfg).unwrap();
        assert_eq!(
            k.calls,
            [
                "new_qdisc plug 40: Change release_indefinite",
                "del_qdisc root 1:",
                "nft_delete plugctl"
            ]
        );
        assert!(observe(&mut k, &cfg).unwrap().absent());
        k.calls.clear();
        assert_eq!(
            teardown(&mut k, &cfg).unwrap().to_string(),
            "nothing to change"
        );
        assert!(k.calls.is_empty());
    }

    #[test]
    fn changed_config_is_reported_and_applied() {
        let mut k = FakeKernel::new();
        let mut cfg = Config::default();
        setup(&mut k, &cfg, false).unwrap();
        cfg.ports = vec![80, 443];
        let obs = observe(&mut k, &cfg).unwrap();
        assert!(matches!(obs.parts[RULES].check, Check::Differs(_)));
        k.calls.clear();
        setup(&mut k, &cfg, false).unwrap();
        assert_eq!(k.calls, ["nft_install plugctl"]);
        assert_eq!(k.table.as_ref().map(Vec::len), Some(2));
    }

    #[test]
    fn dry_run_commands_name_every_part() {
        let cfg = Config {
            addresses: vec![
                "169.254.255.254".parse().unwrap(),
                "fd00::1".parse().unwrap(),
            ],
            ..Config::default()
        };
        let c = commands(&cfg).join("\n");
        assert!(
            c.contains("tc qdisc add dev lo root handle 1: prio bands 4"),
            "{c}"
        );
        assert!(
            c.contains("protocol ipv6 prio 2 handle 1 fw classid 1:4"),
            "{c}"
        );
        assert_eq!(c.matches("nft add rule").count(), 2, "{c}");
    }
}
