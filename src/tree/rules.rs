//! plugctl's nf_tables table: one chain on the output hook whose rules
//! mark the SYNs of new connections to the balancer's addresses.

use plugctl_netlink::nft::{MarkRule, Ruleset};
use plugctl_netlink::Error as NlError;

use super::{Check, Removed, Seen, TreePart};
use crate::config::Config;
use crate::error::Error;
use crate::kernel::Kernel;

/// plugctl's nf_tables chain.
pub const CHAIN: &str = "output";

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

/// The table, its chain and its rules, installed as one batch.
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
        match &seen.rules {
            None => Check::Missing,
            Some(found)
                if found.len() == want.len()
                    && found.iter().zip(&want).all(|(f, w)| f.as_ref() == Some(w)) =>
            {
                Check::Ok
            }
            Some(found) => Check::Differs(format!(
                "found {} rule(s), {} of them plugctl mark rules as configured",
                found.len(),
                found
                    .iter()
                    .filter(|f| f.as_ref().is_some_and(|f| want.contains(f)))
                    .count()
            )),
        }
    }

    /// The table is plugctl's alone: rules that differ are replaced, in one
    /// atomic batch.
    fn replaced_in_place(&self) -> bool {
        true
    }

    fn create(&self, k: &mut dyn Kernel, cfg: &Config, _seen: &Seen) -> Result<String, Error> {
        let rules = rules(cfg);
        k.nft_install(&Ruleset::new(&cfg.table, CHAIN, &rules))
            .map_err(|e| {
                Error::netlink_building("installing the nf_tables mark rule", "nf_tables", e)
            })?;
        Ok(format!(
            "installed nft table inet {} with {} mark rule(s)",
            cfg.table,
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
        let mut c = vec![
            format!("nft add table inet {t}"),
            format!(
                "nft add chain inet {t} {CHAIN} '{{ type filter hook output priority mangle; policy accept; }}'"
            ),
        ];
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
