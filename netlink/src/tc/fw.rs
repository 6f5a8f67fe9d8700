//! `fw` classifier options (`net/sched/cls_fw.c`): a nest of `TCA_FW_*`
//! attributes inside `TCA_OPTIONS`. The filter *handle* is the mark.

use netlink_packet_core::{DefaultNla, Emitable, NlasIterator};

use super::Handle;

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
        let mut attrs = Vec::with_capacity(2);
        if let Some(mask) = self.mask {
            attrs.push(DefaultNla::new(TCA_FW_MASK, mask.to_ne_bytes().to_vec()));
        }
        attrs.push(DefaultNla::new(
            TCA_FW_CLASSID,
            self.classid.0.to_ne_bytes().to_vec(),
        ));
        let mut b = vec![0; attrs.as_slice().buffer_len()];
        attrs.as_slice().emit(&mut b);
        b
    }

    /// Parse the nest's content. Attributes other than classid and mask
    /// (police, indev, actions) are ignored. Without a classid fw runs in
    /// "old" mode, which plugctl never sets up: `None`. So is a malformed
    /// attribute.
    pub fn parse(b: &[u8]) -> Option<FwOptions> {
        let (mut classid, mut mask) = (None, None);
        for nla in NlasIterator::new(b) {
            let nla = nla.ok()?;
            let word = nla
                .value()
                .get(0..4)
                .and_then(|w| w.try_into().ok())
                .map(u32::from_ne_bytes);
            match nla.kind() {
                TCA_FW_CLASSID => classid = word,
                TCA_FW_MASK => mask = word,
                _ => {}
            }
        }
        Some(FwOptions {
            classid: Handle(classid?),
            mask: mask.filter(|m| *m != u32::MAX),
        })
    }
}
