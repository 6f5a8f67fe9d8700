//! plugctl: lose zero connections across service reloads.
//!
//! While a proxy such as HAProxy reloads, there is a moment when no process
//! accepts on its port, and new connections are refused. plugctl holds the
//! SYNs of new connections to the balancer's addresses in a tc `plug` qdisc
//! for the length of the reload (Yelp's method), then lets them through:
//! clients see a connect that takes a few milliseconds longer, not an error.
//!
//! [`Controller`] is the entry point: it builds the tree ([`Controller::setup`]),
//! takes and gives back holds ([`Controller::hold`], [`Controller::unhold`]),
//! reports [`Status`] and removes the tree. What the kernel cannot tell (is
//! the plug closed, who holds it) is kept in [`state`]. Every kernel exchange goes
//! through the [`kernel::Kernel`] trait. [`agent`] wraps it for tokio
//! programs, with a guard that always releases, and [`reload`] runs a reload
//! command under a hold.
#![deny(missing_docs)]

pub mod agent;
pub mod clock;
pub mod config;
pub mod controller;
pub mod error;
pub mod hold;
pub mod kernel;
pub mod ready;
pub mod reload;
pub mod report;
pub mod state;
pub mod status;
pub mod tree;
pub mod watchdog;

pub use config::Config;
pub use controller::{Controller, HoldId, HoldStats};
pub use error::Error;
pub use status::Status;
pub use tree::Changes;
