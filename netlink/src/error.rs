//! Errors of the wire layer.

use std::fmt;

/// An error the kernel returned for one request (`NLMSG_ERROR` with a
/// negative code), with its extended-ack message when it sent one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelError {
    /// The positive errno (`EEXIST` = 17, ...).
    pub errno: i32,
    /// `NLMSGERR_ATTR_MSG`, e.g. "Specified qdisc kind is unknown".
    pub message: Option<String>,
}

impl KernelError {
    /// `EPERM` or `EACCES`: the caller lacks CAP_NET_ADMIN.
    pub fn is_permission(&self) -> bool {
        self.errno == libc::EPERM || self.errno == libc::EACCES
    }
}

impl fmt::Display for KernelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = std::io::Error::from_raw_os_error(self.errno).to_string();
        let text = text.split(" (os error").next().unwrap_or(&text).to_string();
        match &self.message {
            Some(m) => write!(f, "{m} (errno {})", self.errno),
            None => write!(f, "{text} (errno {})", self.errno),
        }
    }
}

impl std::error::Error for KernelError {}

/// Everything that can go wrong talking netlink.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The socket itself failed (open, bind, send, receive).
    #[error("netlink socket: {0}")]
    Io(#[from] std::io::Error),
    /// The kernel answered a request with an error.
    #[error("{0}")]
    Kernel(#[from] KernelError),
    /// The kernel's reply could not be decoded.
    #[error("malformed netlink reply: {0}")]
    Malformed(String),
    /// An nf_tables message could not be built, or its reply not decoded.
    #[error("nf_tables: {0}")]
    Nft(#[from] crate::nft::NftError),
    /// No reply arrived in time.
    #[error("no netlink reply for request {seq} within {ms} ms")]
    Timeout {
        /// The request's sequence number.
        seq: u32,
        /// How long we waited.
        ms: u64,
    },
}

impl Error {
    /// The kernel error, if this is one.
    pub fn kernel(&self) -> Option<&KernelError> {
        match self {
            Error::Kernel(k) => Some(k),
            _ => None,
        }
    }
}
