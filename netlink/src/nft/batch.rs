//! Requests: the install / delete batches and the GET requests used by `status`.

use std::ops::RangeInclusive;

use netlink_packet_core::{NLM_F_ACK, NLM_F_APPEND, NLM_F_CREATE, NLM_F_DUMP, NLM_F_REQUEST};

use super::consts::*;
use super::expr::expressions_attr;
use super::rule::Rule;
use super::set::{new_set, SetSpec};
use super::wire::{attr_be32, attr_nest, attr_str, check_name, message};
use super::NftError;

/// plugctl's nf_tables objects: table `inet <table>` with the sets `sets` and the base chain
/// `<chain>` (type filter, hook output, priority -150 = mangle, policy accept) holding `rules`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ruleset<'a> {
    /// Table name (family inet).
    pub table: &'a str,
    /// Chain name.
    pub chain: &'a str,
    /// The sets the rules look packets up in.
    pub sets: &'a [SetSpec],
    /// The marking rules, in order.
    pub rules: &'a [Rule],
}

impl<'a> Ruleset<'a> {
    /// Table `table` whose chain `chain` holds `rules`, without sets.
    pub fn new(table: &'a str, chain: &'a str, rules: &'a [Rule]) -> Self {
        Ruleset {
            table,
            chain,
            sets: &[],
            rules,
        }
    }

    /// The same with `sets` in the table.
    pub fn with_sets(mut self, sets: &'a [SetSpec]) -> Self {
        self.sets = sets;
        self
    }

    /// How many seqs [`install_batch`] uses.
    pub fn install_len(&self) -> u32 {
        6 + self.sets.len() as u32 + self.rules.len() as u32
    }
}

/// One nfnetlink batch, ready for a single `sendmsg` on a NETLINK_NETFILTER socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    /// The concatenated messages, BATCH_BEGIN … BATCH_END.
    pub bytes: Vec<u8>,
    /// Every `nlmsg_seq` used, BATCH_BEGIN's first, BATCH_END's last (consecutive).
    pub seqs: RangeInclusive<u32>,
}

/// Hands out consecutive seqs and collects messages.
pub(crate) struct Builder {
    bytes: Vec<u8>,
    first: u32,
    next: u32,
}

impl Builder {
    pub(crate) fn new(first_seq: u32, count: u32) -> Result<Builder, NftError> {
        // Refuse to wrap: `seqs` must be a plain range.
        first_seq
            .checked_add(count - 1)
            .ok_or(NftError::SeqOverflow(first_seq))?;
        Ok(Builder {
            bytes: Vec::new(),
            first: first_seq,
            next: first_seq,
        })
    }

    pub(crate) fn push(
        &mut self,
        f: impl FnOnce(u32) -> Result<Vec<u8>, NftError>,
    ) -> Result<(), NftError> {
        let msg = f(self.next)?;
        self.bytes.extend_from_slice(&msg);
        self.next = self.next.wrapping_add(1);
        Ok(())
    }

    pub(crate) fn finish(self) -> Batch {
        Batch {
            bytes: self.bytes,
            seqs: self.first..=self.next.wrapping_sub(1),
        }
    }
}

const NEW: u16 = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE;
const DEL: u16 = NLM_F_REQUEST | NLM_F_ACK;

/// NFNL_MSG_BATCH_BEGIN: REQUEST only (docs/netlink-reference.md §7.5; an ACK on it is only
/// honoured by ≥6.10-ish kernels and would arrive before anything was committed, so it says
/// nothing).
pub(crate) fn batch_begin(seq: u32) -> Result<Vec<u8>, NftError> {
    message(
        NFNL_MSG_BATCH_BEGIN,
        NLM_F_REQUEST,
        seq,
        NFPROTO_UNSPEC,
        NFNL_SUBSYS_NFTABLES as u16,
        vec![],
    )
}

/// NFNL_MSG_BATCH_END with ACK: acked only if the commit succeeded (6.18), ignored on 6.1.
pub(crate) fn batch_end(seq: u32) -> Result<Vec<u8>, NftError> {
    message(
        NFNL_MSG_BATCH_END,
        NLM_F_REQUEST | NLM_F_ACK,
        seq,
        NFPROTO_UNSPEC,
        NFNL_SUBSYS_NFTABLES as u16,
        vec![],
    )
}

/// NEWTABLE {NAME, FLAGS = 0}, REQUEST|ACK|CREATE (no EXCL: never fails on an existing table).
pub(crate) fn new_table(table: &str, seq: u32) -> Result<Vec<u8>, NftError> {
    message(
        NFT_MSG_NEWTABLE,
        NEW,
        seq,
        NFPROTO_INET,
        0,
        vec![
            attr_str(NFTA_TABLE_NAME, table)?,
            attr_be32(NFTA_TABLE_FLAGS, 0)?,
        ],
    )
}

/// DELTABLE {NAME}, REQUEST|ACK.
pub(crate) fn del_table(table: &str, seq: u32) -> Result<Vec<u8>, NftError> {
    message(
        NFT_MSG_DELTABLE,
        DEL,
        seq,
        NFPROTO_INET,
        0,
        vec![attr_str(NFTA_TABLE_NAME, table)?],
    )
}

