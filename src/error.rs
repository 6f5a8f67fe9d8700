//! plugctl's error type: one variant per thing an operator (or an agent
//! embedding the library) must tell apart, each with its own exit code.

use plugctl_netlink::{Error as NlError, KernelError};

use crate::config::ConfigError;

/// What went wrong.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The configuration or a flag is unusable.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The caller lacks CAP_NET_ADMIN.
    #[error("permission denied: {what} needs CAP_NET_ADMIN (run as root)")]
    Permission {
        /// What was refused.
        what: String,
    },
    /// The running kernel lacks a module plugctl needs.
    #[error("the kernel has no {feature} ({detail}); plugctl needs it for {what}")]
    MissingKernelFeature {
        /// Module name, e.g. `sch_plug`.
        feature: &'static str,
        /// What the kernel said.
        detail: String,
        /// What plugctl was building.
        what: String,
    },
    /// The configured device does not exist.
    #[error("no such device {0:?}")]
    NoDevice(String),
    /// Something plugctl did not create sits where its tree goes.
    #[error("{0}; left alone (use --force to replace it)")]
    Conflict(String),
    /// The tree `setup` builds is not there.
    #[error("plugctl's tree is not set up on {device}: {missing} (run `plugctl setup`)")]
    NotSetUp {
        /// Device.
        device: String,
        /// What is missing.
        missing: String,
    },
    /// The plug state file could not be read or written.
    #[error("state file {path}: {source}")]
    State {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// `release` while a live holder (a running reload) holds the plug.
    #[error("the plug is held by {0}; not releasing another's hold (release --force overrides)")]
    Held(String),
    /// The reload command could not be started.
    #[error("cannot run {command:?}: {source}")]
    CommandStart {
        /// argv[0].
        command: String,
        /// Why.
        source: std::io::Error,
    },
    /// `--strict` and the plug could not be closed: the command was not run.
    #[error("not running the command (--strict): the plug could not be closed: {0}")]
    Strict(Box<Error>),
    /// The user named by `--user` does not exist, or privileges could not be dropped.
    #[error("{0}")]
    User(String),
    /// Any other netlink failure.
    #[error("{what}: {source}")]
    Netlink {
        /// What plugctl was doing.
        what: String,
        /// The wire-level error.
        source: NlError,
    },
}

impl Error {
    /// The process exit code for this error (documented in `--help` and the
    /// README). 2 is clap's usage error.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Netlink { .. } => 1,
            Error::Config(_) => 3,
            Error::Permission { .. } => 4,
            Error::MissingKernelFeature { .. } => 5,
            Error::NoDevice(_) => 6,
            Error::Conflict(_) => 7,
            Error::NotSetUp { .. } => 8,
            Error::State { .. } => 9,
            Error::Held(_) => 12,
            Error::Strict(_) => 13,
            Error::User(_) => 14,
            Error::CommandStart { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
                127
            }
            Error::CommandStart { .. } => 126,
        }
    }

    /// Classify a netlink error that happened while doing `what`.
    pub(crate) fn netlink(what: impl Into<String>, source: NlError) -> Error {
        let what = what.into();
        if let NlError::Kernel(k) = &source {
            if k.is_permission() {
                return Error::Permission { what };
            }
        }
        if let NlError::Io(io) = &source {
            if io.raw_os_error() == Some(libc::EPERM) || io.raw_os_error() == Some(libc::EACCES) {
                return Error::Permission { what };
            }
        }
        Error::Netlink { what, source }
    }

    /// Like [`Error::netlink`], but an "unknown kind" answer names the module.
    pub(crate) fn netlink_building(
        what: impl Into<String>,
        feature: &'static str,
        source: NlError,
    ) -> Error {
        if let NlError::Kernel(k) = &source {
            if is_unknown_kind(k) {
                return Error::MissingKernelFeature {
                    feature,
                    detail: k.to_string(),
                    what: what.into(),
                };
            }
        }
        Error::netlink(what, source)
    }
}

/// The kernel's answers for a qdisc kind or classifier it does not have
/// (and could not load): -ENOENT "Specified qdisc kind is unknown" /
/// "TC classifier not found"; nf_tables without the `nf_tables` module:
/// -EPROTONOSUPPORT / -EAFNOSUPPORT.
fn is_unknown_kind(k: &KernelError) -> bool {
    match k.errno {
        libc::ENOENT => k
            .message
            .as_deref()
            .is_none_or(|m| m.contains("unknown") || m.contains("not found")),
        libc::EPROTONOSUPPORT | libc::EAFNOSUPPORT | libc::EOPNOTSUPP => true,
        _ => false,
    }
}
