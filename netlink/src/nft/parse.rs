//! Replies: NFT_MSG_NEWTABLE / NEWCHAIN / NEWRULE payloads from GET requests and dumps.

use super::consts::*;
use super::expr::{parse_expressions, Expr};
use super::wire::{find, get_be32, get_be64, get_str, parse_attrs, req, AttrBuf, Nfgenmsg};
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

/// A table from an NFT_MSG_NEWTABLE reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DumpedTable {
    /// `nfgen_family`.
    pub family: u8,
    /// NFTA_TABLE_NAME.
    pub name: String,
    /// NFTA_TABLE_FLAGS (`NFT_TABLE_F_*`), 0 if absent.
    pub flags: u32,
    /// NFTA_TABLE_HANDLE, if present.
    pub handle: Option<u64>,
    /// NFTA_TABLE_USE (number of chains/sets/... in it), if present.
    pub use_count: Option<u32>,
    /// NFTA_TABLE_OWNER (owning netlink port id), present on owned tables only.
    pub owner: Option<u32>,
}

/// A base chain's hook (NFTA_CHAIN_HOOK).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChainHook {
    /// NFTA_HOOK_HOOKNUM (`NF_INET_LOCAL_OUT` = 3 for plugctl's chain).
    pub hooknum: u32,
    /// NFTA_HOOK_PRIORITY (-150 = mangle for plugctl's chain).
    pub priority: i32,
}

/// A chain from an NFT_MSG_NEWCHAIN reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DumpedChain {
    /// `nfgen_family`.
    pub family: u8,
    /// NFTA_CHAIN_TABLE.
    pub table: String,
    /// NFTA_CHAIN_NAME.
    pub name: String,
    /// NFTA_CHAIN_HANDLE, if present.
    pub handle: Option<u64>,
    /// NFTA_CHAIN_HOOK; `None` for a regular (non-base) chain.
    pub hook: Option<ChainHook>,
    /// NFTA_CHAIN_POLICY (`NF_ACCEPT` = 1 / `NF_DROP` = 0), base chains only.
    pub policy: Option<u32>,
    /// NFTA_CHAIN_TYPE ("filter", "route", "nat"), base chains only.
    pub chain_type: Option<String>,
}

impl DumpedChain {
    /// True if this is the chain [`install_batch`](super::install_batch) creates:
    /// type filter, hook output, priority -150, policy accept.
    pub fn is_plugctl_base_chain(&self) -> bool {
        self.hook
            == Some(ChainHook {
                hooknum: NF_INET_LOCAL_OUT,
                priority: NF_IP_PRI_MANGLE,
            })
            && self.chain_type.as_deref() == Some("filter")
            && self.policy.unwrap_or(NF_ACCEPT) == NF_ACCEPT
    }
}

fn opt_be32(attrs: &[AttrBuf<'_>], ty: u16, what: &'static str) -> Result<Option<u32>, NftError> {
    find(attrs, ty).map(|a| get_be32(a, what)).transpose()
}

fn opt_be64(attrs: &[AttrBuf<'_>], ty: u16, what: &'static str) -> Result<Option<u64>, NftError> {
    find(attrs, ty).map(|a| get_be64(a, what)).transpose()
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

/// Parse the payload of one NFT_MSG_NEWTABLE reply (see [`parse_rule`] for what "payload" is).
pub fn parse_table(payload_bytes: &[u8]) -> Result<DumpedTable, NftError> {
    let (msg, a) = Nfgenmsg::parse(payload_bytes)?;
    let a = a.as_slice();
    Ok(DumpedTable {
        family: msg.family,
        name: get_str(
            req(a, NFTA_TABLE_NAME, "NFTA_TABLE_NAME")?,
            "NFTA_TABLE_NAME",
        )?,
        flags: opt_be32(a, NFTA_TABLE_FLAGS, "NFTA_TABLE_FLAGS")?.unwrap_or(0),
        handle: opt_be64(a, NFTA_TABLE_HANDLE, "NFTA_TABLE_HANDLE")?,
        use_count: opt_be32(a, NFTA_TABLE_USE, "NFTA_TABLE_USE")?,
        owner: opt_be32(a, NFTA_TABLE_OWNER, "NFTA_TABLE_OWNER")?,
    })
}

/// Parse the payload of one NFT_MSG_NEWCHAIN reply (see [`parse_rule`] for what "payload" is).
pub fn parse_chain(payload_bytes: &[u8]) -> Result<DumpedChain, NftError> {
    let (msg, a) = Nfgenmsg::parse(payload_bytes)?;
    let a = a.as_slice();
    let hook = match find(a, NFTA_CHAIN_HOOK) {
        None => None,
        Some(h) => {
            let h = parse_attrs(h.value())?;
            Some(ChainHook {
                hooknum: get_be32(
                    req(&h, NFTA_HOOK_HOOKNUM, "NFTA_HOOK_HOOKNUM")?,
                    "NFTA_HOOK_HOOKNUM",
                )?,
                priority: get_be32(
                    req(&h, NFTA_HOOK_PRIORITY, "NFTA_HOOK_PRIORITY")?,
                    "NFTA_HOOK_PRIORITY",
                )? as i32,
            })
        }
    };
    Ok(DumpedChain {
        family: msg.family,
        table: get_str(
            req(a, NFTA_CHAIN_TABLE, "NFTA_CHAIN_TABLE")?,
            "NFTA_CHAIN_TABLE",
        )?,
        name: get_str(
            req(a, NFTA_CHAIN_NAME, "NFTA_CHAIN_NAME")?,
            "NFTA_CHAIN_NAME",
        )?,
        handle: opt_be64(a, NFTA_CHAIN_HANDLE, "NFTA_CHAIN_HANDLE")?,
        hook,
        policy: opt_be32(a, NFTA_CHAIN_POLICY, "NFTA_CHAIN_POLICY")?,
        chain_type: find(a, NFTA_CHAIN_TYPE)
            .map(|t| get_str(t, "NFTA_CHAIN_TYPE"))
            .transpose()?,
    })
}
