//! A fake kernel that keeps qdiscs, filters and the nf_tables table in
//! memory, records every call and can be told to fail one of them: the
//! orchestration tests (idempotence, rollback, conflicts) need no kernel.

use plugctl_netlink::diag::Listener;
use plugctl_netlink::nft::{self, Batch, DumpedSet, Rule, Ruleset, SetElem, SetKeys};
use plugctl_netlink::tc::{
    Filter, FwFilter, Handle, Qdisc, QdiscKind, QueueStats, Write as TcWrite,
};
use plugctl_netlink::{Error as NlError, KernelError};

use super::Kernel;

/// The in-memory kernel.
#[derive(Debug, Default)]
pub struct FakeKernel {
    pub qdiscs: Vec<Qdisc>,
    pub filters: Vec<Filter>,
    pub table: Option<Vec<Rule>>,
    /// The table's sets and their elements (`timeout_ms` as added,
    /// `expires_ms` as the kernel would report it right after).
    pub sets: Vec<(DumpedSet, Vec<SetElem>)>,
    /// Every lease batch sent, built by the real builders (first seq 1).
    pub lease_batches: Vec<Batch>,
    /// Every lease call, in order, e.g. `nft_lease renew 10000ms lease4`
    /// (kept apart from `calls`, which the tree and plug tests compare).
    pub lease_calls: Vec<String>,
    /// Every mutating call, in order, e.g. `new_qdisc plug 40: Change block`.
    pub calls: Vec<String>,
    /// Listening sockets.
    pub listeners: Vec<Listener>,
    /// Fail the first call whose description starts with this.
    pub fail_on: Option<(String, KernelError)>,
    /// Fail every listing of listening sockets.
    pub fail_listeners: bool,
    /// How many times the qdiscs were dumped (reads are not in `calls`).
    pub qdisc_dumps: usize,
    /// How many other reads were made: filter, nf_tables rule and
    /// listening-socket dumps.
    pub other_reads: usize,
}

impl FakeKernel {
    /// `lo` (ifindex 1) with its default `noqueue` root.
    pub fn new() -> FakeKernel {
        FakeKernel {
            qdiscs: vec![Qdisc {
                ifindex: 1,
                handle: Handle(0),
                parent: Handle::ROOT,
                kind: QdiscKind::Other {
                    kind: "noqueue".into(),
                    options: None,
                },
                stats: QueueStats::default(),
            }],
            ..FakeKernel::default()
        }
    }

    fn call(&mut self, what: String) -> Result<(), NlError> {
        if let Some((prefix, err)) = &self.fail_on {
            if what.starts_with(prefix.as_str()) {
                let err = err.clone();
                self.fail_on = None;
                self.calls.push(format!("{what} -> error"));
                return Err(NlError::Kernel(err));
            }
        }
        self.calls.push(what);
        Ok(())
    }

    /// Remove `handle` and everything below it.
    fn remove_tree(&mut self, handle: Handle) {
        let children: Vec<Handle> = self
            .qdiscs
            .iter()
            .filter(|q| {
                q.parent.major() == handle.major() && q.parent != Handle::ROOT && q.handle != handle
            })
            .map(|q| q.handle)
            .collect();
        self.qdiscs.retain(|q| q.handle != handle);
        self.filters.retain(|f| f.parent != handle);
        for c in children {
            self.remove_tree(c);
        }
    }
}

impl Kernel for FakeKernel {
    fn ifindex(&mut self, device: &str) -> Result<Option<i32>, NlError> {
        Ok((device == "lo").then_some(1))
    }

    fn qdiscs(&mut self, _ifindex: i32) -> Result<Vec<Qdisc>, NlError> {
        self.qdisc_dumps += 1;
        Ok(self.qdiscs.clone())
    }

    fn filters(&mut self, _ifindex: i32, parent: Handle) -> Result<Vec<Filter>, NlError> {
        self.other_reads += 1;
        Ok(self
            .filters
            .iter()
            .filter(|f| f.parent == parent)
            .cloned()
            .collect())
    }

    fn new_qdisc(
        &mut self,
        ifindex: i32,
        parent: Handle,
        handle: Handle,
        kind: &QdiscKind,
        how: TcWrite,
    ) -> Result<(), NlError> {
        // A plug change names its action (`block`, `release_indefinite`), so
        // a test can tell a release from a close.
        let action = match kind {
            QdiscKind::Plug(Some(o)) if how == TcWrite::Change => {
                format!(" {}", o.action.tc_keyword())
            }
            _ => String::new(),
        };
        self.call(format!(
            "new_qdisc {} {handle} {how:?}{action}",
            kind.name()
        ))?;
        match how {
            TcWrite::Change => {
                if !self.qdiscs.iter().any(|q| q.handle == handle) {
                    return Err(NlError::Kernel(KernelError {
                        errno: libc::ENOENT,
                        message: None,
                    }));
                }
            }
            TcWrite::Create => {
                // A default qdisc (handle 0) in the slot counts as empty.
                self.qdiscs
                    .retain(|q| !(q.parent == parent && q.handle.0 == 0));
                let kind = match kind {
                    QdiscKind::Plug(_) => QdiscKind::Plug(None),
                    k => k.clone(),
                };
                self.qdiscs.push(Qdisc {
                    ifindex,
                    handle,
                    parent,
                    kind,
                    stats: QueueStats::default(),
                });
            }
        }
        Ok(())
    }

