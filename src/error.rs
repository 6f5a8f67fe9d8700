//! plugctl's error type: one variant per thing an operator (or an agent
//! embedding the library) must tell apart, each with its own exit code.

use plugctl_netlink::{Error as NlError, KernelError};

use crate::config::ConfigError;
use crate::state::StateError;

/// What went wrong.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The configuration file is unusable.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A command-line flag is unusable.
    #[error("{0}")]
    Usage(String),
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
    /// The state directory or record could not be used.
    #[error(transparent)]
    State(#[from] StateError),
    /// The system refused something plugctl needs to run safely (signal
    /// handlers, its runtime, the watchdog process).
    #[error("{what}: {source}")]
    Os {
        /// What plugctl was setting up.
        what: String,
        /// Why.
        source: std::io::Error,
    },
    /// `release` while a live holder (a running reload) holds the plug.
    #[error("the plug is held by {0}; not releasing another's hold (release --force overrides)")]
    Held(String),
    /// The reload command could not be started.
    #[error("cannot run {command:?}: {source}")]
    CommandStart {
        /// `argv[0]`.
        command: String,
        /// Why.
        source: std::io::Error,
    },
    /// `--strict` and the plug could not be closed: the command was not run.
    #[error("not running the command (--strict): the plug could not be closed: {0}")]
    Strict(Box<Error>),
    /// The user or group named by `--user` does not exist.
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

/// Every exit code plugctl ends with, and what it means: `--help` and the
/// README's table are checked against this list.
pub const EXIT_CODES: &[(i32, &str)] = &[
    (
        0,
        "success (status: the tree is complete and the plug not left closed)",
    ),
    (1, "a netlink request failed"),
    (
        2,
        "bad command line (an unknown flag, or a flag value out of range)",
    ),
    (3, "bad configuration file"),
    (4, "permission denied (needs CAP_NET_ADMIN)"),
    (
        5,
        "the kernel lacks a needed module (sch_prio, sch_plug, cls_fw, nf_tables)",
    ),
    (6, "no such device"),
    (
        7,
        "a qdisc or filter that is not plugctl's is in the way (setup --force replaces it)",
    ),
    (8, "the tree is not set up (plug, release)"),
    (9, "the state record could not be read or written"),
    (10, "status: the tree is missing"),
    (11, "status: the tree differs from the configuration"),
    (
        12,
        "release: another holder (a running reload) holds the plug",
    ),
    (
        13,
        "reload --strict: the plug could not be closed; the command was not run",
    ),
    (
        14,
        "reload --user: no such user or group, or plugctl is not root",
    ),
    (
        15,
        "status: the plug is closed but its holder is gone (run `plugctl release`)",
    ),
    (
        16,
        "the state directory is unsafe (not the caller's, writable by others, a symlink)",
    ),
    (
        17,
        "status: the state record is unreadable; the plug may be closed (run `plugctl release`)",
    ),
    (
        18,
        "the state lock was held by another process too long (plug, setup)",
    ),
    (
        19,
        "the system refused a resource plugctl needs (signals, runtime, watchdog)",
    ),
    (126, "reload: the command could not be executed"),
    (127, "reload: the command was not found"),
];

/// The `Exit codes:` section of `--help`, from [`EXIT_CODES`].
pub fn exit_codes_help() -> String {
    let mut s = String::from("Exit codes:\n");
    for (code, what) in EXIT_CODES {
        s.push_str(&format!("  {code:<3} {what}\n"));
    }
    s.push_str(
        "  reload otherwise exits with the command's own exit code (128+N if killed by signal N)",
    );
    s
}

impl Error {
    /// The process exit code for this error (see [`EXIT_CODES`]).
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Netlink { .. } => 1,
            Error::Usage(_) => 2,
            Error::Config(_) => 3,
            Error::Permission { .. } => 4,
            Error::MissingKernelFeature { .. } => 5,
            Error::NoDevice(_) => 6,
            Error::Conflict(_) => 7,
            Error::NotSetUp { .. } => 8,
            Error::State(StateError::UnsafeDir { .. }) => 16,
            Error::State(StateError::LockTimeout { .. }) => 18,
            Error::State(_) => 9,
            Error::Held(_) => 12,
            Error::Strict(_) => 13,
            Error::User(_) => 14,
            Error::Os { .. } => 19,
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

#[cfg(test)]
mod tests {
    use super::*;

    fn kernel(errno: i32, message: Option<&str>) -> KernelError {
        KernelError {
            errno,
            message: message.map(String::from),
        }
    }

    #[test]
    fn every_exit_code_is_in_the_table_once() {
        let io = || std::io::Error::other("x");
        let errors = [
            Error::Usage("x".into()),
            Error::Config(ConfigError::Invalid("x".into())),
            Error::Permission { what: "x".into() },
            Error::NoDevice("x".into()),
            Error::Conflict("x".into()),
            Error::NotSetUp {
                device: "lo".into(),
                missing: "x".into(),
            },
            Error::State(StateError::Io {
                path: "/x".into(),
                source: io(),
            }),
            Error::State(StateError::UnsafeDir {
                path: "/x".into(),
                why: "x".into(),
            }),
            Error::State(StateError::LockTimeout {
                path: "/x".into(),
                waited: std::time::Duration::ZERO,
            }),
            Error::Held("x".into()),
            Error::Strict(Box::new(Error::NoDevice("x".into()))),
            Error::User("x".into()),
            Error::Os {
                what: "x".into(),
                source: io(),
            },
            Error::CommandStart {
                command: "x".into(),
                source: std::io::Error::from(std::io::ErrorKind::NotFound),
            },
            Error::CommandStart {
                command: "x".into(),
                source: io(),
            },
            Error::netlink("x", NlError::Kernel(kernel(libc::EINVAL, None))),
        ];
        for e in &errors {
            let code = e.exit_code();
            assert!(
                EXIT_CODES.iter().any(|(c, _)| *c == code),
                "{e}: exit {code} is not in EXIT_CODES"
            );
        }
        let mut codes: Vec<i32> = EXIT_CODES.iter().map(|(c, _)| *c).collect();
        codes.dedup();
        assert_eq!(codes.len(), EXIT_CODES.len(), "a code listed twice");
        let help = exit_codes_help();
        assert!(
            help.contains("  16  the state directory is unsafe"),
            "{help}"
        );
    }

    #[test]
    fn permission_answers_are_permission_errors() {
        let e = Error::netlink("x", NlError::Kernel(kernel(libc::EPERM, None)));
        assert_eq!(e.exit_code(), 4);
        let e = Error::netlink(
            "x",
            NlError::Io(std::io::Error::from_raw_os_error(libc::EACCES)),
        );
        assert_eq!(e.exit_code(), 4);
    }

    #[test]
    fn unknown_kinds_name_the_missing_module() {
        for k in [
            kernel(libc::ENOENT, Some("Specified qdisc kind is unknown")),
            kernel(libc::ENOENT, Some("TC classifier not found")),
            kernel(libc::ENOENT, None),
            kernel(libc::EPROTONOSUPPORT, None),
            kernel(libc::EAFNOSUPPORT, None),
        ] {
            let e = Error::netlink_building("x", "sch_plug", NlError::Kernel(k.clone()));
            assert_eq!(e.exit_code(), 5, "{k:?}: {e}");
        }
        // ENOENT for another reason (a missing parent) is not a missing module.
        let k = kernel(libc::ENOENT, Some("Parent Qdisc doesn't exists"));
        let e = Error::netlink_building("x", "sch_plug", NlError::Kernel(k));
        assert_eq!(e.exit_code(), 1, "{e}");
    }
}