/// NEWCHAIN: base chain type filter, hook output, priority mangle, policy accept.
pub(crate) fn new_chain(table: &str, chain: &str, seq: u32) -> Result<Vec<u8>, NftError> {
    message(
        NFT_MSG_NEWCHAIN,
        NEW,
        seq,
        NFPROTO_INET,
        0,
        vec![
            attr_str(NFTA_CHAIN_TABLE, table)?,
            attr_str(NFTA_CHAIN_NAME, chain)?,
            attr_str(NFTA_CHAIN_TYPE, "filter")?,
            attr_be32(NFTA_CHAIN_POLICY, NF_ACCEPT)?,
            attr_nest(
                NFTA_CHAIN_HOOK,
                &[
                    attr_be32(NFTA_HOOK_HOOKNUM, NF_INET_LOCAL_OUT)?,
                    attr_be32(NFTA_HOOK_PRIORITY, NF_IP_PRI_MANGLE as u32)?,
                ],
            )?,
        ],
    )
}

/// NEWRULE, REQUEST|ACK|CREATE|APPEND. A lookup names its set by name and by `set_id` (the
/// NFTA_SET_ID of a set created in the same batch, as nft sends it).
pub(crate) fn new_rule(
    table: &str,
    chain: &str,
    rule: &Rule,
    set_id: Option<u32>,
    seq: u32,
) -> Result<Vec<u8>, NftError> {
    message(
        NFT_MSG_NEWRULE,
        NEW | NLM_F_APPEND,
        seq,
        NFPROTO_INET,
        0,
        vec![
            attr_str(NFTA_RULE_TABLE, table)?,
            attr_str(NFTA_RULE_CHAIN, chain)?,
            expressions_attr(&rule.expressions_with_set_id(set_id))?,
        ],
    )
}

/// Idempotent atomic (re)install in ONE batch (docs/netlink-reference.md §7.6 "replace batch"):
/// BATCH_BEGIN, NEWTABLE, DELTABLE, NEWTABLE, NEWSET × s (NFTA_SET_ID 1, 2, …), NEWCHAIN,
/// NEWRULE × n, BATCH_END; NLM_F_ACK on every NEW/DEL and on END; consecutive seqs from
/// `first_seq`. The DELTABLE takes the old sets' elements (a running lease) with it.
///
/// Success ⇔ no NLMSG_ERROR with a non-zero error for any seq in [`Batch::seqs`] (per-message
/// ACKs are sent even if the batch is later aborted, docs/netlink-reference.md §7.1).
pub fn install_batch(r: &Ruleset<'_>, first_seq: u32) -> Result<Batch, NftError> {
    check_name(r.table)?;
    check_name(r.chain)?;
    let n = u32::try_from(r.rules.len() + r.sets.len()).map_err(|_| NftError::TooLarge)?;
    let count = n.checked_add(6).ok_or(NftError::TooLarge)?;
    let mut b = Builder::new(first_seq, count)?;
    b.push(batch_begin)?;
    b.push(|s| new_table(r.table, s))?;
    b.push(|s| del_table(r.table, s))?;
    b.push(|s| new_table(r.table, s))?;
    for (i, set) in r.sets.iter().enumerate() {
        b.push(|s| new_set(r.table, set, i as u32 + 1, s))?;
    }
    b.push(|s| new_chain(r.table, r.chain, s))?;
    for rule in r.rules {
        let set_id = rule
            .set()
            .and_then(|name| r.sets.iter().position(|s| s.name == name))
            .map(|i| i as u32 + 1);
        b.push(|s| new_rule(r.table, r.chain, rule, set_id, s))?;
    }
    b.push(batch_end)?;
    Ok(b.finish())
}

/// BATCH_BEGIN, DELTABLE, BATCH_END (docs/netlink-reference.md §7.6): removes the table with its
/// chain and rules. The DELTABLE fails with -ENOENT if the table does not exist.
pub fn delete_batch(table: &str, first_seq: u32) -> Result<Batch, NftError> {
    check_name(table)?;
    let mut b = Builder::new(first_seq, 3)?;
    b.push(batch_begin)?;
    b.push(|s| del_table(table, s))?;
    b.push(batch_end)?;
    Ok(b.finish())
}

/// NFT_MSG_GETRULE dump request (REQUEST|DUMP, family inet, NFTA_RULE_TABLE = `table`),
/// byte-identical to what `nft list table inet <table>` sends. Answered by NFT_MSG_NEWRULE
/// messages (NLM_F_MULTI) and NLMSG_DONE; -ENOENT if the table does not exist.
pub fn get_rules_request(table: &str, seq: u32) -> Result<Vec<u8>, NftError> {
    check_name(table)?;
    message(
        NFT_MSG_GETRULE,
        NLM_F_REQUEST | NLM_F_DUMP,
        seq,
        NFPROTO_INET,
        0,
        vec![attr_str(NFTA_RULE_TABLE, table)?],
    )
}

/// NFT_MSG_GETTABLE (REQUEST|ACK, family inet, NFTA_TABLE_NAME), byte-identical to what
/// `nft list table inet <table>` sends. Answered by one NFT_MSG_NEWTABLE then an ACK, or by
/// NLMSG_ERROR -ENOENT (-2) if the table does not exist.
pub fn get_table_request(table: &str, seq: u32) -> Result<Vec<u8>, NftError> {
    check_name(table)?;
    message(
        NFT_MSG_GETTABLE,
        NLM_F_REQUEST | NLM_F_ACK,
        seq,
        NFPROTO_INET,
        0,
        vec![attr_str(NFTA_TABLE_NAME, table)?],
    )
}
