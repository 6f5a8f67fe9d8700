//! The lease on a hold: the steering of new SYNs into the plug lasts only
//! as long as the elements of the lease sets (see [`crate::tree`]'s
//! `rules.rs`) live in the kernel. A hold adds them with a timeout; if
//! every plugctl process dies, the kernel removes them when it runs out,
//! and new SYNs are no longer marked, so they pass the plug: only the SYNs
//! held before then still wait for `plugctl release` or `plugctl setup`.
//!
//! Renewing is one nf_tables batch per call (add, delete, add: Linux 6.1
//! keeps an element's old timeout when it is added again); ending it is
//! one batch too (add, delete: never -ENOENT, whether the elements are
//! still there or have expired).

use std::net::IpAddr;
use std::time::Duration;

use plugctl_netlink::nft::SetKeys;
use serde::Serialize;

use crate::config::Config;
use crate::error::Error;
use crate::kernel::Kernel;
use crate::tree;

/// How much longer than `max_hold` a reload's lease lasts: the time a
/// reload may take between its deadline and its release (a lock wait, a
/// slow process start under load, the watchdog's reaction), so a live
/// reload never loses its lease before it releases.
pub const GRACE: Duration = Duration::from_secs(5);

/// The lease a hold takes by default: `max_hold` + [`GRACE`].
pub fn default_lease(cfg: &Config) -> Duration {
    cfg.max_hold + GRACE
}

/// Renew the lease on every configured address \[. port\] to `lease`
/// from now, in one batch. Fails with [`Error::NotSetUp`] if a lease set
/// is missing (a tree built before leases: `plugctl setup` migrates it).
pub fn renew(k: &mut dyn Kernel, cfg: &Config, lease: Duration) -> Result<(), Error> {
    let ms = u64::try_from(lease.as_millis()).unwrap_or(u64::MAX).max(1);
    send(k, cfg, Some(ms))
}

/// End the lease: remove every configured element, in one batch.
pub fn end(k: &mut dyn Kernel, cfg: &Config) -> Result<(), Error> {
    send(k, cfg, None)
}

fn send(k: &mut dyn Kernel, cfg: &Config, timeout_ms: Option<u64>) -> Result<(), Error> {
    let keys = tree::lease_keys(cfg);
    let sets: Vec<SetKeys<'_>> = keys
        .iter()
        .map(|(s, keys)| SetKeys { set: &s.name, keys })
        .collect();
    match k.nft_lease(&cfg.table, &sets, timeout_ms) {
        Ok(()) => Ok(()),
        Err(plugctl_netlink::Error::Kernel(e)) if e.errno == libc::ENOENT => {
            Err(Error::NotSetUp {
                device: cfg.device.clone(),
                missing: format!(
                    "no lease set in nft table inet {} (built by an older plugctl? run `plugctl setup`)",
                    cfg.table
                ),
            })
        }
        Err(e) => Err(Error::netlink(
            if timeout_ms.is_some() {
                "renewing the lease"
            } else {
                "ending the lease"
            },
            e,
        )),
    }
}

/// One leased element, as `status` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Leased {
    /// The address.
    pub address: IpAddr,
    /// The port, if ports are configured.
    pub port: Option<u16>,
    /// The lease it was given, ms.
    pub lease_ms: Option<u64>,
    /// Ms left before new SYNs to it are no longer held.
    pub expires_in_ms: Option<u64>,
}

/// What is leased now (nothing when no hold is, or the sets are missing;
/// expired elements left for the kernel's garbage collection are not).
pub fn read(k: &mut dyn Kernel, cfg: &Config) -> Result<Vec<Leased>, Error> {
    let mut out = Vec::new();
    for s in tree::sets(cfg) {
        let elems = k
            .nft_set_elems(&cfg.table, &s.name)
            .map_err(|e| Error::netlink("reading the lease", e))?;
        // An element the kernel reports with 0 ms left has expired (it
        // matches no packet) and is only waiting for garbage collection.
        for e in elems
            .unwrap_or_default()
            .into_iter()
            .filter(|e| e.expires_ms != Some(0))
        {
            if let Some((address, port)) = s.key.parse_element(&e.key) {
                out.push(Leased {
                    address,
                    port,
                    lease_ms: e.timeout_ms,
                    expires_in_ms: e.expires_ms,
                });
            }
        }
    }
    Ok(out)
}
