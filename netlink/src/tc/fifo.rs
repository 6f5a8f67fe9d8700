//! `pfifo` qdisc options: `struct tc_fifo_qopt { __u32 limit; }` (packets),
//! the raw payload of `TCA_OPTIONS`.

/// `struct tc_fifo_qopt`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FifoOptions {
    /// Queue length limit in packets.
    pub limit: u32,
}

impl FifoOptions {
    /// The 4 bytes of `struct tc_fifo_qopt`.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.limit.to_ne_bytes().to_vec()
    }
    /// Parse.
    pub fn parse(b: &[u8]) -> Option<FifoOptions> {
        Some(FifoOptions {
            limit: u32::from_ne_bytes(b.get(0..4)?.try_into().ok()?),
        })
    }
}
