//! plugctl's nf_tables table: a lease set per address family, and one
//! chain on the output hook whose rules mark the SYNs of new connections
//! to an address [. port] in the lease set.

use plugctl_netlink::nft::{LeaseRule, Rule, Ruleset, SetKey, SetSpec};
use plugctl_netlink::Error as NlError;

use super::{Check, Removed, Seen, TreePart};
use crate::config::Config;
use crate::error::Error;
use crate::kernel::Kernel;

/// plugctl's nf_tables chain.
pub const CHAIN: &str = "output";

/// The lease set of IPv4 addresses.
pub const SET4: &str = "lease4";
/// The lease set of IPv6 addresses.
pub const SET6: &str = "lease6";

/// The lease sets: one per address family configured, keyed by address,
/// or by address . port when ports are configured.
pub fn sets(cfg: &Config) -> Vec<SetSpec> {
    let port = !cfg.ports.is_empty();
    [(false, SET4), (true, SET6)]
        .into_iter()
        .filter(|(ipv6, _)| cfg.addresses.iter().any(|a| a.is_ipv6() == *ipv6))
        .map(|(ipv6, name)| SetSpec {
            name: name.into(),
            key: SetKey { ipv6, port },
        })
        .collect()
}

/// The nf_tables rules: one per lease set.
pub fn rules(cfg: &Config) -> Vec<Rule> {
    sets(cfg)
        .into_iter()
        .map(|s| {
            Rule::Lease(LeaseRule {
                ipv6: s.key.ipv6,
                port: s.key.port,
                set: s.name,
                mark: cfg.mark,
            })
        })
        .collect()
}

/// The elements a hold leases: each set with every address of its family,
/// times each port if ports are set.
pub fn lease_keys(cfg: &Config) -> Vec<(SetSpec, Vec<Vec<u8>>)> {
    let ports: Vec<Option<u16>> = if cfg.ports.is_empty() {
        vec![None]
    } else {
        cfg.ports.iter().copied().map(Some).collect()
    };
    sets(cfg)
        .into_iter()
        .map(|s| {
            let mut keys: Vec<Vec<u8>> = Vec::new();
            for &addr in &cfg.addresses {
                for &port in &ports {
                    if let Some(k) = s.key.element(addr, port) {
                        if !keys.contains(&k) {
                            keys.push(k);
                        }
                    }
                }
            }
            (s, keys)
        })
        .collect()
}

/// The table, its sets, its chain and its rules, installed as one batch.
pub(super) struct Rules;

impl TreePart for Rules {
    fn name(&self, cfg: &Config) -> String {
        format!(
            "nft table inet {} chain {CHAIN}: {} mark rule(s)",
            cfg.table,
            rules(cfg).len()
        )
    }

    fn check(&self, cfg: &Config, seen: &Seen) -> Check {
        let want = rules(cfg);
        let want_sets = sets(cfg);
        match &seen.rules {
            None => Check::Missing,
            Some(found)
                if found.len() == want.len()
                    && found.iter().zip(&want).all(|(f, w)| f.as_ref() == Some(w))
                    && seen.sets.len() == want_sets.len()
                    && seen
                        .sets
                        .iter()
                        .zip(&want_sets)
                        .all(|(f, w)| f.as_ref().is_some_and(|f| w.matches(f))) =>
            {
                Check::Ok
            }
            Some(found) => {
                let unleased = found.iter().any(|f| matches!(f, Some(Rule::Mark(_))));
                Check::Differs(format!(
                    "found {} rule(s), {} of them plugctl mark rules as configured{}",
                    found.len(),
                    found
                        .iter()
                        .filter(|f| f.as_ref().is_some_and(|f| want.contains(f)))
                        .count(),
                    if unleased {
                        " (un-leased rules from an older plugctl: `plugctl setup` replaces them)"
                    } else {
                        ""
                    }
                ))
            }
        }
    }

    /// The table is plugctl's alone: rules that differ are replaced, in one
    /// atomic batch (an older plugctl's un-leased rules too).
    fn replaced_in_place(&self) -> bool {
        true
    }

    fn create(&self, k: &mut dyn Kernel, cfg: &Config, _seen: &Seen) -> Result<String, Error> {
        let rules = rules(cfg);
        let sets = sets(cfg);
        k.nft_install(&Ruleset::new(&cfg.table, CHAIN, &rules).with_sets(&sets))
            .map_err(|e| {
                Error::netlink_building("installing the nf_tables mark rule", "nf_tables", e)
            })?;
        Ok(format!(
            "installed nft table inet {} with {} lease set(s) and {} mark rule(s)",
            cfg.table,
            sets.len(),
            rules.len()
        ))
    }

    /// A table that was there before this run stays.
    fn undo(&self, k: &mut dyn Kernel, cfg: &Config, seen: &Seen) -> Result<(), NlError> {
        match seen.rules {
            Some(_) => Ok(()),
            None => k.nft_delete(&cfg.table),
        }
    }

    fn commands(&self, cfg: &Config) -> Vec<String> {
        let t = &cfg.table;
        let mut c = vec![format!("nft add table inet {t}")];
        c.extend(
            sets(cfg)
                .iter()
                .map(|s| format!("nft add set inet {t} {}", s.to_nft_syntax())),
        );
        c.push(format!(
            "nft add chain inet {t} {CHAIN} '{{ type filter hook output priority mangle; policy accept; }}'"
        ));
        c.extend(
            rules(cfg)
                .iter()
                .map(|r| format!("nft add rule inet {t} {CHAIN} {}", r.to_nft_syntax())),
        );
        c
    }

    fn remove(&self, k: &mut dyn Kernel, cfg: &Config, seen: &Seen) -> Removed {
        if seen.rules.is_none() {
            return Ok(None);
        }
        k.nft_delete(&cfg.table)
            .map_err(|e| Error::netlink("deleting the nf_tables table", e))?;
        Ok(Some(format!("deleted nft table inet {}", cfg.table)))
    }

    fn remove_commands(&self, cfg: &Config) -> Vec<String> {
        vec![format!("nft delete table inet {}", cfg.table)]
    }
}
