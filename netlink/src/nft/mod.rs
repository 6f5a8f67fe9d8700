//! nf_tables over NETLINK_NETFILTER: the messages plugctl sends to install, remove and read back
//! its SYN-marking rule, and parsers for the kernel's replies. Bytes only: no socket I/O, no
//! policy (reference: `netlink-reference.md` §7, §8, Appendix A).
//!
//! Built on `neli`: every message is a neli [`Nlmsghdr`](neli::nl::Nlmsghdr) whose payload is
//! the derived [`Nfgenmsg`] holding neli [`Nlattr`](neli::genl::Nlattr)s; replies are parsed
//! with the same types (neli masks NLA_F_NESTED, which kernel dumps omit).
//!
//! Flow for the caller's socket layer (one NETLINK_NETFILTER socket):
//! * install: send [`install_batch`]`.bytes` in one `sendmsg`, drain; success ⇔ no
//!   NLMSG_ERROR with a non-zero error for a seq in [`Batch::seqs`];
//! * status: [`get_table_request`] (NEWTABLE + ACK, or -ENOENT), [`get_chain_request`],
//!   [`get_rules_request`] (dump of NEWRULE until NLMSG_DONE) → [`parse_table`],
//!   [`parse_chain`], [`parse_rule`] + [`MarkRule::from_expressions`];
//! * teardown: [`delete_batch`].
//!
//! Replies are dispatched on `nlmsg_type` with the constants in [`consts`].

mod batch;
pub mod consts;
mod expr;
mod parse;
mod rule;
mod wire;

#[cfg(test)]
mod tests;

pub use batch::{
    delete_batch, get_chain_request, get_rules_request, get_table_request, install_batch, Batch,
    Ruleset,
};
pub use expr::Expr;
pub use parse::{
    parse_chain, parse_rule, parse_table, ChainHook, DumpedChain, DumpedRule, DumpedTable,
};
pub use rule::MarkRule;
pub use wire::{Attr, Be16, Nfgenmsg};

/// Errors building nf_tables messages or parsing the kernel's replies.
#[derive(Debug, thiserror::Error)]
pub enum NftError {
    /// neli could not parse the netlink data (truncated or inconsistent lengths).
    #[error("malformed netlink data: {0}")]
    Parse(#[from] neli::err::DeError),
    /// neli could not serialise a message (not expected in practice).
    #[error("cannot serialise netlink message: {0}")]
    Serialize(String),
    /// A message payload shorter than the 4-byte `nfgenmsg`.
    #[error("nfnetlink payload too short: {0} bytes")]
    Truncated(usize),
    /// A required attribute is missing from a reply.
    #[error("missing attribute {0}")]
    MissingAttr(&'static str),
    /// An attribute has the wrong length.
    #[error("attribute {what} has {got} bytes, expected {expected}")]
    BadLength {
        /// Which attribute.
        what: &'static str,
        /// Expected length (maximum, for values).
        expected: usize,
        /// Actual length.
        got: usize,
    },
    /// A string attribute is not UTF-8.
    #[error("attribute {0} is not valid UTF-8")]
    BadString(&'static str),
    /// A table/chain name that is empty, 256 bytes or longer, or contains NUL.
    #[error("invalid nf_tables name {0:?} (1..=255 bytes, no NUL)")]
    InvalidName(String),
    /// An attribute or message would not fit its length field.
    #[error("attribute or message too large")]
    TooLarge,
    /// The batch's seqs would wrap past u32::MAX.
    #[error("sequence numbers starting at {0} would wrap")]
    SeqOverflow(u32),
}

impl From<neli::err::SerError> for NftError {
    fn from(e: neli::err::SerError) -> Self {
        NftError::Serialize(e.to_string())
    }
}
