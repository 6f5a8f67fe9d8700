//! `fw` classifier options (`net/sched/cls_fw.c`): a nest of `TCA_FW_*`
//! attributes inside `TCA_OPTIONS`. The filter *handle* is the mark.

use super::Handle;
use crate::frame::align;

/// `TCA_FW_CLASSID`.
pub const TCA_FW_CLASSID: u16 = 1;
/// `TCA_FW_MASK`.
pub const TCA_FW_MASK: u16 = 5;

/// What plugctl's `fw` filter says: `skb->mark & mask == handle` → `classid`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FwOptions {
    /// The class the marked packets go to (`1:4`).
    pub classid: Handle,
    /// Mask applied to the mark; `None` means the default 0xFFFFFFFF.
    pub mask: Option<u32>,
}

impl FwOptions {
    /// The nest's content, in `tc`'s order (mask first, then classid).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(16);
        if let Some(mask) = self.mask {
            put_u32(&mut b, TCA_FW_MASK, mask);
        }
        put_u32(&mut b, TCA_FW_CLASSID, self.classid.0);
        b
    }

    /// Parse the nest's content. Attributes other than classid and mask
    /// (police, indev, actions) are ignored. Without a classid fw runs in
    /// "old" mode, which plugctl never sets up: `None`.
    pub fn parse(mut b: &[u8]) -> Option<FwOptions> {
        let (mut classid, mut mask) = (None, None);
        while b.len() >= 4 {
            let len = u16::from_ne_bytes([b[0], b[1]]) as usize;
            let ty = u16::from_ne_bytes([b[2], b[3]]) & 0x3fff;
            let value = b.get(4..len)?;
            let word = value
                .get(0..4)
                .and_then(|w| w.try_into().ok())
                .map(u32::from_ne_bytes);
            match ty {
                TCA_FW_CLASSID => classid = word,
                TCA_FW_MASK => mask = word,
                _ => {}
            }
            b = b.get(align(len)..).unwrap_or_default();
        }
        Some(FwOptions {
            classid: Handle(classid?),
            mask: mask.filter(|m| *m != u32::MAX),
        })
    }
}

fn put_u32(b: &mut Vec<u8>, ty: u16, v: u32) {
    b.extend_from_slice(&8u16.to_ne_bytes());
    b.extend_from_slice(&ty.to_ne_bytes());
    b.extend_from_slice(&v.to_ne_bytes());
}
