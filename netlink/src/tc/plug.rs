//! `plug` qdisc options: `struct tc_plug_qopt { int action; __u32 limit; }`,
//! the raw payload of `TCA_OPTIONS` (`net/sched/sch_plug.c`).
//!
//! The kernel never reports them back: a plug's dump entry carries no
//! `TCA_OPTIONS`, so neither its state nor its limit can be read.

/// `sizeof(struct tc_plug_qopt)`.
pub const LEN: usize = 8;

/// `TCQ_PLUG_*`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlugAction {
    /// `TCQ_PLUG_BUFFER` (0): hold every packet from now on.
    Buffer,
    /// `TCQ_PLUG_RELEASE_ONE` (1): release what arrived before the last buffer.
    ReleaseOne,
    /// `TCQ_PLUG_RELEASE_INDEFINITE` (2): release everything, then pass through.
    ReleaseIndefinite,
    /// `TCQ_PLUG_LIMIT` (3): set the byte limit (also what creation sends).
    Limit,
}

impl PlugAction {
    /// The kernel's number.
    pub fn code(self) -> i32 {
        match self {
            PlugAction::Buffer => 0,
            PlugAction::ReleaseOne => 1,
            PlugAction::ReleaseIndefinite => 2,
            PlugAction::Limit => 3,
        }
    }
    /// From the kernel's number.
    pub fn from_code(c: i32) -> Option<PlugAction> {
        Some(match c {
            0 => PlugAction::Buffer,
            1 => PlugAction::ReleaseOne,
            2 => PlugAction::ReleaseIndefinite,
            3 => PlugAction::Limit,
            _ => return None,
        })
    }
    /// The keyword iproute2's `tc qdisc change ... plug KEYWORD` uses.
    pub fn tc_keyword(self) -> &'static str {
        match self {
            PlugAction::Buffer => "block",
            PlugAction::ReleaseOne => "release",
            PlugAction::ReleaseIndefinite => "release_indefinite",
            PlugAction::Limit => "limit",
        }
    }
}

/// `struct tc_plug_qopt`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlugOptions {
    /// What to do.
    pub action: PlugAction,
    /// Byte limit; read only by `Limit` and at creation.
    pub limit: u32,
}

impl PlugOptions {
    /// Creation options: a plug holding at most `limit` bytes.
    pub fn create(limit: u32) -> PlugOptions {
        PlugOptions {
            action: PlugAction::Limit,
            limit,
        }
    }
    /// A change with `action` (limit 0, as `tc` and libnl send).
    pub fn action(action: PlugAction) -> PlugOptions {
        PlugOptions { action, limit: 0 }
    }
    /// The 8 bytes of `struct tc_plug_qopt`.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(LEN);
        b.extend_from_slice(&self.action.code().to_ne_bytes());
        b.extend_from_slice(&self.limit.to_ne_bytes());
        b
    }
    /// Parse.
    pub fn parse(b: &[u8]) -> Option<PlugOptions> {
        let code = i32::from_ne_bytes(b.get(0..4)?.try_into().ok()?);
        Some(PlugOptions {
            action: PlugAction::from_code(code)?,
            limit: u32::from_ne_bytes(b.get(4..8)?.try_into().ok()?),
        })
    }
}
