//! Replies: NFT_MSG_NEWRULE payloads from the rule dump `status` reads.

use super::consts::*;
use super::expr::{parse_expressions, Expr};
use super::wire::{find, get_be64, get_str, req, Nfgenmsg};
use super::NftError;

/// A rule from an NFT_MSG_NEWRULE reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DumpedRule {
    /// `nfgen_family` (NFPROTO_INET for plugctl's table).
    pub family: u8,
    /// NFTA_RULE_TABLE.
    pub table: String,
    /// NFTA_RULE_CHAIN.
    pub chain: String,
    /// NFTA_RULE_HANDLE.
    pub handle: u64,
    /// NFTA_RULE_EXPRESSIONS (empty if absent); see [`MarkRule::from_expressions`](super::MarkRule::from_expressions).
    pub exprs: Vec<Expr>,
}

/// Parse the payload (bytes after the 16-byte `nlmsghdr`, starting at `nfgenmsg`) of one
/// NFT_MSG_NEWRULE reply. Attributes plugctl does not need (NFTA_RULE_POSITION, USERDATA, …)
/// are ignored.
pub fn parse_rule(payload_bytes: &[u8]) -> Result<DumpedRule, NftError> {
    let (msg, a) = Nfgenmsg::parse(payload_bytes)?;
    let a = a.as_slice();
    Ok(DumpedRule {
        family: msg.family,
        table: get_str(
            req(a, NFTA_RULE_TABLE, "NFTA_RULE_TABLE")?,
            "NFTA_RULE_TABLE",
        )?,
        chain: get_str(
            req(a, NFTA_RULE_CHAIN, "NFTA_RULE_CHAIN")?,
            "NFTA_RULE_CHAIN",
        )?,
        handle: get_be64(
            req(a, NFTA_RULE_HANDLE, "NFTA_RULE_HANDLE")?,
            "NFTA_RULE_HANDLE",
        )?,
        exprs: match find(a, NFTA_RULE_EXPRESSIONS) {
            Some(e) => parse_expressions(e.value())?,
            None => Vec::new(),
        },
    })
}
