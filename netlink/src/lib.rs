//! The wire formats plugctl speaks to the kernel, as types: tc (`prio`,
//! `pfifo`, `plug`, `fw`) over rtnetlink and the nf_tables mark rule over
//! nfnetlink, plus a small blocking socket. No policy lives here: what to
//! build and when is the `plugctl` crate's business.
//!
//! One framing layer serves the three families: netlink-packet-core's
//! header, buffer, `NLM_F_*` constants and attribute iterator ([`frame`]
//! adds the extended-ack decoding it lacks). Message bodies are
//! netlink-packet-route's (tc), netlink-packet-sock-diag's (sock_diag) and
//! [`nft`]'s own `Nla` attributes (nf_tables, which rust-netlink does not
//! model).
#![deny(missing_docs)]

pub mod diag;
pub mod error;
pub mod frame;
pub mod nft;
pub mod socket;
pub mod tc;

pub use error::{Error, KernelError};
pub use socket::{Family, Socket};
