//! plugctl: lose zero connections across service reloads.
//!
//! While a proxy such as HAProxy reloads, there is a moment when no process
//! accepts on its port, and new connections are refused. plugctl holds the
//! SYNs of new connections to the balancer's addresses for the length of
//! the reload (Yelp's method: in a tc `plug` qdisc), then releases them:
//! clients see a connect that takes a few milliseconds longer, not an error.
//!
//! [`Controller`] is the entry point: it builds the tree ([`Controller::setup`]),
//! takes and gives back holds ([`Controller::hold`], [`Controller::release_hold`]),
//! reports [`Status`] and removes the tree. [`agent`] wraps it for tokio
//! programs, with a guard that always releases, and [`reload`] runs a reload
//! command under a hold, releasing once [`handover`] sees the listeners
//! handed over.
//!
//! # Where things live
//!
//! `src/` reads top-down in five layers. A module uses its own layer and
//! those below it, never one above (the unit test `layers` checks every
//! `crate::` path in `src/` against this table):
//!
//! | layer | modules | what lives there |
//! |---|---|---|
//! | 5 | [`reload`], [`runas`], [`agent`], [`watchdog`], [`handover`], [`report`], `main.rs` | the reload (and the user it runs its command as), the async API for agents and the CLI |
//! | 4 | [`controller`], [`state`], [`status`] | one device's controller, the record of who holds (the state directory) and what `status` reports |
//! | 3 | [`tree`], [`hold`] | the tree, one file per part (`tree/root.rs`, `fifo.rs`, `plug.rs`, `filter.rs`, `rules.rs`), and the hold, one file per mechanism (`hold/plug.rs`), with its lease (`hold/lease.rs`) |
//! | 2 | [`kernel`] | kernel access: the [`kernel::Kernel`] trait, over netlink or a fake for tests |
//! | 1 | the `plugctl_netlink` crate (`netlink/`) | wire formats: tc, nf_tables and sock_diag messages as types, a blocking socket |
//! | 0 | [`config`], [`clock`], [`error`] | what every layer may use: the configuration, the time, the error type |
//!
//! [`error`] is the one exception to the rule: its [`Error`] wraps each
//! layer's own error, so it names [`state::StateError`].
#![deny(missing_docs)]

pub mod agent;
pub mod clock;
pub mod config;
pub mod controller;
pub mod error;
pub mod handover;
pub mod hold;
pub mod kernel;
pub mod reload;
pub mod report;
pub mod runas;
pub mod state;
pub mod status;
pub mod tree;
pub mod watchdog;

#[cfg(test)]
mod layers;

pub use config::Config;
pub use controller::{Controller, HoldId, HoldStats};
pub use error::Error;
pub use status::Status;
pub use tree::Changes;
