//! The wire formats plugctl speaks to the kernel, as types: tc (`prio`,
//! `pfifo`, `plug`, `fw`) over rtnetlink and the nf_tables mark rule over
//! nfnetlink, plus a small blocking socket. No policy lives here: what to
//! build and when is the `plugctl` crate's business.
#![deny(missing_docs)]

pub mod diag;
pub mod error;
pub mod frame;
pub mod nft;
pub mod socket;
pub mod tc;

pub use error::{Error, KernelError};
pub use socket::{Family, Socket};
