//! `prio` qdisc options: `struct tc_prio_qopt`, the raw payload of
//! `TCA_OPTIONS` (not nested).

/// `TC_PRIO_MAX + 1`.
pub const PRIOMAP_LEN: usize = 16;
/// `sizeof(struct tc_prio_qopt)`.
pub const LEN: usize = 20;

/// The default priomap `tc` sends (and `pfifo_fast` uses): with 4 bands no
/// traffic reaches band 4 except through a filter.
pub const DEFAULT_PRIOMAP: [u8; PRIOMAP_LEN] = [1, 2, 2, 2, 1, 2, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1];

/// `struct tc_prio_qopt { int bands; __u8 priomap[16]; }`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PrioOptions {
    /// Number of bands, 2..=16.
    pub bands: u32,
    /// Band (0-based) per packet priority.
    pub priomap: [u8; PRIOMAP_LEN],
}

impl PrioOptions {
    /// `bands` bands with the default priomap.
    pub fn with_bands(bands: u32) -> PrioOptions {
        PrioOptions {
            bands,
            priomap: DEFAULT_PRIOMAP,
        }
    }

    /// The 20 bytes of `struct tc_prio_qopt`.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(LEN);
        b.extend_from_slice(&(self.bands as i32).to_ne_bytes());
        b.extend_from_slice(&self.priomap);
        b
    }

    /// Parse; the kernel only requires at least 20 bytes.
    pub fn parse(b: &[u8]) -> Option<PrioOptions> {
        let bands = u32::from_ne_bytes(b.get(0..4)?.try_into().ok()?);
        let priomap = b.get(4..LEN)?.try_into().ok()?;
        Some(PrioOptions { bands, priomap })
    }
}
