//! plugctl's tree on a device, Yelp's layout:
//!
//! ```text
//! root prio 1: bands 4
//!   1:1 pfifo 10:   1:2 pfifo 20:   1:3 pfifo 30:
//!   1:4 plug 40:  (limit = plug_limit bytes; released after creation)
//!   filters on 1:  fw handle MARK classid 1:4   (prio 1 ip, prio 2 ipv6)
//! nf_tables: table inet TABLE
//!   set lease4 / lease6 (ipv4_addr [. inet_service], flags timeout): the lease
//!   chain output (filter, hook output, priority mangle)
//!   one rule per address family: tcp flags & (syn|ack) == syn,
//!     daddr [. dport] in the lease set -> mark MARK
//! ```
//!
//! The sets are empty but while a hold is leased: a hold adds the
//! configured address [. port] elements with a timeout (see
//! [`crate::hold::lease`]), so if every plugctl process dies, new SYNs stop
//! being steered into the plug when the lease runs out.
//!
//! The tree is data: `PARTS` lists its parts in the order they are built,
//! one file per kind (`root.rs`, `fifo.rs`, `plug.rs`, `filter.rs`,
//! `rules.rs`), each a `TreePart` that knows how it is named, how it
//! compares with what the kernel has, and how it is created, undone,
//! removed and printed as `tc`/`nft` commands. [`observe`], [`setup`] (with
//! its rollback), [`teardown`] and the dry-run [`commands`] are loops over
//! that list, each over one look at the kernel (`Seen`).

mod fifo;
mod filter;
mod plug;
mod root;
mod rules;

use std::fmt;

use plugctl_netlink::nft::{DumpedSet, Rule};
use plugctl_netlink::tc::{Filter, Handle, Qdisc, QdiscKind, QueueStats};
use plugctl_netlink::Error as NlError;
use serde::Serialize;

use crate::config::Config;
use crate::error::Error;
use crate::kernel::Kernel;

pub use filter::filters;
pub(crate) use plug::{close, open};
pub use plug::{find_plug, PLUG, PLUG_PARENT};
pub use root::{BANDS, PRIO};
pub use rules::{lease_keys, rules, sets, CHAIN};

/// What [`TreePart::remove`] did: the line `teardown` prints, if any.
type Removed = Result<Option<String>, Error>;

/// One part of the tree: everything plugctl does with it.
trait TreePart: Sync {
    /// What it is, in `tc`/`nft` words (as `status` prints it).
    fn name(&self, cfg: &Config) -> String;
    /// How what the kernel has compares with it.
    fn check(&self, cfg: &Config, seen: &Seen) -> Check;
    /// Found different, `setup` replaces it in place (`true`), or refuses
    /// it without `--force` (`false`: it may be someone else's).
    fn replaced_in_place(&self) -> bool {
        false
    }
    /// Why `setup` refuses it when it differs (`check` says how).
    fn conflict(&self, cfg: &Config, _seen: &Seen, check: &Check) -> String {
        format!("{} on {}: {check:?}", self.name(cfg), cfg.device)
    }
    /// Create it (or replace it); the line `setup` prints.
    fn create(&self, k: &mut dyn Kernel, cfg: &Config, seen: &Seen) -> Result<String, Error>;
    /// Undo [`TreePart::create`] because a later step of the same `setup`
    /// failed (`seen`: the kernel before it).
    fn undo(&self, k: &mut dyn Kernel, cfg: &Config, seen: &Seen) -> Result<(), NlError>;
    /// The `tc`/`nft` commands equivalent to [`TreePart::create`].
    fn commands(&self, cfg: &Config) -> Vec<String>;
    /// `teardown`'s step for it, if it has one of its own (a fifo or a
    /// filter goes with the root); the line `teardown` prints.
    fn remove(&self, _k: &mut dyn Kernel, _cfg: &Config, _seen: &Seen) -> Removed {
        Ok(None)
    }
    /// The commands equivalent to [`TreePart::remove`].
    fn remove_commands(&self, _cfg: &Config) -> Vec<String> {
        vec![]
    }
    /// Removed before every other part: what it holds must leave before
    /// anything above it is deleted.
    fn removed_first(&self) -> bool {
        false
    }
}

/// The parts, in the order `setup` builds them and `status` lists them.
static PARTS: [&dyn TreePart; 8] = [
    &root::Root,
    &fifo::FIFOS[0],
    &fifo::FIFOS[1],
    &fifo::FIFOS[2],
    &plug::Plug,
    &filter::IP,
    &filter::IPV6,
    &rules::Rules,
];

/// The parts in the order `teardown` removes them.
fn teardown_order() -> impl Iterator<Item = &'static dyn TreePart> {
    let first = PARTS.iter().filter(|p| p.removed_first());
    first
        .chain(PARTS.iter().filter(|p| !p.removed_first()))
        .copied()
}

/// One look at the kernel: the device's qdiscs, the filters on plugctl's
/// root and plugctl's nf_tables rules.
#[derive(Debug, Clone)]
struct Seen {
    ifindex: i32,
    qdiscs: Vec<Qdisc>,
    /// The root is plugctl's prio: what hangs below it is plugctl's to judge.
    root_ours: bool,
    /// Empty unless the root is plugctl's.
    filters: Vec<Filter>,
    /// `None`: no such table.
    rules: Option<Vec<Option<Rule>>>,
    /// The configured lease sets as found (empty if there is no table).
    sets: Vec<Option<DumpedSet>>,
}

