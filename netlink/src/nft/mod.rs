//! nf_tables over NETLINK_NETFILTER: the messages plugctl sends to install, remove and read back
//! its SYN-marking rule, and parsers for the kernel's replies. Bytes only: no socket I/O, no
//! policy (reference: `docs/netlink-reference.md` §7, §8, Appendix A).
//!
//! Framing is the crate's one layer, netlink-packet-core (see [`crate::frame`]): messages are
//! its [`NetlinkHeader`](netlink_packet_core::NetlinkHeader) + `nfgenmsg` + attributes emitted
//! through its [`Nla`](netlink_packet_core::Nla) trait ([`Attr`]); replies are walked with its
//! attribute iterator ([`AttrBuf`], which masks NLA_F_NESTED, absent from kernel dumps).
//!
//! Flow for the caller's socket layer (one NETLINK_NETFILTER socket):
//! * install: send [`install_batch`]`.bytes` in one `sendmsg`, drain; success ⇔ no
//!   NLMSG_ERROR with a non-zero error for a seq in [`Batch::seqs`];
//! * status: [`get_rules_request`] (dump of NEWRULE until NLMSG_DONE) → [`parse_rule`] +
//!   [`MarkRule::from_expressions`]; [`get_table_request`] (NEWTABLE + ACK, or -ENOENT) tells
//!   an empty table from a missing one;
//! * teardown: [`delete_batch`];
//! * lease: [`renew_lease_batch`] / [`end_lease_batch`] (one batch each); [`get_set_request`] →
//!   [`parse_set`] says whether a lease set is there, [`get_setelems_request`] (dump) →
//!   [`parse_setelems`] what it holds and when each element expires.
//!
//! Replies are dispatched on `nlmsg_type` with the constants in [`consts`].

mod batch;
pub mod consts;
mod expr;
mod parse;
mod rule;
mod set;
mod setelem;
mod wire;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_lease;

pub use batch::{
    delete_batch, get_rules_request, get_table_request, install_batch, Batch, Ruleset,
};
pub use expr::Expr;
pub use parse::{parse_rule, DumpedRule};
pub use rule::{LeaseRule, MarkRule, Rule};
pub use set::{get_set_request, parse_set, DumpedSet, SetKey, SetSpec};
pub use setelem::{
    end_lease_batch, get_setelems_request, lease_batch_len, parse_setelems, renew_lease_batch,
    DumpedElems, SetElem, SetKeys, END_TIMEOUT_MS,
};
pub use wire::{attrs_to_bytes, Attr, AttrBuf};

/// Errors building nf_tables messages or parsing the kernel's replies. Converts into
/// [`crate::Error::Nft`].
#[derive(Debug, thiserror::Error)]
pub enum NftError {
    /// An attribute's length does not fit the bytes around it (netlink-packet-core's
    /// attribute iterator says how).
    #[error("malformed nf_tables attributes: {0}")]
    Parse(#[from] netlink_packet_core::DecodeError),
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