    fn del_qdisc(&mut self, _ifindex: i32, parent: Handle, handle: Handle) -> Result<(), NlError> {
        self.call(format!("del_qdisc {parent} {handle}"))?;
        let target = self
            .qdiscs
            .iter()
            .find(|q| q.parent == parent && (handle.0 == 0 || q.handle == handle))
            .map(|q| q.handle);
        match target {
            Some(h) => {
                self.remove_tree(h);
                Ok(())
            }
            None => Err(NlError::Kernel(KernelError {
                errno: libc::ENOENT,
                message: None,
            })),
        }
    }

    fn new_filter(&mut self, f: &FwFilter) -> Result<(), NlError> {
        self.call(format!("new_filter prio {}", f.prio))?;
        self.filters.push(Filter {
            ifindex: f.ifindex,
            parent: f.parent,
            prio: f.prio,
            protocol: f.protocol,
            handle: f.mark,
            kind: "fw".into(),
            fw: Some(f.options),
        });
        Ok(())
    }

    fn del_filter(&mut self, f: &FwFilter) -> Result<(), NlError> {
        self.call(format!("del_filter prio {}", f.prio))?;
        self.filters
            .retain(|x| !(x.prio == f.prio && x.handle == f.mark));
        Ok(())
    }

    fn nft_install(&mut self, ruleset: &Ruleset<'_>) -> Result<(), NlError> {
        self.call(format!("nft_install {}", ruleset.table))?;
        self.table = Some(ruleset.rules.to_vec());
        // The replace batch deletes the table: old elements go with it.
        self.sets = ruleset
            .sets
            .iter()
            .map(|s| {
                let d = DumpedSet {
                    table: ruleset.table.into(),
                    name: s.name.clone(),
                    flags: nft::consts::NFT_SET_TIMEOUT,
                    key_type: s.key.key_type(),
                    key_len: s.key.key_len(),
                    timeout_ms: None,
                };
                (d, vec![])
            })
            .collect();
        Ok(())
    }

    fn nft_delete(&mut self, table: &str) -> Result<(), NlError> {
        self.call(format!("nft_delete {table}"))?;
        self.table = None;
        self.sets.clear();
        Ok(())
    }

    fn nft_rules(
        &mut self,
        _table: &str,
        _chain: &str,
    ) -> Result<Option<Vec<Option<Rule>>>, NlError> {
        self.other_reads += 1;
        Ok(self
            .table
            .as_ref()
            .map(|r| r.iter().cloned().map(Some).collect()))
    }

    fn nft_set(&mut self, _table: &str, set: &str) -> Result<Option<DumpedSet>, NlError> {
        self.other_reads += 1;
        Ok(self
            .sets
            .iter()
            .find(|(d, _)| d.name == set)
            .map(|(d, _)| d.clone()))
    }

    fn nft_set_elems(&mut self, _table: &str, set: &str) -> Result<Option<Vec<SetElem>>, NlError> {
        self.other_reads += 1;
        Ok(self
            .sets
            .iter()
            .find(|(d, _)| d.name == set)
            .map(|(_, e)| e.clone()))
    }

    /// Like the kernel: the whole batch or nothing; a set that does not
    /// exist fails it with -ENOENT.
    fn nft_lease(
        &mut self,
        table: &str,
        sets: &[SetKeys<'_>],
        timeout_ms: Option<u64>,
    ) -> Result<(), NlError> {
        let what = match timeout_ms {
            Some(t) => format!("renew {t}ms"),
            None => "end".into(),
        };
        let names: Vec<&str> = sets.iter().map(|s| s.set).collect();
        self.lease_calls
            .push(format!("nft_lease {what} {}", names.join(",")));
        let batch = match timeout_ms {
            Some(t) => nft::renew_lease_batch(table, sets, t, 1)?,
            None => nft::end_lease_batch(table, sets, 1)?,
        };
        self.lease_batches.push(batch);
        let enoent = NlError::Kernel(KernelError {
            errno: libc::ENOENT,
            message: None,
        });
        if sets
            .iter()
            .any(|s| !s.keys.is_empty() && !self.sets.iter().any(|(d, _)| d.name == s.set))
        {
            return Err(enoent);
        }
        for s in sets {
            let Some((_, elems)) = self.sets.iter_mut().find(|(d, _)| d.name == s.set) else {
                continue;
            };
            elems.retain(|e| !s.keys.contains(&e.key));
            if let Some(t) = timeout_ms {
                elems.extend(s.keys.iter().map(|k| SetElem {
                    key: k.clone(),
                    timeout_ms: Some(t),
                    expires_ms: Some(t),
                }));
            }
        }
        Ok(())
    }

    fn listeners(&mut self) -> Result<Vec<Listener>, NlError> {
        self.other_reads += 1;
        if self.fail_listeners {
            return Err(NlError::Kernel(KernelError {
                errno: libc::EPERM,
                message: None,
            }));
        }
        Ok(self.listeners.clone())
    }
}