impl Seen {
    fn read(k: &mut dyn Kernel, cfg: &Config) -> Result<Seen, Error> {
        let ifindex = k
            .ifindex(&cfg.device)
            .map_err(|e| Error::netlink("looking up the device", e))?
            .ok_or_else(|| Error::NoDevice(cfg.device.clone()))?;
        let qdiscs = k
            .qdiscs(ifindex)
            .map_err(|e| Error::netlink("reading qdiscs", e))?;
        let root_ours = root::is_ours(&qdiscs);
        let filters = if root_ours {
            k.filters(ifindex, PRIO)
                .map_err(|e| Error::netlink("reading filters", e))?
        } else {
            vec![]
        };
        let rules = k
            .nft_rules(&cfg.table, CHAIN)
            .map_err(|e| Error::netlink("reading nf_tables rules", e))?;
        let sets = match rules {
            None => vec![],
            Some(_) => sets(cfg)
                .iter()
                .map(|s| k.nft_set(&cfg.table, &s.name))
                .collect::<Result<_, _>>()
                .map_err(|e| Error::netlink("reading nf_tables sets", e))?,
        };
        Ok(Seen {
            ifindex,
            qdiscs,
            root_ours,
            filters,
            rules,
            sets,
        })
    }

    /// How the qdisc in slot `parent` below plugctl's root compares with
    /// `kind` `handle` (missing while the root is not plugctl's).
    fn check_child(&self, parent: Handle, handle: Handle, kind: &str) -> Check {
        match slot(&self.qdiscs, parent).filter(|_| self.root_ours) {
            None => Check::Missing,
            Some(q) if q.handle == handle && q.kind.name() == kind => Check::Ok,
            Some(q) => Check::Differs(format!("found {}", describe(q))),
        }
    }
}

/// The qdisc in slot `parent`; a default qdisc (handle 0) counts as an
/// empty slot.
fn slot(qs: &[Qdisc], parent: Handle) -> Option<&Qdisc> {
    qs.iter().find(|q| q.parent == parent && q.handle.0 != 0)
}

/// A qdisc in `tc` words: `prio 1: bands 4`, `fq_codel 8001:`.
fn describe(q: &Qdisc) -> String {
    let opts = match &q.kind {
        QdiscKind::Prio(p) => format!(" bands {}", p.bands),
        _ => String::new(),
    };
    format!("{} {}{opts}", q.kind.name(), q.handle)
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
    #[serde(skip)]
    seen: Seen,
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
}

/// Compare the kernel's state on `cfg.device` with `cfg`.
pub fn observe(k: &mut dyn Kernel, cfg: &Config) -> Result<Observed, Error> {
    let seen = Seen::read(k, cfg)?;
    Ok(Observed {
        ifindex: seen.ifindex,
        parts: PARTS
            .iter()
            .map(|p| Part {
                name: p.name(cfg),
                check: p.check(cfg, &seen),
            })
            .collect(),
        plug_stats: find_plug(&seen.qdiscs).map(|q| q.stats),
        seen,
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
        f.write_str(&self.lines.join("\n"))
    }
}

/// Build whatever part of the tree is missing. Running it on a complete tree
/// changes nothing. A root qdisc or filter that is not plugctl's is left
/// alone and reported unless `force`, which replaces it. If a step fails,
/// what this run created is removed again before the error is returned.
pub fn setup(k: &mut dyn Kernel, cfg: &Config, force: bool) -> Result<Changes, Error> {
    let mut obs = observe(k, cfg)?;
    let mut changes = Changes::default();
    let conflict = PARTS
        .iter()
        .zip(&obs.parts)
        .find(|(p, part)| matches!(part.check, Check::Differs(_)) && !p.replaced_in_place());
    if let Some((p, part)) = conflict {
        if !force {
            return Err(Error::Conflict(p.conflict(cfg, &obs.seen, &part.check)));
        }
        changes.lines.push(root::replace(k, cfg, &obs.seen)?);
        obs = observe(k, cfg)?;
    }

    let mut created: Vec<&dyn TreePart> = Vec::new();
    for (p, part) in PARTS.iter().zip(&obs.parts) {
        if part.check == Check::Ok {
            continue;
        }
        match p.create(k, cfg, &obs.seen) {
            Ok(line) => changes.lines.push(line),
            Err(e) => {
                rollback(k, cfg, &obs.seen, &created);
                return Err(e);
            }
        }
        created.push(*p);
    }
    // Every part that was not there is now: the plug too.
    changes.plug_created = !obs.has_plug();
    Ok(changes)
}

/// Undo what this run of `setup` created, last first.
fn rollback(k: &mut dyn Kernel, cfg: &Config, seen: &Seen, created: &[&dyn TreePart]) {
    for p in created.iter().rev() {
        if let Err(e) = p.undo(k, cfg, seen) {
            tracing::warn!("rollback step failed: {e}");
        }
    }
}

/// Remove exactly what `setup` builds: release the plug (deleting it would
/// drop what it holds), delete the root prio (children and filters go with
/// it) and plugctl's nf_tables table. A root qdisc that is not plugctl's is
/// left alone.
pub fn teardown(k: &mut dyn Kernel, cfg: &Config) -> Result<Changes, Error> {
    let seen = Seen::read(k, cfg)?;
    let mut changes = Changes::default();
    for p in teardown_order() {
        changes.lines.extend(p.remove(k, cfg, &seen)?);
    }
    Ok(changes)
}

/// The `tc`/`nft` commands equivalent to `setup` (for `--dry-run`).
pub fn commands(cfg: &Config) -> Vec<String> {
    PARTS.iter().flat_map(|p| p.commands(cfg)).collect()
}

/// The `tc`/`nft` commands equivalent to `teardown`.
pub fn teardown_commands(cfg: &Config) -> Vec<String> {
    teardown_order()
        .flat_map(|p| p.remove_commands(cfg))
        .collect()
}

#[cfg(test)]
mod tests;
